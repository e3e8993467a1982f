"""A webhook receiver as a team would write one, verifying every delivery
with the Standard Webhooks reference library (`standardwebhooks`).

Usage: webhook_receiver.py PORT LOG_FILE   (secret in WEBHOOK_SECRET)

Answers 200 to a delivery that verifies, 400 to one that does not (a
tampered body, a wrong signature, a timestamp more than five minutes off),
and 500 to the first FAIL_FIRST verified deliveries (to make Capstan retry).
Every request is appended to LOG_FILE as one JSON line: its headers, its
body, whether it verified and what was answered.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook

PORT, LOG = int(sys.argv[1]), sys.argv[2]
HOOK = Webhook(os.environ["WEBHOOK_SECRET"])
fail_first = int(os.environ.get("FAIL_FIRST", "0"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        global fail_first
        body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"headers": headers, "body": body}
        try:
            payload = HOOK.verify(body, headers)
            entry.update(verified=True, type=payload.get("type"))
            if fail_first > 0:
                fail_first -= 1
                status = 500
            else:
                status = 200
        except Exception as e:  # the library raises WebhookVerificationError
            entry.update(verified=False, error=str(e))
            status = 400
        entry["answered"] = status
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"no")

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
