"""Train the PyTorch example briefly, then print the rows it was given and
PyTorch's outputs for them as JSON: {"onnx": path, "x": [[..]], "y": [[..]]}."""
import importlib.util
import json
import os
import subprocess
import sys

import torch

example, data_dir, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
env = dict(os.environ, BMAAS_DATA_DIR=data_dir, BMAAS_OUTPUT_DIR=out_dir,
           BMAAS_CHECKPOINT_DIR=os.path.join(out_dir, "ck"), BMAAS_METRICS_FILE=os.path.join(out_dir, "m.jsonl"),
           BMAAS_HPARAMS=json.dumps({"epochs": 2, "hidden": "16,8"}))
subprocess.run([sys.executable, example], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
spec = importlib.util.spec_from_file_location("example", example)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
info = json.load(open(os.path.join(out_dir, "model.json")))
n_out = len(info["classes"]) if info["task"] == "classification" else 1
model = mod.Model(len(info["features"]), info["hidden"], n_out)
model.load_state_dict(torch.load(os.path.join(out_dir, "model.pt")))
model.eval()
csv = [f for f in os.listdir(data_dir) if f.endswith(".csv")][0]
x, _, _ = mod.load_csv(os.path.join(data_dir, csv), info["target"])
with torch.no_grad():
    y = model(x)
print(json.dumps({"onnx": os.path.join(out_dir, "model.onnx"), "x": x.tolist(), "y": y.tolist()}))
