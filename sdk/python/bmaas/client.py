"""A client of a bmaas server over its REST API (standard library only).

    from bmaas import Client
    c = Client("http://127.0.0.1:8080")
    c.upload_dataset("iris", "examples/datasets/iris.csv")
    job = c.train(model="iris", dataset="iris", algorithm="logistic", target="target", wait=True)
    c.deploy(model="iris@%s" % job["model_version"], min_replicas=1, wait=True)
    c.predict("iris", [[5.1, 3.5, 1.4, 0.2]])  # {"predictions": ["0"], "probabilities": [[...]], ...}

Methods are named after the CLI's commands; they return the server's JSON
(field names as in the protos, int64 values as strings) and raise
BmaasError with the HTTP status and the server's message.
"""

import os
import time

from ._config import resolve
from ._evaluator import EvaluatorCalls
from ._iam import IAMCalls
from ._monitor import MonitorCalls
from ._http import BmaasError, Transport, quote

__all__ = ["Client", "BmaasError"]

_ENDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")


def _flatten(rows):
    """Rows of numbers as a flat list and a [rows, features] shape."""
    rows = [list(r) for r in rows]
    if not rows:
        raise ValueError("rows must hold at least one row")
    width = len(rows[0])
    flat = []
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError("row %d has %d values, row 0 has %d" % (i, len(r), width))
        for v in r:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                v = float(v)  # numpy scalars and numeric strings
            flat.append(v)
    return flat, [len(rows), width]


def _reshape(output):
    """A v2 output tensor's data as rows when it is [rows, k]."""
    data, shape = output.get("data", []), output.get("shape", [])
    if len(shape) == 2 and shape[1] > 0:
        k = shape[1]
        return [data[i:i + k] for i in range(0, len(data), k)]
    return data


class Client(EvaluatorCalls, IAMCalls, MonitorCalls):
    """Talks to the HTTP edge of `bmaas up` (or a gateway)."""

    def __init__(self, url=None, token=None, timeout=30.0, ca_file=None, cert_file=None, key_file=None,
                 project=None, context=None):
        """Each setting comes from its argument, else its environment
        variable, else the selected context of the configuration file
        (context, else BMAAS_CONTEXT, else its current-context; see
        bmaas._config), else the default: url (BMAAS_URL,
        http://127.0.0.1:8080), token (BMAAS_TOKEN, sent as a bearer
        token), project (BMAAS_PROJECT, sent as the Bmaas-Project header
        with every request), and over HTTPS ca_file (BMAAS_TLS_CA), the CA
        that issued the server's certificate (the system's roots without
        it), and cert_file and key_file (BMAAS_TLS_CERT, BMAAS_TLS_KEY), a
        client certificate. An unknown context raises ValueError."""
        s = resolve(url=url, token=token, project=project, ca_file=ca_file, cert_file=cert_file,
                    key_file=key_file, context=context)
        self.context = s.context
        self._t = Transport(s.url, token=s.token, timeout=timeout, ca_file=s.ca_file, cert_file=s.cert_file,
                            key_file=s.key_file, project=s.project)
        self._inputs = {}

    @property
    def url(self):
        return self._t.url

    @property
    def project(self):
        """The project sent as Bmaas-Project, or None."""
        return self._t.project

    def _do(self, method, path, body=None, **kw):
        return self._t.request(method, path, body=body, **kw)

    # Language models (the gateway's OpenAI-compatible routes).

    def chat(self, deployment, messages, stream=False, **params):
        """POST /openai/v1/chat/completions to a deployment whose runtime
        speaks the OpenAI API. messages is a list of {"role", "content"},
        or one string (a user message); params are the API's (max_tokens,
        temperature, top_p, stop, seed, n, ...). Without stream, the
        answer (a dict, as OpenAI's "chat.completion"); with stream=True,
        an iterator over the text as it is generated (the first choice's),
        whose usage is in the iterator's .usage once it is exhausted."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        body = dict(params, model=deployment, messages=messages)
        path = "/openai/v1/chat/completions"
        if not stream:
            return self._do("POST", path, body=body)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return _TextStream(self._t.stream(path, body))

    # Inference (KServe v2 REST).

    def infer(self, deployment, inputs, version=None, outputs=None, request_id=None):
        """POST /v2/models/{name}[/versions/{v}]/infer with the protocol's
        JSON: inputs is a list of {"name", "datatype", "shape", "data"}.
        request_id also goes as X-Request-Id: the id the payload log and
        feedback (Client.feedback) know the request by."""
        path = "/v2/models/" + quote(deployment)
        if version:
            path += "/versions/" + quote(version)
        body = {"inputs": inputs}
        if outputs:
            body["outputs"] = [{"name": n} for n in outputs]
        headers = None
        if request_id:
            body["id"] = request_id
            headers = {"X-Request-Id": request_id}
        return self._do("POST", path + "/infer", body, headers=headers)

    def model_metadata(self, deployment, version=None):
        """GET /v2/models/{name}: the input and output tensors."""
        path = "/v2/models/" + quote(deployment)
        if version:
            path += "/versions/" + quote(version)
        return self._do("GET", path)

    def model_ready(self, deployment):
        """Whether the deployment has a ready replica."""
        try:
            return bool(self._do("GET", "/v2/models/%s/ready" % quote(deployment)).get("ready"))
        except BmaasError as e:
            if e.status == 503:
                return False
            raise

    def predict(self, deployment, rows, version=None):
        """Predicts rows (a list of lists of numbers, in the model's
        signature order) and returns {"model_name", "model_version",
        "predictions", and "probabilities" for classifiers} -- or each
        output tensor by name, as rows, for models with other outputs."""
        flat, shape = _flatten(rows)
        name, datatype = self._input_of(deployment, version)
        resp = self.infer(deployment, [{"name": name, "datatype": datatype, "shape": shape, "data": flat}], version=version)
        out = {"model_name": resp.get("model_name"), "model_version": resp.get("model_version")}
        for o in resp.get("outputs", []):
            out[o["name"]] = o.get("data", []) if o["name"] == "predictions" else _reshape(o)
        return out

    def _input_of(self, deployment, version):
        key = (deployment, version)
        if key not in self._inputs:
            ins = self.model_metadata(deployment, version).get("inputs") or []
            if len(ins) != 1:
                raise BmaasError(0, "deployment %r takes %d inputs; predict sends one" % (deployment, len(ins)))
            dt = ins[0].get("datatype") or "FP64"
            self._inputs[key] = (ins[0]["name"], dt if dt in ("FP32", "FP64") else "FP64")
        return self._inputs[key]

    # Models.

    def create_model(self, name, task_type=None, description=None, labels=None):
        model = {"name": name, "description": description, "labels": labels}
        if task_type:
            t = task_type.upper()
            model["task_type"] = t if t.startswith("TASK_TYPE_") else "TASK_TYPE_" + {
                "BINARY": "BINARY_CLASSIFICATION", "MULTICLASS": "MULTICLASS_CLASSIFICATION"}.get(t, t)
        return self._do("POST", "/v1/models", {k: v for k, v in model.items() if v})["model"]

    def get_model(self, name):
        return self._do("GET", "/v1/models/" + quote(name))["model"]

    def list_models(self):
        return self._list("/v1/models", "models")

    def delete_model(self, name):
        self._do("DELETE", "/v1/models/" + quote(name))

    def get_version(self, model, ref="latest"):
        """A model version by number, alias or "latest"."""
        return self._do("GET", "/v1/models/%s/versions/%s" % (quote(model), quote(ref)))["version"]

    def list_versions(self, model):
        return self._list("/v1/models/%s/versions" % quote(model), "versions")

    def set_alias(self, model, alias, version):
        return self._do("PUT", "/v1/models/%s/aliases/%s" % (quote(model), quote(alias)), {"version": str(version)})

    # Datasets.

    def upload_dataset(self, name, data, filename=None):
        """Uploads a CSV as a new version of dataset name: data is a file's
        path (a str of one line, or a path object; it must exist), or the
        CSV itself as bytes or as a str of several lines. Returns the
        dataset version with its statistics."""
        if isinstance(data, os.PathLike) or (isinstance(data, str) and "\n" not in data):
            path = os.fspath(data)
            if not os.path.isfile(path):
                raise FileNotFoundError("dataset file %r not found (pass the CSV itself as bytes, or as a str "
                                        "with its rows)" % path)
            filename = filename or os.path.basename(path)
            with open(path, "rb") as f:
                data = f.read()
        elif isinstance(data, str):
            data = data.encode("utf-8")
        resp = self._t.request("PUT", "/v1/datasets/%s/csv" % quote(name), raw=data, content_type="text/csv",
                               query={"filename": filename or name + ".csv"}, timeout=max(self._t.timeout, 300))
        return resp.get("version", resp)

    def get_dataset(self, name):
        return self._do("GET", "/v1/datasets/" + quote(name))["dataset"]

    def list_datasets(self):
        return self._list("/v1/datasets", "datasets")

    def delete_dataset(self, name):
        self._do("DELETE", "/v1/datasets/" + quote(name))

    # Jobs.

    def train(self, model, dataset, algorithm, target=None, params=None, seed=None, dataset_version=None,
              termination_grace_seconds=None, wait=False, timeout=600.0):
        """Submits a builtin training job (bmaas train); with wait=True
        follows it until it ends and raises BmaasError unless it succeeded.
        termination_grace_seconds (0-3600) is the time a stopped or
        preempted task has between SIGTERM and SIGKILL (bmaas train
        --termination-grace)."""
        rt = {"algorithm": algorithm, "dataset": dataset, "target_column": target,
              "hyperparameters": {k: str(v) for k, v in (params or {}).items()} or None,
              "seed": str(seed) if seed is not None else None,
              "dataset_version": str(dataset_version) if dataset_version else None}
        spec = {"model": model, "builtin": {k: v for k, v in rt.items() if v is not None}}
        if termination_grace_seconds is not None:
            spec["termination_grace_seconds"] = int(termination_grace_seconds)
        job = self.submit_job(spec)
        if not wait:
            return job
        job = self.wait_job(job["id"], timeout=timeout)
        if job.get("state") != "JOB_STATE_SUCCEEDED":
            raise BmaasError(0, "job %s ended %s: %s" % (job["id"], job.get("state"), job.get("reason", "")))
        return job

    def submit_job(self, spec):
        """POST /v1/jobs with a JobSpec as JSON."""
        return self._do("POST", "/v1/jobs", spec)["job"]

    def get_job(self, job_id):
        return self._do("GET", "/v1/jobs/" + quote(job_id))["job"]

    def list_jobs(self, state=None, model=None):
        return self._list("/v1/jobs", "jobs", {"state": state, "model": model})

    def cancel_job(self, job_id):
        return self._do("POST", "/v1/jobs/%s:cancel" % quote(job_id), {})

    def wait_job(self, job_id, timeout=600.0, poll=0.2):
        """Polls a job until it ends and returns it."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.get("state") in _ENDED:
                return job
            if time.monotonic() > deadline:
                raise BmaasError(0, "job %s still %s after %ss" % (job_id, job.get("state"), timeout))
            time.sleep(poll)

    # Deployments.

    def deploy(self, model, name=None, min_replicas=1, max_replicas=None, target_concurrency=None,
               max_batch_size=None, max_queue_delay_micros=None, autoscaling=True, wait=False, timeout=120.0, **extra):
        """Creates a deployment of model ("NAME@VERSION" or "NAME@ALIAS");
        with wait=True returns once a replica is ready."""
        d = {"name": name, "model": model, "min_replicas": min_replicas, "max_replicas": max_replicas,
             "target_concurrency": target_concurrency, "max_batch_size": max_batch_size,
             "max_queue_delay_micros": max_queue_delay_micros, "autoscaling": autoscaling}
        d.update(extra)
        dep = self._do("POST", "/v1/deployments", {k: v for k, v in d.items() if v is not None})["deployment"]
        return self.wait_deployment(dep["name"], timeout) if wait else dep

    create_deployment = deploy

    def get_deployment(self, name):
        return self._do("GET", "/v1/deployments/" + quote(name))["deployment"]

    def list_deployments(self):
        return self._list("/v1/deployments", "deployments")

    def update_deployment(self, name, **fields):
        """Changes the named fields of a deployment and keeps the others
        (the request's update_mask names exactly the fields given), e.g.
        update_deployment("iris", min_replicas=2, max_replicas=4). A field
        given as None is cleared to the gateway's default."""
        if not fields:
            raise ValueError("give the fields to change, e.g. min_replicas=2")
        body = {k: v for k, v in fields.items() if v is not None}
        return self._do("PATCH", "/v1/deployments/" + quote(name), body,
                        query={"update_mask": ",".join(sorted(fields))})["deployment"]

    def scale(self, name, min_replicas=None, max_replicas=None):
        """Changes a deployment's replica bounds, as `bmaas deploy scale`."""
        fields = {k: v for k, v in (("min_replicas", min_replicas), ("max_replicas", max_replicas)) if v is not None}
        if not fields:
            raise ValueError("give min_replicas or max_replicas")
        return self.update_deployment(name, **fields)

    def delete_deployment(self, name):
        self._do("DELETE", "/v1/deployments/" + quote(name))

    def rollback(self, name):
        return self._do("POST", "/v1/deployments/%s:rollback" % quote(name), {})["deployment"]

    def wait_deployment(self, name, timeout=120.0, poll=0.1):
        """Polls until the deployment has a ready replica and returns it."""
        deadline = time.monotonic() + timeout
        while True:
            dep = self.get_deployment(name)
            if (dep.get("status") or {}).get("ready_replicas", 0) > 0:
                return dep
            if time.monotonic() > deadline:
                raise BmaasError(0, "deployment %s has no ready replica after %ss (%s)" % (name, timeout, dep.get("state")))
            time.sleep(poll)

    def _list(self, path, key, query=None):
        items, token = [], None
        while True:
            q = dict(query or {}, page_token=token)
            resp = self._t.request("GET", path, query=q) or {}
            items.extend(resp.get(key, []))
            token = resp.get("next_page_token")
            if not token:
                return items


class _TextStream:
    """The text of a streamed chat completion, chunk by chunk; .usage
    (prompt_tokens, completion_tokens, total_tokens) once it ends and
    .finish_reason."""

    def __init__(self, events):
        self._events = events
        self.usage = None
        self.finish_reason = None

    def __iter__(self):
        for ev in self._events:
            if ev.get("usage"):
                self.usage = ev["usage"]
            for choice in ev.get("choices") or []:
                if choice.get("index", 0) != 0:
                    continue
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    yield text
