"""Tests of bmaas.train. Run: python3 -m unittest discover -s sdk/python/tests"""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bmaas import train  # noqa: E402

ENV_VARS = ("BMAAS_JOB_ID", "BMAAS_HPARAMS", "BMAAS_DATA_DIR", "BMAAS_OUTPUT_DIR", "BMAAS_CHECKPOINT_DIR",
            "BMAAS_METRICS_FILE", "RANK", "WORLD_SIZE")


class TrainTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        clean = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        patcher = mock.patch.dict(os.environ, clean, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        train._warned.clear()

    def lines(self, path):
        with open(path) as f:
            return [json.loads(line) for line in f]

    def test_report_appends_json_lines(self):
        path = os.path.join(self.tmp, "metrics.jsonl")
        os.environ["BMAAS_METRICS_FILE"] = path

        class Scalar:  # a 0-d tensor or numpy scalar
            def item(self):
                return 0.5

        train.report(step=1, loss=0.75)
        train.report(step=1, split="validation", loss=Scalar(), accuracy=0.9, correct=45)
        train.report(split="test", accuracy=1)
        self.assertEqual(self.lines(path), [
            {"step": 1, "split": "train", "loss": 0.75},
            {"step": 1, "split": "validation", "loss": 0.5, "accuracy": 0.9, "correct": 45},
            {"split": "test", "accuracy": 1},
        ])

    def test_report_rejects_bad_values_and_drops_nan(self):
        path = os.path.join(self.tmp, "metrics.jsonl")
        os.environ["BMAAS_METRICS_FILE"] = path
        with self.assertRaises(TypeError):
            train.report(step=1, loss="low")
        with self.assertRaises(TypeError):
            train.report(step=1.5, loss=1.0)
        with self.assertRaises(TypeError):
            train.report(step=1, ok=True)
        with self.assertRaises(ValueError):
            train.report(step=1, split="", loss=1.0)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            line = train.report(step=2, loss=float("nan"), accuracy=0.5)
        self.assertEqual(line, {"step": 2, "split": "train", "accuracy": 0.5})
        self.assertIn("metric loss is nan; left out", err.getvalue())
        self.assertEqual(self.lines(path), [line])

    def test_report_without_metrics_file_warns_once(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertIsNone(train.report(step=1, loss=1.0))
            self.assertIsNone(train.report(step=2, loss=0.5))
        self.assertEqual(err.getvalue(), "bmaas: BMAAS_METRICS_FILE is not set; metrics are not reported\n")

    def test_hparams(self):
        self.assertEqual(train.hparams(), {})
        os.environ["BMAAS_HPARAMS"] = json.dumps({"epochs": "20", "lr": "0.01", "hidden": "128,64",
                                                 "layers": "[8, 4]", "amp": "true", "target": "y", "n": 3})
        self.assertEqual(train.hparams()["epochs"], "20")
        self.assertEqual(train.hparam("epochs", 10), 20)
        self.assertEqual(train.hparam("n", 1.0), 3.0)
        self.assertEqual(train.hparam("lr", 0.1), 0.01)
        self.assertEqual(train.hparam("hidden", [64]), [128, 64])
        self.assertEqual(train.hparam("layers", [1]), [8, 4])
        self.assertIs(train.hparam("amp", False), True)
        self.assertEqual(train.hparam("target", ""), "y")
        self.assertEqual(train.hparam("missing", 7), 7)
        with self.assertRaisesRegex(ValueError, "hyperparameter lr='0.01': expected int"):
            train.hparam("lr", 1)
        with self.assertRaisesRegex(ValueError, "expected bool"):
            train.hparam("target", False)
        os.environ["BMAAS_HPARAMS"] = "{not json"
        with self.assertRaisesRegex(ValueError, "not valid JSON"):
            train.hparams()
        os.environ["BMAAS_HPARAMS"] = "[1]"
        with self.assertRaisesRegex(ValueError, "must be a JSON object"):
            train.hparams()

    def test_directories(self):
        self.assertIsNone(train.data_dir())
        self.assertIsNone(train.output_dir())
        self.assertEqual(train.data_dir("../datasets"), "../datasets")
        out = os.path.join(self.tmp, "out")
        self.assertEqual(train.output_dir(out), out)
        self.assertTrue(os.path.isdir(out), "created")
        job_out = os.path.join(self.tmp, "job", "output")
        os.environ["BMAAS_OUTPUT_DIR"] = job_out
        self.assertEqual(train.output_dir(out), job_out, "the job's directory wins over the default")
        self.assertTrue(os.path.isdir(job_out))

    def test_checkpoints_and_resume(self):
        ckpt = os.path.join(self.tmp, "ckpt")
        self.assertFalse(train.is_resuming())
        os.environ["BMAAS_CHECKPOINT_DIR"] = ckpt
        self.assertEqual(train.checkpoint_dir(), ckpt)
        self.assertFalse(train.is_resuming(), "an empty directory is a fresh start")
        with open(os.path.join(ckpt, ".partial"), "w"):
            pass
        self.assertFalse(train.is_resuming(), "hidden files do not count")
        with open(os.path.join(ckpt, "checkpoint.pt"), "w"):
            pass
        self.assertTrue(train.is_resuming())

    def test_job_identity(self):
        self.assertIsNone(train.job_id())
        self.assertEqual((train.rank(), train.world_size()), (0, 1))
        os.environ.update(BMAAS_JOB_ID="01J0ABC", RANK="1", WORLD_SIZE="2")
        self.assertEqual(train.job_id(), "01J0ABC")
        self.assertEqual((train.rank(), train.world_size()), (1, 2))


class HoldoutTest(unittest.TestCase):
    def test_holdout_is_seeded_sized_and_sorted(self):
        rows = train.holdout(569, 0.2, 0)
        self.assertEqual(len(rows), 114)
        self.assertEqual(rows, sorted(rows))
        self.assertEqual(rows, train.holdout(569, 0.2, 0))
        self.assertNotEqual(rows, train.holdout(569, 0.2, 1))
        self.assertEqual(train.holdout(1, 0.5, 0), [])
        self.assertEqual(train.holdout(10, 0, 0), [])


if __name__ == "__main__":
    unittest.main()
