"""The identity calls (whoami, projects, tokens, the audit trail) and the
project header, without a server: requests are captured by a fake opener."""

import datetime
import os
import sys
import unittest
import urllib.parse
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from bmaas import BmaasError, Client  # noqa: E402
from bmaas._iam import duration  # noqa: E402
from test_client import Fake  # noqa: E402

# No configuration file and none of the variables: the arguments only.
HERMETIC = {"BMAAS_CONFIG": os.path.join(HERE, "no-such-config.yaml"), "BMAAS_URL": "", "BMAAS_TOKEN": "",
            "BMAAS_PROJECT": "", "BMAAS_CONTEXT": "", "BMAAS_TLS_CA": "", "BMAAS_TLS_CERT": "", "BMAAS_TLS_KEY": ""}


def client(*answers, project=None, token="t"):
    with mock.patch.dict(os.environ, HERMETIC):
        c = Client("http://127.0.0.1:8080", token=token, project=project)
    fake = Fake(*answers)
    c._t._open = fake
    return c, fake


def split(url):
    """The path and the query (one value per name) of a URL."""
    u = urllib.parse.urlsplit(url)
    return u.path, {k: v[0] if len(v) == 1 else v for k, v in urllib.parse.parse_qs(u.query).items()}


TOKEN = {"id": "abc", "identity": "alice", "kind": "IDENTITY_KIND_USER",
         "bindings": [{"project": "vision", "role": "editor"}]}


class ProjectHeaderTest(unittest.TestCase):
    def test_every_request_carries_the_project(self):
        stream = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n'
        c, fake = client((200, {"jobs": []}), (200, {"job": {"id": "J"}}), (200, {"version": {"version": "1"}}),
                         (200, stream), project="vision")
        self.assertEqual(c.project, "vision")
        c.list_jobs()
        c.submit_job({"model": "m"})
        c.upload_dataset("iris", b"a,b\n1,2\n")
        self.assertEqual(list(c.chat("llm", "hi", stream=True)), ["a"])
        for method, url, _, headers in fake.requests:
            with self.subTest(method=method, url=url):
                self.assertEqual(headers.get("Bmaas-project"), "vision")
                self.assertEqual(headers.get("Authorization"), "Bearer t")

    def test_no_project_no_header(self):
        c, fake = client((200, {"jobs": []}))
        self.assertIsNone(c.project)
        c.list_jobs()
        self.assertNotIn("Bmaas-project", fake.requests[0][3])

    def test_the_project_comes_from_the_argument_then_bmaas_project(self):
        with mock.patch.dict(os.environ, dict(HERMETIC, BMAAS_PROJECT="from-env")):
            self.assertEqual(Client("http://h").project, "from-env")
            self.assertEqual(Client("http://h", project="arg").project, "arg")
            self.assertIsNone(Client("http://h", project="").project)


class WhoAmITest(unittest.TestCase):
    def test_whoami(self):
        me = {"identity": "alice", "kind": "IDENTITY_KIND_USER", "token_id": "abc", "auth": True,
              "bindings": [{"project": "vision", "role": "editor"}]}
        c, fake = client((200, me))
        self.assertEqual(c.whoami(), me)
        self.assertEqual(fake.requests[0][:3], ("GET", "http://127.0.0.1:8080/v1/whoami", None))


class ProjectTest(unittest.TestCase):
    def test_create_get_list_delete(self):
        p = {"name": "vision", "description": "cv", "quota": {"gpus": "4", "jobs": 10}}
        c, fake = client((200, {"project": p}), (200, {"project": p}),
                         (200, {"projects": [{"name": "default"}], "next_page_token": "n"}),
                         (200, {"projects": [p]}), (200, {}))
        self.assertEqual(c.create_project("vision", description="cv", quota={"gpus": 4, "jobs": 10}), p)
        self.assertEqual(fake.requests[0][:3], ("POST", "http://127.0.0.1:8080/v1/projects",
                                                {"name": "vision", "description": "cv", "quota": {"gpus": 4, "jobs": 10}}))
        self.assertEqual(c.get_project("vision")["name"], "vision")
        self.assertEqual(fake.requests[1][:2], ("GET", "http://127.0.0.1:8080/v1/projects/vision"))
        self.assertEqual([x["name"] for x in c.list_projects()], ["default", "vision"], "every page")
        self.assertEqual(split(fake.requests[3][1]), ("/v1/projects", {"page_token": "n"}))
        self.assertIsNone(c.delete_project("vision"))
        self.assertEqual(fake.requests[4][:2], ("DELETE", "http://127.0.0.1:8080/v1/projects/vision"))

    def test_create_sends_only_what_is_given(self):
        c, fake = client((200, {"project": {"name": "a"}}))
        c.create_project("a")
        self.assertEqual(fake.requests[0][2], {"name": "a"})

    def test_update_masks_the_fields_given(self):
        c, fake = client(*[(200, {"project": {"name": "vision"}})] * 4)
        c.update_project("vision", quota={"gpus": 8})
        method, url, body, _ = fake.requests[0]
        self.assertEqual(method, "PATCH")
        self.assertEqual(split(url), ("/v1/projects/vision", {"update_mask": "quota.gpus"}))
        self.assertEqual(body, {"quota": {"gpus": 8}})
        c.update_project("vision", description="", quota={"jobs": None, "gpus": 2})
        self.assertEqual(split(fake.requests[1][1])[1], {"update_mask": "description,quota.gpus,quota.jobs"})
        self.assertEqual(fake.requests[1][2], {"description": "", "quota": {"gpus": 2}},
                         "a field given as None is named, not sent: cleared")
        c.update_project("vision", quota={})
        self.assertEqual((split(fake.requests[2][1])[1], fake.requests[2][2]), ({"update_mask": "quota"}, {"quota": {}}))
        c.update_project("vision", description="new")
        self.assertEqual((split(fake.requests[3][1])[1], fake.requests[3][2]),
                         ({"update_mask": "description"}, {"description": "new"}))
        with self.assertRaisesRegex(ValueError, "give description or quota"):
            c.update_project("vision")
        self.assertEqual(len(fake.requests), 4)


class TokenTest(unittest.TestCase):
    def test_create_returns_the_token_and_its_secret(self):
        c, fake = client((200, {"token": TOKEN, "secret": "bmaas_abc_xyz"}), (200, {"token": TOKEN, "secret": "s"}))
        tok, secret = c.create_token("alice", roles={"vision": "editor", "default": "viewer"}, ttl=3600,
                                     description="laptop")
        self.assertEqual((tok, secret), (TOKEN, "bmaas_abc_xyz"))
        method, url, body, _ = fake.requests[0]
        self.assertEqual((method, url), ("POST", "http://127.0.0.1:8080/v1/tokens"))
        self.assertEqual(body, {"identity": "alice", "kind": "IDENTITY_KIND_USER", "description": "laptop", "ttl": "3600s",
                                "bindings": [{"project": "vision", "role": "editor"},
                                             {"project": "default", "role": "viewer"}]})
        c.create_token("shop", deployments=["vision/classifier"], service_account=True,
                       ttl=datetime.timedelta(days=90))
        self.assertEqual(fake.requests[1][2], {"identity": "shop", "kind": "IDENTITY_KIND_SERVICE_ACCOUNT", "ttl": "7776000s",
                                               "bindings": [{"project": "vision", "deployment": "classifier"}]})

    def test_create_without_ttl_never_expires(self):
        c, fake = client(*[(200, {"token": TOKEN, "secret": "s"})] * 2)
        c.create_token("ops", roles={"*": "cluster-admin"})
        c.create_token("ops", roles={"*": "cluster-admin"}, ttl=0)
        for r in fake.requests:
            self.assertNotIn("ttl", r[2])

    def test_create_refuses_bad_arguments_before_any_call(self):
        c, fake = client()
        cases = [({}, "at least one role"), ({"roles": {}}, "at least one role"),
                 ({"roles": ["vision=editor"]}, "a mapping of project to role"),
                 ({"roles": {"vision": ""}}, r"roles\['vision'\]"),
                 ({"deployments": ["iris"]}, "'iris': want PROJECT/DEPLOYMENT"),
                 ({"deployments": ["a/b/c"]}, "want PROJECT/DEPLOYMENT"),
                 ({"roles": {"a": "viewer"}, "ttl": -1}, "ttl must not be negative"),
                 ({"roles": {"a": "viewer"}, "ttl": "720h"}, "ttl: give seconds or a datetime.timedelta")]
        for kw, want in cases:
            with self.subTest(kw=kw), self.assertRaisesRegex(ValueError, want):
                c.create_token("alice", **kw)
        self.assertEqual(fake.requests, [])

    def test_create_names_the_role_the_server_refused(self):
        err = {"code": 3, "message": "bindings[1].project: no project \"nope\"", "details": []}
        c, _ = client((400, err), (400, dict(err, message="bindings[2].role: unknown role \"boss\"")),
                      (403, {"code": 7, "message": "alice may not grant admin on project \"vision\"", "details": []}))
        with self.assertRaises(BmaasError) as cm:
            c.create_token("bob", roles={"vision": "editor", "nope": "viewer"})
        self.assertEqual((cm.exception.status, cm.exception.code), (400, 3))
        self.assertEqual(cm.exception.message, "roles['nope']: no project \"nope\"")
        with self.assertRaises(BmaasError) as cm:
            c.create_token("bob", roles={"vision": "editor"}, deployments="vision/a")
        self.assertEqual(cm.exception.message, "bindings[2].role: unknown role \"boss\"", "no binding 2: kept")
        with self.assertRaises(BmaasError) as cm:
            c.create_token("bob", roles={"vision": "admin"})
        self.assertEqual(cm.exception.status, 403)
        self.assertIn("may not grant", cm.exception.message)

    def test_deployment_errors_name_the_deployment(self):
        err = {"code": 3, "message": "bindings[0].project: no project \"shop\"", "details": []}
        c, fake = client((400, err))
        with self.assertRaisesRegex(BmaasError, "deployments 'shop/iris': no project \"shop\""):
            c.create_token("svc", deployments="shop/iris")
        self.assertEqual(fake.requests[0][2]["bindings"], [{"project": "shop", "deployment": "iris"}],
                         "a single string is one deployment")

    def test_list_get_revoke_rotate(self):
        revoked = dict(TOKEN, revoke_time="2026-01-01T00:00:00Z")
        new = dict(TOKEN, id="def", rotated_from="abc")
        c, fake = client((200, {"tokens": [TOKEN], "next_page_token": "p2"}), (200, {"tokens": [new]}),
                         (200, {"tokens": []}), (200, {"token": TOKEN}), (200, {"token": revoked}),
                         (200, {"token": new, "secret": "bmaas_def_s", "previous": TOKEN}),
                         (200, {"token": new, "secret": "s2"}), (200, {"token": new, "secret": "s3"}))
        self.assertEqual([t["id"] for t in c.list_tokens()], ["abc", "def"])
        self.assertEqual(split(fake.requests[0][1]), ("/v1/tokens", {}))
        self.assertEqual(split(fake.requests[1][1]), ("/v1/tokens", {"page_token": "p2"}))
        c.list_tokens(identity="alice", all=True)
        self.assertEqual(split(fake.requests[2][1]), ("/v1/tokens", {"identity": "alice", "show_inactive": "true"}))
        self.assertEqual(c.get_token("abc"), TOKEN)
        self.assertEqual(fake.requests[3][:2], ("GET", "http://127.0.0.1:8080/v1/tokens/abc"))
        self.assertEqual(c.revoke_token("abc")["revoke_time"], "2026-01-01T00:00:00Z")
        self.assertEqual(fake.requests[4][:3], ("POST", "http://127.0.0.1:8080/v1/tokens/abc:revoke", {}))
        self.assertEqual(c.rotate_token("abc"), (new, "bmaas_def_s"))
        self.assertEqual(fake.requests[5][:3], ("POST", "http://127.0.0.1:8080/v1/tokens/abc:rotate", {}),
                         "no overlap: the server's default")
        c.rotate_token("abc", overlap=0)
        self.assertEqual(fake.requests[6][2], {"overlap": "0s"}, "0 ends the old token now")
        c.rotate_token("abc", overlap=datetime.timedelta(minutes=1, milliseconds=500))
        self.assertEqual(fake.requests[7][2], {"overlap": "60.5s"})
        with self.assertRaisesRegex(ValueError, "overlap must not be negative"):
            c.rotate_token("abc", overlap=-5)

    def test_duration(self):
        self.assertEqual(duration(1, "x"), "1s")
        self.assertEqual(duration(2592000, "x"), "2592000s", "not 2.592e+06s")
        self.assertEqual(duration(0.25, "x"), "0.25s")
        self.assertEqual(duration(datetime.timedelta(microseconds=1), "x"), "0.000001s")
        for bad in (True, None, "1h", float("nan")):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                duration(bad, "x")


class AuditTest(unittest.TestCase):
    def test_iterates_every_page_as_it_is_reached(self):
        c, fake = client((200, {"records": [{"method": "a"}, {"method": "b"}], "next_page_token": "t2"}),
                         (200, {"records": [{"method": "c"}]}))
        it = c.audit_records(project="vision", identity="alice", denied=True)
        self.assertEqual(fake.requests, [], "nothing is fetched before the first record is asked for")
        self.assertEqual(next(it)["method"], "a")
        self.assertEqual(len(fake.requests), 1)
        self.assertEqual([r["method"] for r in it], ["b", "c"])
        self.assertEqual(split(fake.requests[0][1]), ("/v1/audit-records",
                                                      {"project": "vision", "identity": "alice", "denied": "true"}))
        self.assertEqual(split(fake.requests[1][1])[1],
                         {"project": "vision", "identity": "alice", "denied": "true", "page_token": "t2"})

    def test_no_filters_and_an_empty_trail(self):
        c, fake = client((200, {}))
        self.assertEqual(list(c.audit_records()), [])
        self.assertEqual(split(fake.requests[0][1]), ("/v1/audit-records", {}))

    def test_since(self):
        c, fake = client(*[(200, {"records": []})] * 5)
        aware = datetime.datetime(2026, 3, 1, 12, 30, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
        list(c.audit_records(since=aware))
        self.assertEqual(split(fake.requests[0][1])[1], {"since": "2026-03-01T10:30:00.000000Z"})
        naive = datetime.datetime(2026, 3, 1, 12, 30, 0)
        list(c.audit_records(since=naive))
        want = naive.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.assertEqual(split(fake.requests[1][1])[1], {"since": want}, "a naive datetime is local time")
        list(c.audit_records(since="2026-03-01T00:00:00Z"))
        self.assertEqual(split(fake.requests[2][1])[1], {"since": "2026-03-01T00:00:00Z"})
        for i, back in ((3, datetime.timedelta(hours=1)), (4, 3600)):
            before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
            list(c.audit_records(since=back))
            after = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
            got = datetime.datetime.strptime(split(fake.requests[i][1])[1]["since"], "%Y-%m-%dT%H:%M:%S.%fZ")
            got = got.replace(tzinfo=datetime.timezone.utc)
            self.assertTrue(before <= got <= after, "%s is an hour back from the call" % got)

    def test_a_bad_since_raises_at_the_call(self):
        c, fake = client()
        with self.assertRaisesRegex(ValueError, "since: give a datetime"):
            c.audit_records(since=[1])
        self.assertEqual(fake.requests, [])


if __name__ == "__main__":
    unittest.main()
