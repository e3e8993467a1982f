"""Serves the model train.py writes, following SageMaker's inference contract.

GET /ping answers 200 when the model is loaded; POST /invocations takes CSV
rows (features only) or JSON {"instances": [[...], ...]} and answers
{"predictions": [{"probability": p, "label": 0|1}, ...]}. Listens on port
8080, reading the model from /opt/ml/model (or SM_MODEL_DIR).
"""

import json
import math
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_DIR = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
with open(os.path.join(MODEL_DIR, "model.json")) as f:
    MODEL = json.load(f)


def predict(row):
    z = MODEL["bias"] + sum(
        w * (v - m) / s for w, v, m, s in zip(MODEL["weights"], row, MODEL["means"], MODEL["stds"]))
    p = 1.0 / (1.0 + math.exp(-max(min(z, 35.0), -35.0)))
    return {"probability": round(p, 6), "label": int(p >= 0.5)}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/ping":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/invocations":
            return self._send(404, {"error": "not found"})
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        try:
            if self.headers.get("Content-Type", "").startswith("application/json"):
                rows = json.loads(raw)["instances"]
            else:
                rows = [[float(v) for v in line.split(",")] for line in raw.splitlines() if line.strip()]
            self._send(200, {"predictions": [predict(r) for r in rows]})
        except (ValueError, KeyError, TypeError) as e:
            self._send(400, {"error": f"bad input: {e}"})


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))), Handler).serve_forever()
