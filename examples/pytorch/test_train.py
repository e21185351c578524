"""Tests of the PyTorch example's export (standard library unittest):
/usr/bin/python3 -m unittest discover -s examples/pytorch"""

import json
import os
import tempfile
import unittest

import torch

import train


class ExportTest(unittest.TestCase):
    def test_onnx_export_picks_the_torchscript_exporter_where_there_is_a_choice(self):
        def new_export(model, args, f, *, dynamo=True, **kw):  # PyTorch 2.9 and later
            pass

        def old_export(model, args, f, opset_version=None, input_names=None, output_names=None,
                       dynamic_axes=None):  # PyTorch 1.13
            pass

        self.assertEqual(train.onnx_export_options(new_export), {"dynamo": False})
        self.assertEqual(train.onnx_export_options(old_export), {})
        self.assertIsInstance(train.onnx_export_options(torch.onnx.export), dict)

    def test_onnx_export_keeps_a_dynamic_batch(self):
        try:
            import onnx
        except ImportError:
            self.skipTest("no onnx package (Debian's python3-onnx)")
        torch.manual_seed(0)
        meta = {"features": ["a", "b", "c"], "task": "classification", "classes": ["x", "y"]}
        model = train.Model(3, [4], 2)
        with tempfile.TemporaryDirectory() as out:
            train.export(model, meta, {"export": "onnx", "hidden": [4]}, out, {})
            graph = onnx.load(os.path.join(out, "model.onnx")).graph
            batch = graph.input[0].type.tensor_type.shape.dim[0]
            self.assertEqual(batch.dim_param, "batch", "the batch dimension is dynamic")
            with open(os.path.join(out, "model.json")) as f:
                self.assertEqual(json.load(f)["output"], "logits")


if __name__ == "__main__":
    unittest.main()
