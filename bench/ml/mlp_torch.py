"""PyTorch CPU reference for the MLP training benchmark.

Trains a 30-64-64-1 ReLU net (float32, Adam, BCE-with-logits, batch 256,
one thread) on breast_cancer for a fixed number of epochs and prints the
training throughput in samples per second as JSON.
"""
import json
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)

path = sys.argv[1] if len(sys.argv) > 1 else "examples/datasets/breast_cancer.csv"
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
x, y = data[:, :-1], data[:, -1:]
x = (x - x.mean(0)) / x.std(0)
x, y = torch.from_numpy(x), torch.from_numpy(y)
n = x.shape[0]

net = torch.nn.Sequential(
    torch.nn.Linear(30, 64), torch.nn.ReLU(),
    torch.nn.Linear(64, 64), torch.nn.ReLU(),
    torch.nn.Linear(64, 1),
)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = torch.nn.BCEWithLogitsLoss()


def epoch():
    perm = torch.randperm(n)
    for i in range(0, n, 256):
        idx = perm[i:i + 256]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return loss.item()


for _ in range(5):  # warm-up
    epoch()
t0 = time.perf_counter()
for _ in range(epochs):
    last = epoch()
dt = time.perf_counter() - t0
print(json.dumps({"framework": "pytorch " + torch.__version__, "threads": torch.get_num_threads(),
                  "epochs": epochs, "samples_per_s": epochs * n / dt, "final_loss": last}))
