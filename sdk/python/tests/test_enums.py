"""Closed sets go to the API as enums beside the strings users write."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bmaas._evaluator import _experiment_body  # noqa: E402


class EnumTest(unittest.TestCase):
    def test_experiment_searcher_and_mode(self):
        body = _experiment_body({"searcher": "asha", "mode": "min", "model": "m"})
        self.assertEqual(body["searcher_kind"], "SEARCHER_ASHA")
        self.assertEqual(body["direction"], "DIRECTION_MINIMIZE")
        self.assertEqual((body["searcher"], body["mode"]), ("asha", "min"), "the strings stay for an older evaluator")
        body = _experiment_body({"searcher": "bogus", "model": "m"})
        self.assertNotIn("searcher_kind", body, "the evaluator refuses what the SDK does not know")
        self.assertNotIn("direction", body)


if __name__ == "__main__":
    unittest.main()
