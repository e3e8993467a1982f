"""Capstan's inference shim: serves one model version on the listening socket
Capstan hands it as standard input (fd 0), following SageMaker's inference
contract (GET /ping, POST /invocations).

Two kinds of entry point (SAGEMAKER_PROGRAM, in SAGEMAKER_SUBMIT_DIRECTORY):

* script mode, as SageMaker's framework containers serve it: the script
  defines model_fn(model_dir) and optionally input_fn(body, content_type),
  predict_fn(data, model) and output_fn(prediction, accept); the shim loads
  the model once and calls them for each request;
* a server of its own (such as examples/serve.py): the shim starts it with
  SAGEMAKER_BIND_TO_PORT set and relays each connection to it.
"""

import ast
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CODE_DIR = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", os.getcwd())
PROGRAM = os.environ["SAGEMAKER_PROGRAM"]
MODEL_DIR = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
INNER_PORT = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))


def listening_socket():
    return socket.socket(fileno=os.dup(0))


def defines_model_fn(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    return any(isinstance(n, ast.FunctionDef) and n.name == "model_fn" for n in tree.body)


# --- script mode -----------------------------------------------------------

def default_input_fn(body, content_type):
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct == "application/json":
        return json.loads(body)
    if ct == "text/csv":
        rows = [line for line in body.decode("utf-8").splitlines() if line.strip()]
        return [[float(v) for v in line.split(",")] for line in rows]
    if ct.startswith("text/"):
        return body.decode("utf-8")
    return body


def default_predict_fn(data, model):
    if hasattr(model, "predict"):
        return model.predict(data)
    if callable(model):
        return model(data)
    raise TypeError("the model has no predict method and is not callable: define predict_fn")


def default_output_fn(prediction, accept):
    accept = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    if hasattr(prediction, "tolist"):
        prediction = prediction.tolist()
    if accept == "text/csv":
        rows = prediction if isinstance(prediction, list) else [prediction]
        lines = [",".join(str(v) for v in (r if isinstance(r, (list, tuple)) else [r])) for r in rows]
        return "\n".join(lines).encode(), "text/csv"
    return json.dumps(prediction).encode(), "application/json"


def serve_script(path):
    sys.path.insert(0, CODE_DIR)
    spec = importlib.util.spec_from_file_location("inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.model_fn(MODEL_DIR)
    input_fn = getattr(module, "input_fn", default_input_fn)
    predict_fn = getattr(module, "predict_fn", default_predict_fn)
    output_fn = getattr(module, "output_fn", default_output_fn)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # headers and body go out in separate writes: without this, each
            # answer waits for the gateway's delayed acknowledgement (40 ms)
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def _send(self, status, body, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/ping":
                self._send(200, b"{}")
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self):
            if self.path != "/invocations":
                return self._send(404, b'{"error": "not found"}')
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                data = input_fn(body, self.headers.get("Content-Type"))
                prediction = predict_fn(data, model)
                out = output_fn(prediction, self.headers.get("Accept"))
                if isinstance(out, tuple):
                    out, content_type = out
                else:
                    content_type = self.headers.get("Accept") or "application/json"
                if isinstance(out, str):
                    out = out.encode()
                self._send(200, out, content_type)
            except Exception as e:  # the handler's error is the model's error
                traceback.print_exc()
                self._send(500, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listening_socket()
    server.daemon_threads = True
    print(f"capstan shim: serving {PROGRAM} (script mode) from {MODEL_DIR}", flush=True)
    server.serve_forever()


# --- a server of its own ---------------------------------------------------

def pipe(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relay(conn):
    try:
        upstream = socket.create_connection(("127.0.0.1", INNER_PORT))
    except OSError:
        conn.close()
        return
    for s in (conn, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
    pipe(conn, upstream)
    conn.close()
    upstream.close()


def serve_program(path):
    env = dict(os.environ, SAGEMAKER_BIND_TO_PORT=str(INNER_PORT))
    child = subprocess.Popen([sys.executable, path, "serve"], cwd=CODE_DIR, env=env, stdin=subprocess.DEVNULL)
    listener = listening_socket()

    def watch():
        code = child.wait()
        print(f"capstan shim: {PROGRAM} exited with {code}", flush=True)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    # accept only once the server listens, so /ping means what it says
    while True:
        try:
            socket.create_connection(("127.0.0.1", INNER_PORT), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    print(f"capstan shim: relaying to {PROGRAM} on port {INNER_PORT}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=relay, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    entry = os.path.join(CODE_DIR, PROGRAM)
    if defines_model_fn(entry):
        serve_script(entry)
    else:
        serve_program(entry)
