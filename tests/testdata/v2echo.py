"""A tiny KServe v2 REST server under bmaas's serving contract, for tests.

It serves on BMAAS_HTTP_PORT, answers only callers that bring
"Authorization: Bearer $BMAAS_TOKEN", reads $BMAAS_MODEL_DIR/model, and
is ready once the file that --ready-file names exists (always, without
the flag). Inference echoes every input back as <name>_out, and says the
model file's contents in the response's parameters.

    python3 v2echo.py --port=8080 [--ready-file=PATH] [--tag=ANY]
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("BMAAS_HTTP_PORT", "0")))
    ap.add_argument("--ready-file", default="")
    ap.add_argument("--tag", default="", help="marks the process; unused")
    args = ap.parse_args()
    name = os.environ["BMAAS_MODEL_NAME"]
    token = os.environ.get("BMAAS_TOKEN", "")
    with open(os.path.join(os.environ["BMAAS_MODEL_DIR"], "model"), "rb") as f:
        model = f.read().decode("utf-8", "replace")

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            b = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def authorized(self):
            if token and self.headers.get("Authorization") != "Bearer " + token:
                self.reply(401, {"error": "unauthorized"})
                return False
            return True

        def do_GET(self):
            if not self.authorized():
                return
            if self.path == "/v2/health/live":
                self.reply(200, {"live": True})
            elif self.path == "/v2/health/ready":
                ready = not args.ready_file or os.path.exists(args.ready_file)
                self.reply(200 if ready else 503, {"ready": ready})
            elif self.path == "/v2":
                self.reply(200, {"name": "v2echo", "version": "1", "extensions": []})
            elif self.path == "/v2/models/" + name:
                self.reply(200, {"name": name, "versions": [os.environ.get("BMAAS_MODEL_VERSION", "")],
                                 "platform": "v2echo", "inputs": [], "outputs": []})
            else:
                self.reply(404, {"error": "not found: " + self.path})

        def do_POST(self):
            if not self.authorized():
                return
            if self.path != "/v2/models/%s/infer" % name:
                self.reply(404, {"error": "not found: " + self.path})
                return
            n = int(self.headers.get("Content-Length", "0"))
            try:
                req = json.loads(self.rfile.read(n) or b"{}")
            except ValueError as e:
                self.reply(400, {"error": str(e)})
                return
            outputs = [dict(t, name=t.get("name", "") + "_out") for t in req.get("inputs", [])]
            self.reply(200, {"model_name": name, "model_version": os.environ.get("BMAAS_MODEL_VERSION", ""),
                             "id": req.get("id", ""), "parameters": {"model": model}, "outputs": outputs})

        def log_message(self, fmt, *a):
            if self.path.startswith("/v2/health/"):
                return  # the agent's probes
            sys.stderr.write("v2echo: " + (fmt % a) + "\n")

    srv = ThreadingHTTPServer(("", args.port), Handler)
    print("v2echo serving %s on port %d" % (name, args.port), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
