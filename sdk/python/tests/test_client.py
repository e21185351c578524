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
        c, _ = client((404, {"code": 5, "message": "model \"nope\" not found", "details": []}))
        with self.assertRaises(BmaasError) as cm:
            c.get_model("nope")
        self.assertEqual(cm.exception.status, 404)
        self.assertEqual(cm.exception.message, "model \"nope\" not found")
        self.assertEqual((cm.exception.code, cm.exception.details, cm.exception.reason), (5, [], ""))
        self.assertIn("GET /v1/models/nope", str(cm.exception))
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "NO_READY_REPLICA", "domain": "bmaas.io"}
        c, _ = client((503, {"code": 14, "message": "no ready replica", "details": [info]}))
        with self.assertRaises(BmaasError) as cm:
            c.list_models()
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.reason), (503, 14, "NO_READY_REPLICA"))
        # {"error"} is KServe v2's shape only: on /v1 it is not a message.
        c, _ = client((400, {"error": "x"}))
        with self.assertRaises(BmaasError) as cm:
            c.list_models()
        self.assertEqual(cm.exception.message, '{"error": "x"}')
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

    def test_upload_dataset_of_a_missing_file_fails(self):
        c, fake = client()
        missing = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no-such.csv")
        with self.assertRaisesRegex(FileNotFoundError, "no-such.csv"):
            c.upload_dataset("iris", missing)
        with self.assertRaisesRegex(FileNotFoundError, "examples/datasets/iris.cvs"):
            c.upload_dataset("iris", "examples/datasets/iris.cvs")
        self.assertEqual(fake.requests, [], "nothing was uploaded")
        c, fake = client((201, {"version": {"version": "1"}}), (201, {"version": {"version": "2"}}))
        c.upload_dataset("iris", b"a,b\n1,2\n")
        c.upload_dataset("iris", "a,b\n1,2")  # a str with a row is CSV content
        self.assertEqual([r[2] for r in fake.requests], [b"a,b\n1,2\n", b"a,b\n1,2"])

    def test_evaluate(self):
        ev = {"id": "E1", "model": "iris", "version": "3", "state": "EVALUATION_STATE_SUCCEEDED",
              "metrics": {"accuracy": 0.97}}
        c, fake = client((200, {"evaluation": ev}), (200, {"evaluation": ev}))
        self.assertEqual(c.evaluate("iris@3", "iris")["metrics"], {"accuracy": 0.97})
        self.assertEqual(fake.requests[0][:3], ("POST", "http://127.0.0.1:8080/v1/evaluations",
                                                {"model": "iris", "version": "3", "dataset": "iris"}))
        c.evaluate("iris", job="J1")
        self.assertEqual(fake.requests[1][2], {"model": "iris", "version": "latest", "job_id": "J1"})
        c, fake = client((200, {"evaluation": ev}))
        c.evaluate("iris@production", "iris@2")
        self.assertEqual(fake.requests[0][2], {"model": "iris", "version": "production", "dataset": "iris",
                                               "dataset_version_number": 2})
        with self.assertRaisesRegex(ValueError, "one of dataset or job"):
            c.evaluate("iris")
        with self.assertRaisesRegex(ValueError, "missing version or alias"):
            c.evaluate("iris@", "iris")
        # An evaluation that runs as a task is followed until it ends.
        running = dict(ev, state="EVALUATION_STATE_RUNNING")
        c, fake = client((200, {"evaluation": running}), (200, {"evaluation": running}), (200, {"evaluation": ev}))
        self.assertEqual(c.evaluate("iris", "iris", poll=0)["state"], "EVALUATION_STATE_SUCCEEDED")
        self.assertEqual(fake.requests[2][:2], ("GET", "http://127.0.0.1:8080/v1/evaluations/E1"))
        failed = dict(ev, state="EVALUATION_STATE_FAILED", message="no such column")
        c, fake = client((200, {"evaluation": failed}))
        with self.assertRaisesRegex(BmaasError, "no such column"):
            c.evaluate("iris", "iris")

    def test_experiments(self):
        spec = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                            "examples", "experiments", "digits-mlp-asha.yaml")
        x = {"id": "X1", "name": "digits-mlp-asha", "state": "EXPERIMENT_STATE_RUNNING", "mode": "max"}
        done = dict(x, state="EXPERIMENT_STATE_SUCCEEDED", best_trial_id="T2")
        trials = {"trials": [{"id": "T1", "value": 0.5, "has_value": True}, {"id": "T3"},
                             {"id": "T2", "value": 0.9, "has_value": True}]}
        c, fake = client((200, {"experiment": x}), (200, {"experiment": x}), (200, {"experiment": done}), (200, trials),
                         (200, {"experiment": done}), (200, trials))
        got = c.create_experiment(spec, wait=True, poll=0)
        self.assertEqual(got["state"], "EXPERIMENT_STATE_SUCCEEDED")
        method, url, body, _ = fake.requests[0]
        self.assertEqual((method, url), ("POST", "http://127.0.0.1:8080/v1/experiments"))
        self.assertEqual(body["name"], "digits-mlp-asha")
        self.assertEqual(body["max_trials"], 27)
        self.assertEqual(body["template"]["hyperparameters"], {"patience": "0", "schedule": "constant", "hidden": "64"})
        self.assertEqual(body["params"][0], {"name": "lr", "type": "PARAM_TYPE_LOG_UNIFORM", "low": 0.0003, "high": 0.03})
        self.assertEqual(body["params"][3]["condition"], {"parent": "optimizer", "values": ["sgd"]})
        self.assertEqual(fake.requests[2][:2], ("GET", "http://127.0.0.1:8080/v1/experiments/X1"))
        # Trials best first by the experiment's mode; those without a value last.
        self.assertEqual([t["id"] for t in c.list_trials("X1")], ["T2", "T1", "T3"])
        self.assertEqual(fake.requests[3][1], "http://127.0.0.1:8080/v1/experiments/X1/trials")
        self.assertEqual([t["id"] for t in c.list_trials("X1", mode="min")], ["T1", "T2", "T3"])

        c, fake = client((200, {"experiment": x}), (200, {"experiment": dict(x, state="EXPERIMENT_STATE_FAILED",
                                                                              message="boom")}))
        c.create_experiment({"name": "e", "model": "m", "params": [{"name": "C", "type": "log_uniform"}]})
        self.assertEqual(fake.requests[0][2]["params"][0]["type"], "PARAM_TYPE_LOG_UNIFORM")
        self.assertEqual(c.get_experiment("X1")["state"], "EXPERIMENT_STATE_FAILED")
        with self.assertRaisesRegex(FileNotFoundError, "nope.yaml"):
            c.create_experiment("nope.yaml")

    def test_failed_job_raises(self):
        c, _ = client((200, {"job": {"id": "J2"}}), (200, {"job": {"id": "J2", "state": "JOB_STATE_FAILED", "reason": "boom"}}))
        with self.assertRaisesRegex(BmaasError, "JOB_STATE_FAILED: boom"):
            c.train("m", "d", "logistic", wait=True)

    def test_train_sends_the_termination_grace(self):
        c, fake = client((200, {"job": {"id": "J3"}}))
        c.train("m", "d", "logistic", termination_grace_seconds=30)
        self.assertEqual(fake.requests[0][2], {"model": "m", "builtin": {"algorithm": "logistic", "dataset": "d"},
                                               "termination_grace_seconds": 30})

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


class ChatTest(unittest.TestCase):
    def test_chat_whole_and_streamed(self):
        answer = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Elementary."}}]}
        c, fake = client((200, answer), token="t")
        self.assertEqual(c.chat("holmes", "Who?", max_tokens=5)["choices"][0]["message"]["content"], "Elementary.")
        method, url, body, headers = fake.requests[0]
        self.assertEqual((method, url), ("POST", "http://127.0.0.1:8080/openai/v1/chat/completions"))
        self.assertEqual(body, {"model": "holmes", "messages": [{"role": "user", "content": "Who?"}], "max_tokens": 5})
        self.assertEqual(headers["Authorization"], "Bearer t")

        events = [
            b": waiting for a replica\n", b"\n",
            b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n', b"\n",
            b'data: {"choices":[{"index":0,"delta":{"content":"Elementary,"}}]}\n', b"\n",
            b'data: {"choices":[{"index":0,"delta":{"content":" Watson"},"finish_reason":"length"}]}\n', b"\n",
            b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}\n', b"\n",
            b"data: [DONE]\n", b"\n"]
        c, fake = client((200, b"".join(events)))
        s = c.chat("holmes", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who?"}], stream=True, seed=1)
        self.assertEqual(list(s), ["Elementary,", " Watson"])
        self.assertEqual(s.usage["completion_tokens"], 2)
        self.assertEqual(s.finish_reason, "length")
        body = fake.requests[0][2]
        self.assertEqual(body["stream"], True)
        self.assertEqual(body["stream_options"], {"include_usage": True})
        self.assertEqual(body["seed"], 1)

    def test_chat_errors(self):
        err = {"error": {"message": "model: deployment \"x\" not found", "type": "invalid_request_error", "param": "model",
                         "code": "model_not_found"}}
        c, _ = client((404, err))
        with self.assertRaises(BmaasError) as cm:
            list(c.chat("x", "Who?", stream=True))
        self.assertEqual(cm.exception.status, 404)
        self.assertIn('deployment "x" not found', cm.exception.message)
        self.assertEqual(cm.exception.code, "model_not_found")

        c, _ = client((200, b'data: {"error":{"message":"the request ran past its deadline","code":"timeout"}}\n\n'))
        with self.assertRaises(BmaasError) as cm:
            list(c.chat("x", "Who?", stream=True))
        self.assertIn("deadline", cm.exception.message)
        c, _ = client((200, b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'))
        with self.assertRaises(BmaasError) as cm:
            list(c.chat("x", "Who?", stream=True))
        self.assertIn("without [DONE]", cm.exception.message)


class MonitorTest(unittest.TestCase):
    def test_infer_sends_the_request_id_header(self):
        c, fake = client((200, {"outputs": []}))
        c.infer("iris", [{"name": "input", "datatype": "FP64", "shape": [1, 1], "data": [1.0]}], request_id="r-1")
        method, url, body, headers = fake.requests[0]
        self.assertEqual(headers.get("X-request-id"), "r-1")
        self.assertEqual(body["id"], "r-1")

    def test_feedback(self):
        c, fake = client((200, {"rows": "2"}))
        self.assertEqual(c.feedback("iris", "r-1", labels=[1, "2"]), 2)
        method, url, body, _ = fake.requests[0]
        self.assertEqual((method, url), ("POST", "http://127.0.0.1:8080/v1/deployments/iris/feedback"))
        self.assertEqual(body, {"feedback": [{"request_id": "r-1", "labels": ["1", "2"]}]})
        with self.assertRaisesRegex(ValueError, r"feedback\[0\]: give labels"):
            c.feedback("iris", "r-1", labels=["1"], values=[1.0])
        with self.assertRaisesRegex(ValueError, r"feedback\[0\].request_id"):
            c.feedback("iris", "", labels=["1"])

    def test_alert_rule_and_when(self):
        c, fake = client((200, {"name": "d"}))
        c.create_alert_rule("d", "iris", "drift_score{petal_length_cm} >= 0.3", for_seconds=60,
                            retrain=True, retrain_dataset="iris-2", cool_down_seconds=3600)
        _, url, body, _ = fake.requests[0]
        self.assertTrue(url.endswith("/v1/alert-rules"))
        self.assertEqual(body, {"name": "d", "deployment": "iris", "series": "drift_score", "column": "petal_length_cm",
                                "comparison": "COMPARISON_GREATER_OR_EQUAL", "threshold": 0.3, "for": "60s",
                                "action": {"kind": "retrain", "dataset": "iris-2", "cool_down": "3600s"}})
        for bad, msg in [("drift_share 0.3", "expected SERIES OP THRESHOLD"), ("drift_share ~ 0.3", "operator"),
                         ("drift_share > x", "not a number"), ("drift_score{ > 1", "braces")]:
            with self.assertRaisesRegex(ValueError, msg):
                c.create_alert_rule("d", "iris", bad)
        with self.assertRaisesRegex(ValueError, "go with retrain"):
            c.create_alert_rule("d", "iris", "drift_share > 0.3", retrain_dataset="x")

    def test_monitoring_pages(self):
        c, fake = client((200, {"windows": [{"rows": "1"}], "next_page_token": "9"}), (200, {"windows": [{"rows": "2"}]}))
        ws = c.monitoring("iris", since_seconds=60)
        self.assertEqual([w["rows"] for w in ws], ["1", "2"])
        self.assertIn("since=", fake.requests[0][1])
        self.assertIn("page_token=9", fake.requests[1][1])
