"""Helpers for training scripts run as bmaas process jobs.

The trainer agent starts the script with this environment (see the
process runtime contract in DESIGN.md):

    BMAAS_JOB_ID          the job's ID
    BMAAS_HPARAMS         the job's hyperparameters as a JSON object
    BMAAS_DATA_DIR        the dataset version's CSV file lives here
    BMAAS_OUTPUT_DIR      files left here become the model version's artifact
    BMAAS_CHECKPOINT_DIR  checkpoints; restored there when the job restarts
    BMAAS_METRICS_FILE    JSON lines the agent tails, one per report()
    RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT for multi-worker jobs

Every function works outside a job too, so the same script runs by hand.
"""

import json
import math
import numbers
import os
import sys

__all__ = [
    "report", "hparams", "hparam", "data_dir", "output_dir", "checkpoint_dir",
    "job_id", "is_resuming", "rank", "world_size", "holdout",
]

_warned = set()


def _warn_once(key, msg):
    if key not in _warned:
        _warned.add(key)
        print("bmaas: " + msg, file=sys.stderr)


def report(step=None, split="train", **metrics):
    """Append one metrics line to BMAAS_METRICS_FILE.

    ``report(step=3, split="validation", loss=0.2, accuracy=0.95)`` writes
    ``{"step": 3, "split": "validation", "loss": 0.2, "accuracy": 0.95}``.
    Values must be numbers (Python, NumPy or 0-d tensor scalars); NaN and
    infinities are left out with a warning, since JSON cannot carry them.
    Without BMAAS_METRICS_FILE it warns once on stderr and does nothing.
    Returns the dict written, or None.
    """
    if not isinstance(split, str) or not split:
        raise ValueError("split must be a non-empty string such as 'train' or 'validation'")
    line = {}
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError("step must be an integer, not %r" % (step,))
        line["step"] = int(step)
    line["split"] = split
    for name, value in metrics.items():
        v = _number(name, value)
        if v is None:
            continue
        line[name] = v
    path = os.environ.get("BMAAS_METRICS_FILE")
    if not path:
        _warn_once("metrics", "BMAAS_METRICS_FILE is not set; metrics are not reported")
        return None
    data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
    # One write on an O_APPEND descriptor: the agent never sees half a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return line


def _number(name, value):
    if hasattr(value, "item") and not isinstance(value, (numbers.Number, str)):
        value = value.item()  # numpy and torch scalars
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("metric %s must be a number, not %r" % (name, value))
    value = float(value) if not isinstance(value, numbers.Integral) else int(value)
    if isinstance(value, float) and not math.isfinite(value):
        _warn_once("nan:" + name, "metric %s is %r; left out (JSON has no NaN or infinity)" % (name, value))
        return None
    return value


def hparams():
    """The job's hyperparameters (BMAAS_HPARAMS) as a dict; {} when unset.

    bmaas passes --param values as strings; use hparam() to convert them.
    """
    raw = os.environ.get("BMAAS_HPARAMS", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise ValueError("BMAAS_HPARAMS is not valid JSON: %s" % e) from None
    if not isinstance(value, dict):
        raise ValueError("BMAAS_HPARAMS must be a JSON object, not %s" % type(value).__name__)
    return value


def hparam(name, default):
    """One hyperparameter converted to the type of ``default``.

    Strings become int, float or bool ("true"/"false"/"1"/"0"), and lists
    take "64,32" or "[64, 32]" with elements of the default's first
    element type. A missing parameter gives ``default``.
    """
    params = hparams()
    if name not in params or params[name] is None:
        return default
    return _convert(name, params[name], default)


def _convert(name, value, default):
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("true", "1", "yes", "on"):
                return True
            if s in ("false", "0", "no", "off"):
                return False
            raise ValueError("not a boolean")
        if isinstance(default, (list, tuple)):
            items = value
            if isinstance(value, str):
                s = value.strip()
                items = json.loads(s) if s.startswith("[") else [x for x in s.split(",") if x.strip()]
            if not isinstance(items, list):
                items = [items]
            elem = default[0] if default else ""
            return type(default)(_convert(name, x, elem) for x in items)
        if isinstance(default, int):
            f = float(value)
            if f != int(f):
                raise ValueError("not an integer")
            return int(f)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError) as e:
        raise ValueError("hyperparameter %s=%r: expected %s (%s)" % (name, value, type(default).__name__, e)) from None
    return value


def _dir(var, default, create):
    path = os.environ.get(var) or default
    if path is None:
        return None
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def data_dir(default=None):
    """BMAAS_DATA_DIR, or ``default`` outside a job."""
    return _dir("BMAAS_DATA_DIR", default, create=False)


def output_dir(default=None):
    """BMAAS_OUTPUT_DIR (created), or ``default`` outside a job."""
    return _dir("BMAAS_OUTPUT_DIR", default, create=True)


def checkpoint_dir(default=None):
    """BMAAS_CHECKPOINT_DIR (created), or ``default`` outside a job."""
    return _dir("BMAAS_CHECKPOINT_DIR", default, create=True)


def is_resuming(default=None):
    """True when the checkpoint directory already holds files: the job
    restarted (after a failure, a lost node or a preemption) and the
    agent restored its newest checkpoint there."""
    path = os.environ.get("BMAAS_CHECKPOINT_DIR") or default
    if not path or not os.path.isdir(path):
        return False
    return any(not n.startswith(".") for n in os.listdir(path))


def job_id():
    """BMAAS_JOB_ID, or None outside a job."""
    return os.environ.get("BMAAS_JOB_ID") or None


def rank():
    """This worker's RANK (0 for a single worker)."""
    return int(os.environ.get("RANK", "0") or 0)


def world_size():
    """The job's WORLD_SIZE (1 for a single worker)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


_MASK = (1 << 64) - 1


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def holdout(n, fraction=0.2, seed=0):
    """The rows (indices, increasing) of n that a job holding out
    ``fraction`` of them with ``seed`` keeps aside for validation.

    bmaas evaluates a version on the same rows (``bmaas evaluate --job``,
    automatic evaluation) when the job's hyperparameters name the same
    ``validation_fraction`` and ``seed``: a script that holds out these rows
    reports metrics the platform can check. The rule: the round(n*fraction)
    rows with the smallest splitmix64(splitmix64(seed) ^ row), ties by row.
    """
    if n < 2 or fraction <= 0:
        return []
    k = min(int(math.floor(n * fraction + 0.5)), n)
    s = _splitmix64(int(seed) & _MASK)
    rows = sorted(range(n), key=lambda i: (_splitmix64(s ^ i), i))[:k]
    return sorted(rows)
