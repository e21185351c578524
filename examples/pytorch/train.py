#!/usr/bin/env python3
"""Train an MLP on a CSV dataset with PyTorch, as a bmaas process job.

Inputs (the bmaas process runtime contract; every one has a default so the
script also runs by hand from this directory):

  BMAAS_DATA_DIR        the first *.csv there (default: ../datasets/breast_cancer.csv)
  BMAAS_HPARAMS         JSON: hidden ("64,32"), lr, epochs, batch_size, seed,
                        weight_decay, validation_fraction, target (default: the last column),
                        export ("onnx", the default: the version is model.onnx, served by the
                        built-in onnx runtime; "torch": the version is the whole output directory
                        as a PyTorch archive, served by examples/runtimes/torch-v2)
  BMAAS_CHECKPOINT_DIR  checkpoint.pt after every epoch; resumed from when present
                        (default: ./checkpoints; delete it to start over)
  BMAAS_OUTPUT_DIR      model.pt (state_dict), model.onnx (export onnx) or model.ts
                        (TorchScript, export torch), model.json and signature.json
                        (default: ./out)
  BMAAS_METRICS_FILE    a JSON line per epoch and split (train loss; validation loss, accuracy)

The model takes the raw feature columns: the standardisation learned on the
training rows is part of it (and of the ONNX graph). Classification when the
target is text or holds at most 20 distinct integers, else regression.
"""

import csv
import glob
import json
import math
import os
import random
import sys
import time

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    from bmaas import train as bmaas_train
except ImportError:  # a clean checkout: use the SDK beside the examples
    sys.path.insert(0, os.path.join(HERE, "..", "..", "sdk", "python"))
    try:
        from bmaas import train as bmaas_train
    except ImportError:  # a bundle of this directory alone
        bmaas_train = None

DEFAULTS = {"hidden": [64, 32], "lr": 1e-3, "epochs": 20, "batch_size": 32, "seed": 0,
            "weight_decay": 0.0, "validation_fraction": 0.2, "target": "", "export": "onnx"}


def log(msg):
    print(msg, flush=True)


def hparams():
    """The hyperparameters with their defaults, converted to their types."""
    if bmaas_train is not None:
        return {k: bmaas_train.hparam(k, v) for k, v in DEFAULTS.items()}
    raw = json.loads(os.environ.get("BMAAS_HPARAMS") or "{}")
    out = dict(DEFAULTS)
    for k, v in raw.items():
        if k == "hidden":
            out[k] = [int(x) for x in (v if isinstance(v, list) else str(v).strip("[]").split(",")) if str(x).strip()]
        elif k in DEFAULTS:
            out[k] = type(DEFAULTS[k])(float(v)) if isinstance(DEFAULTS[k], (int, float)) else str(v)
    return out


def report(step, split, **metrics):
    if bmaas_train is not None:
        bmaas_train.report(step=step, split=split, **metrics)
    elif os.environ.get("BMAAS_METRICS_FILE"):
        with open(os.environ["BMAAS_METRICS_FILE"], "a") as f:
            f.write(json.dumps(dict(step=step, split=split, **metrics)) + "\n")


def env_dir(var, default, create=True):
    path = os.environ.get(var) or default
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def find_csv():
    data_dir = os.environ.get("BMAAS_DATA_DIR")
    if not data_dir:
        return os.path.join(HERE, "..", "datasets", "breast_cancer.csv")
    files = sorted(glob.glob(os.path.join(data_dir, "*.csv")))
    if not files:
        sys.exit("no *.csv file in BMAAS_DATA_DIR=%s" % data_dir)
    return files[0]


def load_csv(path, target):
    """Read the CSV: features (float tensor), targets, and what they mean."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], [r for r in rows[1:] if r]
    target = target or header[-1]
    if target not in header:
        sys.exit("target %r is not a column of %s (columns: %s)" % (target, path, ", ".join(header)))
    t = header.index(target)
    features = [h for i, h in enumerate(header) if i != t]

    def num(s):
        try:
            return float(s)
        except ValueError:
            return float("nan")

    x = torch.tensor([[num(v) for i, v in enumerate(r) if i != t] for r in rows], dtype=torch.float32)
    x = torch.nan_to_num(x, nan=0.0)  # missing values: 0 before scaling (no imputer in this example)
    raw = [r[t] for r in rows]
    values = [num(v) for v in raw]
    distinct = sorted(set(raw), key=lambda v: (num(v), v))
    if any(math.isnan(v) for v in values) or (len(distinct) <= 20 and all(v == int(v) for v in values)):
        index = {c: i for i, c in enumerate(distinct)}
        y = torch.tensor([index[v] for v in raw], dtype=torch.long)
        return x, y, {"task": "classification", "classes": distinct, "features": features, "target": target}
    y = torch.tensor(values, dtype=torch.float32).unsqueeze(1)
    return x, y, {"task": "regression", "features": features, "target": target}


def holdout(n, fraction, seed):
    """The validation rows: bmaas.train.holdout, so that the platform's
    evaluation of the version on the job's split (bmaas evaluate --job,
    automatic evaluation) scores the same rows. A copy of it for a bundle of
    this directory alone."""
    if bmaas_train is not None:
        return bmaas_train.holdout(n, fraction, seed)
    mask = (1 << 64) - 1

    def mix(x):
        x = (x + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    if n < 2 or fraction <= 0:
        return []
    s = mix(int(seed) & mask)
    return sorted(sorted(range(n), key=lambda i: (mix(s ^ i), i))[:min(int(math.floor(n * fraction + 0.5)), n)])


def split(n, fraction, seed):
    """Training and validation row indices: the validation rows are the ones
    bmaas holds out for this fraction and seed."""
    val = holdout(n, fraction, seed)
    held = set(val)
    return torch.tensor([i for i in range(n) if i not in held], dtype=torch.long), torch.tensor(val, dtype=torch.long)


class Model(nn.Module):
    """Standardisation followed by an MLP; the scaler is part of the state."""

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


def build(x_train, meta, hp):
    n_out = len(meta["classes"]) if meta["task"] == "classification" else 1
    model = Model(x_train.shape[1], hp["hidden"], n_out)
    model.mean.copy_(x_train.mean(0))
    model.std.copy_(x_train.std(0).clamp_min(1e-6))
    loss_fn = nn.CrossEntropyLoss() if meta["task"] == "classification" else nn.MSELoss()
    return model, loss_fn


def evaluate(model, loss_fn, x, y, meta):
    model.eval()
    with torch.no_grad():
        out = model(x)
        m = {"loss": loss_fn(out, y).item()}
        if meta["task"] == "classification":
            m["accuracy"] = (out.argmax(1) == y).float().mean().item()
    model.train()
    return m


def rng_state():
    s = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s):
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_checkpoint(ckpt_dir, epoch, model, optimizer):
    """Write checkpoint.pt atomically: a restart never sees half a file."""
    path = os.path.join(ckpt_dir, "checkpoint.pt")
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": rng_state()}, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(ckpt_dir, model, optimizer):
    """Restore the newest checkpoint; returns the last finished epoch (0: none)."""
    path = os.path.join(ckpt_dir, "checkpoint.pt")
    if not os.path.exists(path):
        return 0
    state = torch.load(path, map_location="cpu")  # RNG states must stay on the CPU
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])  # moves its state to the parameters' device
    set_rng_state(state["rng"])
    return int(state["epoch"])


def signature(meta):
    """What model.onnx takes and answers, as bmaas reads it from signature.json
    (a bmaas.common.v1.Signature): the feature columns in order and, for a
    classifier, the class of each output value and that the values are
    logits, so that a deployment answers labels and probabilities."""
    n = len(meta["features"])
    out = {"name": "output", "datatype": "DATA_TYPE_FP32"}
    if meta["task"] == "classification":
        out.update(shape=[-1, len(meta["classes"])], labels=meta["classes"], kind="OUTPUT_KIND_LOGITS")
    else:
        out.update(shape=[-1, 1])
    return {"inputs": [{"name": "input", "datatype": "DATA_TYPE_FP32", "shape": [-1, n], "columns": meta["features"]}],
            "outputs": [out]}


def onnx_export_options(export_fn):
    """The TorchScript-based exporter wherever torch.onnx.export can choose:
    from PyTorch 2.9 the default is the TorchDynamo-based one, which needs the
    onnxscript package and reads dynamic_axes only in part."""
    try:
        import inspect
        params = inspect.signature(export_fn).parameters
    except (TypeError, ValueError):
        return {}
    return {"dynamo": False} if "dynamo" in params else {}


def export(model, meta, hp, out_dir, metrics):
    """model.pt (state_dict), model.json, signature.json, and model.onnx (input
    "input", dynamic batch; export onnx) or model.ts (TorchScript; export torch).
    bmaas registers model.onnx as an ONNX version (the rest kept as a bundle),
    and a directory with a .pt file and no .onnx as a PyTorch archive."""
    model = model.to("cpu").eval()
    torch.save(model.state_dict(), os.path.join(out_dir, "model.pt"))
    dummy = torch.zeros(1, len(meta["features"]))
    if hp["export"] == "torch":
        torch.jit.trace(model, dummy).save(os.path.join(out_dir, "model.ts"))
    elif hp["export"] == "onnx":
        torch.onnx.export(model, dummy, os.path.join(out_dir, "model.onnx"), opset_version=13,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          **onnx_export_options(torch.onnx.export))
    else:
        sys.exit("export must be onnx or torch, got %r" % hp["export"])
    info = dict(meta, hidden=hp["hidden"], metrics=metrics,
                output="logits" if meta["task"] == "classification" else "prediction")
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(info, f, indent=2)
    with open(os.path.join(out_dir, "signature.json"), "w") as f:
        json.dump(signature(meta), f, indent=2)


def main():
    hp = hparams()
    torch.manual_seed(hp["seed"])
    random.seed(hp["seed"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)
    out_dir = env_dir("BMAAS_OUTPUT_DIR", "out")
    ckpt_dir = env_dir("BMAAS_CHECKPOINT_DIR", "checkpoints")
    path = find_csv()
    x, y, meta = load_csv(path, hp["target"])
    tr, va = split(len(x), hp["validation_fraction"], hp["seed"])
    log("job %s: %s, %d rows (%d train, %d validation), %d features, %s of %s on %s" % (
        os.environ.get("BMAAS_JOB_ID", "-"), os.path.basename(path), len(x), len(tr), len(va),
        x.shape[1], meta["task"], meta["target"], device))

    model, loss_fn = build(x[tr], meta, hp)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    start = load_checkpoint(ckpt_dir, model, optimizer)
    if start:
        log("resuming after epoch %d from %s" % (start, ckpt_dir))
    x_tr, y_tr, x_va, y_va = x[tr].to(device), y[tr].to(device), x[va].to(device), y[va].to(device)
    val = {}
    for epoch in range(start + 1, hp["epochs"] + 1):
        t0 = time.monotonic()
        perm = torch.randperm(len(x_tr)).to(device)
        total = 0.0
        for i in range(0, len(perm), hp["batch_size"]):
            b = perm[i:i + hp["batch_size"]]
            optimizer.zero_grad()
            loss = loss_fn(model(x_tr[b]), y_tr[b])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(b)
        train_loss = total / max(len(perm), 1)
        report(epoch, "train", loss=train_loss)
        msg = "epoch %d/%d train loss %.4f" % (epoch, hp["epochs"], train_loss)
        if len(va):
            val = evaluate(model, loss_fn, x_va, y_va, meta)
            report(epoch, "validation", **val)
            msg += "".join("  validation %s %.4f" % kv for kv in val.items())
        save_checkpoint(ckpt_dir, epoch, model, optimizer)
        log("%s  (%.3fs)" % (msg, time.monotonic() - t0))
    if len(va) and not val:  # resumed after the last epoch
        val = evaluate(model, loss_fn, x_va, y_va, meta)
    export(model, meta, hp, out_dir, val)
    log("saved model.pt, %s, model.json and signature.json in %s" % (
        "model.ts" if hp["export"] == "torch" else "model.onnx", out_dir))


if __name__ == "__main__":
    main()
