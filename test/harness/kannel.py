"""A real Kannel (bearerbox + smsbox from Debian's `kannel` package) for delivery tests.

Usage:

    from harness.kannel import KannelStack

    k = KannelStack()                  # mode="fake": bearerbox's fake SMSC + a line reader here
    k.sendsms_url, k.username, k.password
    msgs = k.wait_for_messages(1, timeout=10)   # [{"sender", "receiver", "text", ...}]
    k.stop()

    k = KannelStack(mode="operator")   # `smsc = http` generic SMSC + a fake operator here
    k.next_outcome = "failed"          # "delivered" (default) | "failed" | "rejected"

Everything listens on 127.0.0.1 (the generic HTTP SMSC's own listener binds 0.0.0.0 but only
accepts 127.0.0.1). Files (kannel.conf, logs) live in `k.dir`, removed by stop() unless the
environment has KANNEL_KEEP=1. The recipe and its pitfalls: /work/shared/notes/KANNEL_SMTP.md.
Run with /usr/bin/python3; only the standard library is used.
"""

import atexit
import http.server
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from .verifyd import free_port

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
ADMIN_PASSWORD = "adminpw"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _reap_all():
    with _LIVE_LOCK:
        stacks = list(_LIVE)
    for s in stacks:
        try:
            s.stop()
        except Exception:
            pass


atexit.register(_reap_all)


class KannelError(AssertionError):
    pass


def _distinct_free_ports(n):
    ports = []
    while len(ports) < n:
        p = free_port()
        if p not in ports and not 13000 <= p <= 13002:   # the Debian service's default ports
            ports.append(p)
    return ports


# ----------------------------------------------------------------------------- decoding
def _unquote_bytes(s):
    """Kannel's url encoding ('+' or %20 for space) -> bytes."""
    if isinstance(s, bytes):
        s = s.decode("latin-1")
    return urllib.parse.unquote_to_bytes(s.replace("+", " "))


def _decode_payload(data, coding):
    if coding == 2:
        return data.decode("utf-16-be")
    return data.decode("utf-8")


def _guess_decode(data):
    """Concatenated parts do not say their coding: UTF-16BE (coding=2) or UTF-8 (7-bit)."""
    if len(data) % 2 == 0 and b"\x00" in data:     # UTF-8 text never holds NUL; UCS-2 digits do
        return data.decode("utf-16-be", "replace"), 2
    try:
        text = data.decode("utf-8")
        if not any(ord(c) < 32 and c not in "\r\n\t" for c in text):
            return text, 0
    except UnicodeDecodeError:
        pass
    return data.decode("utf-16-be", "replace"), 2


def _parse_udh(udh):
    """(ref, total, seq) of a concatenation UDH, or None."""
    if not udh:
        return None
    i, end = 1, 1 + udh[0]
    while i + 1 < len(udh) and i < end:
        iei, length = udh[i], udh[i + 1]
        body = udh[i + 2:i + 2 + length]
        if iei == 0x00 and length == 3:
            return body[0], body[1], body[2]
        if iei == 0x08 and length == 4:
            return (body[0] << 8) | body[1], body[2], body[3]
        i += 2 + length
    return None


class _Reassembler(object):
    def __init__(self):
        self._parts = {}

    def add(self, sender, receiver, udh, data):
        """Returns the whole payload (bytes) once every part has arrived, else None."""
        info = _parse_udh(udh)
        if info is None:
            return data
        ref, total, seq = info
        key = (sender, receiver, ref, total)
        parts = self._parts.setdefault(key, {})
        parts[seq] = data
        if len(parts) < total:
            return None
        del self._parts[key]
        return b"".join(parts[k] for k in sorted(parts))


# ----------------------------------------------------------------------------- the stack
class KannelStack(object):
    """bearerbox + smsbox in a temp dir; see the module docstring."""

    def __init__(self, mode="fake", username="tester", password="secret", start=True):
        if mode not in ("fake", "operator"):
            raise ValueError("mode must be 'fake' or 'operator'")
        self.mode = mode
        self.username = username
        self.password = password
        self.next_outcome = "delivered"
        self.messages = []          # received MTs, whole (parts reassembled)
        self.raw_lines = []         # fake mode: every line the fake SMSC sent
        self.operator_requests = [] # operator mode: every /send query (dict)
        self.dlr_results = []       # operator mode: (dlr-mid, mask, HTTP status from bearerbox)
        self._cond = threading.Condition()
        self._procs = {}
        self._stopping = False
        self._threads = []
        self._client_sock = None
        self._operator = None
        self._next_id = 1000
        self.dir = None
        if start:
            self.start()

    # ------------------------------------------------------------------ properties
    @property
    def sendsms_url(self):
        return "http://127.0.0.1:%d/cgi-bin/sendsms" % self.sendsms_port

    def admin_status(self, timeout=1.0):
        url = "http://127.0.0.1:%d/status.txt?password=%s" % (self.admin_port, ADMIN_PASSWORD)
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")

    # ------------------------------------------------------------------ start
    def start(self):
        self.dir = tempfile.mkdtemp(prefix="kannel-")
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._start()
        except BaseException:
            logs = self.log_tail()
            self.stop()          # removes the temp dir unless KANNEL_KEEP=1: the logs are below
            raise KannelError("%s\n%s" % (getattr(self, "_start_error", "Kannel did not start"),
                                          logs))
        return self

    def _fail(self, msg):
        self._start_error = msg
        raise KannelError(msg)

    def _start(self):
        (self.admin_port, self.box_port, self.smsc_port,
         self.sendsms_port) = _distinct_free_ports(4)
        if self.mode == "operator":
            self._start_operator()
        with open(os.path.join(self.dir, "kannel.conf"), "w") as f:
            f.write(self._conf())
        self._spawn("bearerbox", BEARERBOX)
        deadline = time.monotonic() + START_TIMEOUT
        marker = ("FAKE:%d" % self.smsc_port) if self.mode == "fake" else "http1"
        while True:
            self._check_alive("bearerbox")
            try:
                status = self.admin_status()
                if marker in status:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self._fail("bearerbox admin port %d did not answer" % self.admin_port)
            time.sleep(0.02)
        # a busy admin port is not fatal to bearerbox: make sure it is ours that answered
        self._check_alive("bearerbox")
        self._spawn("smsbox", SMSBOX)
        if self.mode == "fake":
            t = threading.Thread(target=self._fake_client, name="kannel-fake-smsc", daemon=True)
            t.start()
            self._threads.append(t)
        while True:
            self._check_alive("bearerbox")
            self._check_alive("smsbox")
            try:
                status = self.admin_status()
                if "smsbox:" in status and "(online" in status:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self._fail("smsbox/SMSC not online within %.0f s" % START_TIMEOUT)
            time.sleep(0.02)
        # sendsms listener up?
        while True:
            self._check_alive("smsbox")
            try:
                socket.create_connection(("127.0.0.1", self.sendsms_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self._fail("smsbox sendsms port %d closed" % self.sendsms_port)
                time.sleep(0.02)

    def _conf(self):
        core = [
            "group = core",
            "admin-port = %d" % self.admin_port,
            "admin-interface = 127.0.0.1",
            "admin-password = %s" % ADMIN_PASSWORD,
            "smsbox-port = %d" % self.box_port,
            "smsbox-interface = 127.0.0.1",
            "box-allow-ip = 127.0.0.1",
            'log-file = "bearerbox.log"',
            "log-level = 0",
            'access-log = "access.log"',
            "dlr-storage = internal",
        ]
        if self.mode == "fake":
            smsc = [
                "group = smsc",
                "smsc = fake",
                "smsc-id = fake1",
                "port = %d" % self.smsc_port,
                "our-host = 127.0.0.1",
                "connect-allow-ip = 127.0.0.1",
            ]
        else:
            smsc = [
                "group = smsc",
                "smsc = http",
                "smsc-id = http1",
                "system-type = generic",
                "port = %d" % self.smsc_port,
                "connect-allow-ip = 127.0.0.1",
                'send-url = "http://127.0.0.1:%d/send?from=%%P&to=%%p&text=%%b&coding=%%c'
                '&udh=%%u"' % self.operator_port,
                'status-success-regex = "^OK"',
                'status-permfail-regex = "^ERR"',
                'generic-foreign-id-regex = "^OK ([0-9]+)"',
            ]
        smsbox = [
            "group = smsbox",
            "bearerbox-host = 127.0.0.1",
            "bearerbox-port = %d" % self.box_port,
            "sendsms-port = %d" % self.sendsms_port,
            "sendsms-interface = 127.0.0.1",
            'log-file = "smsbox.log"',
            "log-level = 0",
            "http-request-retry = 3",
            "http-queue-delay = 1",
        ]
        user = [
            "group = sendsms-user",
            "username = %s" % self.username,
            "password = %s" % self.password,
            "max-messages = 5",
            "concatenation = true",
        ]
        # groups MUST be separated by a blank line; comments only on their own lines
        return "\n\n".join("\n".join(g) for g in (core, smsc, smsbox, user)) + "\n"

    def _spawn(self, name, binary):
        out = open(os.path.join(self.dir, name + ".out"), "wb")
        try:
            p = subprocess.Popen([binary, "-v", "3", "kannel.conf"], cwd=self.dir,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        finally:
            out.close()
        self._procs[name] = p

    def _check_alive(self, name):
        p = self._procs.get(name)
        if p is None or p.poll() is not None:
            self._fail("%s exited (rc=%s)" % (name, None if p is None else p.returncode))

    # ------------------------------------------------------------------ fake SMSC client
    def _fake_client(self):
        """Connects to the fake SMSC port and reads '<sender> <receiver> <type> <payload>'."""
        reassembler = _Reassembler()
        while not self._stopping:
            try:
                sock = socket.create_connection(("127.0.0.1", self.smsc_port), timeout=2)
            except OSError:
                time.sleep(0.02)
                continue
            sock.settimeout(None)
            self._client_sock = sock
            buf = b""
            try:
                while not self._stopping:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self._on_line(line.rstrip(b"\r"), reassembler)
            except OSError:
                pass
            finally:
                try:
                    sock.close()
                except OSError:
                    pass
                self._client_sock = None
            if not self._stopping:
                time.sleep(0.05)

    def _on_line(self, line, reassembler):
        with self._cond:
            self.raw_lines.append(line)
        fields = line.split(b" ", 3)
        if len(fields) < 4:
            return
        sender, receiver, kind, rest = (fields[0].decode("utf-8", "replace"),
                                        fields[1].decode("utf-8", "replace"),
                                        fields[2].decode("ascii", "replace"), fields[3])
        coding = None
        if kind == "text":
            data, coding = rest, 0
        elif kind == "ucs-2":
            data, coding = _unquote_bytes(rest), 2
        elif kind == "data":
            data, coding = _unquote_bytes(rest), 1
        elif kind == "udh":
            udh_s, _, payload = rest.partition(b" ")
            # 1.4.5 writes 'udh <udh> data <payload>' (older versions: 'udh <udh> <payload>')
            sub, _, tail = payload.partition(b" ")
            if sub in (b"data", b"ucs-2", b"text") and tail:
                payload = tail
                coding = {b"data": None, b"ucs-2": 2, b"text": 0}[sub]
            data = reassembler.add(sender, receiver, _unquote_bytes(udh_s), _unquote_bytes(payload))
            if data is None:
                return
        else:
            return
        if coding is None:
            text, coding = _guess_decode(data)
        elif coding == 1:
            text = data.decode("utf-8", "replace")
        else:
            text = _decode_payload(data, coding)
        self._record({"sender": sender, "receiver": receiver, "text": text, "coding": coding})

    def _record(self, msg):
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    # ------------------------------------------------------------------ fake operator
    def _start_operator(self):
        stack = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path != "/send":
                    self.send_error(404)
                    return
                stack._on_send(self, u.query)

        self._operator = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._operator.daemon_threads = True
        self.operator_port = self._operator.server_address[1]
        t = threading.Thread(target=self._operator.serve_forever, name="kannel-operator",
                             daemon=True)
        t.start()
        self._threads.append(t)

    def _on_send(self, handler, query):
        # parse by hand: parse_qs would decode %b as UTF-8 text, and it is bytes
        params = {}
        for pair in query.split("&"):
            k, _, v = pair.partition("=")
            params[urllib.parse.unquote(k)] = _unquote_bytes(v)
        try:
            coding = int(params.get("coding", b"0").decode() or "0")
        except ValueError:
            coding = 0
        with self._cond:
            self.operator_requests.append(params)
            outcome = self.next_outcome
            self._next_id += 1
            mid = self._next_id
        if outcome == "rejected":
            body = b"ERR rejected"
        else:
            body = ("OK %d" % mid).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        data = params.get("text", b"")
        udh = params.get("udh", b"")
        sender = params.get("from", b"").decode("utf-8", "replace")
        receiver = params.get("to", b"").decode("utf-8", "replace")
        info = _parse_udh(udh) if udh else None
        if info is None:
            text = _decode_payload(data, 2 if coding == 2 else 0) if coding != 1 else \
                data.decode("utf-8", "replace")
            self._record({"sender": sender, "receiver": receiver, "text": text,
                          "coding": coding, "outcome": outcome, "id": mid})
        else:
            whole = self._operator_parts(sender, receiver, udh, data)
            if whole is not None:
                text = _decode_payload(whole, 2 if coding == 2 else 0)
                self._record({"sender": sender, "receiver": receiver, "text": text,
                              "coding": coding, "outcome": outcome, "id": mid})
        if outcome in ("delivered", "failed"):
            mask = 1 if outcome == "delivered" else 2
            t = threading.Thread(target=self._send_dlr, args=(mid, mask, receiver), daemon=True)
            t.start()

    def _operator_parts(self, sender, receiver, udh, data):
        if not hasattr(self, "_op_reassembler"):
            self._op_reassembler = _Reassembler()
        with self._cond:
            return self._op_reassembler.add(sender, receiver, udh, data)

    def _send_dlr(self, mid, mask, receiver):
        """The operator's delivery report, once bearerbox has stored the MT's DLR entry."""
        url = "http://127.0.0.1:%d/dlr?%s" % (self.smsc_port, urllib.parse.urlencode(
            {"dlr-mid": str(mid), "dlr-mask": str(mask), "to": receiver}))
        time.sleep(0.1)
        status = None
        for _ in range(20):
            if self._stopping:
                return
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    status = r.status
                    body = r.read()
                if status == 202 or b"Sent" in body:
                    break
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                status = None
            time.sleep(0.1)
        with self._cond:
            self.dlr_results.append((mid, mask, status))
            self._cond.notify_all()

    # ------------------------------------------------------------------ waiting
    def wait_for_messages(self, n, timeout=10.0):
        """The list of received messages once it has at least n (AssertionError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KannelError("expected %d MTs at the SMSC, got %d: %r\nraw: %r\n%s"
                                      % (n, len(self.messages), self.messages,
                                         self.raw_lines[-5:], self.log_tail(3000)))
                self._cond.wait(min(remaining, 0.2))
            return list(self.messages)

    def wait_for_message(self, receiver, timeout=10.0, count=1):
        """The first `count` messages received for `receiver` (AssertionError after timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if m["receiver"] == receiver]
                if len(found) >= count:
                    return found[:count] if count > 1 else found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KannelError("no MT for %s at the SMSC within %.0f s; got %r\n%s"
                                      % (receiver, timeout, self.messages, self.log_tail(3000)))
                self._cond.wait(min(remaining, 0.2))

    def clear(self):
        with self._cond:
            del self.messages[:]
            del self.raw_lines[:]

    # ------------------------------------------------------------------ stop
    def log_tail(self, n=6000):
        out = []
        if not self.dir:
            return ""
        for name in ("bearerbox.out", "smsbox.out", "bearerbox.log", "smsbox.log"):
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            out.append("==> %s <==\n%s" % (path, data[-n:].decode("utf-8", "replace")))
        return "\n".join(out)

    def _stop_processes(self):
        self._stopping = True
        # smsbox first: killing bearerbox under smsbox makes smsbox respawn itself detached
        for name in ("smsbox", "bearerbox"):
            p = self._procs.get(name)
            if p is None:
                continue
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self._procs = {}
        sock = self._client_sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._operator is not None:
            self._operator.shutdown()
            self._operator.server_close()
            self._operator = None
        for t in self._threads:
            t.join(2)
        self._threads = []

    def stop(self):
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.dir is None:
            return
        self._stop_processes()
        if os.environ.get("KANNEL_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
