"""Updates send an update_mask naming exactly the fields they change."""

import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_client import client  # noqa: E402


class UpdateTest(unittest.TestCase):
    def test_update_deployment_sends_a_mask(self):
        c, fake = client((200, {"deployment": {"name": "iris", "min_replicas": 2}}),
                         (200, {"deployment": {"name": "iris"}}))
        self.assertEqual(c.update_deployment("iris", min_replicas=2, canary_percent=None)["min_replicas"], 2)
        method, url, body, _ = fake.requests[0]
        self.assertEqual(method, "PATCH")
        u = urllib.parse.urlsplit(url)
        self.assertEqual(u.path, "/v1/deployments/iris")
        self.assertEqual(urllib.parse.parse_qs(u.query), {"update_mask": ["canary_percent,min_replicas"]})
        self.assertEqual(body, {"min_replicas": 2}, "a field given as None is cleared: named, not sent")
        c.scale("iris", max_replicas=3)
        self.assertIn("update_mask=max_replicas", fake.requests[1][1])
        self.assertEqual(fake.requests[1][2], {"max_replicas": 3})
        with self.assertRaisesRegex(ValueError, "give the fields"):
            c.update_deployment("iris")


if __name__ == "__main__":
    unittest.main()
