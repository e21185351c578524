"""The HTTP transport of bmaas.Client: JSON over urllib, errors as BmaasError."""

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["BmaasError", "Transport"]


class BmaasError(Exception):
    """A request the server refused or could not answer.

    ``status`` is the HTTP status (0 when the server could not be reached)
    and ``message`` the server's explanation, which names the field or
    tensor at fault. On the REST API (/v1) ``code`` is the gRPC status code
    of the answer (5 for NOT_FOUND, ...) and ``details`` its details, such
    as a google.rpc.ErrorInfo whose "reason" says why (NO_READY_REPLICA);
    KServe v2 answers (/v2) carry only a message.
    """

    def __init__(self, status, message, method="", path="", code=None, details=None):
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.code = code
        self.details = details or []
        where = ("%s %s: " % (method, path)) if method else ""
        super().__init__("%s%s (HTTP %d)" % (where, message, status) if status else where + message)

    @property
    def reason(self):
        """The reason of the answer's google.rpc.ErrorInfo detail, or ""."""
        for d in self.details:
            if isinstance(d, dict) and d.get("@type", "").endswith("google.rpc.ErrorInfo"):
                return d.get("reason", "")
        return ""


def quote(segment):
    """Quotes one path segment (a name may not hold '/', but be safe)."""
    return urllib.parse.quote(str(segment), safe="")


def kserve(path):
    """Whether path is a KServe v2 route, whose errors are {"error": ...}."""
    return path == "/v2" or path.startswith("/v2/")


def parse_error(body, reason, path=""):
    """The (message, code, details) of an error body: every route of the
    REST API answers google.rpc.Status ({"code", "message", "details"}),
    KServe v2 routes {"error": ...}; a body that is neither (a proxy's
    page) gives its text or the reason."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and path.startswith("/openai/") and isinstance(doc.get("error"), dict):
        e = doc["error"]  # the OpenAI API's shape
        if isinstance(e.get("message"), str) and e["message"]:
            return e["message"], e.get("code"), []
    if isinstance(doc, dict):
        key = "error" if kserve(path) else "message"
        if isinstance(doc.get(key), str) and doc[key]:
            if kserve(path):
                return doc[key], None, []
            details = doc.get("details")
            return doc[key], doc.get("code"), details if isinstance(details, list) else []
    text = body.decode("utf-8", "replace").strip()
    return text or reason or "request failed", None, []


def tls_context(ca_file=None, cert_file=None, key_file=None):
    """An SSL context trusting ca_file (the system's roots without one)
    and presenting cert_file when given; `bmaas up --tls` writes both into
    <data-dir>/tls."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("cert_file and key_file: give both or neither")
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class Transport:
    """Sends requests to one bmaas HTTP endpoint."""

    def __init__(self, url, token=None, timeout=30.0, opener=None, ca_file=None, cert_file=None, key_file=None,
                 project=None):
        """project, when set, goes with every request as the Bmaas-Project
        header: the project of calls whose request names none."""
        if not url:
            raise ValueError("url must not be empty")
        if "://" not in url:
            url = ("https://" if ca_file else "http://") + url
        self.url = url.rstrip("/")
        self.token = token
        self.project = project
        self.timeout = timeout
        self._open = opener or urllib.request.urlopen
        if opener is None and (ca_file or cert_file):
            ctx = tls_context(ca_file, cert_file, key_file)
            self._open = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx)).open

    def _identify(self, headers):
        """Adds the bearer token and the project header."""
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if self.project:
            headers["Bmaas-Project"] = self.project

    def request(self, method, path, body=None, query=None, raw=None, content_type=None, timeout=None, headers=None):
        """Sends one request and returns the decoded JSON answer (None when
        empty). ``body`` is sent as JSON, ``raw`` as bytes; ``headers`` are
        added."""
        url = self.url + path
        if query:
            q = {k: v for k, v in query.items() if v is not None and v != ""}
            if q:
                url += "?" + urllib.parse.urlencode(q, doseq=True)
        headers = dict(headers or {}, Accept="application/json")
        data = None
        if raw is not None:
            data = raw
            headers["Content-Type"] = content_type or "application/octet-stream"
        elif body is not None:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        self._identify(headers)
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._open(req, timeout=timeout or self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as e:
            msg, code, details = parse_error(e.read() or b"", e.reason, path)
            raise BmaasError(e.code, msg, method, path, code, details) from None
        except urllib.error.URLError as e:
            raise BmaasError(0, "cannot reach the bmaas server at %s: %s" % (self.url, e.reason), method, path) from None
        except (ConnectionError, TimeoutError) as e:
            raise BmaasError(0, "cannot reach the bmaas server at %s: %s" % (self.url, e), method, path) from None
        if not payload.strip():
            return None
        try:
            return json.loads(payload.decode("utf-8"))
        except ValueError:
            raise BmaasError(0, "the server answered something other than JSON", method, path) from None

    def stream(self, path, body, timeout=None):
        """POSTs body as JSON to a route that answers Server-Sent Events
        and yields each event's data decoded from JSON, up to [DONE]. An
        error event raises BmaasError."""
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        self._identify(headers)
        req = urllib.request.Request(self.url + path, data=json.dumps(body, allow_nan=False).encode("utf-8"),
                                     method="POST", headers=headers)
        try:
            resp = self._open(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            msg, code, details = parse_error(e.read() or b"", e.reason, path)
            raise BmaasError(e.code, msg, "POST", path, code, details) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise BmaasError(0, "cannot reach the bmaas server at %s: %s" % (self.url, getattr(e, "reason", e)), "POST", path) from None
        with resp:
            for line in resp:
                line = line.decode("utf-8").rstrip("\r\n")
                if not line.startswith("data:"):
                    continue  # comments (keep-alives) and the blank lines between events
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                event = json.loads(data)
                if isinstance(event, dict) and isinstance(event.get("error"), dict):
                    raise BmaasError(0, event["error"].get("message", "the stream failed"), "POST", path, event["error"].get("code"))
                yield event
        raise BmaasError(0, "the stream ended without [DONE]", "POST", path)
