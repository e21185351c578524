"""Tests of train.py: a tiny GPT trained for a few dozen steps on a small text.

Run: cd examples/llm && /usr/bin/python3 -m unittest discover -s .
"""

import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt  # noqa: E402
import train  # noqa: E402

TINY = {"steps": "40", "batch_size": "8", "block_size": "32", "n_layer": "1", "n_head": "2", "n_embd": "32",
        "lr": "0.01", "eval_interval": "10", "eval_batches": "2", "seed": "3"}
TEXT = ("Mr. Sherlock Holmes, who was usually very late in the mornings, was seated at the breakfast table. "
        "I stood upon the hearth-rug and picked up the stick which our visitor had left behind him. ") * 30


class TinyRun(unittest.TestCase):
    """Each test has its own directories under one temporary root."""

    def setUp(self):
        torch.set_num_threads(1)
        quiet = redirect_stderr(io.StringIO())  # the runs' progress lines
        quiet.__enter__()
        self.addCleanup(quiet.__exit__, None, None, None)
        self.root = tempfile.mkdtemp(prefix="llm-train-")
        self.addCleanup(shutil.rmtree, self.root)
        self.data = os.path.join(self.root, "data")
        os.makedirs(self.data)
        with open(os.path.join(self.data, "b.txt"), "w") as f:
            f.write(TEXT)
        with open(os.path.join(self.data, "a.txt"), "w") as f:
            f.write(TEXT[:1000])

    def env(self, name, **hparams):
        """The job environment of a run called name."""
        d = os.path.join(self.root, name)
        return {"BMAAS_HPARAMS": json.dumps(dict(TINY, **hparams)), "BMAAS_DATA_DIR": self.data,
                "BMAAS_OUTPUT_DIR": os.path.join(d, "out"), "BMAAS_CHECKPOINT_DIR": os.path.join(d, "ckpt"),
                "BMAAS_METRICS_FILE": os.path.join(d, "metrics.jsonl"), "CUDA_VISIBLE_DEVICES": ""}

    @staticmethod
    def metrics(env):
        with open(env["BMAAS_METRICS_FILE"]) as f:
            return f.read().splitlines()

    @staticmethod
    def weights(env):
        return torch.load(os.path.join(env["BMAAS_OUTPUT_DIR"], gpt.WEIGHTS_FILE))


class TrainTest(TinyRun):
    def test_loss_falls_and_outputs_load_and_generate(self):
        env = self.env("one")
        train.train(env)
        val = [json.loads(l)["loss"] for l in self.metrics(env) if json.loads(l)["split"] == "validation"]
        self.assertEqual(len(val), 5)  # steps 0, 10, 20, 30, 40
        self.assertLess(val[-1], val[0] - 0.5)
        out = env["BMAAS_OUTPUT_DIR"]
        self.assertEqual(sorted(os.listdir(out)),
                         ["config.json", "gpt.py", "model.pt", "samples.txt", "tokenizer.json"])
        with open(os.path.join(out, "gpt.py")) as a, open(os.path.join(HERE, "gpt.py")) as b:
            self.assertEqual(a.read(), b.read())
        model, tok = gpt.load(out)
        self.assertEqual((model.cfg.n_layer, model.cfg.n_embd, model.cfg.block_size), (1, 32, 32))
        text = train.greedy(model, tok, "Holmes", 50)  # past the 32-token context
        self.assertTrue(text.startswith("Holmes"))
        self.assertEqual(len(text.encode()), len("Holmes") + 50)
        with open(os.path.join(out, "samples.txt")) as f:
            self.assertTrue(f.read().startswith("Holmes"))

    def test_metrics_lines_are_as_the_agent_reads_them(self):
        env = self.env("metrics")
        train.train(env)
        lines = self.metrics(env)
        self.assertEqual(len(lines), 10)
        steps = []
        for line in lines:
            self.assertEqual(line, json.dumps(json.loads(line), separators=(",", ":")))  # compact, like the SDK
            m = json.loads(line)
            self.assertEqual(list(m), ["step", "split", "loss", "perplexity"])
            self.assertIsInstance(m["step"], int)
            self.assertAlmostEqual(m["perplexity"], math.exp(m["loss"]), places=9)
            steps.append((m["step"], m["split"]))
        self.assertEqual(steps, [(s, split) for s in (0, 10, 20, 30, 40) for split in ("train", "validation")])
        # the agent names a metric split_name and gives the version the last line's metrics
        last = json.loads(lines[-1])
        version = {"%s_%s" % (last["split"], k): v for k, v in last.items() if k not in ("step", "split")}
        self.assertEqual(sorted(version), ["validation_loss", "validation_perplexity"])

    def test_metrics_go_to_stdout_without_a_metrics_file(self):
        env = self.env("stdout", steps="10")
        del env["BMAAS_METRICS_FILE"]
        buf = io.StringIO()
        with redirect_stdout(buf):
            train.train(env)
        lines = [json.loads(l) for l in buf.getvalue().splitlines()]
        self.assertEqual([(m["step"], m["split"]) for m in lines],
                         [(0, "train"), (0, "validation"), (10, "train"), (10, "validation")])

    def test_the_script_runs_as_a_job_logging_device_and_progress(self):
        env = dict(os.environ, **self.env("script", steps="20"))
        p = subprocess.run([sys.executable, os.path.join(HERE, "train.py")], env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        log = p.stderr.splitlines()
        self.assertRegex(log[0], r"^job -: a.txt, b.txt, \d+ tokens .* 20 steps of 8 x 32 tokens on cpu$")
        self.assertRegex(p.stderr, r"(?m)^step 20/20 loss \d+\.\d{4} lr \d\.\d\de-0\d \d+ tokens/s$")
        self.assertEqual(p.stdout, "")
        self.assertEqual(len(self.metrics(env)), 6)
        self.assertTrue(os.path.exists(os.path.join(env["BMAAS_CHECKPOINT_DIR"], "checkpoint.pt")))
        self.assertTrue(os.path.exists(os.path.join(env["BMAAS_OUTPUT_DIR"], "model.pt")))

    def test_a_run_resumed_from_a_periodic_checkpoint_ends_with_the_same_weights(self):
        whole = self.env("whole", dropout="0.1")
        train.train(whole)
        crashed = self.env("crashed", dropout="0.1")
        calls = []

        def crash():
            calls.append(1)
            if len(calls) == 25:  # step 25: the checkpoint on disk is step 20's
                raise RuntimeError("node lost")
            return False

        with self.assertRaises(RuntimeError):
            train.train(crashed, crash)
        self.assertEqual(torch.load(os.path.join(crashed["BMAAS_CHECKPOINT_DIR"], "checkpoint.pt"))["step"], 20)
        train.train(crashed)
        self.assert_same_weights(whole, crashed)
        steps = [json.loads(l)["step"] for l in self.metrics(crashed)]
        self.assertEqual(steps[-2:], [40, 40])

    def test_a_stopped_run_checkpoints_where_it_stopped_and_resumes_to_the_same_weights(self):
        whole = self.env("whole")
        train.train(whole)
        stopped = self.env("stopped")
        calls = []
        with self.assertRaises(train.Stopped):
            train.train(stopped, lambda: calls.append(1) or len(calls) == 17)
        self.assertEqual(torch.load(os.path.join(stopped["BMAAS_CHECKPOINT_DIR"], "checkpoint.pt"))["step"], 17)
        self.assertFalse(os.path.exists(os.path.join(stopped["BMAAS_OUTPUT_DIR"], "model.pt")))
        train.train(stopped)
        self.assert_same_weights(whole, stopped)

    def test_a_run_resumed_after_its_last_step_reports_the_final_losses_again(self):
        env = self.env("done")
        train.train(env)
        os.remove(env["BMAAS_METRICS_FILE"])  # a restarted job has a new metrics file
        train.train(env)
        lines = [json.loads(l) for l in self.metrics(env)]
        self.assertEqual([(m["step"], m["split"]) for m in lines], [(40, "train"), (40, "validation")])

    def test_a_checkpoint_of_another_shape_is_refused_naming_the_key(self):
        env = self.env("shape", steps="10")
        train.train(env)
        env["BMAAS_HPARAMS"] = json.dumps(dict(TINY, steps="20", n_embd="64"))
        with self.assertRaisesRegex(train.HyperparameterError, r"^hyperparameter n_embd: 64, but .*checkpoint.pt was written with 32"):
            train.train(env)

    def assert_same_weights(self, a, b):
        wa, wb = self.weights(a), self.weights(b)
        self.assertEqual(sorted(wa), sorted(wb))
        for k in wa:
            self.assertTrue(torch.equal(wa[k], wb[k]), k)


class DataTest(TinyRun):
    def test_documents_are_sorted_by_name_and_each_ends_with_endoftext(self):
        files = train.text_files(self.data)
        self.assertEqual([os.path.basename(f) for f in files], ["a.txt", "b.txt"])
        tokens = train.load_tokens(files).tolist()
        eot = gpt.ByteTokenizer.EOT
        self.assertEqual(tokens, list(TEXT[:1000].encode()) + [eot] + list(TEXT.encode()) + [eot])

    def test_without_text_in_the_data_dir_the_bundled_text_is_used(self):
        files = train.text_files(self.root)  # holds only a directory
        self.assertEqual(files, [os.path.join(HERE, "data", "sherlock-holmes.txt")])
        self.assertEqual(train.text_files(None), files)

    def test_validation_is_the_last_fraction_of_the_text(self):
        hp = train.parse_hparams(json.dumps(dict(TINY, validation_fraction="0.25")))
        tokens = torch.arange(1000)
        tr, va = train.split_tokens(tokens, hp)
        self.assertEqual(tr.tolist(), list(range(750)))
        self.assertEqual(va.tolist(), list(range(750, 1000)))

    def test_a_text_too_short_for_the_context_names_block_size(self):
        hp = train.parse_hparams(json.dumps(dict(TINY, block_size="64")))
        with self.assertRaisesRegex(train.HyperparameterError, "^hyperparameter block_size: 64 needs 65 tokens of validation text"):
            train.split_tokens(torch.arange(500), hp)


class HyperparameterTest(unittest.TestCase):
    def test_defaults(self):
        self.assertEqual(train.parse_hparams(""), train.DEFAULTS)
        self.assertEqual(train.parse_hparams("{}")["steps"], 300)

    def test_strings_and_numbers_are_converted(self):
        hp = train.parse_hparams('{"steps": "50", "lr": "1e-3", "dropout": 0.1, "seed": "2.0"}')
        self.assertEqual((hp["steps"], hp["lr"], hp["dropout"], hp["seed"]), (50, 0.001, 0.1, 2))
        self.assertIsInstance(hp["steps"], int)

    def test_bad_values_fail_naming_the_key(self):
        cases = {
            '{"steps": "x"}': 'hyperparameter steps: "x" is not an integer',
            '{"batch_size": "1.5"}': 'hyperparameter batch_size: "1.5" is not an integer',
            '{"lr": "fast"}': 'hyperparameter lr: "fast" is not a number',
            '{"lr": "nan"}': 'hyperparameter lr: "nan" is not a number',
            '{"n_layer": true}': 'hyperparameter n_layer: true is not an integer',
            '{"steps": "0"}': "hyperparameter steps: 0 must be at least 1",
            '{"lr": "-1"}': "hyperparameter lr: -1 must be above 0",
            '{"dropout": "1"}': "hyperparameter dropout: 1 must be at least 0 and below 1",
            '{"validation_fraction": "0"}': "hyperparameter validation_fraction: 0 must be above 0 and below 1",
            '{"n_embd": "100", "n_head": "3"}': "hyperparameter n_embd: 100 is not a multiple of n_head (3)",
            '{"epochs": "3"}': "hyperparameter epochs: unknown (known: batch_size, block_size, ",
            '[1]': "BMAAS_HPARAMS must be a JSON object, not list",
            '{': "BMAAS_HPARAMS is not JSON",
        }
        for raw, msg in cases.items():
            with self.subTest(raw=raw):
                with self.assertRaises(train.HyperparameterError) as cm:
                    train.parse_hparams(raw)
                self.assertTrue(str(cm.exception).startswith(msg), str(cm.exception))

    def test_the_script_exits_at_once_naming_the_key(self):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, BMAAS_HPARAMS='{"steps": "x"}', BMAAS_OUTPUT_DIR=os.path.join(d, "out"),
                       BMAAS_CHECKPOINT_DIR=os.path.join(d, "ckpt"))
            p = subprocess.run([sys.executable, os.path.join(HERE, "train.py")], env=env, capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.strip(), 'train.py: hyperparameter steps: "x" is not an integer')


class ScheduleTest(unittest.TestCase):
    def test_warmup_then_cosine_decay_to_a_tenth(self):
        hp = dict(train.DEFAULTS, steps=100, lr=1.0)
        lrs = [train.lr_at(s, hp) for s in range(100)]
        self.assertAlmostEqual(lrs[0], 1 / 15)
        self.assertAlmostEqual(lrs[14], 1.0)
        self.assertAlmostEqual(lrs[99], 0.1)
        self.assertTrue(all(a >= b for a, b in zip(lrs[14:], lrs[15:])))

    def test_device_follows_cuda_visible_devices(self):
        self.assertEqual(train.pick_device({"CUDA_VISIBLE_DEVICES": ""}).type, "cpu")
        self.assertEqual(train.pick_device({"CUDA_VISIBLE_DEVICES": "-1"}).type, "cpu")
        want = "cuda" if torch.cuda.is_available() else "cpu"
        self.assertEqual(train.pick_device({"CUDA_VISIBLE_DEVICES": "0"}).type, want)


if __name__ == "__main__":
    unittest.main()
