"""A scriptable fake delivery provider for the delivery tests: Twilio's Messages.json and
Calls.json, and a generic JSON webhook at /hook (any path starting with /hook works).

Usage:

    from harness.fake_provider import FakeProvider

    fake = FakeProvider()                  # listens on 127.0.0.1:<free port>, already serving
    fake.url                               # "http://127.0.0.1:PORT" (the twilio base_url)
    fake.hook_url                          # fake.url + "/hook"
    fake.messages.fail_next(2, status=503) # the next 2 Messages.json requests answer 503
    fake.calls.reject_next(1, status=400, code=21211)
    fake.hook.hang = True                  # accept, read the request, never answer (until stop())
    fake.hook.delay = 0.02                 # answer after 20 ms
    req = fake.wait_for(lambda r: r.kind == "messages", timeout=10)
    fake.send_status_callback(req, status="delivered")
    fake.hook.auto_callback = "delivered"  # after each success, call the status callback back
    toml_config({"max_tries": 3}, [{"name": "hook", "type": "webhook", ...}])  # a --config text
    fake.stop()                            # prompt, even while requests hang

Every request is recorded (fake.requests, a list of FakeRequest) before it is answered.
Endpoints are keyed "messages", "calls", or the path itself for webhook paths ("/hook").
Only the Python standard library is used.
"""

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ACCOUNT_SID = "AC" + "f" * 32
DEFAULT_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
_TWILIO_PREFIX = "/2010-04-01/Accounts/"


class FakeRequest(object):
    """One request the fake received."""

    def __init__(self, seq, method, path, query, headers, body):
        self.seq = seq
        self.time = time.time()
        self.monotonic = time.monotonic()
        self.method = method
        self.path = path                  # without the query
        self.query = query                # dict name -> last value
        self.headers = headers            # email.message.Message: case-insensitive .get()
        self.body = body                  # raw bytes
        self.kind = None                  # "messages" | "calls" | "/hook..." | None
        self.account_sid = None           # from a Twilio path
        self.form = {}                    # name -> last value (form-encoded bodies)
        self.json = None                  # parsed JSON body, or None
        self.sid = None                   # the id the fake answered with (on success)
        self.answer_status = None         # HTTP status answered; None while pending or hung
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        text = body.decode("utf-8", "replace")
        if ctype == "application/x-www-form-urlencoded":
            self.form = {k: v for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True)}
        try:
            self.json = json.loads(text) if text.strip() else None
        except ValueError:
            self.json = None

    def field(self, name, default=None):
        """A form field, or a top-level JSON field."""
        if name in self.form:
            return self.form[name]
        if isinstance(self.json, dict) and name in self.json:
            return self.json[name]
        return default

    def basic_auth(self):
        """(user, password) from the Authorization header, or None."""
        h = self.headers.get("Authorization") or ""
        if not h.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(h[6:]).decode("utf-8").partition(":")
        except Exception:
            return None
        return user, password

    def __repr__(self):
        return "<FakeRequest #%d %s %s -> %s>" % (self.seq, self.method, self.path,
                                                  self.answer_status)


class Endpoint(object):
    """The script of one path. Attributes may be changed at any time from any thread."""

    def __init__(self, name):
        self.name = name
        self.hang = False          # read the request, then never answer while True
        self.delay = 0.0           # seconds to wait before answering
        self.answer_status = None  # success status (default 201 for Twilio, 200 for hooks)
        self.answer_body = None    # success body: dict, or callable(FakeRequest) -> dict
        # After each success, POST this status (e.g. "delivered") to the request's status
        # callback from a background thread; results go to FakeProvider.callbacks.
        self.auto_callback = None
        self._lock = threading.Lock()
        self._scripted = []        # FIFO of (status, body dict or None)

    def fail_next(self, n, status=500, body=None):
        """The next n requests answer `status` with `body` (dict, default a Twilio-like error)."""
        with self._lock:
            for _ in range(n):
                self._scripted.append((status, body if body is not None else
                                       {"code": 20500 if status >= 500 else status,
                                        "message": "fake failure %d" % status,
                                        "status": status}))

    def reject_next(self, n, status=400, code=21211):
        """The next n requests are refused like Twilio refuses a bad number."""
        with self._lock:
            for _ in range(n):
                self._scripted.append((status, {
                    "code": code, "status": status,
                    "message": "The 'To' number is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/%d" % code}))

    def always_fail(self, status=500):
        """Every request answers `status` (until reset())."""
        self.fail_next(10 ** 6, status)

    def reset(self):
        with self._lock:
            self._scripted = []
        self.hang = False
        self.delay = 0.0
        self.answer_status = None
        self.answer_body = None
        self.auto_callback = None

    def _next_scripted(self):
        with self._lock:
            return self._scripted.pop(0) if self._scripted else None


def _new_sid(prefix):
    return prefix + secrets.token_hex(16)


def twilio_signature(auth_token, url, params):
    """X-Twilio-Signature for a POST of form `params` to `url`."""
    data = url + "".join(k + params[k] for k in sorted(params))
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


class FakeProvider(object):

    def __init__(self, account_sid=DEFAULT_ACCOUNT_SID, auth_token=DEFAULT_AUTH_TOKEN,
                 host="127.0.0.1", port=0):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests = []
        self.callbacks = []               # (FakeRequest, status, http status or exception)
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._endpoints = {}
        self._endpoints_lock = threading.Lock()
        self.messages = self.endpoint("messages")
        self.calls = self.endpoint("calls")
        self.hook = self.endpoint("/hook")

        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"   # one request per connection: simple and robust

            def log_message(self, *args):
                pass

            def do_POST(self):
                fake._handle(self)

            do_PUT = do_POST
            do_GET = do_POST
            do_DELETE = do_POST

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self._server = Server((host, port), Handler)
        self.port = self._server.server_address[1]
        self.url = "http://%s:%d" % (host, self.port)
        self.hook_url = self.url + "/hook"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fake-provider", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- script
    def endpoint(self, name):
        """The Endpoint for "messages", "calls" or a webhook path such as "/hook2"."""
        with self._endpoints_lock:
            ep = self._endpoints.get(name)
            if ep is None:
                ep = self._endpoints[name] = Endpoint(name)
            return ep

    def twilio_settings(self):
        """Settings for a [[provider]] of type twilio pointing at this fake."""
        return {"base_url": self.url, "account_sid": self.account_sid,
                "auth_token": self.auth_token}

    # ---------------------------------------------------------------- records
    def requests_for(self, kind=None):
        with self._cond:
            return [r for r in self.requests if kind is None or r.kind == kind]

    def wait_for(self, predicate=None, count=1, timeout=10.0):
        """Wait until `count` recorded requests match; return the first (count == 1) or the list."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.requests if predicate is None or predicate(r)]
                if len(found) >= count:
                    return found[0] if count == 1 else found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("fake provider: %d matching request(s) after %.1f s, "
                                         "wanted %d; got %r" % (len(found), timeout, count,
                                                                self.requests[-20:]))
                self._cond.wait(min(remaining, 0.1))

    # ------------------------------------------------------------------ serve
    def _handle(self, h):
        split = urllib.parse.urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        with self._cond:
            req = FakeRequest(len(self.requests), h.command, split.path,
                              dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
                              h.headers, body)
            req.kind = self._kind(req)
            self.requests.append(req)
            self._cond.notify_all()
        if req.kind is None:
            return self._answer(h, req, 404, {"code": 20404, "message": "not found",
                                              "status": 404})
        if req.kind in ("messages", "calls") and not self._authorized(req):
            return self._answer(h, req, 401, {"code": 20003, "message": "Authenticate",
                                              "status": 401})
        ep = self.endpoint(req.kind)
        while ep.hang and not self._stopping.is_set():
            self._stopping.wait(0.02)
        if self._stopping.is_set():
            return None                      # drop the connection without an answer
        if ep.delay > 0 and self._stopping.wait(ep.delay):
            return None
        scripted = ep._next_scripted()
        if scripted is not None:
            return self._answer(h, req, scripted[0], scripted[1])
        if req.kind in ("messages", "calls"):
            problem = self._twilio_problem(req)
            if problem:
                return self._answer(h, req, 400, problem)
        return self._answer_success(h, req, ep)

    def _kind(self, req):
        p = req.path
        if p.startswith(_TWILIO_PREFIX):
            rest = p[len(_TWILIO_PREFIX):].split("/")
            if len(rest) == 2 and rest[1] in ("Messages.json", "Calls.json"):
                req.account_sid = rest[0]
                return "messages" if rest[1] == "Messages.json" else "calls"
            return None
        if p.startswith("/hook"):
            return p
        return None

    def _authorized(self, req):
        return req.basic_auth() == (self.account_sid, self.auth_token) and \
            req.account_sid == self.account_sid

    def _twilio_problem(self, req):
        if req.method != "POST":
            return {"code": 20004, "message": "Method not allowed", "status": 405}
        f = req.form
        if not f.get("To"):
            return {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
        if req.kind == "messages":
            if not f.get("From") and not f.get("MessagingServiceSid"):
                return {"code": 21603, "message": "A 'From' phone number is required.",
                        "status": 400}
            if not f.get("Body"):
                return {"code": 21602, "message": "Message body is required.", "status": 400}
        else:
            if not f.get("From"):
                return {"code": 21213, "message": "Caller phone number is required",
                        "status": 400}
            if not f.get("Twiml") and not f.get("Url"):
                return {"code": 21205, "message": "Url parameter is required.", "status": 400}
        return None

    def _answer_success(self, h, req, ep):
        body = ep.answer_body
        if callable(body):
            body = body(req)
        if req.kind == "messages":
            req.sid = _new_sid("SM")
            status = ep.answer_status or 201
            if body is None:
                f = req.form
                body = {"sid": req.sid, "account_sid": self.account_sid, "status": "queued",
                        "to": f.get("To"), "from": f.get("From"), "body": f.get("Body"),
                        "messaging_service_sid": f.get("MessagingServiceSid"),
                        "direction": "outbound-api", "num_segments": "1",
                        "error_code": None, "error_message": None,
                        "uri": "%s%s/Messages/%s.json" % (_TWILIO_PREFIX, self.account_sid,
                                                         req.sid)}
        elif req.kind == "calls":
            req.sid = _new_sid("CA")
            status = ep.answer_status or 201
            if body is None:
                body = {"sid": req.sid, "account_sid": self.account_sid, "status": "queued",
                        "to": req.form.get("To"), "from": req.form.get("From"),
                        "direction": "outbound-api",
                        "uri": "%s%s/Calls/%s.json" % (_TWILIO_PREFIX, self.account_sid,
                                                      req.sid)}
        else:
            req.sid = _new_sid("WH")
            status = ep.answer_status or 200
            if body is None:
                body = {"id": req.sid, "status": "accepted", "data": {"message_id": req.sid}}
        self._answer(h, req, status, body)
        if ep.auto_callback and 200 <= status < 300:
            threading.Thread(target=self._auto_callback, args=(req, ep.auto_callback),
                             daemon=True).start()
        return None

    def _auto_callback(self, req, status):
        try:
            result = self.send_status_callback(req, status=status, timeout=5.0)[0]
        except Exception as e:           # verifyd down (kill -9): the attempt stays "sent"
            result = e
        with self._cond:
            self.callbacks.append((req, status, result))
            self._cond.notify_all()

    def _answer(self, h, req, status, body):
        raw = json.dumps(body).encode("utf-8") if body is not None else b""
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(raw)))
            h.end_headers()
            h.wfile.write(raw)
        except OSError:
            pass                             # the client gave up (timeout): still recorded
        with self._cond:
            req.answer_status = status
            self._cond.notify_all()
        return None

    # -------------------------------------------------------- status callback
    def send_status_callback(self, request, status="delivered", error_code=None,
                             error_message=None, timeout=10.0):
        """POST the status of `request` back to the StatusCallback it carried.

        Twilio paths: form MessageStatus/MessageSid (messages) or CallStatus/CallSid (calls;
        "delivered" is sent as CallStatus=completed, "undelivered" as no-answer), ErrorCode.
        Webhook paths: JSON {"status", "error_code", "error_message"} to the body's
        status_callback. Returns (http status, body bytes) of verifyd's answer.
        """
        if request.kind in ("messages", "calls"):
            url = request.form.get("StatusCallback")
            if not url:
                raise AssertionError("request %r carried no StatusCallback" % request)
            f = request.form
            params = {"AccountSid": self.account_sid, "To": f.get("To", ""),
                      "From": f.get("From", "")}
            if request.kind == "messages":
                params.update({"MessageSid": request.sid or "", "SmsSid": request.sid or "",
                               "MessageStatus": status, "SmsStatus": status})
            else:
                call_status = {"delivered": "completed", "undelivered": "no-answer"}.get(
                    status, status)
                params.update({"CallSid": request.sid or "", "CallStatus": call_status})
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            if error_message is not None:
                params["ErrorMessage"] = error_message
            data = urllib.parse.urlencode(params).encode("ascii")
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": twilio_signature(self.auth_token, url, params)}
        else:
            url = request.field("status_callback")
            if not url:
                raise AssertionError("request %r carried no status_callback" % request)
            payload = {"status": status}
            if error_code is not None:
                payload["error_code"] = str(error_code)
            if error_message is not None:
                payload["error_message"] = error_message
            data = json.dumps(payload).encode("utf-8")
            headers = {"Content-Type": "application/json"}
        return post(url, data, headers, timeout)

    # ------------------------------------------------------------------ stop
    def stop(self):
        """Stop serving; hanging and delayed handlers return at once without answering."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (_toml_key(k), _toml_value(x))
                                for k, x in v.items()) + " }"
    return json.dumps(str(v))            # a TOML basic string (\uXXXX escapes are valid TOML)


def _toml_key(k):
    if k and all(c.isascii() and (c.isalnum() or c in "-_") for c in k):
        return k
    return json.dumps(k)


def toml_config(delivery=None, providers=()):
    """The text of a verifyd --config file: a [delivery] table and [[provider]] tables
    (dicts; a dict value such as headers={"Authorization": "x"} becomes an inline table)."""
    lines = []
    if delivery:
        lines.append("[delivery]")
        lines += ["%s = %s" % (_toml_key(k), _toml_value(v)) for k, v in delivery.items()]
        lines.append("")
    for p in providers:
        lines.append("[[provider]]")
        lines += ["%s = %s" % (_toml_key(k), _toml_value(v)) for k, v in p.items()]
        lines.append("")
    return "\n".join(lines)


def post(url, data, headers, timeout=10.0):
    """POST bytes to an absolute http:// URL (no proxy); return (status, body bytes)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http":
        raise AssertionError("status callback URL is not http://: %r" % url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = u.path + ("?" + u.query if u.query else "")
        conn.request("POST", path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()
