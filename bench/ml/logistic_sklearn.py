"""scikit-learn reference for BenchmarkLogisticFit: binary logistic
regression (lbfgs, C=1) on the standardised first 400 rows of
breast_cancer. Prints the mean fit time as JSON."""
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

path = sys.argv[1] if len(sys.argv) > 1 else "examples/datasets/breast_cancer.csv"
d = np.loadtxt(path, delimiter=",", skiprows=1)
x, y = d[:400, :-1], d[:400, -1].astype(int)
x = StandardScaler().fit_transform(x)
for _ in range(5):
    LogisticRegression(C=1.0).fit(x, y)
n = 200
t0 = time.perf_counter()
for _ in range(n):
    LogisticRegression(C=1.0).fit(x, y)
dt = (time.perf_counter() - t0) / n
print(json.dumps({"framework": "scikit-learn " + sklearn.__version__, "fit_ms": dt * 1e3}))
