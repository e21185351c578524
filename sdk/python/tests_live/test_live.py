"""Tests of bmaas.Client against a live server: set BMAAS_URL (e.g.
http://127.0.0.1:8080 for `bmaas up`) and run

    BMAAS_URL=http://127.0.0.1:8080 python3 -m unittest discover -s sdk/python/tests_live

They upload iris, train, evaluate, deploy, predict, run an experiment and
clean up; without BMAAS_URL they are skipped.
"""

import csv
import os
import sys
import tempfile
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from bmaas import BmaasError, Client  # noqa: E402

URL = os.environ.get("BMAAS_URL")
IRIS = os.path.join(HERE, "..", "..", "..", "examples", "datasets", "iris.csv")

# A random search of two trials, as a user writes it (short parameter types).
EXPERIMENT = """\
# two logistic regressions of iris
name: %(name)s
model: %(name)s
searcher: random
metric: test_accuracy
mode: max
max_trials: 2
parallelism: 2
seed: 3
template:
  algorithm: logistic
  dataset: %(name)s
  target_column: target
  seed: 7
params:
  - name: C
    type: log_uniform
    low: 0.001
    high: 100
"""


@unittest.skipUnless(URL, "BMAAS_URL is not set")
class LiveTest(unittest.TestCase):
    def setUp(self):
        self.c = Client(URL, timeout=30)
        self.name = "sdk-" + uuid.uuid4().hex[:8]

    def rows(self):
        with open(IRIS) as f:
            r = csv.reader(f)
            header = next(r)
            data = list(r)
        return header, [[float(v) for v in row[:-1]] for row in data], sorted({row[-1] for row in data})

    def test_train_deploy_predict(self):
        c, name = self.c, self.name
        dv = c.upload_dataset(name, IRIS)
        self.assertEqual(int(dv["version"]), 1)
        self.assertIn(name, [d["name"] for d in c.list_datasets()])
        c.create_model(name, task_type="multiclass")
        job = c.train(name, name, "logistic", target="target", seed=7, wait=True, timeout=120)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED")
        version = c.get_version(name, "latest")
        self.assertEqual(version["status"], "VERSION_STATUS_READY")

        dep = c.deploy("%s@%s" % (name, job["model_version"]), min_replicas=1, max_replicas=1, wait=True, timeout=60)
        self.addCleanup(c.delete_deployment, name)
        self.assertEqual(dep["name"], name)
        self.assertTrue(c.model_ready(name))
        self.assertIn(name, [d["name"] for d in c.list_deployments()])

        header, rows, labels = self.rows()
        meta = c.model_metadata(name)
        self.assertEqual(meta["inputs"][0]["shape"], [-1, len(header) - 1])
        out = c.predict(name, rows)
        self.assertEqual(out["model_version"], str(job["model_version"]))
        self.assertEqual(len(out["predictions"]), len(rows))
        self.assertTrue(set(out["predictions"]) <= set(labels), out["predictions"][:5])
        self.assertEqual(len(out["probabilities"]), len(rows))
        for p in out["probabilities"]:
            self.assertEqual(len(p), len(labels))
            self.assertAlmostEqual(sum(p), 1.0, places=9)
        # Mostly right on its training data.
        with open(IRIS) as f:
            truth = [row[-1] for row in list(csv.reader(f))[1:]]
        right = sum(a == b for a, b in zip(out["predictions"], truth))
        self.assertGreater(right / len(truth), 0.9)

        with self.assertRaises(BmaasError) as cm:
            c.infer(name, [{"name": "input", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}])
        self.assertEqual(cm.exception.status, 400)
        self.assertIn("inputs[0].shape", cm.exception.message)

        # Evaluations: on a dataset, and on the job's held-out test split.
        ev = c.evaluate("%s@%s" % (name, job["model_version"]), name + "@1")
        self.assertEqual(ev["state"], "EVALUATION_STATE_SUCCEEDED")
        self.assertEqual((ev["dataset"], ev["dataset_version"], int(ev["rows"])), (name, "1", len(rows)))
        self.assertGreater(ev["metrics"]["accuracy"], 0.9, ev["metrics"])
        self.assertEqual(c.get_evaluation(ev["id"])["id"], ev["id"])
        split = c.evaluate(name, job=job["id"])
        self.assertEqual(split["split"], "test")
        self.assertIn(ev["id"], [e["id"] for e in c.list_evaluations(model=name)])

    def test_experiment_from_a_yaml_spec(self):
        c, name = self.c, self.name
        c.upload_dataset(name, IRIS)
        c.create_model(name, task_type="multiclass")
        with tempfile.TemporaryDirectory() as tmp:
            spec = os.path.join(tmp, "experiment.yaml")
            with open(spec, "w") as f:
                f.write(EXPERIMENT % {"name": name})
            x = c.create_experiment(spec, wait=True, timeout=180, poll=0.2)
        self.assertEqual(x["state"], "EXPERIMENT_STATE_SUCCEEDED", x)
        self.assertEqual(c.get_experiment(x["id"])["name"], name)
        self.assertIn(x["id"], [e["id"] for e in c.list_experiments(model=name)])
        trials = c.list_trials(x["id"])
        self.assertEqual(len(trials), 2)
        values = [t["value"] for t in trials]
        self.assertEqual(values, sorted(values, reverse=True), "best first")
        self.assertEqual(c.best_trial(x["id"])["id"], trials[0]["id"])

    def test_errors(self):
        with self.assertRaises(BmaasError) as cm:
            self.c.predict(self.name, [[1, 2, 3, 4]])
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(BmaasError) as cm:
            self.c.get_model(self.name)
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(BmaasError) as cm:
            self.c.deploy("Not A Name")
        self.assertEqual(cm.exception.status, 400)
        self.assertIn("model", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
