"""The configuration file's contexts: where the file is, what it may hold,
which context is selected, and the precedence argument > environment >
context > default of each setting."""

import os
import sys
import tempfile
import unittest
import urllib.request
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bmaas import Client  # noqa: E402
from bmaas._config import config_path, load_config, resolve  # noqa: E402

CONFIG = """\
# two servers
current-context: prod
contexts:
  - name: prod
    server: bmaas.example.com:7070        # gRPC address (the CLI's)
    url: https://bmaas.example.com:8080   # HTTP edge
    token: bmaas_prod_secret
    project: vision
    ca-file: /etc/bmaas/ca.crt
    cert-file: certs/client.crt
    key-file: "certs/client.key"
  - name: laptop
    server: 127.0.0.1:7070
    url: http://127.0.0.1:8080
    token-file: laptop.token
  - name: 'quoted # not a comment'
    project: "007"
"""

# Every variable the settings read, unset.
CLEAN = {k: "" for k in ("BMAAS_URL", "BMAAS_TOKEN", "BMAAS_PROJECT", "BMAAS_CONTEXT", "BMAAS_TLS_CA",
                         "BMAAS_TLS_CERT", "BMAAS_TLS_KEY")}


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(self.dir, ignore_errors=True))
        self.path = self.write("config.yaml", CONFIG)
        self.write("laptop.token", "bmaas_laptop_secret\n")

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def env(self, **kw):
        return dict(CLEAN, BMAAS_CONFIG=self.path, **kw)

    def test_the_file_is_found_by_bmaas_config_then_xdg_then_home(self):
        self.assertEqual(config_path({"BMAAS_CONFIG": "/a/c.yaml", "XDG_CONFIG_HOME": "/x"}), "/a/c.yaml")
        self.assertEqual(config_path({"XDG_CONFIG_HOME": "/x"}), "/x/bmaas/config.yaml")
        with mock.patch.dict(os.environ, {"HOME": "/home/u"}):
            self.assertEqual(config_path({}), "/home/u/.config/bmaas/config.yaml")

    def test_reads_the_contexts_as_strings(self):
        cfg = load_config(self.path)
        self.assertEqual(cfg["current-context"], "prod")
        self.assertEqual([c["name"] for c in cfg["contexts"]], ["prod", "laptop", "quoted # not a comment"])
        self.assertEqual(cfg["contexts"][0]["url"], "https://bmaas.example.com:8080", "a trailing comment is dropped")
        self.assertEqual(cfg["contexts"][0]["key-file"], "certs/client.key")
        self.assertEqual(cfg["contexts"][2]["project"], "007", "a value stays a string")

    def test_the_sequence_may_sit_at_its_keys_indentation(self):
        path = self.write("kubectl-style.yaml", "contexts:\n- name: a\n  url: http://a:8080\n- name: b\n"
                                                "current-context: b\n")
        cfg = load_config(path)
        self.assertEqual((cfg["current-context"], [c["name"] for c in cfg["contexts"]]), ("b", ["a", "b"]))

    def test_keys_it_does_not_know_are_ignored(self):
        path = self.write("more.yaml", "preferences:\n  colors: [red, blue]\n  editor: {name: vi}\n"
                                       "current-context: a\ncontexts:\n    - name: a\n      url: http://a:8080\n"
                                       "      extensions:\n        - x: 1\n      aliases: [b, c]\n")
        self.assertEqual(load_config(path), {"current-context": "a", "contexts": [{"name": "a", "url": "http://a:8080"}]})
        self.assertEqual(resolve(environ=dict(CLEAN, BMAAS_CONFIG=path)).url, "http://a:8080")

    def test_a_missing_or_empty_file_configures_nothing(self):
        for path in (os.path.join(self.dir, "none.yaml"), self.write("empty.yaml", "# nothing yet\n")):
            self.assertEqual(load_config(path), {"current-context": None, "contexts": []})
            s = resolve(environ=dict(CLEAN, BMAAS_CONFIG=path))
            self.assertEqual((s.url, s.token, s.project, s.context), ("http://127.0.0.1:8080", None, None, None))

    def test_the_current_context_gives_every_setting(self):
        s = resolve(environ=self.env())
        self.assertEqual(s.context, "prod")
        self.assertEqual((s.url, s.token, s.project), ("https://bmaas.example.com:8080", "bmaas_prod_secret", "vision"))
        self.assertEqual(s.ca_file, "/etc/bmaas/ca.crt")
        self.assertEqual(s.cert_file, os.path.join(self.dir, "certs", "client.crt"),
                         "a relative path is relative to the file's directory")
        self.assertEqual(s.key_file, os.path.join(self.dir, "certs", "client.key"))
        self.assertNotIn("bmaas_prod_secret", repr(s))

    def test_the_context_is_chosen_by_argument_then_bmaas_context_then_current(self):
        self.assertEqual(resolve(environ=self.env(BMAAS_CONTEXT="laptop")).context, "laptop")
        s = resolve(context="quoted # not a comment", environ=self.env(BMAAS_CONTEXT="laptop"))
        self.assertEqual((s.context, s.project, s.url), ("quoted # not a comment", "007", "http://127.0.0.1:8080"))

    def test_token_file(self):
        s = resolve(context="laptop", environ=self.env())
        self.assertEqual((s.url, s.token, s.project), ("http://127.0.0.1:8080", "bmaas_laptop_secret", None))
        os.remove(os.path.join(self.dir, "laptop.token"))
        with self.assertRaisesRegex(ValueError, "token-file of context 'laptop'.*laptop.token"):
            resolve(context="laptop", environ=self.env())
        self.assertEqual(resolve(context="laptop", token="t", environ=self.env()).token, "t",
                         "a token given elsewhere leaves the file unread")
        self.write("laptop.token", "\n")
        with self.assertRaisesRegex(ValueError, "laptop.token of context 'laptop' is empty"):
            resolve(context="laptop", environ=self.env())

    def test_precedence_argument_then_environment_then_context_then_default(self):
        env = self.env(BMAAS_URL="http://env:1", BMAAS_TOKEN="env-token", BMAAS_PROJECT="env-project",
                       BMAAS_TLS_CA="/env/ca", BMAAS_TLS_CERT="/env/crt", BMAAS_TLS_KEY="/env/key")
        s = resolve(environ=env)
        self.assertEqual((s.url, s.token, s.project, s.ca_file, s.cert_file, s.key_file),
                         ("http://env:1", "env-token", "env-project", "/env/ca", "/env/crt", "/env/key"))
        s = resolve(url="http://arg:2", token="arg-token", project="arg-project", ca_file="/a/ca", cert_file="/a/crt",
                    key_file="/a/key", environ=env)
        self.assertEqual((s.url, s.token, s.project, s.ca_file, s.cert_file, s.key_file),
                         ("http://arg:2", "arg-token", "arg-project", "/a/ca", "/a/crt", "/a/key"))
        s = resolve(token="", project="", environ=env)
        self.assertEqual((s.token, s.project), (None, None), "an empty argument is none, whatever else says")
        s = resolve(environ=self.env(BMAAS_PROJECT="env-project"))
        self.assertEqual((s.project, s.token), ("env-project", "bmaas_prod_secret"), "each setting on its own")
        s = resolve(context="laptop", environ=self.env(BMAAS_TOKEN="env-token"))
        self.assertEqual(s.token, "env-token", "the environment beats a context's token-file")

    def test_an_unknown_context_names_it_and_the_known_ones(self):
        with self.assertRaises(ValueError) as cm:
            resolve(context="staging", environ=self.env())
        msg = str(cm.exception)
        self.assertIn("'staging'", msg)
        self.assertIn("known contexts: laptop, prod, quoted # not a comment", msg)
        self.assertIn(self.path, msg)
        with self.assertRaisesRegex(ValueError, "'qa'.*known contexts: laptop"):
            resolve(environ=self.env(BMAAS_CONTEXT="qa"))
        bad_current = self.write("current.yaml", "current-context: gone\ncontexts: []\n")
        with self.assertRaisesRegex(ValueError, "'gone'.*known contexts: none"):
            resolve(environ=dict(CLEAN, BMAAS_CONFIG=bad_current))
        with self.assertRaisesRegex(ValueError, "'x'.*known contexts: none"):
            resolve(context="x", environ=dict(CLEAN, BMAAS_CONFIG=os.path.join(self.dir, "missing.yaml")))

    def test_token_and_token_file_together_name_the_context(self):
        path = self.write("both.yaml", "contexts:\n  - name: ci\n    token: a\n    token-file: b\n  - name: ok\n")
        with self.assertRaisesRegex(ValueError, "context 'ci' .*both token and token-file"):
            resolve(context="ci", environ=dict(CLEAN, BMAAS_CONFIG=path))
        self.assertEqual(resolve(context="ok", environ=dict(CLEAN, BMAAS_CONFIG=path)).context, "ok")

    def test_malformed_files_name_the_file_and_line(self):
        cases = {
            "contexts:\n  - name: a\n    url: [http://a]\n": r"contexts\[0\].url must be a string",
            "contexts:\n  - name: a\n    token:\n      file: x\n": r"contexts\[0\].token must be a string",
            "contexts:\n  - name: a\n    url: !!str x\n": r":3: unsupported YAML '!'",
            "contexts: prod\n": "contexts must be a list",
            "contexts:\n  - prod\n": r"contexts\[0\] must be a mapping",
            "contexts:\n  - url: http://a\n": r"contexts\[0\] has no name",
            "contexts:\n  - name: a\n  - name: a\n": "context 'a' is defined twice",
            "- a\n": "expected a mapping",
            "current-context: [a]\n": "current-context must be a context's name",
            "contexts: [a, [b\n": r":1: a flow sequence must end on its line",
            "contexts:\n  - name: a\n\turl: b\n": ":3: tabs in indentation",
            "token: &anchor x\n": ":1: unsupported YAML '&'",
        }
        for text, want in cases.items():
            path = self.write("bad.yaml", text)
            with self.subTest(text=text), self.assertRaisesRegex(ValueError, want) as cm:
                load_config(path)
            self.assertIn(path, str(cm.exception))

    def test_client_uses_the_context(self):
        ca = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "ca.crt")
        self.path = self.write("client.yaml", CONFIG.replace("/etc/bmaas/ca.crt", ca).replace(
            "    cert-file: certs/client.crt\n    key-file: \"certs/client.key\"\n", ""))
        with mock.patch.dict(os.environ, self.env()):
            c = Client()
            self.assertEqual((c.url, c.project, c.context, c._t.token),
                             ("https://bmaas.example.com:8080", "vision", "prod", "bmaas_prod_secret"))
            self.assertIsNot(c._t._open, urllib.request.urlopen, "the context's ca-file is trusted")
            c = Client("http://other:8080", context="laptop", project="p")
            self.assertEqual((c.url, c.project, c.context, c._t.token), ("http://other:8080", "p", "laptop",
                                                                         "bmaas_laptop_secret"))
            with self.assertRaisesRegex(ValueError, "'nope'"):
                Client(context="nope")
        with mock.patch.dict(os.environ, dict(self.env(), BMAAS_CONTEXT="laptop")):
            self.assertEqual(Client().context, "laptop")


if __name__ == "__main__":
    unittest.main()
