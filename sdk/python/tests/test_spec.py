"""Tests of the spec reader: the YAML subset against PyYAML (when this
Python has it) and against what each construct means."""

import glob
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from bmaas._spec import load_spec, parse_yaml  # noqa: E402

EXAMPLES = sorted(glob.glob(os.path.join(HERE, "..", "..", "..", "examples", "experiments", "*.y*ml")))

try:
    import yaml
except ImportError:
    yaml = None

SAMPLE = """\
# a comment
name: "x # not a comment"   # a comment
model: 'it''s'
n: 3
f: -1.5e-3
t: true
u: false
none: ~
empty:
list:
- a
- 2
nested:
  deep:
    - {k: v, n: 1}
    - [1, "two", three]
    -
      x: 1
  - 
"""


class SpecTest(unittest.TestCase):
    def test_examples_read_as_pyyaml_reads_them(self):
        self.assertTrue(EXAMPLES, "no example specs")
        for path in EXAMPLES:
            with open(path) as f:
                text = f.read()
            got = parse_yaml(text, path)
            self.assertEqual(got["params"][0]["type"], "log_uniform", path)
            if yaml is not None:
                self.assertEqual(got, yaml.safe_load(text), path)

    def test_constructs(self):
        text = SAMPLE.replace("  - \n", "")
        want = {"name": "x # not a comment", "model": "it's", "n": 3, "f": -1.5e-3, "t": True, "u": False,
                "none": None, "empty": None, "list": ["a", 2],
                "nested": {"deep": [{"k": "v", "n": 1}, [1, "two", "three"], {"x": 1}]}}
        self.assertEqual(parse_yaml(text), want)
        if yaml is not None:
            self.assertEqual(yaml.safe_load(text), want)

    def test_unsupported_says_what_to_do(self):
        for text in ("a: |\n  text\n", "a: &x 1\n", "a: 1\n  b: 2\n", "a: [1, 2\n", "- a\nb: 1\n"):
            with self.assertRaisesRegex(ValueError, "PyYAML or write the spec as JSON", msg=text):
                parse_yaml(text)

    def test_load_spec(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.json")
            with open(path, "w") as f:
                json.dump({"name": "j"}, f)
            self.assertEqual(load_spec(path), {"name": "j"})
            with self.assertRaisesRegex(FileNotFoundError, "nope.yaml"):
                load_spec(os.path.join(tmp, "nope.yaml"))


if __name__ == "__main__":
    unittest.main()
