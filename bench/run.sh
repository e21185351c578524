#!/usr/bin/env bash
# Every benchmark of the project, with its reference measured in the same
# run. Figures go to bench/README.md (and the sections it links).
# Usage: make bench   (or bench/run.sh from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Registry against raw etcd on the same embedded etcd; artifact throughput over loopback"
go test -run '^$' -bench . -benchtime 2s ./bench/registry/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'

echo
echo "== Scheduler placement: 5,000 simulated nodes, 10,000 queued jobs (pure, and persisted to etcd)"
go test -run '^$' -bench . -benchtime 2x ./bench/scheduler/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'

echo
echo "== Submit-to-RUNNING latency in bmaas up with free capacity (100 builtin jobs, one at a time)"
go test -run '^$' -bench . -benchtime 100x ./bench/jobs/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'

echo
echo "== Hyperparameter search: ASHA vs a full run (digits MLP), TPE vs random search (Branin)"
go run ./bench/hpo -data examples/datasets/digits.csv

echo
echo "== Orchestration overhead: 100 trials of 1 s at parallelism 4 in bmaas up (ideal 25 s)"
go test -run '^$' -bench . -benchtime 1x ./bench/hpo/overhead/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'

echo
echo "== Evaluation of 100,000 rows: through a serving runtime (ONNX) vs in process (native), same logistic regression"
go test -run '^$' -bench . -benchtime 3x ./bench/evaluation/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'

echo
echo "== Serving: gateway vs raw grpc-go echo, added latency, REST vs gRPC, dynamic batching, protocol bridging, a torch-v2 replica direct vs through the gateway (bench/serving/README.md)"
go test -run '^$' -bench . -benchtime 1x ./bench/serving/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'

echo
echo "== Continuous batching in the llm-torch runtime: 16 streams, max_num_seqs 16 vs 1 (BenchmarkLLM in bench/serving runs the routing and streaming figures)"
/usr/bin/python3 examples/runtimes/llm-torch/bench.py

echo
echo "== Node model cache: replica start on a download vs a cache hit, registry loopback download in the same run (BMAAS_BENCH_ARTIFACT_MIB, default 256)"
go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/modelcache/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)|start_test'

echo
echo "== Live monitoring: the monitor's rows per second on one core (decode, window, drift tests), and a drift test alone"
go test -run '^$' -bench BenchmarkDriftRows -benchtime 2s -cpu 1 ./services/evaluator/monitor/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'
go test -run '^$' -bench BenchmarkNumeric -benchtime 1s -cpu 1 ./pkg/ml/drift/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)'

echo
echo "== Console with 1,000 models and 10,000 versions: first paint and update latency in headless Chromium (BMAAS_BENCH_CONSOLE_BEFORE=REV serves an older console beside it)"
go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/console/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)|console_test'

echo
bench/ml/run.sh

echo
echo "== Authorization: a unary gRPC call over loopback, auth off vs the mesh token vs an API token (p50)"
go test -run '^$' -bench . -benchtime 20000x ./bench/authz/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)|round'
