"""Tests of bmaas.Client without a server: requests are captured by a fake opener."""

import io
import json
import os
import sys
import unittest
import urllib.error

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bmaas import BmaasError, Client  # noqa: E402


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Fake:
    """Answers each request with the next queued (status, body)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, req, timeout=None):
        body = json.loads(req.data) if req.data and req.get_header("Content-type") == "application/json" else req.data
        self.requests.append((req.get_method(), req.full_url, body, dict(req.header_items())))
        status, answer = self.answers.pop(0)
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        if status >= 400:
            raise urllib.error.HTTPError(req.full_url, status, "error", {}, io.BytesIO(data))
        return FakeResponse(data)


def client(*answers, token=None):
    c = Client("127.0.0.1:8080/", token=token)
    fake = Fake(*answers)
    c._t._open = fake
    return c, fake


class ClientTest(unittest.TestCase):
    def test_predict_sends_the_v2_json_and_reshapes(self):
        meta = {"name": "iris", "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 2]}]}
        resp = {"model_name": "iris", "model_version": "3", "outputs": [
            {"name": "predictions", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]},
            {"name": "probabilities", "datatype": "FP64", "shape": [2, 2], "data": [0.9, 0.1, 0.2, 0.8]}]}
        c, fake = client((200, meta), (200, resp), (200, resp), token="s3cret")
        out = c.predict("iris", [[1, 2.5], [3, 4]])
        self.assertEqual(out["predictions"], ["a", "b"])
        self.assertEqual(out["probabilities"], [[0.9, 0.1], [0.2, 0.8]])
        self.assertEqual(out["model_version"], "3")
        method, url, body, headers = fake.requests[1]
        self.assertEqual((method, url), ("POST", "http://127.0.0.1:8080/v2/models/iris/infer"))
        self.assertEqual(body, {"inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 2], "data": [1, 2.5, 3, 4]}]})
        self.assertEqual(headers["Authorization"], "Bearer s3cret")
        c.predict("iris", [[1, 2]])  # the input's name is cached
        self.assertEqual(len(fake.requests), 3)

    def test_predict_checks_rows(self):
        c, _ = client()
        with self.assertRaisesRegex(ValueError, "row 1 has 1 values"):
            c.predict("iris", [[1, 2], [3]])
        with self.assertRaisesRegex(ValueError, "at least one row"):
            c.predict("iris", [])

    def test_errors_carry_status_and_message(self):
        c, _ = client((404, {"code": 5, "message": "model \"nope\" not found"}))
        with self.assertRaises(BmaasError) as cm:
            c.get_model("nope")
        self.assertEqual(cm.exception.status, 404)
        self.assertEqual(cm.exception.message, "model \"nope\" not found")
        self.assertIn("GET /v1/models/nope", str(cm.exception))
        c, _ = client((400, {"error": "inputs[0].shape: bad"}))
        with self.assertRaises(BmaasError) as cm:
            c.infer("iris", [])
        self.assertEqual((cm.exception.status, cm.exception.message), (400, "inputs[0].shape: bad"))
        c, _ = client((502, b"bad gateway"))
        with self.assertRaisesRegex(BmaasError, "bad gateway"):
            c.list_models()

    def test_unreachable_server(self):
        c = Client("http://127.0.0.1:1", timeout=2)
        with self.assertRaises(BmaasError) as cm:
            c.list_models()
        self.assertEqual(cm.exception.status, 0)
        self.assertIn("cannot reach", cm.exception.message)

    def test_management_calls(self):
        c, fake = client((200, {"model": {"name": "iris"}}), (201, {"version": {"dataset": "iris", "version": "1"}}),
                         (200, {"job": {"id": "J1", "state": "JOB_STATE_QUEUED"}}),
                         (200, {"job": {"id": "J1", "state": "JOB_STATE_SUCCEEDED", "model_version": "1"}}),
                         (200, {"deployment": {"name": "iris"}}),
                         (200, {"deployment": {"name": "iris", "status": {"ready_replicas": 1}}}),
                         (200, {"deployments": [{"name": "a"}], "next_page_token": "t"}),
                         (200, {"deployments": [{"name": "b"}]}), (200, {}))
        c.create_model("iris", task_type="multiclass")
        self.assertEqual(fake.requests[0][2], {"name": "iris", "task_type": "TASK_TYPE_MULTICLASS_CLASSIFICATION"})
        v = c.upload_dataset("iris", "a,b\n1,2\n")
        self.assertEqual(v["version"], "1")
        method, url, body, headers = fake.requests[1]
        self.assertEqual((method, url), ("PUT", "http://127.0.0.1:8080/v1/datasets/iris/csv?filename=iris.csv"))
        self.assertEqual((body, headers["Content-type"]), (b"a,b\n1,2\n", "text/csv"))
        job = c.train("iris", "iris", "logistic", target="target", params={"C": 1}, seed=7, wait=True)
        self.assertEqual(job["model_version"], "1")
        self.assertEqual(fake.requests[2][2], {"model": "iris", "builtin": {
            "algorithm": "logistic", "dataset": "iris", "target_column": "target", "hyperparameters": {"C": "1"}, "seed": "7"}})
        dep = c.deploy("iris@1", max_replicas=2, wait=True)
        self.assertEqual(dep["status"]["ready_replicas"], 1)
        self.assertEqual(fake.requests[4][2], {"model": "iris@1", "min_replicas": 1, "max_replicas": 2, "autoscaling": True})
        self.assertEqual([d["name"] for d in c.list_deployments()], ["a", "b"])
        self.assertTrue(fake.requests[7][1].endswith("/v1/deployments?page_token=t"))
        c.delete_deployment("iris")
        self.assertEqual(fake.requests[8][:2], ("DELETE", "http://127.0.0.1:8080/v1/deployments/iris"))

    def test_failed_job_raises(self):
        c, _ = client((200, {"job": {"id": "J2"}}), (200, {"job": {"id": "J2", "state": "JOB_STATE_FAILED", "reason": "boom"}}))
        with self.assertRaisesRegex(BmaasError, "JOB_STATE_FAILED: boom"):
            c.train("m", "d", "logistic", wait=True)

    def test_tls_options(self):
        with self.assertRaisesRegex(ValueError, "cert_file and key_file"):
            Client("https://127.0.0.1:8080", cert_file="client.crt")
        with self.assertRaises(OSError):
            Client("https://127.0.0.1:8080", ca_file="/nonexistent/ca.crt")
        # A CA file makes a bare address HTTPS.
        ca = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "ca.crt")
        c = Client("127.0.0.1:8443", ca_file=ca)
        self.assertEqual(c.url, "https://127.0.0.1:8443")


if __name__ == "__main__":
    unittest.main()
