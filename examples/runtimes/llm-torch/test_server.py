"""Tests of the llm-torch server: tiny random GPTs written by the model's
own gpt.save (examples/llm/gpt.py), the server started as bmaas starts it
(the serving contract's environment), called as OpenAI's clients call
api.openai.com."""

import base64
import http.client
import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

try:
    import torch
except ImportError:  # run where PyTorch is: Debian's python3-torch
    raise unittest.SkipTest("llm-torch needs PyTorch")

HERE = os.path.dirname(os.path.abspath(__file__))
LLM = os.path.join(HERE, "..", "..", "llm")
NAME = "tiny"
TOKEN = "s3cret"


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gpt = load_module("example_gpt", os.path.join(LLM, "gpt.py"))
server = load_module("llm_torch_server", os.path.join(HERE, "server.py"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(out_dir, seed, block_size=128, n_layer=2, n_head=2, n_embd=32):
    """A random GPT, saved as a version holds it."""
    torch.manual_seed(seed)
    model = gpt.GPT(gpt.Config(block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    os.makedirs(out_dir)
    gpt.save(model, out_dir)
    return model.eval()


class Server:
    """The server as a child process under the serving contract."""

    def __init__(self, model_dir, params, token=""):
        self.port, self.token = free_port(), token
        env = dict(os.environ, BMAAS_MODEL_DIR=model_dir, BMAAS_MODEL_NAME=NAME, BMAAS_MODEL_VERSION="2",
                   BMAAS_HTTP_PORT=str(self.port), BMAAS_PARAMS=json.dumps(params), BMAAS_TOKEN=token,
                   CUDA_VISIBLE_DEVICES="")
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py")], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self):
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/health", auth=False)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("server did not become ready:\n" + self.output())
            time.sleep(0.1)

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def headers(self, auth=True):
        h = {"Content-Type": "application/json"}
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        return h

    def request(self, method, path, body=None, auth=True, headers=None, conn=None):
        c = conn or self.connect()
        h = dict(self.headers(auth), **(headers or {}))
        c.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=h)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, data, r

    def post(self, path, body, **kw):
        code, data, _ = self.request("POST", path, body, **kw)
        return code, json.loads(data)

    def stream(self, path, body, conn=None):
        """The data of each Server-Sent Event of a streamed answer."""
        c = conn or self.connect()
        c.request("POST", path, body=json.dumps(body).encode(), headers=self.headers())
        r = c.getresponse()
        assert r.status == 200, r.read()
        assert r.getheader("Content-Type").startswith("text/event-stream")
        events = read_events(r)
        if conn is None:
            c.close()
        return events

    def metrics(self):
        code, data, _ = self.request("GET", "/metrics", auth=False)
        assert code == 200
        return parse_metrics(data.decode())

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def read_events(r):
    """The data lines of an SSE stream, up to and with [DONE]."""
    events = []
    while True:
        line = r.readline()
        if not line:
            return events
        line = line.decode("utf-8").rstrip("\n")
        if line.startswith("data: "):
            events.append(line[len("data: "):])
            if events[-1] == "[DONE]":
                assert r.read() == b"\n"  # the event's blank line ends the stream
                return events
        else:
            assert line == "", line


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def m(name, **labels):
    """A metric's key as /metrics writes it."""
    inner = ",".join(['model_name="%s"' % NAME] + ['%s="%s"' % kv for kv in labels.items()])
    return "%s{%s}" % (name, inner)


def stream_text(events, chat=False):
    """Each choice's text, finish reason and the usage of a parsed stream."""
    assert events[-1] == "[DONE]", events[-3:]
    texts, finish, usage = {}, {}, None
    for data in events[:-1]:
        c = json.loads(data)
        if c["choices"] == [] and c.get("usage"):
            usage = c["usage"]
            continue
        for ch in c["choices"]:
            piece = ch["delta"].get("content", "") if chat else ch["text"]
            texts[ch["index"]] = texts.get(ch["index"], "") + piece
            if ch["finish_reason"] is not None:
                finish[ch["index"]] = ch["finish_reason"]
    return texts, finish, usage


class LLMTorchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        cls.model = make_model(os.path.join(cls.tmp, "tiny"), seed=1)
        # Larger, with a long context: its 1000 tokens take seconds to make.
        make_model(os.path.join(cls.tmp, "long"), seed=1, block_size=1024, n_layer=8, n_head=4, n_embd=128)
        cls.servers = []
        try:
            # Started together: each pays PyTorch's import at the same time.
            cls.main = cls.start(os.path.join(cls.tmp, "tiny"), {"prefix_block": "8"}, token=TOKEN)
            cls.plain = cls.start(os.path.join(cls.tmp, "tiny"), {"prefix_cache": "false", "max_num_seqs": "1"})
            cls.long = cls.start(os.path.join(cls.tmp, "long"), {})
            for s in cls.servers:
                s.wait_ready()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, model_dir, params, token=""):
        s = Server(model_dir, params, token)
        cls.servers.append(s)
        return s

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ------------------------------------------------------------- routes

    def test_models_and_health(self):
        code, data, _ = self.main.request("GET", "/v1/models")
        self.assertEqual(code, 200, data)
        body = json.loads(data)
        self.assertEqual(body["object"], "list")
        self.assertEqual(len(body["data"]), 1)
        model = body["data"][0]
        self.assertEqual(set(model), {"id", "object", "created", "owned_by"})
        self.assertEqual((model["id"], model["object"]), (NAME, "model"))
        self.assertIsInstance(model["created"], int)
        code, data, _ = self.main.request("GET", "/v1/models/" + NAME)
        self.assertEqual((code, json.loads(data)), (200, model))
        code, data, _ = self.main.request("GET", "/v1/models/other")
        self.assertEqual(code, 404)
        self.assertEqual(json.loads(data)["error"]["code"], "model_not_found")
        code, data, _ = self.main.request("GET", "/v1/nothing")
        self.assertEqual(code, 404)
        self.assertEqual(json.loads(data)["error"]["code"], "unknown_url")
        self.assertEqual(self.main.request("GET", "/health", auth=False)[0], 200)
        log = self.main.output()
        self.assertIn("serving tiny version 2", log)
        self.assertIn("on cpu", log)
        self.assertIn("max_num_seqs 16, prefix_cache true (block 8", log)

    def test_token(self):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
            code, data, r = self.main.request("GET", "/v1/models", auth=False, headers=headers)
            self.assertEqual(code, 401, data)
            err = json.loads(data)["error"]
            self.assertEqual((err["type"], err["code"]), ("invalid_request_error", "invalid_api_key"))
            code, _, _ = self.main.request("POST", "/v1/completions", {"model": NAME, "prompt": "a"}, auth=False,
                                           headers=headers)
            self.assertEqual(code, 401)
        # The agent's probe and the metrics scraper need none.
        self.assertEqual(self.main.request("GET", "/health", auth=False)[0], 200)
        self.assertEqual(self.main.request("GET", "/metrics", auth=False)[0], 200)

    # -------------------------------------------------------- completions

    def test_completion(self):
        code, body = self.main.post("/v1/completions", {"model": NAME, "prompt": "Holmes", "temperature": 0})
        self.assertEqual(code, 200, body)
        self.assertTrue(body["id"].startswith("cmpl-"), body["id"])
        self.assertEqual(body["object"], "text_completion")
        self.assertEqual(body["model"], NAME)
        self.assertIsInstance(body["created"], int)
        self.assertEqual(len(body["choices"]), 1)
        choice = body["choices"][0]
        self.assertEqual(set(choice), {"index", "text", "logprobs", "finish_reason"})
        self.assertEqual((choice["index"], choice["logprobs"], choice["finish_reason"]), (0, None, "length"))
        # max_tokens defaults to 16, as OpenAI's.
        self.assertEqual(body["usage"], {"prompt_tokens": 6, "completion_tokens": 16, "total_tokens": 22})
        # The text is what the model makes greedily from the prompt.
        self.assertEqual(choice["text"], greedy(self.model, "Holmes", 16))
        # A list of one string is the same prompt.
        code, again = self.main.post("/v1/completions", {"model": NAME, "prompt": ["Holmes"], "temperature": 0})
        self.assertEqual(again["choices"][0]["text"], choice["text"])

    def test_completion_stream_equals_whole(self):
        for params in ({"temperature": 0}, {"temperature": 1, "seed": 7}, {"temperature": 0.8, "top_p": 0.9, "seed": 3}):
            req = dict({"model": NAME, "prompt": "Watson said", "max_tokens": 24}, **params)
            code, whole = self.main.post("/v1/completions", req)
            self.assertEqual(code, 200, whole)
            code, again = self.main.post("/v1/completions", req)
            self.assertEqual(again["choices"][0]["text"], whole["choices"][0]["text"], params)
            events = self.main.stream("/v1/completions", dict(req, stream=True, stream_options={"include_usage": True}))
            ids = set()
            for data in events[:-1]:
                c = json.loads(data)
                ids.add(c["id"])
                self.assertEqual(c["object"], "text_completion")
                self.assertEqual(c["model"], NAME)
                self.assertIn("usage", c)  # null but in the last chunk, with include_usage
            self.assertEqual(len(ids), 1)
            self.assertTrue(ids.pop().startswith("cmpl-"))
            texts, finish, usage = stream_text(events)
            self.assertEqual(texts[0], whole["choices"][0]["text"], params)
            self.assertEqual(finish, {0: whole["choices"][0]["finish_reason"]})
            self.assertEqual(usage, whole["usage"])
            last = json.loads(events[-2])
            self.assertEqual(last["choices"], [])
            # Without include_usage no chunk says usage.
            events = self.main.stream("/v1/completions", dict(req, stream=True))
            self.assertTrue(all("usage" not in json.loads(d) for d in events[:-1]))
            self.assertEqual(stream_text(events)[0][0], whole["choices"][0]["text"])

    def test_seed_gives_the_same_text_with_or_without_batching(self):
        req = {"model": NAME, "prompt": "Baker Street", "max_tokens": 30, "temperature": 1.0, "seed": 42}
        _, a = self.main.post("/v1/completions", req)
        _, b = self.plain.post("/v1/completions", req)
        self.assertEqual(a["choices"][0]["text"], b["choices"][0]["text"])
        _, c = self.main.post("/v1/completions", dict(req, seed=43))
        self.assertNotEqual(a["choices"][0]["text"], c["choices"][0]["text"])
        # top_p 0 keeps only the most likely token: the greedy text.
        _, d = self.main.post("/v1/completions", dict(req, top_p=0))
        self.assertEqual(d["choices"][0]["text"], greedy(self.model, "Baker Street", 30))

    def test_n_choices(self):
        req = {"model": NAME, "prompt": "Irene", "max_tokens": 12, "n": 2, "seed": 5, "temperature": 1}
        code, body = self.main.post("/v1/completions", req)
        self.assertEqual(code, 200, body)
        self.assertEqual([c["index"] for c in body["choices"]], [0, 1])
        self.assertNotEqual(body["choices"][0]["text"], body["choices"][1]["text"])
        self.assertEqual(body["usage"]["prompt_tokens"], 5)
        self.assertEqual(body["usage"]["completion_tokens"], 24)
        texts, finish, usage = stream_text(self.main.stream("/v1/completions", dict(
            req, stream=True, stream_options={"include_usage": True})))
        self.assertEqual(texts, {c["index"]: c["text"] for c in body["choices"]})
        self.assertEqual(finish, {0: "length", 1: "length"})
        self.assertEqual(usage, body["usage"])
        # Choice i is seeded seed + i: alone, choice 1 is seed 6's.
        _, one = self.main.post("/v1/completions", dict(req, n=1, seed=6))
        self.assertEqual(one["choices"][0]["text"], body["choices"][1]["text"])

    def test_stop_strings(self):
        req = {"model": NAME, "prompt": "The red-headed league", "max_tokens": 40, "temperature": 0}
        _, body = self.main.post("/v1/completions", req)
        full = body["choices"][0]["text"]
        for stop in (full[12:14], [full[20:23], full[9:11]], [chr(0x2603), full[15]]):
            stops = [stop] if isinstance(stop, str) else stop
            cut = min(full.find(s) for s in stops if s in full)
            code, got = self.main.post("/v1/completions", dict(req, stop=stop))
            self.assertEqual(code, 200, got)
            self.assertEqual(got["choices"][0]["text"], full[:cut], stop)
            self.assertEqual(got["choices"][0]["finish_reason"], "stop")
            texts, finish, _ = stream_text(self.main.stream("/v1/completions", dict(req, stop=stop, stream=True)))
            self.assertEqual((texts.get(0, ""), finish), (full[:cut], {0: "stop"}))
        # A stop string never made: the whole text.
        _, got = self.main.post("/v1/completions", dict(req, stop="\u2603\u2603"))
        self.assertEqual((got["choices"][0]["text"], got["choices"][0]["finish_reason"]), (full, "length"))

    def test_max_tokens(self):
        for n in (1, 5, 100):
            code, body = self.main.post("/v1/completions", {"model": NAME, "prompt": "abc", "max_tokens": n,
                                                             "temperature": 0})
            self.assertEqual(code, 200, body)
            self.assertEqual(body["usage"]["completion_tokens"], n)
            self.assertEqual(body["choices"][0]["finish_reason"], "length")
        # prompt + max_tokens may fill the context exactly.
        code, body = self.main.post("/v1/completions", {"model": NAME, "prompt": "a" * 28, "max_tokens": 100,
                                                         "temperature": 0})
        self.assertEqual((code, body["usage"]["total_tokens"]), (200, 128))
        # A completion's default (16) is cut to what the context leaves.
        code, body = self.main.post("/v1/completions", {"model": NAME, "prompt": "a" * 120, "temperature": 0})
        self.assertEqual((code, body["usage"]["completion_tokens"]), (200, 8))

    # --------------------------------------------------------------- chat

    def test_chat(self):
        messages = [{"role": "system", "content": "Answer shortly."}, {"role": "user", "content": "Who?"},
                    {"role": "assistant", "content": "Holmes."}, {"role": "user", "content": "Where?"}]
        req = {"model": NAME, "messages": messages, "temperature": 0, "seed": 1}
        code, body = self.main.post("/v1/chat/completions", req)
        self.assertEqual(code, 200, body)
        self.assertTrue(body["id"].startswith("chatcmpl-"))
        self.assertEqual(body["object"], "chat.completion")
        self.assertEqual(body["model"], NAME)
        choice = body["choices"][0]
        self.assertEqual(set(choice), {"index", "message", "logprobs", "finish_reason"})
        self.assertEqual(choice["message"]["role"], "assistant")
        prompt = "System: Answer shortly.\n\nUser: Who?\nAssistant: Holmes.\nUser: Where?\nAssistant:"
        self.assertEqual(server.chat_prompt(messages), prompt)
        self.assertEqual(body["usage"]["prompt_tokens"], len(prompt))
        # max_tokens defaults to the rest of the context.
        want = greedy(self.model, prompt, 128 - len(prompt))
        want = want[1:] if want.startswith(" ") else want
        cut = want.find("\nUser:")
        if cut >= 0 or choice["finish_reason"] == "stop":
            self.assertEqual(choice["message"]["content"], want[:cut] if cut >= 0 else want)
        else:
            self.assertEqual((choice["finish_reason"], body["usage"]["total_tokens"]), ("length", 128))
            self.assertEqual(choice["message"]["content"], want)
        events = self.main.stream("/v1/chat/completions", dict(req, stream=True, stream_options={"include_usage": True}))
        first = json.loads(events[0])
        self.assertEqual(first["object"], "chat.completion.chunk")
        self.assertTrue(first["id"].startswith("chatcmpl-"))
        self.assertEqual(first["choices"], [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "logprobs": None, "finish_reason": None}])
        last = json.loads(events[-3])
        self.assertEqual((last["choices"][0]["delta"], last["choices"][0]["finish_reason"]), ({}, choice["finish_reason"]))
        texts, finish, usage = stream_text(events, chat=True)
        self.assertEqual(texts[0], choice["message"]["content"])
        self.assertEqual(usage, body["usage"])
        # max_completion_tokens is the newer name of max_tokens.
        _, short = self.main.post("/v1/chat/completions", dict(req, max_completion_tokens=3))
        self.assertEqual(short["usage"]["completion_tokens"], 3)
        # Content as a list of text parts.
        _, parts = self.main.post("/v1/chat/completions", dict(req, max_tokens=3, messages=[
            {"role": "user", "content": [{"type": "text", "text": "Who"}, {"type": "text", "text": "?"}]}]))
        _, plain = self.main.post("/v1/chat/completions", dict(req, max_tokens=3, messages=[
            {"role": "user", "content": "Who?"}]))
        self.assertEqual(parts["choices"], plain["choices"])

    def test_chat_stops_at_the_next_user_turn(self):
        # The reply's text as the engine cuts it: its leading space is the
        # template's, and the next "\nUser:" ends it, even across tokens.
        req = server.Request("chat.completion", [1], 100, 0.0, 1.0, 1, ["\nUser:"], None, True, False)
        seq = server.Sequence(req, 0, strip_space=True)
        sent, reason = "", None
        for b in " Yes.\nUse it.\nUser: and more".encode():
            delta, reason = seq.push(b, 256)
            sent += delta
            if reason:
                break
        self.assertEqual((sent, reason, seq.text), ("Yes.\nUse it.", "stop", "Yes.\nUse it."))
        # A character of several bytes goes out whole, never half.
        req = server.Request("text_completion", [1], 100, 0.0, 1.0, 1, [], None, True, False)
        seq = server.Sequence(req, 0, strip_space=False)
        deltas = [seq.push(b, 256)[0] for b in "é☃".encode()]
        self.assertEqual(deltas, ["", "é", "", "", "☃"])
        self.assertEqual(seq.push(256, 256), ("", "stop"))

    # ------------------------------------------------------------- errors

    def test_bad_requests_name_the_field(self):
        c, ch, e = "/v1/completions", "/v1/chat/completions", "/v1/embeddings"
        ok = {"model": NAME, "prompt": "hi"}
        okc = {"model": NAME, "messages": [{"role": "user", "content": "hi"}]}
        cases = [
            (c, dict(ok, model="other"), 404, "model", "model_not_found"),
            (ch, dict(okc, model="other"), 404, "model", "model_not_found"),
            (e, {"model": "other", "input": "x"}, 404, "model", "model_not_found"),
            (c, {"prompt": "hi"}, 400, "model", "missing_required_parameter"),
            (c, {"model": NAME}, 400, "prompt", "missing_required_parameter"),
            (c, dict(ok, prompt=["a", "b"]), 400, "prompt", "invalid_value"),
            (c, dict(ok, prompt=""), 400, "prompt", "invalid_value"),
            (c, dict(ok, prompt="x" * 200), 400, "prompt", "context_length_exceeded"),
            (c, dict(ok, prompt="x" * 128), 400, "prompt", "context_length_exceeded"),
            (c, dict(ok, max_tokens=5000), 400, "max_tokens", "context_length_exceeded"),
            (c, dict(ok, prompt="x" * 100, max_tokens=29), 400, "max_tokens", "context_length_exceeded"),
            (c, dict(ok, max_tokens=0), 400, "max_tokens", "invalid_value"),
            (c, dict(ok, max_tokens="5"), 400, "max_tokens", "invalid_value"),
            (ch, dict(okc, max_completion_tokens=500), 400, "max_completion_tokens", "context_length_exceeded"),
            (c, dict(ok, temperature=3), 400, "temperature", "invalid_value"),
            (c, dict(ok, top_p=1.5), 400, "top_p", "invalid_value"),
            (c, dict(ok, n=0), 400, "n", "invalid_value"),
            (c, dict(ok, n=17), 400, "n", "invalid_value"),
            (c, dict(ok, stop=["a", "b", "c", "d", "e"]), 400, "stop", "invalid_value"),
            (c, dict(ok, stop=[1]), 400, "stop", "invalid_value"),
            (c, dict(ok, stop=""), 400, "stop", "invalid_value"),
            (c, dict(ok, seed=1.5), 400, "seed", "invalid_value"),
            (c, dict(ok, stream="yes"), 400, "stream", "invalid_value"),
            (c, dict(ok, stream_options={"include_usage": True}), 400, "stream_options", "invalid_value"),
            (c, dict(ok, stream=True, stream_options={"other": 1}), 400, "stream_options.other", "unknown_parameter"),
            (c, dict(ok, user=5), 400, "user", "invalid_value"),
            (c, dict(ok, logprobs=2), 400, "logprobs", "unsupported_parameter"),
            (c, dict(ok, echo=True), 400, "echo", "unsupported_parameter"),
            (c, dict(ok, best_of=2), 400, "best_of", "unsupported_parameter"),
            (c, dict(ok, suffix="x"), 400, "suffix", "unsupported_parameter"),
            (c, dict(ok, logit_bias={"1": 5}), 400, "logit_bias", "unsupported_parameter"),
            (c, dict(ok, presence_penalty=0.5), 400, "presence_penalty", "unsupported_parameter"),
            (c, dict(ok, frequency_penalty=1), 400, "frequency_penalty", "unsupported_parameter"),
            (c, dict(ok, tools=[]), 400, "tools", "unknown_parameter"),
            (c, dict(ok, wat=1), 400, "wat", "unknown_parameter"),
            (ch, dict(okc, logprobs=True), 400, "logprobs", "unsupported_parameter"),
            (ch, dict(okc, top_logprobs=2), 400, "top_logprobs", "unsupported_parameter"),
            (ch, dict(okc, tools=[{"type": "function"}]), 400, "tools", "unsupported_parameter"),
            (ch, dict(okc, tool_choice="auto"), 400, "tool_choice", "unsupported_parameter"),
            (ch, dict(okc, functions=[{}]), 400, "functions", "unsupported_parameter"),
            (ch, dict(okc, function_call="auto"), 400, "function_call", "unsupported_parameter"),
            (ch, dict(okc, response_format={"type": "json_object"}), 400, "response_format", "unsupported_parameter"),
            (ch, dict(okc, presence_penalty=1), 400, "presence_penalty", "unsupported_parameter"),
            (ch, dict(okc, prompt="x"), 400, "prompt", "unknown_parameter"),
            (ch, {"model": NAME}, 400, "messages", "missing_required_parameter"),
            (ch, dict(okc, messages=[]), 400, "messages", "invalid_value"),
            (ch, dict(okc, messages=[{"role": "tool", "content": "x"}]), 400, "messages[0].role", "invalid_value"),
            (ch, dict(okc, messages=[{"role": "user", "content": 5}]), 400, "messages[0].content", "invalid_value"),
            (ch, dict(okc, messages=[{"role": "user", "content": "a", "tool_calls": []}]), 400,
             "messages[0].tool_calls", "unsupported_parameter"),
            (ch, dict(okc, messages=[{"role": "user", "content": "x" * 130}]), 400, "messages", "context_length_exceeded"),
            (e, {"model": NAME}, 400, "input", "missing_required_parameter"),
            (e, {"model": NAME, "input": ""}, 400, "input", "invalid_value"),
            (e, {"model": NAME, "input": ["a", "x" * 200]}, 400, "input[1]", "context_length_exceeded"),
            (e, {"model": NAME, "input": "a", "encoding_format": "int8"}, 400, "encoding_format", "invalid_value"),
            (e, {"model": NAME, "input": "a", "dimensions": 8}, 400, "dimensions", "unsupported_parameter"),
        ]
        for path, body, status, param, code in cases:
            got, resp = self.main.post(path, body)
            self.assertEqual(got, status, (body, resp))
            err = resp["error"]
            self.assertEqual(set(err), {"message", "type", "param", "code"})
            self.assertEqual((err["type"], err["param"], err["code"]), ("invalid_request_error", param, code), body)
            self.assertTrue(err["message"].startswith(param + ": "), err)
        # The neutral values of the unsupported fields ask for nothing.
        code, body = self.main.post(c, dict(ok, max_tokens=2, logprobs=None, echo=False, best_of=1, suffix=None,
                                            presence_penalty=0, frequency_penalty=0.0, logit_bias={}, user="u"))
        self.assertEqual(code, 200, body)
        code, body = self.main.post(ch, dict(okc, max_tokens=2, logprobs=False, tool_choice="none",
                                             response_format={"type": "text"}, tools=None))
        self.assertEqual(code, 200, body)
        # A body that is not JSON.
        conn = self.main.connect()
        conn.request("POST", c, body=b"{nope", headers=self.main.headers())
        r = conn.getresponse()
        self.assertEqual(r.status, 400)
        self.assertIsNone(json.loads(r.read())["error"]["param"])
        conn.close()

    def test_bad_params_stop_the_server(self):
        env = {"BMAAS_MODEL_DIR": "/nonexistent", "BMAAS_HTTP_PORT": "1"}
        for params, name in (({"max_num_seqs": "x"}, "max_num_seqs"), ({"max_num_seqs": "0"}, "max_num_seqs"),
                             ({"prefix_cache": "maybe"}, "prefix_cache"), ({"prefix_block": "-1"}, "prefix_block"),
                             ({"kv_cache_tokens": "1.5"}, "kv_cache_tokens"), ({"threads": ""}, "threads"),
                             ({"max_prefix_cache_tokens": "a"}, "max_prefix_cache_tokens"), ({"batch": "4"}, "batch")):
            with self.assertRaises(SystemExit) as ctx:
                server.settings(dict(env, BMAAS_PARAMS=json.dumps(params)))
            self.assertIn("BMAAS_PARAMS %s:" % name, str(ctx.exception.code))
        cfg = server.settings(dict(env, BMAAS_PARAMS=json.dumps({"prefix_cache": "false", "max_num_seqs": "4"})))
        self.assertEqual((cfg["prefix_cache"], cfg["max_num_seqs"], cfg["prefix_block"], cfg["kv_cache_tokens"]),
                         (False, 4, 16, 65536))
        # The process exits at start, before it loads a model.
        p = subprocess.run([sys.executable, os.path.join(HERE, "server.py")], capture_output=True, timeout=60,
                           env=dict(os.environ, BMAAS_PARAMS='{"max_num_seqs": "many"}', BMAAS_MODEL_DIR=self.tmp))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"max_num_seqs", p.stderr)

    # ---------------------------------------------------------- streaming

    def test_keep_alive(self):
        conn = self.main.connect()
        try:
            for _ in range(2):
                events = self.main.stream("/v1/completions", {"model": NAME, "prompt": "a", "max_tokens": 3,
                                                              "stream": True}, conn=conn)
                self.assertEqual(events[-1], "[DONE]")
                code, _, r = self.main.request("POST", "/v1/completions", {"model": NAME, "prompt": "a", "max_tokens": 2},
                                               conn=conn)
                self.assertEqual(code, 200)
                self.assertFalse(r.will_close)
                self.assertEqual(self.main.request("POST", "/v1/completions", {"model": NAME}, conn=conn)[0], 400)
        finally:
            conn.close()

    def wait_running(self, s, want, seconds):
        deadline = time.monotonic() + seconds
        while True:
            got = s.metrics()[m("vllm:num_requests_running")]
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def test_client_that_goes_away_leaves_the_batch(self):
        s = self.long
        before = s.metrics()
        req = {"model": NAME, "prompt": "It was", "max_tokens": 1000, "temperature": 0}
        conn = s.connect()
        conn.request("POST", "/v1/completions", body=json.dumps(dict(req, stream=True)).encode(), headers=s.headers())
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.readline().startswith(b"data: "))  # the first token came at once
        self.assertEqual(self.wait_running(s, 1, 5), 1)
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        self.assertEqual(self.wait_running(s, 0, 5.0), 0)
        # A client waiting for a whole answer is watched too.
        conn = s.connect()
        conn.request("POST", "/v1/completions", body=json.dumps(req).encode(), headers=s.headers())
        self.assertEqual(self.wait_running(s, 1, 5), 1)
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        self.assertEqual(self.wait_running(s, 0, 5.0), 0)
        after = s.metrics()
        key = m("vllm:request_success_total", finished_reason="abort")
        self.assertEqual(after[key] - before[key], 2)
        self.assertLess(after[m("vllm:generation_tokens_total")] - before[m("vllm:generation_tokens_total")], 1000)
        self.assertEqual(after[m("vllm:kv_cache_usage_perc")], 0)

    def test_sigterm_lets_running_requests_finish(self):
        s = Server(os.path.join(self.tmp, "long"), {})
        try:
            s.wait_ready()
            conn = s.connect()
            conn.request("POST", "/v1/completions", body=json.dumps({
                "model": NAME, "prompt": "It was", "max_tokens": 300, "temperature": 0, "stream": True}).encode(),
                headers=s.headers())
            r = conn.getresponse()
            first = r.readline()
            self.assertTrue(first.startswith(b"data: "))
            s.proc.terminate()
            texts, finish, _ = stream_text([first[len(b"data: "):].decode().strip()] + read_events(r))
            conn.close()
            self.assertEqual(finish, {0: "length"})
            self.assertEqual(s.proc.wait(10), 0)
            self.assertIn("stopped", s.output())
        finally:
            s.stop()

    # ----------------------------------------------------------- batching

    def test_concurrent_streams_are_batched(self):
        before = self.main.metrics()
        n, barrier, results, errors = 8, threading.Barrier(8), [None] * 8, []

        def req(i):
            return {"model": NAME, "prompt": "Request %d:" % i, "max_tokens": 40, "temperature": 1, "seed": i}

        def call(i):
            try:
                barrier.wait()
                results[i] = stream_text(self.main.stream("/v1/completions", dict(req(i), stream=True)))
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        after = self.main.metrics()
        steps = after[m("llm_torch_batch_size_count")] - before[m("llm_torch_batch_size_count")]
        single = after[m("llm_torch_batch_size_bucket", le="1")] - before[m("llm_torch_batch_size_bucket", le="1")]
        self.assertGreater(steps - single, 0, "no step decoded more than one sequence")
        self.assertLess(steps, n * 40)
        # Each text is the one the same request makes alone.
        for i in range(n):
            _, alone = self.plain.post("/v1/completions", req(i))
            self.assertEqual(results[i][0][0], alone["choices"][0]["text"], i)
        # The gauges move once a step: a client may read its [DONE] just
        # before the step that retires its sequence publishes them.
        deadline = time.monotonic() + 5
        while True:
            now = self.main.metrics()
            idle = now[m("vllm:num_requests_running")] == 0 and now[m("vllm:num_requests_waiting")] == 0
            if idle or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(now[m("vllm:num_requests_running")], 0)
        self.assertEqual(now[m("vllm:num_requests_waiting")], 0)

    def test_prefix_cache(self):
        prompt = "To Sherlock Holmes she is always THE woman. I have seldom heard him mention her under any other name."
        self.assertEqual(len(prompt), 101)
        req = {"model": NAME, "prompt": prompt, "max_tokens": 20, "temperature": 0}
        key_hits, key_queries = m("vllm:prefix_cache_hits_total"), m("vllm:prefix_cache_queries_total")
        m0 = self.main.metrics()
        _, first = self.main.post("/v1/completions", req)
        m1 = self.main.metrics()
        _, second = self.main.post("/v1/completions", req)
        m2 = self.main.metrics()
        self.assertEqual(m1[key_hits] - m0[key_hits], 0)
        self.assertEqual(m1[key_queries] - m0[key_queries], 101)
        # 12 blocks of 8 tokens found; the last 5 prefilled.
        self.assertEqual(m2[key_hits] - m1[key_hits], 96)
        self.assertGreater(m2[m("llm_torch_prefix_cache_tokens")], 0)
        _, uncached = self.plain.post("/v1/completions", req)
        self.assertEqual(first["choices"][0]["text"], second["choices"][0]["text"])
        self.assertEqual(first["choices"][0]["text"], uncached["choices"][0]["text"])
        self.assertEqual(self.plain.metrics()[key_hits], 0)
        # Another prompt with the same first 64 tokens reuses those.
        _, third = self.main.post("/v1/completions", dict(req, prompt=prompt[:64] + "X" * 30))
        self.assertEqual(self.main.metrics()[key_hits] - m2[key_hits], 64)
        _, third_plain = self.plain.post("/v1/completions", dict(req, prompt=prompt[:64] + "X" * 30))
        self.assertEqual(third["choices"][0]["text"], third_plain["choices"][0]["text"])

    def test_prefix_cache_is_bounded(self):
        cache = server.PrefixCache(block=4, max_tokens=8)
        ids = list(range(10))
        present = [(torch.randn(1, 2, 10, 3), torch.randn(1, 2, 10, 3))]
        cache.store(ids, present)
        self.assertEqual(cache.tokens(), 8)
        n, past = cache.lookup(ids)
        self.assertEqual(n, 8)
        self.assertTrue(torch.equal(past[0][0], present[0][0][:, :, :8]))
        cache.store([9] + ids[1:], present)  # new blocks push the least recently used out
        self.assertEqual(cache.tokens(), 8)
        self.assertEqual(cache.lookup(ids), (0, None))
        # A prompt that is whole blocks leaves its last token to prefill.
        cache.store(ids[:8], present)
        self.assertEqual(cache.lookup(ids[:8])[0], 4)

    # --------------------------------------------------------- embeddings

    def test_embeddings(self):
        code, body = self.main.post("/v1/embeddings", {"model": NAME, "input": ["Holmes", "Watson and Holmes"]})
        self.assertEqual(code, 200, body)
        self.assertEqual((body["object"], body["model"]), ("list", NAME))
        self.assertEqual(body["usage"], {"prompt_tokens": 23, "total_tokens": 23})
        self.assertEqual([(d["object"], d["index"], len(d["embedding"])) for d in body["data"]],
                         [("embedding", 0, 32), ("embedding", 1, 32)])
        want = mean_hidden(self.model, "Holmes")
        self.assertLess(max(abs(a - b) for a, b in zip(body["data"][0]["embedding"], want)), 1e-5)
        # base64 (what OpenAI's Python client asks for): little-endian float32.
        code, b64 = self.main.post("/v1/embeddings", {"model": NAME, "input": "Holmes", "encoding_format": "base64"})
        self.assertEqual(code, 200, b64)
        raw = base64.b64decode(b64["data"][0]["embedding"])
        got = struct.unpack("<32f", raw)
        self.assertLess(max(abs(a - b) for a, b in zip(got, want)), 1e-5)
        # Token ids are an input too.
        _, ids = self.main.post("/v1/embeddings", {"model": NAME, "input": list(b"Holmes")})
        self.assertLess(max(abs(a - b) for a, b in zip(ids["data"][0]["embedding"], want)), 1e-5)

    # ------------------------------------------------------------ metrics

    def test_metrics_are_named_as_vllm_names_them(self):
        self.main.post("/v1/completions", {"model": NAME, "prompt": "metrics", "max_tokens": 4})
        text = self.main.request("GET", "/metrics", auth=False)[1].decode()
        got = parse_metrics(text)
        for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                     "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:prompt_tokens_total",
                     "vllm:generation_tokens_total"):
            self.assertIn(m(name), got)
        for name in ("vllm:time_to_first_token_seconds", "vllm:time_per_output_token_seconds",
                     "vllm:e2e_request_latency_seconds", "llm_torch_batch_size"):
            self.assertIn("# TYPE %s histogram" % name, text)
            self.assertGreater(got[m(name + "_count")], 0)
            self.assertEqual(got[m(name + "_bucket", le="+Inf")], got[m(name + "_count")])
        self.assertGreater(got[m("vllm:request_success_total", finished_reason="length")], 0)
        self.assertGreaterEqual(got[m("vllm:generation_tokens_total")], 4)


def greedy(model, prompt, n):
    """The text the model makes greedily, without any cache: the reference."""
    ids = list(prompt.encode())
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(torch.tensor([ids]))
            t = int(logits[0, -1].argmax())
            out.append(t)
            if t == 256:
                break
            ids.append(t)
    return bytes(t for t in out if t < 256).decode("utf-8", errors="replace")


def mean_hidden(model, text):
    got = []
    h = model.ln.register_forward_hook(lambda _m, _i, o: got.append(o))
    try:
        with torch.no_grad():
            model(torch.tensor([list(text.encode())]))
    finally:
        h.remove()
    return got[0][0].mean(dim=0).tolist()


if __name__ == "__main__":
    unittest.main()
