"""The identity calls of bmaas.Client: who the caller is, projects, API
tokens and the audit trail, as `bmaas whoami`, `bmaas project`,
`bmaas token` and `bmaas audit list` make them."""

import datetime
import re

from ._http import BmaasError, quote

__all__ = ["IAMCalls", "duration"]

_USER, _SERVICE_ACCOUNT = "IDENTITY_KIND_USER", "IDENTITY_KIND_SERVICE_ACCOUNT"
_BINDING = re.compile(r"bindings\[(\d+)\](?:\.[a-z_]+)?: (?:bindings\[\d+\]: )?")


def duration(value, what):
    """Seconds (a number) or a datetime.timedelta as a protobuf Duration's
    JSON ("3600s", "1.5s")."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError("%s: give seconds or a datetime.timedelta, got %r" % (what, value))
    if seconds < 0 or seconds != seconds:
        raise ValueError("%s must not be negative, got %r" % (what, value))
    if seconds == int(seconds):
        return "%ds" % int(seconds)
    return ("%.9f" % seconds).rstrip("0") + "s"


def _timestamp(when, what):
    """A datetime (naive: local time), a timedelta or seconds back from
    now, or an RFC 3339 string, as an RFC 3339 UTC time."""
    if isinstance(when, str):
        return when
    now = datetime.datetime.now(datetime.timezone.utc)
    if isinstance(when, datetime.timedelta):
        t = now - when
    elif isinstance(when, (int, float)) and not isinstance(when, bool):
        t = now - datetime.timedelta(seconds=when)
    elif isinstance(when, datetime.datetime):
        t = when.astimezone(datetime.timezone.utc)
    else:
        raise ValueError("%s: give a datetime, a timedelta back from now, or an RFC 3339 string, got %r" % (what, when))
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bindings(roles, deployments):
    """roles ({project: role}) and deployments (["PROJECT/DEPLOYMENT"])
    as the request's bindings, and beside each what made it."""
    out, typed = [], []
    if roles is not None and not hasattr(roles, "items"):
        raise ValueError("roles: a mapping of project to role, e.g. {\"vision\": \"editor\"} or {\"*\": \"cluster-admin\"}")
    for project, role in (roles or {}).items():
        if not isinstance(project, str) or not isinstance(role, str) or not project or not role:
            raise ValueError("roles[%r]: want a project's name and a role (viewer, editor, admin; "
                             "\"*\": \"cluster-admin\")" % (project,))
        out.append({"project": project, "role": role})
        typed.append("roles[%r]" % project)
    if isinstance(deployments, str):
        deployments = [deployments]
    for d in deployments or []:
        project, sep, name = str(d).partition("/")
        if not sep or not project or not name or "/" in name:
            raise ValueError("deployments: %r: want PROJECT/DEPLOYMENT (e.g. default/iris)" % (d,))
        out.append({"project": project, "deployment": name})
        typed.append("deployments %r" % d)
    if not out:
        raise ValueError("give roles ({project: role}) or deployments ([\"PROJECT/DEPLOYMENT\"]): "
                         "a token holds at least one role")
    return out, typed


def _name_binding(err, typed):
    """err with a message about bindings[N] naming the roles entry or the
    deployment that made binding N instead."""
    m = _BINDING.match(err.message)
    if not m or int(m.group(1)) >= len(typed):
        return err
    return BmaasError(err.status, typed[int(m.group(1))] + ": " + err.message[m.end():], err.method, err.path,
                      err.code, err.details)


class IAMCalls:
    """Mixed into Client; uses its _do and _list."""

    def whoami(self):
        """Who the token is: {"identity", "kind", "token_id", "bindings",
        "auth"} (auth false: the server asks no token)."""
        return self._do("GET", "/v1/whoami")

    # Projects.

    def create_project(self, name, description=None, quota=None):
        """Creates a project; quota is what it is guaranteed, e.g.
        {"gpus": 4, "jobs": 10} (the Quota message's fields)."""
        project = {"name": name}
        if description:
            project["description"] = description
        if quota:
            project["quota"] = dict(quota)
        return self._do("POST", "/v1/projects", project)["project"]

    def list_projects(self):
        """The projects the caller has a role in (every one for a
        cluster-admin)."""
        return self._list("/v1/projects", "projects")

    def get_project(self, name):
        return self._do("GET", "/v1/projects/" + quote(name))["project"]

    def update_project(self, name, description=None, quota=None):
        """Changes the fields given and keeps the others: the update_mask
        names description when given, and quota.<field> for each field of
        quota (a field given as None is cleared; quota={} clears them
        all). Returns the project."""
        project, mask = {}, []
        if description is not None:
            project["description"] = description
            mask.append("description")
        if quota is not None:
            q = dict(quota)
            if not q:
                mask.append("quota")
            for k in sorted(q):
                mask.append("quota." + k)
            project["quota"] = {k: v for k, v in q.items() if v is not None}
        if not mask:
            raise ValueError("give description or quota to change")
        return self._do("PATCH", "/v1/projects/" + quote(name), project,
                        query={"update_mask": ",".join(mask)})["project"]

    def delete_project(self, name):
        """Deletes an empty project ("default" stays)."""
        self._do("DELETE", "/v1/projects/" + quote(name))

    # Tokens.

    def create_token(self, identity, roles=None, deployments=None, service_account=False, ttl=None, description=None):
        """Makes a token for identity and returns (token, secret): the
        secret is the bearer token to send, shown only now. roles maps
        projects to roles, e.g. {"vision": "editor", "default": "viewer"}
        or {"*": "cluster-admin"}; deployments ("PROJECT/DEPLOYMENT")
        may only be called. ttl (seconds or a timedelta) makes it expire
        that long from now; without it (or 0) it never expires."""
        bindings, typed = _bindings(roles, deployments)
        body = {"identity": identity, "kind": _SERVICE_ACCOUNT if service_account else _USER, "bindings": bindings}
        if description:
            body["description"] = description
        if ttl is not None:
            d = duration(ttl, "ttl")
            if d != "0s":
                body["ttl"] = d
        try:
            resp = self._do("POST", "/v1/tokens", body)
        except BmaasError as e:
            raise _name_binding(e, typed) from None
        return resp["token"], resp["secret"]

    def list_tokens(self, identity=None, all=False):
        """The active tokens (of identity when given; revoked and expired
        ones too with all=True), never their secrets."""
        return self._list("/v1/tokens", "tokens", {"identity": identity, "show_inactive": "true" if all else None})

    def get_token(self, token_id):
        return self._do("GET", "/v1/tokens/" + quote(token_id))["token"]

    def revoke_token(self, token_id):
        """Refuses the token from now on; returns it (with revoke_time)."""
        return self._do("POST", "/v1/tokens/%s:revoke" % quote(token_id), {})["token"]

    def rotate_token(self, token_id, overlap=None):
        """Makes a new token with the old one's identity and roles and
        returns (token, secret); the old one stays valid for overlap
        (seconds or a timedelta; the server's default is an hour, 0 ends
        it now)."""
        body = {}
        if overlap is not None:
            body["overlap"] = duration(overlap, "overlap")
        resp = self._do("POST", "/v1/tokens/%s:rotate" % quote(token_id), body)
        return resp["token"], resp["secret"]

    # The audit trail.

    def audit_records(self, project=None, identity=None, since=None, denied=False):
        """Iterates over the audit trail, oldest first, page by page: every
        state-changing call and every refused one. since is a datetime
        (naive: local time), a timedelta (or seconds) back from now, or an
        RFC 3339 string; denied=True gives only the refused calls."""
        query = {"project": project, "identity": identity, "denied": "true" if denied else None,
                 "since": _timestamp(since, "since") if since is not None else None}
        return self._pages("/v1/audit-records", "records", query)

    def _pages(self, path, key, query):
        """The items of every page, fetched as they are reached."""
        token = None
        while True:
            resp = self._t.request("GET", path, query=dict(query, page_token=token)) or {}
            for item in resp.get(key, []):
                yield item
            token = resp.get("next_page_token")
            if not token:
                return
