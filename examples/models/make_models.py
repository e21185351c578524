"""Makes the example ONNX models the README uploads: logistic regressions of
the breast cancer data (examples/datasets/breast_cancer.csv), standardised,
exported by hand as an ONNX graph (Sub, Div, Gemm, Softmax; opset 13) that
maps input [rows, 30] (FP32) to probabilities [rows, 2] of classes 0 and 1.

    /usr/bin/python3 examples/models/make_models.py

needs Debian's python3-sklearn and python3-onnx; the outputs are committed.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "datasets", "breast_cancer.csv")


def export(path, mean, std, coef, intercept, c):
    w = np.stack([-coef, coef], axis=1).astype(np.float32) / 2  # softmax of [-z/2, z/2] = sigmoid(z)
    b = np.array([-intercept, intercept], dtype=np.float32) / 2
    inits = [numpy_helper.from_array(mean.astype(np.float32), "mean"), numpy_helper.from_array(std.astype(np.float32), "std"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    nodes = [helper.make_node("Sub", ["input", "mean"], ["centred"]),
             helper.make_node("Div", ["centred", "std"], ["scaled"]),
             helper.make_node("Gemm", ["scaled", "w", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(nodes, "breast_cancer_logreg",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["rows", mean.shape[0]])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["rows", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="bmaas-examples")
    model.ir_version = 8
    model.doc_string = "logistic regression (C=%g) of examples/datasets/breast_cancer.csv" % c
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    rows = np.genfromtxt(DATA, delimiter=",", skip_header=1)
    x, y = rows[:, :-1], rows[:, -1]
    mean, std = x.mean(axis=0), x.std(axis=0)
    for name, c in (("logreg-v1.onnx", 1.0), ("logreg-v2.onnx", 0.1)):
        m = LogisticRegression(C=c, max_iter=1000).fit((x - mean) / std, y)
        export(os.path.join(HERE, name), mean, std, m.coef_[0], m.intercept_[0], c)
        print("%s: training accuracy %.4f" % (name, m.score((x - mean) / std, y)))


if __name__ == "__main__":
    main()
