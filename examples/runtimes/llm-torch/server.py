#!/usr/bin/env python3
"""llm-torch: an OpenAI-compatible server for the small GPT of examples/llm,
run by bmaas as a serving runtime's process (standard library and PyTorch
only), with continuous batching, a key/value cache per sequence and a
prefix cache.

The serving contract (environment):

  BMAAS_MODEL_DIR       the version, unpacked: model.pt, config.json,
                        tokenizer.json and gpt.py (the model's own code,
                        imported from there)
  BMAAS_MODEL_NAME      the name clients use as "model" (the deployment's)
  BMAAS_MODEL_VERSION   the version number (default 1)
  BMAAS_HTTP_PORT       the port of the API (default 8080)
  BMAAS_PARAMS          JSON object of strings: max_num_seqs (16),
                        prefix_cache (true), prefix_block (16),
                        max_prefix_cache_tokens (16384), kv_cache_tokens
                        (65536), threads (1), host (0.0.0.0)
  BMAAS_TOKEN           when set, /v1/... want "Authorization: Bearer <token>"
  CUDA_VISIBLE_DEVICES  the model runs on cuda:0 when this names a GPU and
                        torch.cuda.is_available()

Routes: GET /v1/models[/{name}], POST /v1/completions,
/v1/chat/completions and /v1/embeddings as api.openai.com answers them
(streams as Server-Sent Events), GET /health and GET /metrics (Prometheus
text, named as vLLM names its metrics).

One engine thread runs the model. Requests queue; at every decoding step
the requests that arrived are prefilled and join the running batch, every
running sequence decodes one token in one forward pass (each sequence's
cache left-padded to the longest, the pads masked), and finished or
abandoned sequences leave.
"""

import base64
import codecs
import collections
import hashlib
import hmac
import json
import math
import os
import queue
import re
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
from bisect import bisect_left
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import torch
import torch.nn.functional as F

CHAT_STOP = "\nUser:"
MAX_BODY = 8 << 20
MAX_STOPS = 4
MAX_N = 128
MAX_EMBEDDING_INPUTS = 2048
DEFAULT_COMPLETION_TOKENS = 16  # as api.openai.com for /v1/completions
DRAIN_SECONDS = 20  # under runtime.json's termination_grace_seconds


class ApiError(Exception):
    """An answer in the OpenAI API's error shape: {"error": {"message",
    "type", "param", "code"}}. The message starts with the field."""

    def __init__(self, status, param, msg, code=None, kind="invalid_request_error"):
        super().__init__("%s: %s" % (param, msg) if param else msg)
        if code is None and status == 400 and param:
            code = "invalid_value"
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def body(self):
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}


def log(msg):
    print("llm-torch: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- settings

PARAMS = {"max_num_seqs", "prefix_cache", "prefix_block", "max_prefix_cache_tokens", "kv_cache_tokens",
          "threads", "host"}


def settings(env):
    """The server's settings from the contract's environment; a bad
    parameter ends the process naming it."""
    try:
        params = json.loads(env.get("BMAAS_PARAMS") or "{}")
    except ValueError as e:
        raise SystemExit("BMAAS_PARAMS: not a JSON object: %s" % e)
    if not isinstance(params, dict):
        raise SystemExit("BMAAS_PARAMS: not a JSON object")
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise SystemExit("BMAAS_PARAMS %s: unknown parameter (known: %s)" % (unknown[0], ", ".join(sorted(PARAMS))))

    def integer(key, default, lo):
        raw = params.get(key, default)
        try:
            v = int(str(raw).strip())
        except ValueError:
            raise SystemExit("BMAAS_PARAMS %s: %r is not an integer" % (key, raw))
        if v < lo:
            raise SystemExit("BMAAS_PARAMS %s: %r is below %d" % (key, raw, lo))
        return v

    raw = str(params.get("prefix_cache", "true")).strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise SystemExit("BMAAS_PARAMS prefix_cache: %r is not true or false" % params.get("prefix_cache"))
    model_dir = env.get("BMAAS_MODEL_DIR") or "."
    try:
        port = int(env.get("BMAAS_HTTP_PORT") or 8080)
    except ValueError:
        raise SystemExit("BMAAS_HTTP_PORT: %r is not a port" % env.get("BMAAS_HTTP_PORT"))
    return {
        "model_dir": model_dir,
        "name": env.get("BMAAS_MODEL_NAME") or os.path.basename(os.path.abspath(model_dir)),
        "version": str(env.get("BMAAS_MODEL_VERSION") or "1"),
        "port": port,
        "token": env.get("BMAAS_TOKEN") or "",
        "host": str(params.get("host", "0.0.0.0")),
        "max_num_seqs": integer("max_num_seqs", 16, 1),
        "prefix_cache": raw in ("true", "1", "yes", "on"),
        "prefix_block": integer("prefix_block", 16, 1),
        "max_prefix_cache_tokens": integer("max_prefix_cache_tokens", 16384, 0),
        "kv_cache_tokens": integer("kv_cache_tokens", 65536, 1),
        "threads": integer("threads", 1, 1),
        "cuda": cuda_requested(env.get("CUDA_VISIBLE_DEVICES")),
    }


def cuda_requested(visible):
    """Whether CUDA_VISIBLE_DEVICES names a GPU."""
    v = (visible or "").strip()
    return v not in ("", "-1", "none", "NoGPU", "void")


# ------------------------------------------------------------------- model

def model_root(model_dir):
    """The directory holding gpt.py: model_dir, or its one subdirectory
    when an archive packed a folder."""
    if os.path.exists(os.path.join(model_dir, "gpt.py")):
        return model_dir
    dirs = [n for n in os.listdir(model_dir) if not n.startswith(".") and os.path.isdir(os.path.join(model_dir, n))]
    if len(dirs) == 1:
        return model_root(os.path.join(model_dir, dirs[0]))
    raise SystemExit("%s holds no gpt.py: a version of examples/llm holds model.pt, config.json, tokenizer.json "
                     "and gpt.py" % model_dir)


def load_model(model_dir, device):
    """The model (eval mode) and tokenizer, by the gpt.py the version holds."""
    root = model_root(model_dir)
    sys.path.insert(0, root)
    import gpt  # the artifact's own code
    model, tok = gpt.load(root, device)
    return model, tok


class Hidden:
    """The final layer norm's output of forward passes run by the calling
    thread while capturing (for embeddings); other threads' passes, the
    engine's, are not captured."""

    def __init__(self, model):
        self.local = threading.local()
        model.ln.register_forward_hook(self._hook)

    def _hook(self, _module, _inputs, output):
        out = getattr(self.local, "out", None)
        if out is not None:
            out.append(output)

    def capture(self, model, ids, device):
        """The hidden states [T, C] of one sequence of token ids."""
        self.local.out = []
        try:
            with torch.inference_mode():
                model(torch.tensor([ids], device=device))
            return self.local.out[-1][0]
        finally:
            self.local.out = None


# ----------------------------------------------------------------- metrics

class Histogram:
    def __init__(self, buckets):
        self.buckets, self.counts, self.sum, self.count = tuple(buckets), [0] * (len(buckets) + 1), 0.0, 0

    def observe(self, v):
        self.counts[bisect_left(self.buckets, v)] += 1
        self.sum += v
        self.count += 1

    def lines(self, name, labels):
        out, total = [], 0
        for b, c in zip(self.buckets, self.counts):
            total += c
            out.append('%s_bucket{%s,le="%s"} %d' % (name, labels, b, total))
        out.append('%s_bucket{%s,le="+Inf"} %d' % (name, labels, self.count))
        out.append('%s_sum{%s} %s' % (name, labels, repr(float(self.sum))))
        out.append('%s_count{%s} %d' % (name, labels, self.count))
        return out


class Metrics:
    """What GET /metrics shows, named as vLLM names its metrics so one
    gateway reads both runtimes; token counts are counters of tokens."""

    TTFT = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    TPOT = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
    E2E = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)
    BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256)

    def __init__(self):
        self.lock = threading.Lock()
        self.running = self.waiting = 0
        self.kv_usage = 0.0
        self.prefix_queries = self.prefix_hits = self.prefix_tokens = 0
        self.prompt_tokens = self.generation_tokens = 0
        self.success = collections.Counter()
        self.ttft, self.tpot, self.e2e = Histogram(self.TTFT), Histogram(self.TPOT), Histogram(self.E2E)
        self.batch = Histogram(self.BATCH)

    def text(self, model):
        labels = 'model_name="%s"' % model.replace("\\", "\\\\").replace('"', '\\"')
        out = []

        def metric(name, kind, help_, value):
            out.extend(["# HELP %s %s" % (name, help_), "# TYPE %s %s" % (name, kind), "%s{%s} %s" % (name, labels, value)])

        def hist(name, help_, h):
            out.extend(["# HELP %s %s" % (name, help_), "# TYPE %s histogram" % name])
            out.extend(h.lines(name, labels))

        with self.lock:
            metric("vllm:num_requests_running", "gauge", "Requests with sequences in the running batch.", self.running)
            metric("vllm:num_requests_waiting", "gauge", "Requests queued for the running batch.", self.waiting)
            metric("vllm:kv_cache_usage_perc", "gauge", "Tokens held in running sequences' caches over kv_cache_tokens (1 = full).",
                   repr(self.kv_usage))
            metric("vllm:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
                   self.prefix_queries)
            metric("vllm:prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", self.prefix_hits)
            metric("vllm:prompt_tokens_total", "counter", "Prompt tokens prefilled or found cached.", self.prompt_tokens)
            metric("vllm:generation_tokens_total", "counter", "Tokens generated.", self.generation_tokens)
            out.extend(["# HELP vllm:request_success_total Choices finished, by reason (stop, length, abort).",
                        "# TYPE vllm:request_success_total counter"])
            for reason in sorted(set(self.success) | {"stop", "length", "abort"}):
                out.append('vllm:request_success_total{%s,finished_reason="%s"} %d' % (labels, reason, self.success[reason]))
            hist("vllm:time_to_first_token_seconds", "From a request's arrival to its first token.", self.ttft)
            hist("vllm:time_per_output_token_seconds", "Between a sequence's consecutive tokens.", self.tpot)
            hist("vllm:e2e_request_latency_seconds", "From a request's arrival to its last token.", self.e2e)
            hist("llm_torch_batch_size", "Sequences decoded by each forward pass of the engine.", self.batch)
            metric("llm_torch_prefix_cache_tokens", "gauge", "Tokens whose keys and values the prefix cache holds.",
                   self.prefix_tokens)
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- sampling

def sample(rows, seqs):
    """The next token of each sequence from its row of logits [B, V] (CPU),
    for the whole batch at once: the most likely at temperature 0, else
    drawn from the softmax at the sequence's temperature, cut to the
    smallest set of most likely tokens whose probability reaches top_p,
    by the sequence's next uniform number. A row's token depends on its
    row and its sequence alone, never on the rest of the batch."""
    best = rows.argmax(dim=1)
    if all(s.req.temperature == 0 for s in seqs):
        return best.tolist()
    temps = torch.tensor([s.req.temperature or 1.0 for s in seqs])
    top_p = torch.tensor([s.req.top_p for s in seqs])
    u = torch.tensor([s.uniform() for s in seqs])
    probs, order = torch.softmax(rows / temps[:, None], dim=1).sort(dim=1, descending=True)
    drop = (probs.cumsum(dim=1) - probs) >= top_p[:, None]
    drop[:, 0] = False
    cdf = probs.masked_fill(drop, 0).cumsum(dim=1)
    pick = (cdf < u[:, None] * cdf[:, -1:]).sum(dim=1).clamp(max=rows.shape[1] - 1)
    drawn = order.gather(1, pick[:, None])[:, 0]
    return [b if s.req.temperature == 0 else d for s, b, d in zip(seqs, best.tolist(), drawn.tolist())]


def uniforms(seed, index, count):
    """A choice's uniform numbers, one a token, from its own
    torch.Generator: seeded seed + index when the request has a seed (the
    same text whatever else runs), else at random."""
    g = torch.Generator()
    g.manual_seed(((seed + index) if seed is not None else secrets.randbits(63)) % (1 << 64))
    return torch.rand(count, generator=g, dtype=torch.float64).tolist()


# ------------------------------------------------------------------ engine

class Request:
    """A validated generation request; events go from the engine to the
    handler that waits on it."""

    def __init__(self, kind, prompt_ids, max_tokens, temperature, top_p, n, stops, seed, stream, include_usage):
        self.kind = kind  # "text_completion" or "chat.completion"
        self.id = ("cmpl-" if kind == "text_completion" else "chatcmpl-") + secrets.token_hex(12)
        self.created = int(time.time())
        self.prompt_ids, self.max_tokens, self.n = prompt_ids, max_tokens, n
        self.temperature, self.top_p, self.stops, self.seed = temperature, top_p, stops, seed
        self.stream, self.include_usage = stream, include_usage
        self.arrived = time.monotonic()
        self.events = queue.Queue()
        self.cancelled = False
        self.seqs = []
        self.finished = 0
        self.completion_tokens = 0

    def need(self):
        """Cache tokens one choice holds at most."""
        return len(self.prompt_ids) + self.max_tokens


class Sequence:
    """One choice: its tokens, its generator and the text it has made,
    decoded incrementally so no character is ever cut in half, and held
    back while it may be the start of a stop string."""

    def __init__(self, req, index, strip_space):
        self.req, self.index = req, index
        self.draws = uniforms(req.seed, index, req.max_tokens) if req.temperature > 0 else None
        self.fed = 0  # tokens in the key/value cache (the next token's position)
        self.last = None  # the token sampled and not yet fed
        self.generated = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text, self.emitted = "", 0
        self.strip_space = strip_space
        self.finish_reason = None
        self.last_time = None

    def uniform(self):
        """The uniform number that draws this choice's next token."""
        return self.draws[self.generated] if self.draws else 0.0

    def push(self, token, eot):
        """Takes a sampled token; returns the text now safe to send and the
        finish reason (None while it goes on)."""
        self.last = token
        self.generated += 1
        if token == eot:
            return self._advance(self.decoder.decode(b"", final=True), final=True)[0], "stop"
        at_length = self.generated >= self.req.max_tokens
        new = self.decoder.decode(bytes([token]) if token < 256 else b"", final=at_length)
        delta, stopped = self._advance(new, at_length)
        return delta, "stop" if stopped else ("length" if at_length else None)

    def _advance(self, new, final):
        if self.strip_space and new:
            # The chat template ends with "Assistant:"; the reply's leading space is the template's.
            new, self.strip_space = (new[1:] if new.startswith(" ") else new), False
        self.text += new
        found = -1
        for stop in self.req.stops:
            i = self.text.find(stop, self.emitted)
            if i >= 0 and (found < 0 or i < found):
                found = i
        if found >= 0:
            self.text = self.text[:found]
            return self._emit(found), True
        if final:
            return self._emit(len(self.text)), False
        hold = 0
        for stop in self.req.stops:
            for k in range(min(len(stop) - 1, len(self.text) - self.emitted), hold, -1):
                if self.text.endswith(stop[:k]):
                    hold = k
                    break
        return self._emit(len(self.text) - hold), False

    def _emit(self, upto):
        delta, self.emitted = self.text[self.emitted:upto], upto
        return delta


class Batch:
    """The running sequences and their caches, decoded together: each
    layer's keys and values [B, H, P, D], left-padded to the longest
    sequence, and the mask [B, P] of the positions that are not padding."""

    def __init__(self, device):
        self.device = device
        self.seqs, self.past, self.mask = [], None, None

    def join(self, seqs, kv, length):
        """Adds sequences that share the cache kv (each layer's [1, H,
        length, D]), one row each."""
        n = len(seqs)
        kv = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in kv]
        mask = torch.ones(n, length, dtype=torch.bool, device=self.device)
        if self.past is None:
            self.past = [(k.contiguous(), v.contiguous()) for k, v in kv]
            self.mask = mask
        else:
            width = max(self.mask.shape[1], length)
            self.past = [(torch.cat([pad_left(k0, width), pad_left(k1, width)]),
                          torch.cat([pad_left(v0, width), pad_left(v1, width)]))
                         for (k0, v0), (k1, v1) in zip(self.past, kv)]
            self.mask = torch.cat([F.pad(self.mask, (width - self.mask.shape[1], 0)), F.pad(mask, (width - length, 0))])
        self.seqs += seqs

    def forward(self, model):
        """One decoding step: every sequence's last token at its own
        position; the logits [B, V]."""
        idx = torch.tensor([[s.last] for s in self.seqs], device=self.device)
        pos = torch.tensor([[s.fed] for s in self.seqs], device=self.device)
        mask = F.pad(self.mask, (0, 1), value=True)
        logits, self.past = model(idx, pos, self.past, mask)
        self.mask = mask
        for s in self.seqs:
            s.fed += 1
        return logits[:, -1]

    def keep(self, rows):
        """Keeps the sequences at rows; drops the columns that only padding
        holds now."""
        if not rows:
            self.seqs, self.past, self.mask = [], None, None
            return
        ix = torch.tensor(rows, device=self.device)
        self.seqs = [self.seqs[i] for i in rows]
        mask = self.mask.index_select(0, ix)
        first = int(mask.any(0).nonzero()[0])
        self.mask = mask[:, first:]
        self.past = [(k.index_select(0, ix)[:, :, first:], v.index_select(0, ix)[:, :, first:]) for k, v in self.past]


def pad_left(t, width):
    """t [B, H, T, D] with zeros before its T positions up to width."""
    return F.pad(t, (0, 0, width - t.shape[2], 0))


class PrefixCache:
    """Keys and values of prompts' blocks of `block` tokens, each keyed by
    a hash of all the tokens up to the block's end (a block's keys depend
    on everything before it), bounded to max_tokens, least recently used
    first out."""

    def __init__(self, block, max_tokens):
        self.block, self.max_tokens = block, max_tokens
        self.blocks = collections.OrderedDict()

    def tokens(self):
        return len(self.blocks) * self.block

    def _keys(self, ids, blocks):
        h = b""
        for j in range(blocks):
            chunk = ids[j * self.block:(j + 1) * self.block]
            h = hashlib.sha256(h + struct.pack("<%dH" % len(chunk), *chunk)).digest()
            yield h

    def lookup(self, ids):
        """The longest cached prefix of ids that leaves at least one token
        to prefill: (its length, each layer's (k, v)) or (0, None)."""
        found = []
        for key in self._keys(ids, (len(ids) - 1) // self.block):
            kv = self.blocks.get(key)
            if kv is None:
                break
            self.blocks.move_to_end(key)
            found.append(kv)
        if not found:
            return 0, None
        layers = len(found[0])
        past = [(torch.cat([b[i][0] for b in found], dim=2), torch.cat([b[i][1] for b in found], dim=2))
                for i in range(layers)]
        return len(found) * self.block, past

    def store(self, ids, present):
        """Keeps the full blocks of a prefilled prompt (present: each
        layer's (k, v) [1, H, len(ids), D])."""
        if self.max_tokens < self.block:
            return
        for j, key in enumerate(self._keys(ids, len(ids) // self.block)):
            if key in self.blocks:
                self.blocks.move_to_end(key)
                continue
            a, b = j * self.block, (j + 1) * self.block
            self.blocks[key] = [(k[:, :, a:b].clone(), v[:, :, a:b].clone()) for k, v in present]
        while self.tokens() > self.max_tokens:
            self.blocks.popitem(last=False)


class Engine:
    """The one thread that runs the model for generation (continuous
    batching; see the module's docstring)."""

    def __init__(self, model, eot, device, cfg, metrics):
        self.model, self.eot, self.device, self.metrics = model, eot, device, metrics
        self.max_seqs, self.kv_budget = cfg["max_num_seqs"], cfg["kv_cache_tokens"]
        self.prefix = PrefixCache(cfg["prefix_block"], cfg["max_prefix_cache_tokens"]) if cfg["prefix_cache"] else None
        self.cond = threading.Condition()
        self.waiting = collections.deque()
        self.stopping = False
        self.batch = Batch(device)
        self.reserved = 0  # cache tokens the admitted choices may reach
        self.thread = threading.Thread(target=self._run, name="engine", daemon=True)

    def start(self):
        self.thread.start()

    def submit(self, req):
        with self.cond:
            if self.stopping:
                raise ApiError(503, None, "the server is stopping", kind="server_error")
            self.waiting.append(req)
            self.metrics.waiting = len(self.waiting)
            self.cond.notify()

    def drain(self, seconds):
        """Waits up to seconds for the queued and running requests to end."""
        deadline = time.monotonic() + seconds
        while (self.waiting or self.batch.seqs) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join()

    def _run(self):
        while True:
            with self.cond:
                while not self.waiting and not self.batch.seqs and not self.stopping:
                    self.cond.wait()
                if self.stopping:
                    break
                admitted = self._admit()
            try:
                with torch.inference_mode():
                    for req in admitted:
                        self._prefill(req)
                    self._drop_cancelled()
                    if self.batch.seqs:
                        self._step()
            except Exception as e:  # the model failed: every running request hears it
                log("engine: %s: %s" % (type(e).__name__, e))
                self._fail(set(s.req for s in self.batch.seqs) | set(admitted), e)
            self._gauges()
        self._fail(set(s.req for s in self.batch.seqs) | set(self.waiting), RuntimeError("the server stopped"))

    def _admit(self):
        """The waiting requests that fit now: max_num_seqs sequences, and
        the kv_cache_tokens budget unless the batch is empty."""
        admitted, seqs = [], len(self.batch.seqs)
        while self.waiting:
            req = self.waiting[0]
            if req.cancelled:
                self.waiting.popleft()
                with self.metrics.lock:
                    self.metrics.success["abort"] += req.n
                continue
            need = req.n * req.need()
            if seqs + req.n > self.max_seqs or (self.reserved + need > self.kv_budget and (seqs or admitted)):
                break
            self.waiting.popleft()
            admitted.append(req)
            seqs += req.n
            self.reserved += need
        self.metrics.waiting = len(self.waiting)
        return admitted

    def _prefill(self, req):
        """Runs a prompt (the part the prefix cache lacks), samples each
        choice's first token and lets the choices that go on join."""
        ids = req.prompt_ids
        reused, past = self.prefix.lookup(ids) if self.prefix else (0, None)
        rest = torch.tensor([ids[reused:]], device=self.device)
        pos = torch.arange(reused, len(ids), device=self.device)[None]
        logits, present = self.model(rest, pos, past)
        if self.prefix:
            self.prefix.store(ids, present)
        with self.metrics.lock:
            self.metrics.prompt_tokens += len(ids)
            if self.prefix:
                self.metrics.prefix_queries += len(ids)
                self.metrics.prefix_hits += reused
                self.metrics.prefix_tokens = self.prefix.tokens()
        last = logits[0, -1].float().cpu()
        now = time.monotonic()
        with self.metrics.lock:
            self.metrics.ttft.observe(now - req.arrived)
        req.seqs = [Sequence(req, i, req.kind == "chat.completion") for i in range(req.n)]
        for s in req.seqs:
            s.fed = len(ids)
        self._accept(req.seqs, sample(last[None].expand(req.n, -1), req.seqs), now)
        going = [s for s in req.seqs if s.finish_reason is None]
        if going:
            self.batch.join(going, present, len(ids))

    def _step(self):
        """Decodes one token of every running sequence in one forward pass."""
        seqs = self.batch.seqs
        rows = self.batch.forward(self.model).float().cpu()
        with self.metrics.lock:
            self.metrics.batch.observe(len(seqs))
        self._accept(seqs, sample(rows, seqs), time.monotonic())
        keep = [i for i, s in enumerate(seqs) if s.finish_reason is None]
        if len(keep) < len(seqs):
            self.batch.keep(keep)

    def _accept(self, seqs, tokens, now):
        """Sampled tokens: their text to the clients, and the choices that
        end with them."""
        with self.metrics.lock:
            self.metrics.generation_tokens += len(seqs)
            for s in seqs:
                if s.last_time is not None:
                    self.metrics.tpot.observe(now - s.last_time)
        for s, tok in zip(seqs, tokens):
            req = s.req
            delta, reason = s.push(tok, self.eot)
            req.completion_tokens += 1
            s.last_time = now
            if req.stream and delta:
                req.events.put(("delta", s.index, delta))
            if reason is not None:
                s.finish_reason = reason
                self._finished(s, reason, now)

    def _finished(self, s, reason, now):
        req = s.req
        self.reserved -= req.need()
        req.finished += 1
        with self.metrics.lock:
            self.metrics.success[reason] += 1
            if req.finished == req.n and reason != "abort":
                self.metrics.e2e.observe(now - req.arrived)
        if req.stream:
            req.events.put(("finish", s.index, reason))
        if req.finished == req.n:
            req.events.put(("done", None, None))

    def _drop_cancelled(self):
        """Sequences whose client went away leave the batch."""
        seqs = self.batch.seqs
        keep = [i for i, s in enumerate(seqs) if not s.req.cancelled]
        if len(keep) == len(seqs):
            return
        now = time.monotonic()
        for s in seqs:
            if s.req.cancelled:
                s.finish_reason = "abort"
                self._finished(s, "abort", now)
        self.batch.keep(keep)

    def _fail(self, reqs, err):
        self.batch.keep([])
        self.reserved = 0
        for req in reqs:
            req.events.put(("error", None, "generation failed: %s" % err))
        self._gauges()

    def _gauges(self):
        held = sum(s.fed for s in self.batch.seqs)
        with self.metrics.lock:
            self.metrics.running = len(set(id(s.req) for s in self.batch.seqs))
            self.metrics.kv_usage = held / self.kv_budget


# ---------------------------------------------------------------- requests

COMMON_FIELDS = {"model", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options", "stop", "seed", "user"}
COMPLETION_FIELDS = COMMON_FIELDS | {"prompt"}
CHAT_FIELDS = COMMON_FIELDS | {"messages", "max_completion_tokens"}
EMBEDDING_FIELDS = {"model", "input", "encoding_format", "user"}

# Fields of the OpenAI API this server knows but does not implement, with
# the values that ask for nothing (and so are accepted).
UNSUPPORTED = {
    "logprobs": lambda v: v is None or v is False,
    "top_logprobs": lambda v: v is None or v == 0,
    "tools": lambda v: v is None,
    "tool_choice": lambda v: v is None or v == "none",
    "functions": lambda v: v is None,
    "function_call": lambda v: v is None or v == "none",
    "logit_bias": lambda v: v is None or v == {},
    "response_format": lambda v: v is None or v == {"type": "text"},
    "suffix": lambda v: v is None or v == "",
    "echo": lambda v: v is None or v is False,
    "best_of": lambda v: v is None or v == 1,
    "presence_penalty": lambda v: v is None or v == 0,
    "frequency_penalty": lambda v: v is None or v == 0,
    "dimensions": lambda v: v is None,
}
COMPLETION_UNSUPPORTED = {"logprobs", "logit_bias", "suffix", "echo", "best_of", "presence_penalty", "frequency_penalty"}
CHAT_UNSUPPORTED = {"logprobs", "top_logprobs", "tools", "tool_choice", "functions", "function_call", "logit_bias",
                    "response_format", "presence_penalty", "frequency_penalty"}
EMBEDDING_UNSUPPORTED = {"dimensions"}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_fields(body, known, unsupported):
    """Unknown fields and known ones asking for what is not implemented
    are refused, naming the field."""
    for key in body:
        if key in unsupported:
            if not UNSUPPORTED[key](body[key]):
                raise ApiError(400, key, "%s is not supported by this server" % json.dumps(body[key])[:80],
                               "unsupported_parameter")
        elif key not in known:
            raise ApiError(400, key, "unrecognized request argument", "unknown_parameter")


def optional(body, key, check, want, default):
    v = body.get(key)
    if v is None:
        return default
    if not check(v):
        raise ApiError(400, key, "%s is not %s" % (json.dumps(v)[:80], want), "invalid_value")
    return v


class Server:
    """What the handler serves: validation, the engine, embeddings."""

    def __init__(self, cfg, model, tok, device, engine, metrics):
        self.cfg, self.model, self.tok, self.device, self.engine, self.metrics = cfg, model, tok, device, engine, metrics
        self.context = model.cfg.block_size
        self.hidden = Hidden(model)
        self.created = int(time.time())
        self.ready = True

    def model_object(self):
        return {"id": self.cfg["name"], "object": "model", "created": self.created, "owned_by": "bmaas"}

    def check_model(self, body):
        name = body.get("model")
        if name is None:
            raise ApiError(400, "model", "you must provide a model parameter", "missing_required_parameter")
        if name != self.cfg["name"]:
            raise ApiError(404, "model", "the model %s does not exist: this server serves %r" % (
                json.dumps(name)[:80], self.cfg["name"]), "model_not_found")

    def generation(self, body, chat):
        """A validated Request from a completions or chat body."""
        check_fields(body, CHAT_FIELDS if chat else COMPLETION_FIELDS, CHAT_UNSUPPORTED if chat else COMPLETION_UNSUPPORTED)
        self.check_model(body)
        if chat:
            prompt_field, text = "messages", chat_prompt(body.get("messages"))
        else:
            prompt_field, text = "prompt", completion_prompt(body.get("prompt"))
        ids = self.tok.encode(text)
        if not ids:
            raise ApiError(400, prompt_field, "the prompt is empty: there is nothing to continue")
        if len(ids) >= self.context:
            raise ApiError(400, prompt_field, "the prompt's %d tokens leave no room in the model's context of %d tokens" % (
                len(ids), self.context), "context_length_exceeded")
        max_field = "max_completion_tokens" if chat and body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = optional(body, max_field, lambda v: is_int(v) and v >= 1, "an integer of at least 1", None)
        if max_tokens is None:
            left = self.context - len(ids)
            max_tokens = left if chat else min(DEFAULT_COMPLETION_TOKENS, left)
        elif max_tokens > self.context:
            raise ApiError(400, max_field, "%d is over the model's context of %d tokens" % (max_tokens, self.context),
                           "context_length_exceeded")
        elif len(ids) + max_tokens > self.context:
            raise ApiError(400, max_field, "%d with the prompt's %d tokens is over the model's context of %d tokens" % (
                max_tokens, len(ids), self.context), "context_length_exceeded")
        temperature = optional(body, "temperature", lambda v: is_number(v) and 0 <= v <= 2, "a number from 0 to 2", 1.0)
        top_p = optional(body, "top_p", lambda v: is_number(v) and 0 <= v <= 1, "a number from 0 to 1", 1.0)
        n = optional(body, "n", lambda v: is_int(v) and 1 <= v <= MAX_N, "an integer from 1 to %d" % MAX_N, 1)
        if n > self.cfg["max_num_seqs"]:
            raise ApiError(400, "n", "%d choices are over this server's max_num_seqs of %d" % (n, self.cfg["max_num_seqs"]))
        seed = optional(body, "seed", is_int, "an integer", None)
        stream = optional(body, "stream", lambda v: isinstance(v, bool), "true or false", False)
        opts = optional(body, "stream_options", lambda v: isinstance(v, dict), "an object", None)
        include_usage = False
        if opts is not None:
            if not stream:
                raise ApiError(400, "stream_options", "only allowed when stream is true")
            for k in opts:
                if k != "include_usage":
                    raise ApiError(400, "stream_options.%s" % k, "unrecognized stream option", "unknown_parameter")
            include_usage = optional(opts, "include_usage", lambda v: isinstance(v, bool), "true or false", False)
        optional(body, "user", lambda v: isinstance(v, str), "a string", None)
        stops = stop_strings(body.get("stop"))
        if chat:
            stops.append(CHAT_STOP)
        return Request("chat.completion" if chat else "text_completion", ids, max_tokens, float(temperature),
                       float(top_p), n, stops, seed, stream, include_usage)

    def embeddings(self, body):
        """The embeddings answer: each input's mean hidden state after the
        final layer norm."""
        check_fields(body, EMBEDDING_FIELDS, EMBEDDING_UNSUPPORTED)
        self.check_model(body)
        fmt = optional(body, "encoding_format", lambda v: v in ("float", "base64"), '"float" or "base64"', "float")
        optional(body, "user", lambda v: isinstance(v, str), "a string", None)
        inputs = embedding_inputs(body.get("input"), self.tok)
        for i, ids in enumerate(inputs):
            field = "input" if len(inputs) == 1 else "input[%d]" % i
            if not ids:
                raise ApiError(400, field, "is empty")
            if len(ids) > self.context:
                raise ApiError(400, field, "%d tokens are over the model's context of %d tokens" % (len(ids), self.context),
                               "context_length_exceeded")
            if any(not is_int(t) or not 0 <= t < self.tok.vocab_size for t in ids):
                raise ApiError(400, field, "holds a token that is not in 0..%d" % (self.tok.vocab_size - 1))
        data, total = [], 0
        for i, ids in enumerate(inputs):
            vec = self.hidden.capture(self.model, ids, self.device).mean(dim=0).float().cpu()
            total += len(ids)
            if fmt == "base64":
                emb = base64.b64encode(struct.pack("<%df" % vec.numel(), *vec.tolist())).decode()
            else:
                emb = vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return {"object": "list", "data": data, "model": self.cfg["name"],
                "usage": {"prompt_tokens": total, "total_tokens": total}}


def completion_prompt(prompt):
    """The text of a completions prompt: a string or a list of one string."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if isinstance(prompt, str):
        return prompt
    if prompt is None:
        raise ApiError(400, "prompt", "you must provide a prompt", "missing_required_parameter")
    if isinstance(prompt, list) and len(prompt) > 1 and all(isinstance(p, str) for p in prompt):
        raise ApiError(400, "prompt", "%d prompts: this server takes one prompt a request (ask for more choices with n)" % len(prompt))
    raise ApiError(400, "prompt", "must be a string or a list of one string")


def chat_prompt(messages):
    """The chat template: each system message as "System: ...\\n\\n", each
    user and assistant message as "User: ...\\n" and "Assistant: ...\\n",
    then "Assistant:" for the reply (which stops at the next "\\nUser:")."""
    if messages is None:
        raise ApiError(400, "messages", "you must provide messages", "missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages", "must be a non-empty list of messages")
    parts = []
    for i, m in enumerate(messages):
        field = "messages[%d]" % i
        if not isinstance(m, dict):
            raise ApiError(400, field, "must be an object with a role and a content")
        for k in m:
            if k not in ("role", "content", "name"):
                raise ApiError(400, "%s.%s" % (field, k), "not supported by this server", "unsupported_parameter")
        role = m.get("role")
        if role not in ("system", "user", "assistant"):
            raise ApiError(400, field + ".role", "%s is not system, user or assistant" % json.dumps(role)[:40])
        content = message_text(m.get("content"), field + ".content")
        if role == "system":
            parts.append("System: %s\n\n" % content)
        else:
            parts.append("%s: %s\n" % (role.capitalize(), content))
    return "".join(parts) + "Assistant:"


def message_text(content, field):
    """A message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                                         for p in content):
        return "".join(p["text"] for p in content)
    raise ApiError(400, field, "must be a string or a list of text parts")


def stop_strings(stop):
    """The stop field: none, a string, or a list of up to 4 strings."""
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "stop", "must be a string or a list of strings")
    if len(stops) > MAX_STOPS:
        raise ApiError(400, "stop", "%d strings are over the most of %d" % (len(stops), MAX_STOPS))
    if any(s == "" for s in stops):
        raise ApiError(400, "stop", "a stop string must not be empty")
    return list(stops)


def embedding_inputs(inp, tok):
    """The token ids of each input: a string, a list of strings, a list of
    token ids, or a list of lists of token ids."""
    if isinstance(inp, str):
        return [tok.encode(inp)]
    if isinstance(inp, list) and inp:
        if len(inp) > MAX_EMBEDDING_INPUTS:
            raise ApiError(400, "input", "%d inputs are over the most of %d" % (len(inp), MAX_EMBEDDING_INPUTS))
        if all(isinstance(s, str) for s in inp):
            return [tok.encode(s) for s in inp]
        if all(is_int(t) for t in inp):
            return [inp]
        if all(isinstance(s, list) for s in inp):
            return inp
    if inp is None:
        raise ApiError(400, "input", "you must provide an input", "missing_required_parameter")
    raise ApiError(400, "input", "must be a string, a list of strings or a list of token ids")


# -------------------------------------------------------------------- HTTP

MODEL_PATH = re.compile(r"^/v1/models/(.+)$")


class Handler(BaseHTTPRequestHandler):
    """The OpenAI API's routes; server.app is the Server."""

    protocol_version = "HTTP/1.1"  # keep-alive: the gateway pools connections

    def log_message(self, fmt, *args):  # one line per start, not per request
        pass

    def setup(self):
        super().setup()
        # Each chunk of a stream goes out at once.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def do_PUT(self):
        self.route("PUT")

    def send(self, code, body, ctype="application/json", extra=()):
        """One response, its head and body in one write."""
        head = ["HTTP/1.1 %d %s" % (code, self.responses.get(code, ("",))[0]),
                "Content-Type: " + ctype, "Content-Length: %d" % len(body)] + list(extra)
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def send_json(self, code, obj, extra=()):
        self.send(code, json.dumps(obj, separators=(",", ":")).encode(), extra=extra)

    def send_error_json(self, e):
        extra = ['WWW-Authenticate: Bearer'] if e.status == 401 else []
        self.send_json(e.status, e.body(), extra)

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is None or not n.strip().isdigit():
            self.close_connection = True
            raise ApiError(411 if n is None else 400, None, "a JSON body with a Content-Length is required")
        n = int(n)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, None, "a body of %d bytes is over the most of %d" % (n, MAX_BODY))
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise ApiError(400, None, "We could not parse the JSON body of your request: %s" % e)
        if not isinstance(body, dict):
            raise ApiError(400, None, "the body must be a JSON object")
        return body

    def route(self, method):
        app, path = self.server.app, self.path.split("?", 1)[0]
        try:
            body = self.read_body() if method == "POST" else None
        except ApiError as e:
            return self.send_error_json(e)
        try:
            if path == "/health" and method == "GET":
                return self.send_json(200 if app.ready else 503, {"status": "ok" if app.ready else "stopping"})
            if path == "/metrics" and method == "GET":
                return self.send(200, app.metrics.text(app.cfg["name"]).encode(), "text/plain; version=0.0.4")
            if not path.startswith("/v1/"):
                raise ApiError(404, None, "Unknown request URL: %s %s" % (method, path), "unknown_url")
            if not self.authorized(app.cfg["token"]):
                raise ApiError(401, None, "Authorization: a valid bearer token is required", "invalid_api_key")
            m = MODEL_PATH.match(path)
            if path == "/v1/models" and method == "GET":
                return self.send_json(200, {"object": "list", "data": [app.model_object()]})
            if m and method == "GET":
                if unquote(m.group(1)) != app.cfg["name"]:
                    raise ApiError(404, "model", "the model %r does not exist: this server serves %r" % (
                        unquote(m.group(1)), app.cfg["name"]), "model_not_found")
                return self.send_json(200, app.model_object())
            if path == "/v1/completions" and method == "POST":
                return self.generate(app.generation(body, chat=False))
            if path == "/v1/chat/completions" and method == "POST":
                return self.generate(app.generation(body, chat=True))
            if path == "/v1/embeddings" and method == "POST":
                return self.send_json(200, app.embeddings(body))
            raise ApiError(404, None, "Unknown request URL: %s %s" % (method, path), "unknown_url")
        except ApiError as e:
            self.send_error_json(e)

    def authorized(self, token):
        if not token:
            return True
        got = self.headers.get("Authorization", "")
        return got.startswith("Bearer ") and hmac.compare_digest(got[len("Bearer "):].encode(), token.encode())

    def client_gone(self):
        """Whether the client closed its end (its socket reads as ended)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def next_event(self, req):
        """The engine's next event for req; a client that goes away while
        it waits cancels req."""
        while True:
            try:
                return req.events.get(timeout=0.1)
            except queue.Empty:
                if self.client_gone():
                    req.cancelled = True
                    raise ConnectionAbortedError("the client went away")

    def generate(self, req):
        self.server.app.engine.submit(req)
        try:
            if req.stream:
                self.stream(req)
            else:
                self.whole(req)
        except OSError:  # the client went away: its sequences leave the batch at the next step
            req.cancelled = True
            self.close_connection = True

    def whole(self, req):
        while True:
            kind, _, msg = self.next_event(req)
            if kind == "error":
                raise ApiError(500, None, msg, kind="server_error")
            if kind == "done":
                break
        choices = []
        for s in req.seqs:
            if req.kind == "chat.completion":
                choices.append({"index": s.index, "message": {"role": "assistant", "content": s.text},
                                "logprobs": None, "finish_reason": s.finish_reason})
            else:
                choices.append({"index": s.index, "text": s.text, "logprobs": None, "finish_reason": s.finish_reason})
        self.send_json(200, {"id": req.id, "object": req.kind, "created": req.created, "model": self.server.app.cfg["name"],
                             "choices": choices, "usage": usage(req)})

    def stream(self, req):
        """Server-Sent Events: a chunk a token (or a few tokens when a
        character spans them), written as soon as the engine makes it;
        the events that queued while the last write went out go in the
        next write together."""
        self.wfile.write(("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                          "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        chat = req.kind == "chat.completion"
        head = json.dumps({"id": req.id, "object": "chat.completion.chunk" if chat else "text_completion",
                           "created": req.created, "model": self.server.app.cfg["name"]}, separators=(",", ":"))[:-1]
        tail = ',"usage":null}\n\n' if req.include_usage else "}\n\n"
        if chat:
            delta = '{"index":%d,"delta":{"content":%s},"logprobs":null,"finish_reason":null}'
            finish = '{"index":%d,"delta":{},"logprobs":null,"finish_reason":"%s"}'
        else:
            delta = '{"index":%d,"text":%s,"logprobs":null,"finish_reason":null}'
            finish = '{"index":%d,"text":"","logprobs":null,"finish_reason":"%s"}'

        def chunk(choice):
            return "data: " + head + ',"choices":[' + choice + "]" + tail

        out = []
        if chat:
            out += [chunk('{"index":%d,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}' % i)
                    for i in range(req.n)]
        ended = False
        while not ended:
            events = [self.next_event(req)]
            while True:
                try:
                    events.append(req.events.get_nowait())
                except queue.Empty:
                    break
            for kind, index, text in events:
                if kind == "delta":
                    out.append(chunk(delta % (index, json.dumps(text))))
                elif kind == "finish":
                    out.append(chunk(finish % (index, text)))
                elif kind == "error":
                    out.append("data: %s\n\n" % json.dumps(ApiError(500, None, text, kind="server_error").body()))
                    ended = True
                elif kind == "done":
                    if req.include_usage:
                        out.append("data: " + head + ',"choices":[],"usage":' + json.dumps(usage(req), separators=(",", ":")) + "}\n\n")
                    ended = True
            if ended:
                out.append("data: [DONE]\n\n")
            payload = "".join(out).encode()
            out = []
            self.wfile.write(b"%x\r\n%s\r\n%s" % (len(payload), payload, b"0\r\n\r\n" if ended else b""))


def usage(req):
    p = len(req.prompt_ids)
    return {"prompt_tokens": p, "completion_tokens": req.completion_tokens, "total_tokens": p + req.completion_tokens}


class HTTPServer(ThreadingHTTPServer):
    """A thread per connection; a listen backlog for bursts of clients."""

    daemon_threads = True
    request_queue_size = 128


def main():
    cfg = settings(os.environ)
    torch.set_num_threads(cfg["threads"])
    device = torch.device("cuda:0" if cfg["cuda"] and torch.cuda.is_available() else "cpu")
    model, tok = load_model(cfg["model_dir"], device)
    with torch.inference_mode():  # warm up: the first request pays no lazy initialisation
        model(torch.tensor([[0]], device=device))
    metrics = Metrics()
    engine = Engine(model, tok.EOT, device, cfg, metrics)
    httpd = HTTPServer((cfg["host"], cfg["port"]), Handler)
    httpd.app = Server(cfg, model, tok, device, engine, metrics)
    engine.start()

    def stop(signum, _frame):
        httpd.app.ready = False
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    mc = model.cfg
    log("serving %s version %s (gpt: %d layers, %d heads, %d dims, context %d tokens) on %s, port %d, "
        "max_num_seqs %d, prefix_cache %s (block %d, max %d tokens), kv_cache_tokens %d, threads %d, token %s" % (
            cfg["name"], cfg["version"], mc.n_layer, mc.n_head, mc.n_embd, mc.block_size, device,
            httpd.server_address[1], cfg["max_num_seqs"], "true" if cfg["prefix_cache"] else "false",
            cfg["prefix_block"], cfg["max_prefix_cache_tokens"], cfg["kv_cache_tokens"], cfg["threads"],
            "required" if cfg["token"] else "not required"))
    httpd.serve_forever()
    # Stopped listening: what is in flight ends (within the runtime's
    # termination grace), then the rest is refused.
    engine.drain(DRAIN_SECONDS)
    engine.stop()
    httpd.server_close()
    log("stopped")


if __name__ == "__main__":
    main()
