#!/usr/bin/env bash
# make gpu-check: the checks that need an NVIDIA GPU, on a machine that has
# one, CUDA PyTorch in its python3, and no Go toolchain or package index.
# It takes a prebuilt, stripped binary (make gpu-check-build here, then copy
# bin/bmaas and this repository there) and, in a few minutes, shows:
#
#   1. NVML discovery: the agent lists the GPU with its memory;
#   2. the PyTorch example trains with --gpus 1 on CUDA (samples/s);
#   3. the torch-v2 runtime serves that version on CUDA, through the
#      gateway (latency at concurrency 1, throughput at 32);
#   4. evaluation through the runtime on the GPU;
#   5. the language model of examples/llm trains on CUDA and llm-torch
#      serves it there, through the gateway's OpenAI routes (tokens/s,
#      time to first token).
#
# Figures go to stdout and to $OUT/gpu-check.txt when OUT is set.
#
#   BMAAS_BIN=bin/bmaas PYTHON=python3 bench/gpu/check.sh
#
# GPU_CHECK_CPU_ONLY=1 runs every step on a machine without a GPU (one
# fake GPU, PyTorch on CPU) to check the script itself; its figures are
# not the GPU's.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
BIN=$(readlink -f "${BMAAS_BIN:-bin/bmaas}")
PY=$(command -v "${PYTHON:-python3}")
work=$(mktemp -d)
grpc=127.0.0.1:${GRPC_PORT:-17070}
http=127.0.0.1:${HTTP_PORT:-18080}
export BMAAS_SERVER=$grpc BMAAS_URL=http://$http
report=${OUT:+$OUT/gpu-check.txt}
say() { echo "$*"; [ -z "$report" ] || echo "$*" >>"$report"; }
fail() { say "FAILED: $*"; tail -40 "$work/up.log" || true; exit 1; }
# wait_ready DEPLOYMENT waits up to 2 minutes for its one replica.
wait_ready() {
  for _ in $(seq 240); do
    "$BIN" deploy get "$1" -o json | grep -q '"ready_replicas": *1' && return 0
    sleep 0.5
  done
  "$BIN" deploy get "$1"
  fail "no ready replica of $1"
}
cpu_only=${GPU_CHECK_CPU_ONLY:-}
fake=()
[ -z "$cpu_only" ] || fake=(--trainer-agent.fake-gpus 1)

[ -n "$cpu_only" ] || "$PY" - <<'PY' || fail "python3 has no CUDA PyTorch"
import torch
assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
PY

sandbox=bwrap
command -v bwrap >/dev/null || sandbox=none # no package index there: run tasks unconfined
"$BIN" up --data-dir "$work/data" --grpc-addr "$grpc" --http-addr "$http" \
  --registry.import-roots="$root/examples" --trainer-agent.sandbox "$sandbox" "${fake[@]}" >"$work/up.log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 120); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.5; done
curl -sf "http://$http/readyz" >/dev/null || fail "bmaas up did not get ready"
say "== bmaas up ready (sandbox: $sandbox${cpu_only:+, CPU only: a fake GPU}) $(date -u +%FT%TZ)"

say "== 1. NVML discovery"
"$BIN" node list -o json >"$work/nodes.json"
"$PY" - "$work/nodes.json" "$cpu_only" <<'PY' | tee -a ${report:-/dev/null}
import json, sys
nodes = json.load(open(sys.argv[1])).get("nodes", [])
gpus = [g for n in nodes for g in n.get("gpus", [])]
for g in gpus:
    print("GPU %s %s: %.1f GiB%s" % (g.get("index", 0), g.get("model"), int(g.get("memory_bytes", 0)) / 2**30,
                                     " (fake)" if g.get("fake") else ""))
assert gpus and (sys.argv[2] or not any(g.get("fake") for g in gpus)), "no GPU discovered through NVML"
PY

say "== 2. the PyTorch example on CUDA (--gpus 1)"
"$BIN" dataset upload breast-cancer examples/datasets/breast_cancer.csv >/dev/null
start=$(date +%s.%N)
"$BIN" train --model bc-torch --dataset breast-cancer --bundle examples/pytorch --command "$PY" \
  --gpus 1 --memory 8Gi --param epochs=30 --param export=torch --wait -o json -- train.py >"$work/job.json" \
  || fail "training on the GPU"
end=$(date +%s.%N)
job=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/job.json")
"$BIN" job logs "$job" >"$work/job.log"
[ -n "$cpu_only" ] || grep -q " on cuda" "$work/job.log" || fail "the job did not train on cuda: $(grep -m1 'rows' "$work/job.log")"
"$PY" - "$work/job.log" "$start" "$end" <<'PY' | tee -a ${report:-/dev/null}
import re, sys
log = open(sys.argv[1]).read()
rows = int(re.search(r"(\d+) train,", log).group(1))
times = [float(t) for t in re.findall(r"\((\d+\.\d+)s\)", log)]
dev = re.search(r" on (cuda\S*|cpu)", log)
print("trained %d epochs of %d rows on %s: %.0f samples/s in the epochs (%.1f s for the whole job)"
      % (len(times), rows, dev.group(1) if dev else "?", rows * len(times) / sum(times), float(sys.argv[3]) - float(sys.argv[2])))
PY

say "== 3. torch-v2 serving on CUDA"
sed "s#\"/usr/bin/python3\"#\"$PY\"#" examples/runtimes/torch-v2/runtime.json >"$work/runtime.json"
"$BIN" runtime create -f "$work/runtime.json" --code examples/runtimes/torch-v2 >/dev/null || fail "runtime create"
"$BIN" deploy create --model bc-torch@latest --runtime torch-v2 --gpus 1 --memory 8Gi --min 1 --max 1 >/dev/null \
  || fail "deploy create"
wait_ready bc-torch
"$BIN" deploy logs bc-torch >"$work/replica.log" 2>&1 || true
[ -n "$cpu_only" ] || grep -qi "cuda" "$work/replica.log" || fail "the replica does not say it runs on cuda: $(head -3 "$work/replica.log")"
"$PY" - "$http" <<'PY' | tee -a ${report:-/dev/null}
import concurrent.futures, json, statistics, sys, time, urllib.request
url = "http://%s/v2/models/bc-torch/infer" % sys.argv[1]
row = [17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4,
       0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119,
       0.2654, 0.4601, 0.1189]
body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 30], "data": row}]}).encode()
def call():
    t = time.perf_counter()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        json.load(r)
    return time.perf_counter() - t
for _ in range(20):
    call()
lat = sorted(call() for _ in range(300))
print("through the gateway, REST, one row, concurrency 1: p50 %.2f ms, p99 %.2f ms" % (1e3 * lat[150], 1e3 * lat[296]))
n, t = 2000, time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(32) as ex:
    list(ex.map(lambda _: call(), range(n)))
print("concurrency 32: %.0f requests/s" % (n / (time.perf_counter() - t)))
PY

say "== 4. evaluation through the runtime"
"$BIN" evaluate --model bc-torch@latest --job "$job" -o json >"$work/eval.json" || fail "evaluate"
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1])); e=e.get("evaluation", e); print("accuracy %.4f on %s rows, runs on %s" % (e["metrics"]["accuracy"], e["rows"], e["runs_on"]))' "$work/eval.json" \
  | tee -a ${report:-/dev/null}
say "== 5. the language model on CUDA: trained, served by llm-torch"
"$BIN" deploy delete bc-torch >/dev/null || fail "deploy delete bc-torch (frees the GPU)"
"$BIN" train --model tiny-gpt --bundle examples/llm --command "$PY" --gpus 1 --memory 8Gi \
  --param steps="${LLM_STEPS:-600}" --param batch_size=32 --param eval_interval=100 --wait -o json -- train.py \
  >"$work/llm-job.json" || fail "training the language model on the GPU"
llmjob=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/llm-job.json")
"$BIN" job logs "$llmjob" >"$work/llm-job.log"
[ -n "$cpu_only" ] || grep -q " on cuda" "$work/llm-job.log" || fail "the language model did not train on cuda"
"$PY" - "$work/llm-job.log" <<'PY' | tee -a ${report:-/dev/null}
import re, sys
log = open(sys.argv[1]).read()
rates = [float(r) for r in re.findall(r"(\d+) tokens/s", log)]
losses = re.findall(r"validation loss ([\d.]+)", log)
print("language model: %s tokens/s in training (median of %d progress lines), validation loss %s -> %s"
      % (sorted(rates)[len(rates) // 2] if rates else "?", len(rates), losses[0] if losses else "?", losses[-1] if losses else "?"))
PY
sed "s#\"/usr/bin/python3\"#\"$PY\"#" examples/runtimes/llm-torch/runtime.json >"$work/llm-runtime.json"
"$BIN" runtime create -f "$work/llm-runtime.json" --code examples/runtimes/llm-torch >/dev/null || fail "runtime create llm-torch"
"$BIN" deploy create --model tiny-gpt@latest --runtime llm-torch --gpus 1 --memory 8Gi --min 1 --max 1 >/dev/null \
  || fail "deploy create tiny-gpt"
wait_ready tiny-gpt
"$BIN" deploy logs tiny-gpt >"$work/llm-replica.log" 2>&1 || true
[ -n "$cpu_only" ] || grep -qi "cuda" "$work/llm-replica.log" || fail "the llm-torch replica does not say it runs on cuda"
"$PY" - "$http" <<'PY' | tee -a ${report:-/dev/null}
import concurrent.futures, json, statistics, sys, time, urllib.request
url = "http://%s/openai/v1/chat/completions" % sys.argv[1]
def stream(i, tokens=64):
    body = json.dumps({"model": "tiny-gpt", "messages": [{"role": "user", "content": "Tell me of case %d." % i}],
                       "max_tokens": tokens, "temperature": 0, "stream": True}).encode()
    t = time.perf_counter()
    first, n = None, 0
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        for line in r:
            if line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
                n += 1
                first = first or time.perf_counter() - t
    return first, n, time.perf_counter() - t
stream(0)
one = [stream(i) for i in range(10)]
ttft = sorted(f for f, _, _ in one)
print("llm-torch through the gateway, one stream: time to first token p50 %.1f ms, %.0f tokens/s per stream"
      % (1e3 * ttft[5], statistics.median(n / (e - f) for f, n, e in one if e > f)))
t = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    many = list(ex.map(stream, range(32)))
print("16 concurrent streams: %.0f output tokens/s in all" % (sum(n for _, n, _ in many) / (time.perf_counter() - t)))
PY
say "== gpu-check passed"
