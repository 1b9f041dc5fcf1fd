"""A real SMTP server (Debian's python3-aiosmtpd) that stores what it receives, for delivery tests.

Usage:

    from harness.smtp_sink import SmtpSink

    sink = SmtpSink(tls=True, auth=("alice", "s3cret"))   # STARTTLS required, then AUTH required
    sink.port, sink.cert_path                              # smtp://127.0.0.1:<port>, CA to trust
    msgs = sink.wait_for(1, timeout=10)                    # [email.message.EmailMessage]
    msgs[0]["X-Sink-TLS"] == "True"; msgs[0]["X-Sink-Auth-User"] == "alice"
    sink.stop()

tls=False gives a plain server (then auth, if given, is allowed without TLS). The server runs
as a subprocess of /usr/bin/python3 (the only interpreter with aiosmtpd) from a script written
into a temp dir, with a self-signed certificate for localhost/127.0.0.1 made by `openssl`.
Each message is written atomically to <dir>/mail/NNNN.eml, prefixed with the envelope:
X-Sink-Mail-From, X-Sink-Rcpt-To (one per recipient), X-Sink-TLS, X-Sink-Auth-User.
Recipe: /work/shared/notes/KANNEL_SMTP.md section 12.
"""

import atexit
import email
import email.policy
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from .verifyd import free_port

PYTHON = "/usr/bin/python3"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _reap_all():
    with _LIVE_LOCK:
        sinks = list(_LIVE)
    for s in sinks:
        try:
            s.stop()
        except Exception:
            pass


atexit.register(_reap_all)

_SCRIPT = r'''
import itertools, os, signal, ssl, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, outdir, tls, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
cert, key = sys.argv[6], sys.argv[7]
os.makedirs(outdir, exist_ok=True)
counter = itertools.count(1)


class Sink:
    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        tmp = os.path.join(outdir, ".%04d.tmp" % n)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else ""
        with open(tmp, "wb") as f:
            f.write(("X-Sink-Mail-From: %s\r\n" % envelope.mail_from).encode())
            for r in envelope.rcpt_tos:
                f.write(("X-Sink-Rcpt-To: %s\r\n" % r).encode())
            f.write(("X-Sink-TLS: %s\r\n" % (session.ssl is not None)).encode())
            f.write(("X-Sink-Auth-User: %s\r\n" % login).encode())
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(outdir, "%04d.eml" % n))
        return "250 Message accepted for delivery"


kw = {}
if tls == "starttls":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw.update(tls_context=ctx, require_starttls=True)
if user:
    u, p = user.encode(), pw.encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == u and auth_data.password == p
        # handled=False: aiosmtpd answers 535 itself (handled=True with failure sends nothing)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=(tls != "none"))
ctl = Controller(Sink(), hostname="127.0.0.1", port=port, **kw)
ctl.start()
print("READY %d" % port, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
signal.signal(signal.SIGINT, lambda *a: stop.set())
stop.wait()
ctl.stop()
'''


class SmtpSinkError(AssertionError):
    pass


class SmtpSink(object):
    def __init__(self, tls=True, auth=("alice", "s3cret"), start=True):
        self.tls = bool(tls)
        self.auth = tuple(auth) if auth else None
        self.dir = None
        self.proc = None
        self.port = None
        if start:
            self.start()

    @property
    def cert_path(self):
        return os.path.join(self.dir, "cert.pem")

    @property
    def key_path(self):
        return os.path.join(self.dir, "key.pem")

    @property
    def mail_dir(self):
        return os.path.join(self.dir, "mail")

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="smtp-sink-")
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._make_cert()
            with open(os.path.join(self.dir, "sink.py"), "w") as f:
                f.write(_SCRIPT)
            last = None
            for _ in range(3):          # a port taken between free_port() and bind: retry
                try:
                    self._spawn()
                    return self
                except SmtpSinkError as e:
                    last = e
            raise last
        except BaseException:
            self.stop()
            raise

    def _make_cert(self):
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key_path,
             "-out", self.cert_path, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise SmtpSinkError("openssl failed: %r" % r.stderr[-2000:])

    def _spawn(self):
        self.port = free_port()
        user, pw = self.auth if self.auth else ("", "")
        log_path = os.path.join(self.dir, "sink.log")
        log = open(log_path, "ab")
        try:
            p = subprocess.Popen(
                [PYTHON, os.path.join(self.dir, "sink.py"), str(self.port), self.mail_dir,
                 "starttls" if self.tls else "none", user, pw, self.cert_path, self.key_path],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True)
        finally:
            log.close()
        self.proc = p
        lines = queue.Queue()

        def pump():
            for raw in iter(p.stdout.readline, b""):
                lines.put(raw.decode("utf-8", "replace").strip())
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(0.01, min(remaining, 0.5)))
            except queue.Empty:
                line = ""
            if line is not None and line.startswith("READY"):
                return
            if line is None or remaining <= 0:
                self._kill_proc()
                raise SmtpSinkError("SMTP sink did not start on port %d:\n%s"
                                    % (self.port, self.log_tail()))

    def log_tail(self, n=4000):
        try:
            with open(os.path.join(self.dir, "sink.log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except (OSError, TypeError):
            return "<no log>"

    # ------------------------------------------------------------------ messages
    def message_files(self):
        try:
            names = sorted(n for n in os.listdir(self.mail_dir) if n.endswith(".eml"))
        except OSError:
            return []
        return [os.path.join(self.mail_dir, n) for n in names]

    def raw_messages(self):
        out = []
        for path in self.message_files():
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def messages(self):
        """Every received message, oldest first, as email.message.EmailMessage."""
        return [email.message_from_bytes(raw, policy=email.policy.default)
                for raw in self.raw_messages()]

    def wait_for(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            files = self.message_files()
            if len(files) >= n:
                return self.messages()
            if time.monotonic() > deadline:
                raise SmtpSinkError("expected %d messages at the SMTP sink, got %d\n%s"
                                    % (n, len(files), self.log_tail()))
            if self.proc is None or self.proc.poll() is not None:
                raise SmtpSinkError("SMTP sink died:\n%s" % self.log_tail())
            time.sleep(0.02)

    def clear(self):
        for path in self.message_files():
            os.unlink(path)

    # ------------------------------------------------------------------ stop
    def _kill_proc(self):
        p = self.proc
        self.proc = None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        try:
            p.stdout.close()
        except Exception:
            pass

    def stop(self):
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._kill_proc()
        if self.dir is not None and os.environ.get("SMTP_SINK_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
