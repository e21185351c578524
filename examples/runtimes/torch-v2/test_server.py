"""Tests of the torch-v2 server: models made by the PyTorch example's own
export (examples/pytorch/train.py), the server started as bmaas starts it
(the serving contract's environment), and its answers compared with
torch's on the same rows."""

import http.client
import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

try:
    import torch
except ImportError:  # run where PyTorch is: Debian's python3-torch
    raise unittest.SkipTest("torch-v2 needs PyTorch")

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "..", "..", "pytorch", "train.py")
FEATURES = ["a", "b", "c", "d"]
CLASSES = ["setosa", "versicolor", "virginica"]


def load_train():
    spec = importlib.util.spec_from_file_location("example_train", TRAIN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(train, out_dir, task, export, seed):
    """A small model of the example's class with random weights and a
    scaler, written by the example's export; returns the model."""
    torch.manual_seed(seed)
    n_out = len(CLASSES) if task == "classification" else 1
    model = train.Model(len(FEATURES), [8, 5], n_out)
    model.mean.copy_(torch.tensor([5.0, 3.0, 4.0, 1.0]))
    model.std.copy_(torch.tensor([0.8, 0.4, 1.7, 0.7]))
    meta = {"task": task, "features": FEATURES, "target": "y"}
    if task == "classification":
        meta["classes"] = CLASSES
    os.makedirs(out_dir)
    train.export(model, meta, {"export": export, "hidden": [8, 5]}, out_dir, {})
    # A version's archive does not hold signature.json (the agent makes it
    # the version's signature); the server reads model.json.
    os.remove(os.path.join(out_dir, "signature.json"))
    return model.eval()


class Server:
    """The server as a child process under the serving contract."""

    def __init__(self, model_dir, name, version, params, token=""):
        self.port, self.name, self.version, self.token = free_port(), name, version, token
        env = dict(os.environ, BMAAS_MODEL_DIR=model_dir, BMAAS_MODEL_NAME=name, BMAAS_MODEL_VERSION=str(version),
                   BMAAS_HTTP_PORT=str(self.port), BMAAS_GRPC_PORT=str(free_port()), BMAAS_PARAMS=json.dumps(params),
                   BMAAS_TOKEN=token, CUDA_VISIBLE_DEVICES="")
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py")], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/v2/health/ready", auth=False)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("server did not become ready:\n" + self.output())
            time.sleep(0.1)

    def request(self, method, path, body=None, headers=None, auth=True, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, data, r

    def infer(self, rows, datatype="FP32", path=None, **kw):
        req = {"inputs": [{"name": "input", "datatype": datatype, "shape": [len(rows), len(FEATURES)],
                           "data": [v for r in rows for v in r]}]}
        code, data, _ = self.request("POST", path or "/v2/models/%s/infer" % self.name, req, **kw)
        return code, json.loads(data)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.4, 2.9, 1.4, 0.2]]


def torch_probabilities(model, rows):
    with torch.no_grad():
        return torch.softmax(model(torch.tensor(rows, dtype=torch.float32)).double(), dim=1)


def outputs_by_name(resp):
    return {o["name"]: o for o in resp["outputs"]}


class TorchV2Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        train = load_train()
        cls.clf = make_model(train, os.path.join(cls.tmp, "clf-ts"), "classification", "torch", seed=1)
        cls.reg = make_model(train, os.path.join(cls.tmp, "reg-sd"), "regression", "torch", seed=2)
        # The state dict alone: model.pt and model.json.
        os.remove(os.path.join(cls.tmp, "reg-sd", "model.ts"))
        cls.servers = []
        try:
            cls.ts = cls.start(os.path.join(cls.tmp, "clf-ts"), "bc", 3, {"max_batch_size": "8", "max_body_mb": "0.01"},
                              token="s3cret")
            cls.sd = cls.start(os.path.join(cls.tmp, "reg-sd"), "reg", 1, {"threads": "1"})
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, model_dir, name, version, params, token=""):
        s = Server(model_dir, name, version, params, token)
        cls.servers.append(s)
        return s

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.stop()
            s.log.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_health_and_metadata(self):
        s = self.ts
        self.assertEqual(s.request("GET", "/v2/health/live", auth=False)[0], 200)
        self.assertEqual(s.request("GET", "/v2/health/ready", auth=False)[0], 200)
        for path in ("/v2/models/bc", "/v2/models/bc/versions/3"):
            code, data, _ = s.request("GET", path)
            self.assertEqual(code, 200, data)
            md = json.loads(data)
            self.assertEqual(md["name"], "bc")
            self.assertEqual(md["versions"], ["3"])
            self.assertEqual(md["platform"], "pytorch_torchscript")
            self.assertEqual(md["inputs"], [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}])
            # As bmaas's built-in server answers for the same model as ONNX.
            self.assertEqual(md["outputs"], [{"name": "predictions", "datatype": "BYTES", "shape": [-1]},
                                             {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]}])
        self.assertEqual(s.request("GET", "/v2/models/bc/ready")[0], 200)
        self.assertEqual(s.request("GET", "/v2/models/bc/versions/3/ready")[0], 200)
        self.assertEqual(s.request("GET", "/v2/models/bc/versions/4")[0], 404)
        self.assertEqual(s.request("GET", "/v2/models/other")[0], 404)
        self.assertIn("torchscript", s.output())
        self.assertIn("max_batch_size 8", s.output())

    def test_bearer_token(self):
        s = self.ts
        code, data, _ = s.request("GET", "/v2/models/bc", auth=False)
        self.assertEqual(code, 401, data)
        self.assertIn("bearer token", json.loads(data)["error"])
        self.assertEqual(s.request("GET", "/v2/models/bc", auth=False, headers={"Authorization": "Bearer nope"})[0], 401)
        self.assertEqual(s.request("GET", "/v2/models/bc", auth=False, headers={"Authorization": "s3cret"})[0], 401)
        code, _, _ = s.request("POST", "/v2/models/bc/infer", {"inputs": []}, auth=False)
        self.assertEqual(code, 401)
        self.assertEqual(s.request("GET", "/v2/models/bc")[0], 200)

    def test_json_infer_equals_torch(self):
        want = torch_probabilities(self.clf, ROWS)
        for datatype in ("FP32", "FP64"):
            for path in (None, "/v2/models/bc/versions/3/infer"):
                code, resp = self.ts.infer(ROWS, datatype, path=path)
                self.assertEqual(code, 200, resp)
                self.assertEqual(resp["model_name"], "bc")
                self.assertEqual(resp["model_version"], "3")
                out = outputs_by_name(resp)
                self.assertEqual(out["probabilities"]["shape"], [4, 3])
                self.assertEqual(out["probabilities"]["datatype"], "FP64")
                got = torch.tensor(out["probabilities"]["data"], dtype=torch.float64).reshape(4, 3)
                self.assertLess((got - want).abs().max().item(), 1e-6)
                self.assertEqual(out["predictions"]["datatype"], "BYTES")
                self.assertEqual(out["predictions"]["shape"], [4])
                self.assertEqual(out["predictions"]["data"], [CLASSES[i] for i in want.argmax(1).tolist()])

    def test_binary_infer(self):
        rows = ROWS * 3
        raw = struct.pack("<%df" % (len(rows) * 4), *[v for r in rows for v in r])
        header = json.dumps({"id": "r1", "inputs": [{"name": "input", "datatype": "FP32", "shape": [len(rows), 4],
                                                     "parameters": {"binary_data_size": len(raw)}}],
                             "parameters": {"binary_data_output": True}}).encode()
        code, data, r = self.ts.request("POST", "/v2/models/bc/infer", header + raw, headers={
            "Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"})
        self.assertEqual(code, 200, data)
        hl = int(r.getheader("Inference-Header-Content-Length"))
        resp = json.loads(data[:hl])
        self.assertEqual(resp["id"], "r1")
        blob, out = data[hl:], {}
        for o in resp["outputs"]:
            n = o["parameters"]["binary_data_size"]
            out[o["name"]], blob = blob[:n], blob[n:]
        self.assertEqual(blob, b"")
        probs = torch.tensor(struct.unpack("<%dd" % (len(rows) * 3), out["probabilities"]), dtype=torch.float64)
        want = torch_probabilities(self.clf, rows)
        self.assertLess((probs.reshape(-1, 3) - want).abs().max().item(), 1e-6)
        labels, b = [], out["predictions"]
        while b:
            (n,) = struct.unpack("<I", b[:4])
            labels.append(b[4:4 + n].decode())
            b = b[4 + n:]
        self.assertEqual(labels, [CLASSES[i] for i in want.argmax(1).tolist()])

        # One output asked for, as JSON, while the input is binary.
        header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [len(rows), 4],
                                         "parameters": {"binary_data_size": len(raw)}}],
                             "outputs": [{"name": "predictions"}]}).encode()
        code, data, r = self.ts.request("POST", "/v2/models/bc/infer", header + raw, headers={
            "Inference-Header-Content-Length": str(len(header))})
        self.assertEqual(code, 200, data)
        self.assertIsNone(r.getheader("Inference-Header-Content-Length"))
        self.assertEqual([o["name"] for o in json.loads(data)["outputs"]], ["predictions"])

    def test_bad_requests_name_the_field(self):
        cases = [
            ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}, "inputs[0].name"),
            ({"inputs": [{"name": "input", "datatype": "INT8", "shape": [1, 4], "data": [1, 2, 3, 4]}]}, "inputs[0].datatype"),
            ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}, "inputs[0].shape"),
            ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "data": [1, 2, 3, 4]}]}, "inputs[0].data"),
            ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}],
              "outputs": [{"name": "logits"}]}, "outputs[0].name"),
            ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4],
                          "parameters": {"binary_data_size": 16}}]}, "inputs[0].data"),
            ({}, "inputs"),
        ]
        for req, field in cases:
            code, data, _ = self.ts.request("POST", "/v2/models/bc/infer", req)
            self.assertEqual(code, 400, data)
            self.assertTrue(json.loads(data)["error"].startswith(field + ":"), data)
        code, data, _ = self.ts.request("POST", "/v2/models/bc/infer", b"{not json")
        self.assertEqual(code, 400, data)
        self.assertEqual(self.ts.request("POST", "/v2/models/bc/versions/9/infer", {"inputs": []})[0], 404)
        # A body over max_body_mb is refused unread, and its connection closed.
        code, data, r = self.ts.request("POST", "/v2/models/bc/infer", b"x" * 20000)
        self.assertEqual(code, 413, data)
        self.assertTrue(json.loads(data)["error"].startswith("Content-Length:"), data)
        self.assertTrue(r.will_close)
        # Names in the path are URL-escaped.
        code, resp = self.ts.infer(ROWS, path="/v2/models/%62c/versions/%33/infer")
        self.assertEqual(code, 200, resp)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.ts.port, timeout=30)
        try:
            for _ in range(3):
                code, _, r = self.ts.request("POST", "/v2/models/bc/infer", {"inputs": [
                    {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROWS[0]}]}, conn=conn)
                self.assertEqual(code, 200)
                self.assertFalse(r.will_close)
                # A bad request keeps the connection too.
                self.assertEqual(self.ts.request("POST", "/v2/models/bc/infer", {}, conn=conn)[0], 400)
        finally:
            conn.close()

    def test_state_dict_regression(self):
        s = self.sd
        code, data, _ = s.request("GET", "/v2/models/reg")
        self.assertEqual(code, 200, data)
        md = json.loads(data)
        self.assertEqual(md["platform"], "pytorch_state_dict")
        self.assertEqual(md["outputs"], [{"name": "output", "datatype": "FP32", "shape": [-1, 1]}])
        code, resp = s.infer(ROWS)
        self.assertEqual(code, 200, resp)
        out = outputs_by_name(resp)["output"]
        self.assertEqual(out["shape"], [4, 1])
        with torch.no_grad():
            want = self.reg(torch.tensor(ROWS, dtype=torch.float32)).reshape(-1).tolist()
        for g, w in zip(out["data"], want):
            self.assertAlmostEqual(g, w, delta=1e-6)
        self.assertIn("state dict", s.output())

    def test_concurrent_requests_are_batched(self):
        # A batch closes at 16 rows, or 10 s after its first request: 16
        # one-row requests sent together make one forward pass of 16 rows.
        s = self.start(os.path.join(self.tmp, "clf-ts"), "batched", 1,
                       {"max_batch_size": "16", "max_queue_delay_ms": "10000"})
        want = torch_probabilities(self.clf, ROWS)
        barrier, results, errors = threading.Barrier(16), [None] * 16, []

        def call(i):
            try:
                barrier.wait()
                results[i] = s.infer([ROWS[i % 4]])
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for i, (code, resp) in enumerate(results):
            self.assertEqual(code, 200, resp)
            got = torch.tensor(outputs_by_name(resp)["probabilities"]["data"], dtype=torch.float64)
            self.assertLess((got - want[i % 4]).abs().max().item(), 1e-6)
        # A request is counted once its answer is written, so the last
        # client may read its answer just before the count moves.
        deadline = time.monotonic() + 10
        while True:
            code, data, _ = s.request("GET", "/metrics", auth=False)
            self.assertEqual(code, 200)
            metrics = dict(line.rsplit(" ", 1) for line in data.decode().splitlines() if not line.startswith("#"))
            if metrics.get('torch_v2_request_seconds_count{model="batched"}') == "16" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # The warm-up pass is not counted; the 16 rows went in one pass.
        self.assertEqual(metrics['torch_v2_batch_rows_count{model="batched"}'], "1")
        self.assertEqual(metrics['torch_v2_batch_rows_sum{model="batched"}'], "16.0")
        self.assertEqual(metrics['torch_v2_requests_total{model="batched",code="200"}'], "16")
        self.assertEqual(metrics['torch_v2_request_seconds_count{model="batched"}'], "16")


def load_server():
    spec = importlib.util.spec_from_file_location("torch_v2_server", os.path.join(HERE, "server.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Recording:
    """A served model that doubles its rows and records each pass: its rows
    and the thread it ran in; the first pass waits for `release`."""

    def __init__(self):
        self.passes, self.release, self.started = [], threading.Event(), threading.Event()

    def forward(self, x):
        self.passes.append((x.shape[0], threading.current_thread().name))
        if len(self.passes) == 1:
            self.started.set()
            self.release.wait(10)
        return x * 2


class BatcherTest(unittest.TestCase):
    def setUp(self):
        self.server = load_server()

    def test_a_lone_request_runs_its_own_pass(self):
        model = Recording()
        model.release.set()
        b = self.server.Batcher(model, 32, 0, self.server.Metrics())
        self.addCleanup(b.stop)
        out = b.predict(torch.ones(2, 4))
        self.assertEqual(out.tolist(), [[2.0] * 4] * 2)
        # In the caller's thread, not the batcher's: no thread switch.
        self.assertEqual(model.passes, [(2, threading.current_thread().name)])

    def test_requests_during_a_pass_make_the_next_one(self):
        model = Recording()
        b = self.server.Batcher(model, 32, 0, self.server.Metrics())
        self.addCleanup(b.stop)
        results, queued, put = {}, [], b.q.put

        def count(p, *args, **kw):
            queued.append(p)
            put(p, *args, **kw)

        b.q.put = count

        def call(i):
            results[i] = b.predict(torch.full((1, 4), float(i))).tolist()

        first = threading.Thread(target=call, args=(0,), name="first")
        first.start()
        self.assertTrue(model.started.wait(10))
        others = [threading.Thread(target=call, args=(i,), name="req%d" % i) for i in range(1, 6)]
        for t in others:
            t.start()
        deadline = time.monotonic() + 10
        while len(queued) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        model.release.set()
        for t in [first] + others:
            t.join(10)
        self.assertEqual(model.passes, [(1, "first"), (5, "batcher")])
        self.assertEqual(results, {i: [[2.0 * i] * 4] for i in range(6)})

    def test_a_queue_delay_sends_every_request_through_the_batcher(self):
        model = Recording()
        model.release.set()
        b = self.server.Batcher(model, 32, 0.001, self.server.Metrics())
        self.addCleanup(b.stop)
        b.predict(torch.ones(1, 4))
        self.assertEqual(model.passes, [(1, "batcher")])


if __name__ == "__main__":
    unittest.main()
