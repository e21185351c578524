"""The client configuration file that the CLI and the SDK share: named
contexts, like kubectl's, each with a server's address, a token and a
project.

    current-context: prod
    contexts:
      - name: prod
        server: bmaas.example.com:7070        # gRPC address (the CLI's)
        url: https://bmaas.example.com:8080   # HTTP edge (the SDK's)
        token: bmaas_xxx                      # or token-file: /path/to/file
        project: vision                       # sent as Bmaas-Project
        ca-file: /etc/bmaas/ca.crt            # cert-file, key-file too

The file is $BMAAS_CONFIG, else $XDG_CONFIG_HOME/bmaas/config.yaml, else
~/.config/bmaas/config.yaml; a missing file configures nothing. Each
setting comes from the argument, else its environment variable, else the
selected context (the context argument, else BMAAS_CONTEXT, else
current-context), else the default. Relative paths in a context (token-
file and the TLS files) are relative to the file's directory.

The file is read with the package's YAML subset reader (block mappings
and sequences, flow ones of one line, plain and quoted scalars,
comments), every value kept as a string: the SDK depends on no YAML
library. Keys it does not know are ignored.
"""

import os

from ._spec import _Parser, _quoted, parse_yaml

__all__ = ["Settings", "config_path", "load_config", "resolve"]

# The settings a context holds besides its name, as (key in the file,
# environment variable); "token-file" stands in for "token".
_ENV = {"url": "BMAAS_URL", "token": "BMAAS_TOKEN", "project": "BMAAS_PROJECT",
        "ca-file": "BMAAS_TLS_CA", "cert-file": "BMAAS_TLS_CERT", "key-file": "BMAAS_TLS_KEY"}
_PATHS = ("token-file", "ca-file", "cert-file", "key-file")
DEFAULT_URL = "http://127.0.0.1:8080"
# The keys of a context; others (the CLI may write more) are ignored.
_KEYS = ("name", "server", "url", "token", "token-file", "project", "ca-file", "cert-file", "key-file")


def config_path(environ=None):
    """Where the configuration file is (it need not exist)."""
    env = os.environ if environ is None else environ
    if env.get("BMAAS_CONFIG"):
        return env["BMAAS_CONFIG"]
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "bmaas", "config.yaml")


class _Strings(_Parser):
    """The spec reader's block structure with every scalar a string."""

    def fail(self, line, why):
        raise ValueError("%s:%d: %s" % (self.name, line.no, why))

    def scalar_or_flow(self, s, line):
        if s[0] in "[{":
            return super().scalar_or_flow(s, line)  # its items come back here
        if s[0] in "&*!|>%@`":
            self.fail(line, "unsupported YAML %r: write a plain or quoted string" % s[0])
        if s[0] in "'\"":
            return _quoted(s, line, self)
        return None if s in ("~", "null") else s


def _parse(text, name):
    return parse_yaml(text, name, _Strings)


def load_config(path=None):
    """The file's current-context and contexts, as {"current-context":
    str or None, "contexts": [{"name": ..., "url": ..., ...}]}; a missing
    file gives no contexts. A malformed file raises ValueError naming it
    (and the line)."""
    path = path or config_path()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {"current-context": None, "contexts": []}
    doc = _parse(text, path)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ValueError("%s: expected a mapping with current-context and contexts" % path)
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise ValueError("%s: current-context must be a context's name" % path)
    contexts = doc.get("contexts")
    if contexts is None:
        contexts = []
    if not isinstance(contexts, list):
        raise ValueError("%s: contexts must be a list of mappings (- name: ...)" % path)
    seen = set()
    out = []
    for i, c in enumerate(contexts):
        if not isinstance(c, dict):
            raise ValueError("%s: contexts[%d] must be a mapping (name, url, token, ...)" % (path, i))
        for k in _KEYS:
            if c.get(k) is not None and not isinstance(c[k], str):
                raise ValueError("%s: contexts[%d].%s must be a string" % (path, i, k))
        name = c.get("name")
        if not name:
            raise ValueError("%s: contexts[%d] has no name" % (path, i))
        if name in seen:
            raise ValueError("%s: context %r is defined twice" % (path, name))
        seen.add(name)
        out.append({k: c[k] for k in _KEYS if c.get(k) is not None})
    return {"current-context": current or None, "contexts": out}


class Settings:
    """What a Client connects with: url, token, project, ca_file,
    cert_file, key_file, and context (the selected context's name, or
    None)."""

    __slots__ = ("url", "token", "project", "ca_file", "cert_file", "key_file", "context")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def __repr__(self):
        shown = {k: getattr(self, k) for k in self.__slots__}
        if shown["token"]:
            shown["token"] = "***"
        return "Settings(%s)" % ", ".join("%s=%r" % kv for kv in shown.items())


def _select(name, path):
    """The context named name (or the file's current one when name is
    None) as a dict with absolute paths; {} when none is selected."""
    cfg = load_config(path)
    name = name or cfg["current-context"]
    if not name:
        return None, {}
    for c in cfg["contexts"]:
        if c["name"] == name:
            break
    else:
        known = ", ".join(sorted(c["name"] for c in cfg["contexts"])) or "none"
        raise ValueError("context %r is not in %s (known contexts: %s)" % (name, path, known))
    if c.get("token") and c.get("token-file"):
        raise ValueError("context %r in %s has both token and token-file: keep one" % (name, path))
    c = dict(c)
    base = os.path.dirname(os.path.abspath(path))
    for k in _PATHS:
        if c.get(k):
            c[k] = os.path.join(base, os.path.expanduser(c[k]))
    return name, c


def _read_token_file(file, context):
    try:
        with open(file, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        raise ValueError("token-file of context %r: %s" % (context, e)) from None
    if not token:
        raise ValueError("token-file %s of context %r is empty" % (file, context))
    return token


def resolve(url=None, token=None, project=None, ca_file=None, cert_file=None, key_file=None, context=None,
            environ=None, path=None):
    """The settings from, for each, the argument, else its environment
    variable, else the selected context, else the default (url
    http://127.0.0.1:8080, the others none). A token or project given as
    "" is none, whatever the environment or the context says. An unknown
    context, a context with both token and token-file, or a token-file
    that cannot be read raises ValueError naming the context."""
    env = os.environ if environ is None else environ
    path = path or config_path(env)
    name, ctx = _select(context or env.get("BMAAS_CONTEXT") or None, path)
    given = {"url": url or None, "token": token, "project": project,
             "ca-file": ca_file or None, "cert-file": cert_file or None, "key-file": key_file or None}
    got = {}
    for key, var in _ENV.items():
        if given[key] is not None:
            got[key] = given[key]
        elif env.get(var):
            got[key] = env[var]
        elif key == "token" and ctx.get("token-file"):
            got[key] = _read_token_file(ctx["token-file"], name)
        else:
            got[key] = ctx.get(key) or None
    return Settings(url=got["url"] or DEFAULT_URL, token=got["token"] or None, project=got["project"] or None,
                    ca_file=got["ca-file"], cert_file=got["cert-file"], key_file=got["key-file"], context=name)
