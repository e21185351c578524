"""The identity calls against a real `bmaas up --auth`: set BMAAS_BIN to a
bmaas binary (go build -o /tmp/bmaas ./cmd/bmaas) and run

    BMAAS_BIN=/tmp/bmaas python3 -m unittest discover -s sdk/python/tests -p test_iam_server.py

The server runs in a temporary data directory on free loopback ports; the
admin token it makes (<data-dir>/secrets/admin.token) makes the projects
and tokens. Without BMAAS_BIN the tests are skipped.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from bmaas import BmaasError, Client  # noqa: E402

BIN = os.environ.get("BMAAS_BIN")
ENV = {"BMAAS_CONFIG": os.path.join(HERE, "no-such-config.yaml"), "BMAAS_URL": "", "BMAAS_TOKEN": "",
       "BMAAS_PROJECT": "", "BMAAS_CONTEXT": "", "BMAAS_TLS_CA": "", "BMAAS_TLS_CERT": "", "BMAAS_TLS_KEY": ""}


def free_addr():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % s.getsockname()[1]


def eventually(fn, what, timeout=30.0):
    """fn() once it is true (polled: the trail is written asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %ss" % (what, timeout))
        time.sleep(0.1)


@unittest.skipUnless(BIN, "BMAAS_BIN (a bmaas binary to run `bmaas up --auth`) is not set")
class IAMServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="bmaas-sdk-iam-")
        cls.log = open(os.path.join(cls.dir, "up.log"), "wb")
        for attempt in range(4):
            cls.http = free_addr()
            cls.proc = subprocess.Popen(
                [BIN, "up", "--auth", "--data-dir", os.path.join(cls.dir, "data%d" % attempt), "--embedded.fast-election",
                 "--grpc-addr", free_addr(), "--http-addr", cls.http],
                stdout=cls.log, stderr=subprocess.STDOUT, start_new_session=True)
            if cls._ready():
                break
            cls._stop()
        else:
            raise AssertionError("bmaas up --auth did not start:\n" + cls._output())
        with open(os.path.join(cls.dir, "data%d" % attempt, "secrets", "admin.token")) as f:
            cls.admin_token = f.read().strip()
        cls.url = "http://" + cls.http

    @classmethod
    def _ready(cls):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cls.proc.poll() is not None:
                return False  # a port taken meanwhile: try others
            try:
                with urllib.request.urlopen("http://%s/readyz" % cls.http, timeout=2) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    @classmethod
    def _stop(cls):
        if cls.proc.poll() is None:
            os.killpg(cls.proc.pid, signal.SIGKILL)
        cls.proc.wait()

    @classmethod
    def _output(cls):
        cls.log.flush()
        with open(cls.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    @classmethod
    def tearDownClass(cls):
        cls._stop()
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def client(self, token, **kw):
        with mock.patch.dict(os.environ, ENV):
            return Client(self.url, token=token, **kw)

    def setUp(self):
        self.admin = self.client(self.admin_token)
        self.name = "sdk-" + uuid.uuid4().hex[:8]

    def test_whoami(self):
        me = self.admin.whoami()
        self.assertEqual((me["identity"], me["auth"]), ("admin", True))
        self.assertEqual(me["bindings"], [{"project": "*", "role": "cluster-admin"}])
        with self.assertRaises(BmaasError) as cm:
            self.client(None).whoami()
        self.assertEqual(cm.exception.status, 401)

    def test_projects(self):
        p = self.admin.create_project(self.name, description="vision team", quota={"gpus": 2, "jobs": 3})
        self.assertEqual((p["name"], p["description"], p["creator"]), (self.name, "vision team", "admin"))
        self.assertEqual(int(p["quota"]["gpus"]), 2)
        self.assertIn(self.name, [x["name"] for x in self.admin.list_projects()])
        p = self.admin.update_project(self.name, quota={"gpus": 4})
        self.assertEqual((int(p["quota"]["gpus"]), p["quota"].get("jobs")), (4, 3), "jobs is not in the mask: kept")
        p = self.admin.update_project(self.name, description="cv", quota={"jobs": None})
        self.assertEqual((p["description"], int(p["quota"]["gpus"]), p["quota"].get("jobs")), ("cv", 4, None))
        self.assertEqual(self.admin.get_project(self.name)["description"], "cv")
        self.admin.delete_project(self.name)
        with self.assertRaises(BmaasError) as cm:
            self.admin.get_project(self.name)
        self.assertEqual(cm.exception.status, 404)

    def test_tokens(self):
        self.admin.create_project(self.name)
        self.addCleanup(self.admin.delete_project, self.name)
        identity = "alice-" + self.name
        tok, secret = self.admin.create_token(identity, roles={self.name: "editor"}, ttl=3600, description="laptop")
        self.assertTrue(secret.startswith("bmaas_%s_" % tok["id"]))
        self.assertIn("expire_time", tok)
        alice = self.client(secret)
        me = alice.whoami()
        self.assertEqual((me["identity"], me["token_id"]), (identity, tok["id"]))
        self.assertEqual([t["id"] for t in self.admin.list_tokens(identity=identity)], [tok["id"]])
        self.assertEqual(self.admin.get_token(tok["id"])["description"], "laptop")

        new, new_secret = self.admin.rotate_token(tok["id"], overlap=0)
        self.assertEqual(new["rotated_from"], tok["id"])
        eventually(lambda: self._refused(alice), "the old token refused once the overlap (0s) ended")
        self.assertEqual(self.client(new_secret).whoami()["token_id"], new["id"])

        self.assertIn("revoke_time", self.admin.revoke_token(new["id"]))
        eventually(lambda: self._refused(self.client(new_secret)), "the revoked token refused")
        self.assertEqual(self.admin.list_tokens(identity=identity), [])
        self.assertEqual({t["id"] for t in self.admin.list_tokens(identity=identity, all=True)}, {tok["id"], new["id"]})

        with self.assertRaises(BmaasError) as cm:
            self.admin.create_token("bob", roles={self.name: "viewer", "no-" + self.name: "viewer"})
        self.assertEqual(cm.exception.status, 400)
        self.assertTrue(cm.exception.message.startswith("roles['no-%s']: " % self.name), cm.exception.message)
        svc, _ = self.admin.create_token("svc-" + self.name, deployments=[self.name + "/iris"], service_account=True)
        self.assertEqual(svc["kind"], "IDENTITY_KIND_SERVICE_ACCOUNT")
        self.assertEqual(svc["bindings"][0]["deployment"], "iris")
        self.assertNotIn("expire_time", svc, "no ttl: it never expires")

    @staticmethod
    def _refused(c):
        try:
            c.whoami()
        except BmaasError as e:
            return e.status == 401
        return False

    def test_the_project_header_and_the_trail(self):
        self.admin.create_project(self.name)
        self.addCleanup(self.admin.delete_project, self.name)
        identity = "carol-" + self.name
        _, secret = self.admin.create_token(identity, roles={self.name: "editor"})
        # A context of the configuration file gives the url, the token
        # (from a file) and the project.
        with open(os.path.join(self.dir, self.name + ".token"), "w") as f:
            f.write(secret + "\n")
        config = os.path.join(self.dir, self.name + ".yaml")
        with open(config, "w") as f:
            f.write("current-context: other\ncontexts:\n  - name: other\n    url: http://127.0.0.1:1\n"
                    "  - name: team\n    url: %s\n    token-file: %s.token\n    project: %s\n" % (self.url, self.name, self.name))
        with mock.patch.dict(os.environ, dict(ENV, BMAAS_CONFIG=config)):
            carol = Client(context="team")
            elsewhere = Client(context="team", project="default")
        self.assertEqual((carol.project, carol.whoami()["identity"]), (self.name, identity))
        spec = {"model": "m-" + self.name, "builtin": {"algorithm": "logistic", "dataset": "d", "target_column": "t"}}
        for c in (carol, elsewhere):
            with self.assertRaises(BmaasError):
                c.submit_job(spec)  # no such model; in "default" carol holds no role at all
        mine = eventually(lambda: [r for r in self.admin.audit_records(project=self.name, identity=identity)
                                   if r["method"].endswith("/SubmitJob")], "carol's job in the trail")
        self.assertEqual([r["project"] for r in mine], [self.name], "the header put the job in the project")
        denied = eventually(lambda: [r for r in self.admin.audit_records(identity=identity, denied=True)
                                     if r.get("project") == "default"], "carol refused in default")
        self.assertEqual(denied[0]["method"], "/bmaas.scheduler.v1.SchedulerService/SubmitJob")
        self.assertNotEqual(denied[0]["code"], "OK")
        made = eventually(lambda: [r for r in self.admin.audit_records(identity="admin")
                                   if r["method"].endswith("/CreateProject") and r.get("resource") == self.name],
                          "the project's creation in the trail")
        self.assertEqual(made[0]["code"], "OK")
        self.assertEqual([r for r in self.admin.audit_records(identity="admin", denied=True) if r["code"] == "OK"], [],
                         "denied: only the refused calls")
        self.assertEqual(list(self.admin.audit_records(identity="nobody-" + self.name)), [])

    def test_names_within_projects(self):
        self.admin.create_project(self.name)
        self.addCleanup(self.admin.delete_project, self.name)
        _, secret = self.admin.create_token("dora-" + self.name, roles={self.name: "editor"})
        dora = self.client(secret)
        model = "m-" + self.name
        self.assertEqual(dora.create_model(model)["name"], "%s/%s" % (self.name, model), "a bare name is in her project")
        self.admin.create_model(model, description="the default project's")
        self.addCleanup(self.admin.delete_model, model)
        self.assertEqual([m["name"] for m in dora.list_models()], ["%s/%s" % (self.name, model)])
        self.assertNotIn("%s/%s" % (self.name, model), [m["name"] for m in self.admin.list_models()])
        # Another project's by its qualified name (escaped in the path), or
        # with the project of the client.
        self.assertEqual(self.admin.get_model("%s/%s" % (self.name, model))["name"], "%s/%s" % (self.name, model))
        in_project = self.client(self.admin_token, project=self.name)
        self.assertEqual(in_project.get_model(model)["name"], "%s/%s" % (self.name, model))
        self.assertEqual(dora.get_model(model)["name"], "%s/%s" % (self.name, model))
        with self.assertRaises(BmaasError) as cm:
            dora.get_model("default/" + model)
        self.assertEqual(cm.exception.status, 404)
        dora.delete_model(model)


if __name__ == "__main__":
    unittest.main()
