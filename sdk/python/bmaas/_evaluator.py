"""The evaluator's calls of bmaas.Client: evaluations and experiments
(hyperparameter searches), as the CLI's `bmaas evaluate` and
`bmaas experiment` make them."""

import os
import time

from ._http import BmaasError, quote
from ._spec import load_spec

__all__ = ["EvaluatorCalls", "parse_ref"]

_EXPERIMENT_RUNNING = ("EXPERIMENT_STATE_RUNNING", "EXPERIMENT_STATE_PAUSED")
_SEARCHERS = ("grid", "random", "tpe", "asha", "hyperband")
_DIRECTIONS = {"max": "DIRECTION_MAXIMIZE", "min": "DIRECTION_MINIMIZE"}


def parse_ref(ref):
    """Splits NAME@REF (REF: a version number, an alias or latest; a plain
    NAME means NAME@latest) as the CLI does."""
    name, sep, version = str(ref).partition("@")
    if not ref:
        raise ValueError("empty reference: expected NAME or NAME@REF")
    if not name:
        raise ValueError("reference %r: missing name before '@'" % ref)
    if sep and not version:
        raise ValueError("reference %r: missing version or alias after '@'" % ref)
    if "@" in version:
        raise ValueError("reference %r: more than one '@'" % ref)
    if any(c in ref for c in " \t\n/"):
        raise ValueError("reference %r: must not contain spaces or '/'" % ref)
    return name, version or "latest"


def _experiment_body(spec):
    """An experiment spec (a dict, or the path of a YAML or JSON file) as
    the API's JSON; parameter types may be short (log_uniform)."""
    if isinstance(spec, (str, os.PathLike)):
        spec = load_spec(spec)
    if not isinstance(spec, dict):
        raise ValueError("an experiment spec is a mapping, got %s" % type(spec).__name__)
    body = dict(spec)
    params = []
    for p in body.get("params") or []:
        p = dict(p)
        t = p.get("type")
        if isinstance(t, str) and not t.upper().startswith("PARAM_TYPE_"):
            p["type"] = "PARAM_TYPE_" + t.upper()
        params.append(p)
    if params:
        body["params"] = params
    # The searcher and mode also go as their enums; the strings stay for an
    # evaluator from before them, and one the SDK does not know is left to
    # the evaluator, which names the field it refuses.
    searcher = body.get("searcher")
    if isinstance(searcher, str) and searcher in _SEARCHERS and "searcher_kind" not in body:
        body["searcher_kind"] = "SEARCHER_" + searcher.upper()
    mode = body.get("mode")
    if isinstance(mode, str) and mode in _DIRECTIONS and "direction" not in body:
        body["direction"] = _DIRECTIONS[mode]
    return body


def _best_first(trials, mode):
    """Trials best first by the experiment's mode (max or min); those
    without a value last; each group by id (as `bmaas experiment trials`)."""
    def key(t):
        has = bool(t.get("has_value"))
        v = float(t.get("value", 0)) if has else 0.0
        return (not has, -v if mode != "min" else v, t.get("id", ""))
    return sorted(trials, key=key)


class EvaluatorCalls:
    """Mixed into Client; uses its _do, _list and _t."""

    # Evaluations.

    def evaluate(self, model, dataset=None, job=None, timeout=600.0, poll=0.5):
        """Evaluates a model version ("NAME@REF") on a dataset ("NAME" or
        "NAME@VERSION") or on a training job's held-out test split, as
        `bmaas evaluate`; returns the evaluation (metrics, confusion matrix,
        drift per column) once it ended, and raises BmaasError if it failed."""
        if (dataset is None) == (job is None):
            raise ValueError("give one of dataset or job")
        name, ref = parse_ref(model)
        ev = {"model": name, "version": ref}
        if dataset is not None:
            ds, ds_ref = parse_ref(dataset)
            ev["dataset"] = ds
            if ds_ref.isdigit():
                ev["dataset_version_number"] = int(ds_ref)
            elif ds_ref != "latest":
                ev["dataset_version"] = ds_ref  # the evaluator says why it refuses it
        else:
            ev["job_id"] = job
        got = self._do("POST", "/v1/evaluations", ev, timeout=max(self._t.timeout, timeout))["evaluation"]
        deadline = time.monotonic() + timeout
        while got.get("state") == "EVALUATION_STATE_RUNNING":
            if time.monotonic() > deadline:
                raise BmaasError(0, "evaluation %s still running after %ss" % (got.get("id"), timeout))
            time.sleep(poll)
            got = self.get_evaluation(got["id"])
        if got.get("state") == "EVALUATION_STATE_FAILED":
            raise BmaasError(0, "evaluation %s of %s failed: %s" % (got.get("id"), model, got.get("message", "")))
        return got

    def get_evaluation(self, evaluation_id):
        return self._do("GET", "/v1/evaluations/" + quote(evaluation_id))["evaluation"]

    def list_evaluations(self, model=None, dataset=None):
        return self._list("/v1/evaluations", "evaluations", {"model": model, "dataset": dataset})

    # Experiments.

    def create_experiment(self, spec, wait=False, timeout=3600.0, poll=1.0):
        """Starts an experiment from a spec: a dict, or the path of a YAML
        or JSON file (examples/experiments/), as `bmaas experiment create
        -f`. With wait=True it returns the experiment once it ended
        (SUCCEEDED, FAILED or CANCELLED: see its "state")."""
        x = self._do("POST", "/v1/experiments", _experiment_body(spec))["experiment"]
        return self.wait_experiment(x["id"], timeout=timeout, poll=poll) if wait else x

    def get_experiment(self, experiment_id):
        return self._do("GET", "/v1/experiments/" + quote(experiment_id))["experiment"]

    def list_experiments(self, model=None):
        return self._list("/v1/experiments", "experiments", {"model": model})

    def wait_experiment(self, experiment_id, timeout=3600.0, poll=1.0):
        """Polls an experiment until it ends and returns it."""
        deadline = time.monotonic() + timeout
        while True:
            x = self.get_experiment(experiment_id)
            if x.get("state") not in _EXPERIMENT_RUNNING:
                return x
            if time.monotonic() > deadline:
                raise BmaasError(0, "experiment %s still %s after %ss" % (experiment_id, x.get("state"), timeout))
            time.sleep(poll)

    def list_trials(self, experiment_id, mode=None):
        """The experiment's trials, best first by its objective (mode "max"
        or "min"; read from the experiment when not given)."""
        trials = self._list("/v1/experiments/%s/trials" % quote(experiment_id), "trials")
        if mode is None:
            mode = self.get_experiment(experiment_id).get("mode", "max") if trials else "max"
        return _best_first(trials, mode)

    def best_trial(self, experiment_id):
        return self._do("GET", "/v1/experiments/%s/trials:best" % quote(experiment_id))["trial"]

    def pause_experiment(self, experiment_id):
        return self._do("POST", "/v1/experiments/%s:pause" % quote(experiment_id), {})["experiment"]

    def resume_experiment(self, experiment_id):
        return self._do("POST", "/v1/experiments/%s:resume" % quote(experiment_id), {})["experiment"]

    def cancel_experiment(self, experiment_id):
        return self._do("POST", "/v1/experiments/%s:cancel" % quote(experiment_id), {})["experiment"]
