#!/usr/bin/env bash
# Native engine benchmarks next to their references, one thread each.
# Usage: bench/ml/run.sh (from the repository root).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
echo "== MLP training throughput (30-64-64-1, float32, Adam, batch 256, breast_cancer)"
GOMAXPROCS=1 go test -run '^$' -bench 'BenchmarkTrainBreastCancer' -benchtime 3s ./pkg/ml/mlp/
"$PY" bench/ml/mlp_torch.py examples/datasets/breast_cancer.csv 200 || echo "pytorch unavailable"
echo "== Logistic regression fit (breast_cancer, 400 rows, C=1)"
GOMAXPROCS=1 go test -run '^$' -bench 'BenchmarkLogisticFit' -benchtime 2s ./bench/ml/
"$PY" bench/ml/logistic_sklearn.py examples/datasets/breast_cancer.csv || echo "scikit-learn unavailable"
echo "== Batch prediction latency through the artifact"
GOMAXPROCS=1 go test -run '^$' -bench 'BenchmarkPredict' -benchtime 2s ./bench/ml/
