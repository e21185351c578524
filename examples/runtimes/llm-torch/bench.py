#!/usr/bin/env python3
"""Continuous batching against none: output tokens/s of the llm-torch server
on a tiny random GPT, with max_num_seqs 16 and with 1 (batching off),
under the same concurrent streaming clients; and their times to first
token.

  /usr/bin/python3 examples/runtimes/llm-torch/bench.py [--clients 16] [--tokens 64]

Each client streams one completion of --tokens tokens (temperature 1, its
own seed, so both servers make the same tokens); throughput is all the
clients' completion tokens over the wall time from the first request to
the last [DONE], the median of --rounds rounds after a warm-up round;
the times to first token are those of all the measured rounds.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "llm"))
import gpt  # noqa: E402  (examples/llm, where the model is defined)

NAME = "tiny"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model_dir, params):
    port = free_port()
    env = dict(os.environ, BMAAS_MODEL_DIR=model_dir, BMAAS_MODEL_NAME=NAME, BMAAS_HTTP_PORT=str(port),
               BMAAS_PARAMS=json.dumps(params), CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                c.close()
                return proc, port
        except OSError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the server did not start: %s" % proc.stderr.read().decode(errors="replace"))


def stream(port, i, tokens):
    """One streamed completion over a plain socket, read as it comes and
    not parsed but for its usage chunk (the clients share the server's
    CPUs): (seconds to the first token, seconds to [DONE], completion
    tokens)."""
    body = json.dumps({"model": NAME, "prompt": "Client %d says:" % i, "max_tokens": tokens, "temperature": 1.0,
                       "seed": i, "stream": True, "stream_options": {"include_usage": True}}).encode()
    head = ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % len(body)).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.monotonic()
        sock.sendall(head + body)
        got, first = b"", None
        while not got.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
            data = sock.recv(1 << 16)
            if not data:
                raise SystemExit("the server closed the stream early")
            got += data
            if first is None and b"data: " in got:
                first = time.monotonic() - t0
        done = time.monotonic() - t0
    used = json.loads(re.search(rb'"usage":(\{[^}]*\})', got).group(1))["completion_tokens"]
    return first, done, used


def round_(port, clients, tokens):
    """All clients at once: (output tokens/s, TTFTs)."""
    results = [None] * clients
    barrier = threading.Barrier(clients + 1)

    def run(i):
        barrier.wait()
        results[i] = stream(port, i, tokens)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return sum(r[2] for r in results) / wall, sorted(r[0] for r in results), sum(r[2] for r in results)


def percentile(xs, p):
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5, help="measured rounds; the median rate is reported")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp()
    try:
        torch.manual_seed(0)
        gpt.save(gpt.GPT(gpt.Config(block_size=128, n_layer=2, n_head=2, n_embd=32)), tmp)
        print("llm-torch bench: tiny random GPT (2 layers, 2 heads, 32 dims, context 128), %d streaming clients x %d "
              "tokens, %d CPUs, load average %.2f" % (args.clients, args.tokens, os.cpu_count(), os.getloadavg()[0]))
        rates = {}
        for seqs in (16, 1):
            proc, port = start(tmp, {"max_num_seqs": str(seqs)})
            try:
                round_(port, args.clients, args.tokens)  # warm-up
                runs = [round_(port, args.clients, args.tokens) for _ in range(args.rounds)]
            finally:
                proc.terminate()
                proc.wait(10)
            rate = sorted(r[0] for r in runs)[len(runs) // 2]
            ttft = sorted(t for r in runs for t in r[1])
            total = runs[0][2]
            rates[seqs] = rate
            print("max_num_seqs %2d: %7.0f output tokens/s (median of %d rounds of %d tokens), TTFT p50 %6.1f ms, p95 %6.1f ms" % (
                seqs, rate, len(runs), total, 1000 * percentile(ttft, 50), 1000 * percentile(ttft, 95)))
        print("continuous batching: %.1fx the throughput of max_num_seqs 1" % (rates[16] / rates[1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
