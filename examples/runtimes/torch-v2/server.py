#!/usr/bin/env python3
"""torch-v2: a KServe v2 REST server for PyTorch models, run by bmaas as a
serving runtime's process (standard library and PyTorch only).

The serving contract (environment):

  BMAAS_MODEL_DIR       the version, unpacked: model.ts (TorchScript) or
                        model.pt (a state dict of the PyTorch example's Model,
                        rebuilt from model.json), with model.json and/or
                        signature.json saying what the outputs mean
  BMAAS_MODEL_NAME      the name clients use (default: the directory's name)
  BMAAS_MODEL_VERSION   the version number (default 1)
  BMAAS_HTTP_PORT       the port of the v2 REST API (default 8080)
  BMAAS_PARAMS          JSON object: max_batch_size (default 32),
                        max_queue_delay_ms (default 0), threads (default 1),
                        host (default 0.0.0.0), max_body_mb (default 64)
  BMAAS_TOKEN           when set, /v2/models/... want "Authorization: Bearer <token>"
  CUDA_VISIBLE_DEVICES  the model runs on cuda:0 when this names a GPU and
                        torch.cuda.is_available()

A classifier answers what bmaas's built-in server answers for the same
model: "predictions" (BYTES, the class labels) and "probabilities" (FP64,
a softmax of the logits); any other model answers its output (FP32).
Concurrent requests are batched: a batcher thread gathers them up to
max_batch_size rows or max_queue_delay_ms, runs one forward pass and
splits the result; with max_queue_delay_ms 0, a request that finds the
model idle runs its own pass at once. GET /metrics is Prometheus text.
"""

import array
import hmac
import json
import os
import queue
import re
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import torch
from torch import nn

HEADER_LENGTH = "Inference-Header-Content-Length"
FP32, FP64, BYTES = "FP32", "FP64", "BYTES"


class BadRequest(Exception):
    """A client's error: HTTP 400 with {"error": message}."""

    def __init__(self, field, msg, status=400):
        super().__init__("%s: %s" % (field, msg) if field else msg)
        self.status = status


def log(msg):
    print("torch-v2: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- settings

def settings(env):
    """The server's settings from the contract's environment."""
    try:
        params = json.loads(env.get("BMAAS_PARAMS") or "{}")
    except ValueError as e:
        raise SystemExit("BMAAS_PARAMS: not a JSON object: %s" % e)
    if not isinstance(params, dict):
        raise SystemExit("BMAAS_PARAMS: not a JSON object")

    def num(key, default, kind, lo):
        raw = params.get(key, default)
        try:
            v = kind(float(raw))
        except (TypeError, ValueError):
            raise SystemExit("BMAAS_PARAMS %s: %r is not a number" % (key, raw))
        if v < lo:
            raise SystemExit("BMAAS_PARAMS %s: %r is below %s" % (key, raw, lo))
        return v

    model_dir = env.get("BMAAS_MODEL_DIR") or "."
    return {
        "model_dir": model_dir,
        "name": env.get("BMAAS_MODEL_NAME") or os.path.basename(os.path.abspath(model_dir)),
        "version": str(env.get("BMAAS_MODEL_VERSION") or "1"),
        "port": int(env.get("BMAAS_HTTP_PORT") or 8080),
        "token": env.get("BMAAS_TOKEN") or "",
        "host": str(params.get("host", "0.0.0.0")),
        "max_batch_size": num("max_batch_size", 32, int, 1),
        "max_queue_delay": num("max_queue_delay_ms", 0, float, 0) / 1000.0,
        "threads": num("threads", 1, int, 1),
        "max_body": num("max_body_mb", 64, float, 0) * (1 << 20),
        "cuda": cuda_requested(env.get("CUDA_VISIBLE_DEVICES")),
    }


def cuda_requested(visible):
    """Whether CUDA_VISIBLE_DEVICES names a GPU."""
    v = (visible or "").strip()
    return v not in ("", "-1", "none", "NoGPU", "void")


# ------------------------------------------------------------------- model

class Model(nn.Module):
    """The PyTorch example's model (examples/pytorch/train.py): the
    standardisation of the features, then an MLP."""

    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_in))
        self.register_buffer("std", torch.ones(n_in))
        layers, width = [], n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def model_root(model_dir):
    """The directory holding the model files: model_dir, or its one
    subdirectory when an archive packed a folder."""
    names = [n for n in os.listdir(model_dir) if not n.startswith(".")]
    if any(n.endswith((".ts", ".pt", ".pth", ".json")) for n in names):
        return model_dir
    dirs = [n for n in names if os.path.isdir(os.path.join(model_dir, n))]
    if len(dirs) == 1:
        return model_root(os.path.join(model_dir, dirs[0]))
    return model_dir


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


class Served:
    """A loaded model and what its input and outputs are."""

    def __init__(self, model_dir, device):
        root = model_root(model_dir)
        meta = read_json(os.path.join(root, "model.json")) or {}
        sig = read_json(os.path.join(root, "signature.json")) or {}
        self.device = device
        self.input_name, self.features = "input", len(meta.get("features") or []) or -1
        sig_in = (sig.get("inputs") or [{}])[0]
        sig_out = (sig.get("outputs") or [{}])[0]
        if sig_in.get("name"):
            self.input_name = sig_in["name"]
        if self.features < 0 and len(sig_in.get("shape") or []) == 2 and sig_in["shape"][1] > 0:
            self.features = int(sig_in["shape"][1])
        # What the output means: class labels and whether they are logits.
        self.labels = [str(c) for c in (sig_out.get("labels") or meta.get("classes") or [])]
        kind = sig_out.get("kind") or ("OUTPUT_KIND_LOGITS" if meta.get("output") == "logits" else "")
        self.logits = kind == "OUTPUT_KIND_LOGITS"
        self.output_name = sig_out.get("name") or "output"
        ts = os.path.join(root, "model.ts")
        if os.path.exists(ts):
            self.kind, self.module = "torchscript", torch.jit.load(ts, map_location=device)
        else:
            self.kind, self.module = "state dict", self._from_state_dict(root, meta)
        self.module.to(device).eval()
        self.width = len(self.labels) or int(meta.get("outputs") or 0) or self._probe_width()

    def _from_state_dict(self, root, meta):
        pts = sorted(n for n in os.listdir(root) if n.endswith((".pt", ".pth")) and n != "checkpoint.pt")
        if not pts:
            raise SystemExit("%s holds neither model.ts (TorchScript) nor a .pt state dict" % root)
        path = os.path.join(root, "model.pt" if "model.pt" in pts else pts[0])
        state = torch.load(path, map_location="cpu")
        if isinstance(state, nn.Module):
            return state
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]  # a training checkpoint
        if not meta.get("features"):
            raise SystemExit("%s is a state dict: model.json must say its features (and hidden, classes)" % path)
        n_out = len(meta.get("classes") or []) or 1
        hidden = meta.get("hidden") or []
        if isinstance(hidden, str):
            hidden = [int(h) for h in hidden.split(",") if h.strip()]
        m = Model(len(meta["features"]), [int(h) for h in hidden], n_out)
        m.load_state_dict(state)
        return m

    def _probe_width(self):
        if self.features < 0:
            return -1
        with torch.inference_mode():
            return int(self.module(torch.zeros(1, self.features, device=self.device)).reshape(1, -1).shape[1])

    def platform(self):
        return "pytorch_torchscript" if self.kind == "torchscript" else "pytorch_state_dict"

    def inputs(self):
        return [{"name": self.input_name, "datatype": FP32, "shape": [-1, self.features]}]

    def outputs(self):
        if self.labels:
            return [{"name": "predictions", "datatype": BYTES, "shape": [-1]},
                    {"name": "probabilities", "datatype": FP64, "shape": [-1, len(self.labels)]}]
        return [{"name": self.output_name, "datatype": FP32, "shape": [-1, self.width]}]

    def forward(self, x):
        """One forward pass of float32 rows on the model's device; the
        answer on the CPU."""
        with torch.inference_mode():
            out = self.module(x.to(self.device, non_blocking=True))
            return out.reshape(out.shape[0], -1).float().cpu()

    def answer(self, out):
        """The outputs of rows of model output: name -> (datatype, shape, values)."""
        rows = out.shape[0]
        if not self.labels:
            return {self.output_name: (FP32, [rows, out.shape[1]], out)}
        if out.shape[1] != len(self.labels):
            raise RuntimeError("the model answers %d values a row for %d classes" % (out.shape[1], len(self.labels)))
        probs = torch.softmax(out.double(), dim=1) if self.logits else out.double()
        best = probs.argmax(dim=1).tolist()
        return {"predictions": (BYTES, [rows], [self.labels[i] for i in best]),
                "probabilities": (FP64, [rows, len(self.labels)], probs)}


# ----------------------------------------------------------------- batcher

class Metrics:
    """Counters and histograms for GET /metrics (Prometheus text)."""

    BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}
        self.batch = Histogram(self.BATCH_BUCKETS)
        self.latency = Histogram(self.LATENCY_BUCKETS)

    def request(self, code, seconds):
        with self.lock:
            self.requests[code] = self.requests.get(code, 0) + 1
            self.latency.observe(seconds)

    def batched(self, rows):
        with self.lock:
            self.batch.observe(rows)

    def text(self, model):
        lines = ["# HELP torch_v2_requests_total Inference requests by HTTP status code.",
                 "# TYPE torch_v2_requests_total counter"]
        with self.lock:
            for code in sorted(self.requests):
                lines.append('torch_v2_requests_total{model="%s",code="%d"} %d' % (model, code, self.requests[code]))
            lines += ["# HELP torch_v2_batch_rows Rows of each forward pass.", "# TYPE torch_v2_batch_rows histogram"]
            lines += self.batch.lines("torch_v2_batch_rows", model)
            lines += ["# HELP torch_v2_request_seconds Inference request latency.",
                      "# TYPE torch_v2_request_seconds histogram"]
            lines += self.latency.lines("torch_v2_request_seconds", model)
        return "\n".join(lines) + "\n"


class Histogram:
    def __init__(self, buckets):
        self.buckets, self.counts, self.sum, self.count, self.max = buckets, [0] * len(buckets), 0.0, 0, 0

    def observe(self, v):
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1
        self.sum += v
        self.count += 1
        self.max = max(self.max, v)

    def lines(self, name, model):
        out = ['%s_bucket{model="%s",le="%s"} %d' % (name, model, b, c) for b, c in zip(self.buckets, self.counts)]
        out.append('%s_bucket{model="%s",le="+Inf"} %d' % (name, model, self.count))
        out.append('%s_sum{model="%s"} %s' % (name, model, repr(float(self.sum))))
        out.append('%s_count{model="%s"} %d' % (name, model, self.count))
        return out


class Pending:
    """One request's rows waiting for their share of a forward pass."""

    def __init__(self, x):
        self.x, self.out, self.err, self.done = x, None, None, threading.Event()


class Batcher:
    """Gathers concurrent requests into one forward pass: a batch closes at
    max_batch_size rows, or max_queue_delay after its first request came.

    One forward pass runs at a time (the model lock). With max_queue_delay 0,
    a request that finds nothing queued and the model free runs its own pass
    in its handler's thread: a lone request does not wait on two thread
    switches through the batcher. Requests that come while a pass runs
    queue, and the batcher thread makes them the next pass."""

    def __init__(self, served, max_rows, delay, metrics):
        self.served, self.max_rows, self.delay, self.metrics = served, max_rows, delay, metrics
        self.q = queue.Queue()
        self.carry = None
        self.model = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self.thread.start()

    def predict(self, x):
        if (self.delay == 0 and x.shape[0] <= self.max_rows and self.carry is None and self.q.empty()
                and self.model.acquire(blocking=False)):
            try:
                out = self.served.forward(x)
            finally:
                self.model.release()
            self.metrics.batched(x.shape[0])
            return out
        p = Pending(x)
        self.q.put(p)
        p.done.wait()
        if p.err is not None:
            raise p.err
        return p.out

    def stop(self):
        self.q.put(None)
        self.thread.join()

    def _next(self, timeout=None):
        if self.carry is not None:
            p, self.carry = self.carry, None
            return p
        return self.q.get(timeout=timeout) if timeout is not None else self.q.get()

    def _run(self):
        while True:
            first = self._next()
            if first is None:
                return
            with self.model:  # the requests that queue meanwhile join this pass
                self._gather(first)

    def _gather(self, first):
        batch, rows = [first], first.x.shape[0]
        deadline = time.monotonic() + self.delay
        while rows < self.max_rows:
            left = deadline - time.monotonic()
            try:
                p = self._next(timeout=max(left, 0)) if left > 0 else self.q.get_nowait()
            except queue.Empty:
                break
            if p is None:
                self.q.put(None)  # stop after this batch
                break
            if rows + p.x.shape[0] > self.max_rows:
                self.carry = p  # opens the next batch
                break
            batch.append(p)
            rows += p.x.shape[0]
        self._forward(batch, rows)

    def _forward(self, batch, rows):
        try:
            x = batch[0].x if len(batch) == 1 else torch.cat([p.x for p in batch])
            out = self.served.forward(x)
            self.metrics.batched(rows)
            at = 0
            for p in batch:
                n = p.x.shape[0]
                p.out = out[at:at + n]
                at += n
        except Exception as e:  # the model's failure answers every request of the batch
            for p in batch:
                p.err = e
        for p in batch:
            p.done.set()


# ---------------------------------------------------------------- protocol

def parse_infer(body, header_len, served):
    """The rows of an inference request (JSON, or JSON and binary data), and
    the outputs it asks for: ([(name, binary)], id)."""
    try:
        req = json.loads(body[:header_len])
    except ValueError as e:
        raise BadRequest("", "the body is not JSON: %s" % e)
    if not isinstance(req, dict):
        raise BadRequest("", "the body is not a JSON object")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("inputs", "missing input %r [-1, %d] FP32" % (served.input_name, served.features))
    if len(inputs) != 1:
        raise BadRequest("inputs", "the model takes one input %r, got %d" % (served.input_name, len(inputs)))
    t = inputs[0]
    if not isinstance(t, dict) or t.get("name") != served.input_name:
        raise BadRequest("inputs[0].name", "unknown input %r: the model takes %r" % (
            t.get("name") if isinstance(t, dict) else t, served.input_name))
    dt = t.get("datatype")
    if dt not in (FP32, FP64):
        raise BadRequest("inputs[0].datatype", "input %r must be FP32 or FP64, got %r" % (served.input_name, dt))
    shape = t.get("shape")
    if (not isinstance(shape, list) or len(shape) != 2 or not all(isinstance(s, int) for s in shape)
            or shape[0] < 1 or (served.features > 0 and shape[1] != served.features) or shape[1] < 1):
        raise BadRequest("inputs[0].shape", "input %r must be shaped [rows, %d], got %r" % (
            served.input_name, served.features, shape))
    n = shape[0] * shape[1]
    size = (t.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if "data" in t:
            raise BadRequest("inputs[0].data", "set with binary_data_size")
        width = 4 if dt == FP32 else 8
        if not isinstance(size, int) or isinstance(size, bool) or size != n * width or header_len + size > len(body):
            raise BadRequest("inputs[0].parameters.binary_data_size",
                             "input %r needs %d bytes (%d %s values), got %r of %d" % (
                                 served.input_name, n * width, n, dt, size, len(body) - header_len))
        raw = bytearray(body[header_len:header_len + size])
        x = torch.frombuffer(raw, dtype=torch.float32 if dt == FP32 else torch.float64)
    else:
        values = flatten(t.get("data"))
        if len(values) != n:
            raise BadRequest("inputs[0].data", "input %r shaped %r needs %d %s values, got %d" % (
                served.input_name, shape, n, dt, len(values)))
        try:
            x = torch.tensor(values, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise BadRequest("inputs[0].data", "input %r holds a value that is not a number" % served.input_name)
    x = x.reshape(shape[0], shape[1]).float()
    names = {o["name"] for o in served.outputs()}
    all_binary = bool((req.get("parameters") or {}).get("binary_data_output", False))
    wanted = []
    for i, o in enumerate(req.get("outputs") or []):
        name = o.get("name") if isinstance(o, dict) else None
        if name not in names:
            raise BadRequest("outputs[%d].name" % i, "unknown output %r" % name)
        wanted.append((name, bool((o.get("parameters") or {}).get("binary_data", all_binary))))
    if not wanted:
        wanted = [(o["name"], all_binary) for o in served.outputs()]
    return x, wanted, req.get("id")


def flatten(data):
    if not isinstance(data, list):
        return []
    if data and isinstance(data[0], list):
        out = []
        for d in data:
            out.extend(flatten(d) if isinstance(d, list) else [d])
        return out
    return data


def encode_infer(served, answer, wanted, name, version, req_id):
    """The response: (body, header length or None, content type)."""
    outs, blobs = [], []
    for out_name, binary in wanted:
        dt, shape, values = answer[out_name]
        t = {"name": out_name, "datatype": dt, "shape": shape}
        if binary:
            b = raw_bytes(dt, values)
            t["parameters"] = {"binary_data_size": len(b)}
            blobs.append(b)
        else:
            t["data"] = values if dt == BYTES else values.reshape(-1).tolist()
        outs.append(t)
    resp = {"model_name": name, "model_version": version, "outputs": outs}
    if req_id is not None:
        resp["id"] = req_id
    head = json.dumps(resp, separators=(",", ":")).encode()
    if not blobs:
        return head, None, "application/json"
    return head + b"".join(blobs), len(head), "application/octet-stream"


def raw_bytes(dt, values):
    """A tensor's little-endian bytes; BYTES elements each with a 4-byte length."""
    if dt == BYTES:
        parts = []
        for v in values:
            b = v.encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    a = array.array("f" if dt == FP32 else "d", values.reshape(-1).tolist())
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


# -------------------------------------------------------------------- HTTP

MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")


class Handler(BaseHTTPRequestHandler):
    """The v2 REST API; server is the App."""

    protocol_version = "HTTP/1.1"  # keep-alive: the gateway pools connections

    def log_message(self, fmt, *args):  # one line per start, not per request
        pass

    def do_GET(self):
        self.server.app.handle(self, "GET")

    def do_POST(self):
        self.server.app.handle(self, "POST")

    def setup(self):
        super().setup()
        # Answers go out whole: no waiting on Nagle's algorithm for the
        # client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, code, body, ctype="application/json", header_len=None):
        """One response, its head and body in one write."""
        head = ["HTTP/1.1 %d %s" % (code, self.responses.get(code, ("",))[0]),
                "Content-Type: " + ctype, "Content-Length: %d" % len(body)]
        if header_len is not None:
            head.append("%s: %d" % (HEADER_LENGTH, header_len))
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def send_json(self, code, obj):
        self.send(code, json.dumps(obj, separators=(",", ":")).encode())


class HTTPServer(ThreadingHTTPServer):
    """A thread per connection; a listen backlog for bursts of clients."""

    daemon_threads = True
    request_queue_size = 128


class App:
    """What the handler serves."""

    def __init__(self, cfg, served, batcher, metrics):
        self.cfg, self.served, self.batcher, self.metrics = cfg, served, batcher, metrics
        self.ready = True

    def authorized(self, h):
        tok = self.cfg["token"]
        if not tok:
            return True
        got = h.headers.get("Authorization", "")
        return got.startswith("Bearer ") and hmac.compare_digest(got[len("Bearer "):].encode(), tok.encode())

    def body(self, h):
        n = h.headers.get("Content-Length")
        if n is None:
            raise BadRequest("Content-Length", "required", 411)
        try:
            n = int(n)
        except ValueError:
            raise BadRequest("Content-Length", "%r is not a length" % n)
        if n < 0 or n > self.cfg["max_body"]:
            raise BadRequest("Content-Length", "a body of %d bytes is over max_body_mb" % n, 413)
        return h.rfile.read(n)

    def handle(self, h, method):
        path = h.path.split("?", 1)[0]
        try:
            # Read a body we do not route, so the connection stays usable.
            body = self.body(h) if method == "POST" else b""
        except BadRequest as e:  # the body is unread: the connection cannot go on
            h.close_connection = True
            return h.send_json(e.status, {"error": str(e)})
        try:
            if method == "GET" and path == "/v2/health/live":
                return h.send_json(200, {"live": True})
            if method == "GET" and path == "/v2/health/ready":
                return h.send_json(200 if self.ready else 503, {"ready": self.ready})
            if method == "GET" and path == "/metrics":
                return h.send(200, self.metrics.text(self.cfg["name"]).encode(), "text/plain; version=0.0.4")
            if method == "GET" and path == "/v2":
                return h.send_json(200, {"name": "torch-v2", "version": torch.__version__,
                                         "extensions": ["binary_tensor_data"]})
            m = MODEL_PATH.match(path)
            if not m:
                return h.send_json(404, {"error": "no such path: %s %s" % (method, path)})
            if not self.authorized(h):
                return h.send_json(401, {"error": "Authorization: a valid bearer token is required"})
            name, version, action = unquote(m.group(1)), m.group(2), m.group(3) or ""
            version = None if version is None else unquote(version)
            if name != self.cfg["name"]:
                return h.send_json(404, {"error": "unknown model %r: this server serves %r" % (name, self.cfg["name"])})
            if version is not None and version != self.cfg["version"]:
                return h.send_json(404, {"error": "model %r has no version %r: it serves version %s" % (
                    name, version, self.cfg["version"])})
            if method == "GET" and action == "":
                return h.send_json(200, {"name": name, "versions": [self.cfg["version"]],
                                         "platform": self.served.platform(),
                                         "inputs": self.served.inputs(), "outputs": self.served.outputs()})
            if method == "GET" and action == "/ready":
                return h.send_json(200 if self.ready else 503, {"name": name, "ready": self.ready})
            if method == "POST" and action == "/infer":
                return self.infer(h, body)
            return h.send_json(405, {"error": "%s is not allowed on %s" % (method, path)})
        except BadRequest as e:
            h.send_json(e.status, {"error": str(e)})

    def infer(self, h, body):
        start, code = time.monotonic(), 200
        try:
            hl = h.headers.get(HEADER_LENGTH)
            try:
                header_len = len(body) if hl is None else int(hl)
            except ValueError:
                header_len = -1
            if header_len < 0 or header_len > len(body):
                raise BadRequest(HEADER_LENGTH, "%r is not a length within the body's %d bytes" % (hl, len(body)))
            try:
                x, wanted, req_id = parse_infer(body, header_len, self.served)
            except (AttributeError, TypeError, ValueError) as e:  # a field of the wrong JSON type
                raise BadRequest("", "malformed inference request: %s" % e)
            try:
                out = self.batcher.predict(x)
                answer = self.served.answer(out)
            except Exception as e:
                code = 500
                return h.send_json(500, {"error": "inference failed: %s" % e})
            resp, head_len, ctype = encode_infer(self.served, answer, wanted, self.cfg["name"], self.cfg["version"], req_id)
            h.send(200, resp, ctype, head_len)
        except BadRequest as e:
            code = e.status
            h.send_json(e.status, {"error": str(e)})
        finally:
            self.metrics.request(code, time.monotonic() - start)


def main():
    cfg = settings(os.environ)
    torch.set_num_threads(cfg["threads"])
    device = torch.device("cuda:0" if cfg["cuda"] and torch.cuda.is_available() else "cpu")
    served = Served(cfg["model_dir"], device)
    if served.features > 0:  # warm up: the first request pays no lazy initialisation
        served.forward(torch.zeros(1, served.features))
    metrics = Metrics()
    batcher = Batcher(served, cfg["max_batch_size"], cfg["max_queue_delay"], metrics)
    httpd = HTTPServer((cfg["host"], cfg["port"]), Handler)
    httpd.app = App(cfg, served, batcher, metrics)

    def stop(signum, _frame):
        httpd.app.ready = False
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("serving %s version %s (%s, %s features, %s) on %s, port %d, max_batch_size %d, max_queue_delay_ms %g, "
        "threads %d, token %s" % (cfg["name"], cfg["version"], served.kind, served.features,
                                  "classes %s" % ",".join(served.labels) if served.labels else "output %s" % served.output_name,
                                  device, httpd.server_address[1], cfg["max_batch_size"], cfg["max_queue_delay"] * 1000,
                                  cfg["threads"], "required" if cfg["token"] else "not required"))
    httpd.serve_forever()
    batcher.stop()
    httpd.server_close()
    log("stopped")


if __name__ == "__main__":
    main()
