"""Test harness: start a real verifyd process and talk to it.

Usage (from a test module):

    import os, sys
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    from harness.verifyd import Verifyd

    srv = Verifyd()            # starts the binary named by $VERIFYD_BIN
    status, headers, body = srv.request('GET', '/v2/Services')
    srv.stop()                 # SIGTERM, asserts exit code 0
    srv.cleanup()              # removes the temporary data dir it created

Only the Python standard library is used, plus Debian's python3-twilio 7.7.1 for
twilio_client().  Run with /usr/bin/python3.
"""

import atexit
import base64
import http.client
import json
import os
import random
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

START_TIMEOUT = 30.0          # the test build uses AddressSanitizer
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
BOOT_KEYS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "VERIFICATION_SID", "VERIFYD_BASE_URL")

_DEFAULT = object()           # sentinel: "use the bootstrap credentials"
_LIVE = set()                 # processes to reap if a test run dies half way
_LIVE_LOCK = threading.Lock()


def _reap_all():
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass


atexit.register(_reap_all)


class VerifydError(AssertionError):
    """Raised when verifyd cannot be started/stopped the way the contract says."""


def verifyd_bin():
    path = os.environ.get("VERIFYD_BIN")
    if not path:
        raise VerifydError(
            "VERIFYD_BIN is not set: export VERIFYD_BIN=/path/to/verifyd "
            "(e.g. /work/main/build/asan/verifyd) before running these tests")
    return path


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


RELAXED_AUTH_THROTTLING = {
    "VERIFYD_AUTH_FAILURES_BEFORE_DELAY": "1000000",
    "VERIFYD_AUTH_FAILURES_BEFORE_REFUSAL": "1000000",
    # The suites send many unchecked codes to consecutive numbers: SMS pumping to Fraud Guard.
    "VERIFYD_FRAUD_GUARD": "off",
}


def _clean_env(extra_env=None):
    env = dict(os.environ)
    # The harness controls every option explicitly; a stray VERIFYD_* in the
    # caller's environment must not change what is being tested.
    for k in list(env):
        if k.startswith("VERIFYD_") and k != "VERIFYD_BIN":
            del env[k]
    # Every suite sends many deliberate bad credentials from 127.0.0.1: the per-address
    # throttling of failed authentication would slow and then refuse the rest of the suite.
    # Its own test sets low limits with flags, which win over these.
    env.update(RELAXED_AUTH_THROTTLING)
    if extra_env:
        env.update(extra_env)
    return env


def _parse_kv_lines(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def basic_auth_header(user, password):
    raw = ("%s:%s" % (user, password)).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _bin_stamp(path):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        return None


class Verifyd(object):
    """A running verifyd server.

    Parameters
      extra_args: list of extra CLI arguments (e.g. ['--dev-outbox', 'off']).
      extra_env:  dict of extra environment variables for the server process.
      data_dir:   reuse this data directory (it is then NOT removed by cleanup()).
      listen:     'HOST:PORT' (default 127.0.0.1:0).
      log_level:  default 'warn'.
      start:      start immediately (default True).
    """

    def __init__(self, extra_args=(), extra_env=None, data_dir=None, listen="127.0.0.1:0",
                 log_level="warn", start=True):
        self.bin = verifyd_bin()
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
        self.listen = listen
        self.log_level = log_level
        if data_dir is None:
            self.data_dir = tempfile.mkdtemp(prefix="verifyd-data-")
            self._own_data_dir = True
        else:
            self.data_dir = data_dir
            self._own_data_dir = False
        self._log_dir = tempfile.mkdtemp(prefix="verifyd-log-")
        self.stderr_path = None
        self.proc = None
        self.boot = {}
        self.stdout_lines = []
        self._starts = 0
        if start:
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise

    # ------------------------------------------------------------------ process
    def start(self, attempts=5):
        """Start the server and wait for the four bootstrap lines.

        A failure to exec, or a crash while the binary on disk is changing, is
        retried: the binary may be being rebuilt while the tests run.
        """
        last_err = None
        for i in range(attempts):
            stamp_before = _bin_stamp(self.bin)
            try:
                self._start_once()
                return self
            except _RetryableStart as e:
                last_err = e
                stamp_after = _bin_stamp(self.bin)
                retry = e.exec_failed or stamp_before != stamp_after or stamp_after is None \
                    or e.signalled
                if not retry or i == attempts - 1:
                    break
                time.sleep(3.0)
        raise VerifydError(str(last_err))

    def _start_once(self):
        self._starts += 1
        self.stderr_path = os.path.join(self._log_dir, "stderr.%d.log" % self._starts)
        argv = [self.bin, "--listen", self.listen, "--data-dir", self.data_dir,
                "--log-level", self.log_level] + self.extra_args
        host, _, port = self.listen.rpartition(":")
        if port == "0" and ("--public-url" in self.extra_args or "VERIFYD_PUBLIC_URL" in self.extra_env):
            # the printed VERIFYD_BASE_URL is then the public URL: we need to know
            # the real port to connect, so pick one.
            self.listen = "%s:%d" % (host, free_port())
            argv[2] = self.listen
        self.argv = argv
        err = open(self.stderr_path, "wb")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err, env=_clean_env(self.extra_env),
                                    start_new_session=True)
        except OSError as e:
            err.close()
            raise _RetryableStart("cannot exec %s: %s" % (self.bin, e), exec_failed=True)
        err.close()
        with _LIVE_LOCK:
            _LIVE.add(proc)
        self.proc = proc
        lines = queue.Queue()
        self.stdout_lines = []

        def pump():
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.stdout_lines.append(line)
                lines.put(line)
            lines.put(None)

        t = threading.Thread(target=pump, name="verifyd-stdout", daemon=True)
        t.start()
        self._pump = t

        boot = {}
        deadline = time.monotonic() + START_TIMEOUT
        while not all(k in boot for k in BOOT_KEYS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._force_kill()
                raise VerifydError(
                    "verifyd did not print %s within %.0f s (got %r)\nargv: %s\nstderr:\n%s"
                    % (", ".join(BOOT_KEYS), START_TIMEOUT, self.stdout_lines, argv,
                       self.stderr_tail()))
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                rc = proc.wait(10)
                msg = ("verifyd exited (rc=%s) before printing the bootstrap lines; stdout=%r\n"
                       "argv: %s\nstderr:\n%s" % (rc, self.stdout_lines, argv, self.stderr_tail()))
                raise _RetryableStart(msg, signalled=(rc is not None and rc < 0))
            m = re.match(r"^([A-Z_]+)=(.*)$", line)
            if m and m.group(1) in BOOT_KEYS:
                boot[m.group(1)] = m.group(2)
        self.boot = boot
        self.account_sid = boot["TWILIO_ACCOUNT_SID"]
        self.auth_token = boot["TWILIO_AUTH_TOKEN"]
        self.service_sid = boot["VERIFICATION_SID"]
        self.printed_base_url = boot["VERIFYD_BASE_URL"].rstrip("/")
        self.base_url = self.printed_base_url
        # Where to connect. Normally the printed URL; when an explicit port was
        # requested (e.g. together with --public-url) use the listen address.
        host, _, port = self.listen.rpartition(":")
        if port and port != "0":
            self.host, self.port = host, int(port)
        else:
            u = urllib.parse.urlsplit(self.printed_base_url)
            self.host, self.port = u.hostname, u.port or 80
        return self

    def _force_kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self._forget()

    def _forget(self):
        if self.proc is not None:
            with _LIVE_LOCK:
                _LIVE.discard(self.proc)
            try:
                self.proc.stdout.close()
            except Exception:
                pass

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait up to 10 s (then SIGKILL); asserts a graceful exit 0."""
        if self.proc is None:
            return None
        proc = self.proc
        if proc.poll() is not None:
            rc = proc.returncode
            self._forget()
            self.proc = None
            raise VerifydError("verifyd had already exited with rc=%s before stop()\nstderr:\n%s"
                               % (rc, self.stderr_tail()))
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            self._forget()
            self.proc = None
            raise VerifydError("verifyd did not exit within %.0f s of SIGTERM (killed)\nstderr:\n%s"
                               % (STOP_TIMEOUT, self.stderr_tail()))
        self._forget()
        self.proc = None
        if rc != 0:
            raise VerifydError("verifyd exited with rc=%s on SIGTERM (expected 0)\nstderr:\n%s"
                               % (rc, self.stderr_tail()))
        return rc

    def kill9(self):
        """SIGKILL the server (no chance to flush anything)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(10)
        self._forget()
        self.proc = None
        return rc

    def restart(self):
        """Start a new process on the same data dir (after stop() or kill9())."""
        if self.proc is not None:
            raise VerifydError("restart() while still running")
        return self.start()

    def cleanup(self):
        """Kill if needed and remove the temporary directories this object created."""
        if self.proc is not None:
            self._force_kill()
            self.proc = None
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def stderr_tail(self, n=4000):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
            return data[-n:].decode("utf-8", "replace")
        except Exception:
            return "<no stderr>"

    # ------------------------------------------------------------ CLI helpers
    def _cli(self, args):
        last = None
        for i in range(3):
            try:
                r = subprocess.run([self.bin] + args, stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=60, env=_clean_env())
            except OSError as e:          # binary being rebuilt
                last = "cannot exec: %s" % e
                time.sleep(3)
                continue
            if r.returncode == 0:
                return _parse_kv_lines(r.stdout.decode("utf-8", "replace"))
            last = "rc=%s stdout=%r stderr=%r" % (r.returncode, r.stdout, r.stderr[-2000:])
            if r.returncode > 0:
                break
            time.sleep(3)
        raise VerifydError("verifyd %s failed: %s" % (" ".join(args), last))

    def new_account(self, friendly_name=None):
        """`verifyd accounts create` -> (account_sid, auth_token)."""
        args = ["accounts", "create", "--data-dir", self.data_dir]
        if friendly_name:
            args += ["--friendly-name", friendly_name]
        kv = self._cli(args)
        if "TWILIO_ACCOUNT_SID" not in kv or "TWILIO_AUTH_TOKEN" not in kv:
            raise VerifydError("accounts create printed %r" % kv)
        return kv["TWILIO_ACCOUNT_SID"], kv["TWILIO_AUTH_TOKEN"]

    def new_api_key(self, account_sid=None, friendly_name=None):
        """`verifyd keys create` -> (api_key_sid, api_key_secret)."""
        args = ["keys", "create", "--data-dir", self.data_dir,
                "--account", account_sid or self.account_sid]
        if friendly_name:
            args += ["--friendly-name", friendly_name]
        kv = self._cli(args)
        if "API_KEY_SID" not in kv or "API_KEY_SECRET" not in kv:
            raise VerifydError("keys create printed %r" % kv)
        return kv["API_KEY_SID"], kv["API_KEY_SECRET"]

    # ------------------------------------------------------------ HTTP helpers
    def connection(self, timeout=REQUEST_TIMEOUT):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def auth_headers(self, auth=_DEFAULT):
        if auth is _DEFAULT:
            auth = (self.account_sid, self.auth_token)
        if auth is None:
            return {}
        return {"Authorization": basic_auth_header(auth[0], auth[1])}

    def request(self, method, path, body=None, headers=None, auth=_DEFAULT, conn=None,
                timeout=REQUEST_TIMEOUT):
        """One HTTP request over a fresh connection (or `conn` if given).

        body: None, dict / list of pairs (form-encoded), str or bytes (sent as is;
        Content-Type defaults to form-urlencoded unless given in headers).
        auth: (user, password), None for no Authorization header; default is the
        bootstrap account.
        Returns (status, headers, json-or-bytes). An empty body is b''.
        """
        hdrs = self.auth_headers(auth)
        data = None
        if body is not None:
            if isinstance(body, (dict, list, tuple)):
                data = urllib.parse.urlencode(body, doseq=isinstance(body, dict)).encode("ascii")
            elif isinstance(body, str):
                data = body.encode("utf-8")
            else:
                data = body
            lower = {k.lower() for k in (headers or {})}
            if "content-type" not in lower:
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if headers:
            hdrs.update(headers)
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=data, headers=hdrs)
            resp = c.getresponse()
            raw = resp.read()
            return resp.status, resp.headers, decode_body(raw)
        finally:
            if own:
                c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body if body is not None else {}, **kw)

    def healthz(self):
        return self.request("GET", "/healthz", auth=None)

    def raw(self, data, timeout=5.0, shutdown_write=False):
        """Send raw bytes on a fresh socket; return what the server sent back
        (until it closes the connection or `timeout` seconds of silence)."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        out = b""
        try:
            try:
                s.sendall(data)
                if shutdown_write:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            s.close()
        return out

    # -------------------------------------------------------------- dev outbox
    def messages(self, to, page_size=50, auth=_DEFAULT):
        path = "/dev/v1/Messages?To=%s&PageSize=%d" % (urllib.parse.quote(to, safe=""), page_size)
        status, _h, body = self.request("GET", path, auth=auth)
        if status != 200 or not isinstance(body, dict):
            raise VerifydError("GET %s -> %s %r" % (path, status, body))
        return body["messages"]

    def latest_code(self, to, auth=_DEFAULT):
        """Digits of the newest dev-outbox message for `to`."""
        msgs = self.messages(to, page_size=1, auth=auth)
        if not msgs:
            raise VerifydError("dev outbox has no message for %r" % to)
        if msgs[0].get("code"):
            return msgs[0]["code"]
        return extract_code(msgs[0]["body"])

    # ------------------------------------------------------------------ SDK
    def twilio_client(self, sid=None, token=None, account_sid=None, strict=True):
        return make_twilio_client(self.base_url_for_clients(), sid or self.account_sid,
                                  token or self.auth_token, account_sid=account_sid,
                                  strict=strict)

    def base_url_for_clients(self):
        return "http://%s:%d" % (self.host, self.port)


class _RetryableStart(Exception):
    def __init__(self, msg, exec_failed=False, signalled=False):
        Exception.__init__(self, msg)
        self.exec_failed = exec_failed
        self.signalled = signalled


def decode_body(raw):
    if not raw:
        return b""
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return raw


_CODE_RE = re.compile(r"verification code is: (\d+)")


def extract_code(body):
    m = _CODE_RE.search(body)
    if m:
        return m.group(1)
    m = re.search(r"\d{4,10}", body)
    if not m:
        raise VerifydError("no code in outbox body %r" % body)
    return m.group(0)


# ---------------------------------------------------------------------------
# Official Python SDK, redirected to verifyd (SDK_NOTES.md section 1, Python)
# ---------------------------------------------------------------------------
_TWILIO_HOST_RE = re.compile(r"^(verify|lookups)(\.[a-z0-9-]+)*\.twilio\.com$")


def make_twilio_client(base_url, sid, token, account_sid=None, strict=True):
    from twilio.rest import Client
    from twilio.http.http_client import TwilioHttpClient

    class RedirectingHttpClient(TwilioHttpClient):
        """TwilioHttpClient that sends https://verify.twilio.com/... to base_url."""

        def __init__(self, base, strict=True, **kw):
            TwilioHttpClient.__init__(self, **kw)
            self.base = urllib.parse.urlsplit(base.rstrip("/"))
            self.strict = strict
            self.log = []
            if self.session is not None:
                self.session.trust_env = False     # no HTTP(S)_PROXY for loopback

        def rewrite(self, url):
            u = urllib.parse.urlsplit(url)
            if u.netloc == self.base.netloc and u.scheme == self.base.scheme:
                return url                          # server's own absolute URL
            if u.hostname and _TWILIO_HOST_RE.match(u.hostname):
                return urllib.parse.urlunsplit((self.base.scheme, self.base.netloc,
                                                self.base.path + u.path, u.query, u.fragment))
            if self.strict:
                raise RuntimeError("RedirectingHttpClient: refusing request to %s" % url)
            return url

        def request(self, method, url, params=None, data=None, headers=None, auth=None,
                    timeout=None, allow_redirects=False, **kw):
            url = self.rewrite(url)
            self.log.append((method, url, dict(params or {}), dict(data or {})))
            if timeout is None:
                timeout = REQUEST_TIMEOUT
            return TwilioHttpClient.request(self, method, url, params=params, data=data,
                                            headers=headers, auth=auth, timeout=timeout,
                                            allow_redirects=allow_redirects, **kw)

    hc = RedirectingHttpClient(base_url, strict=strict)
    client = Client(sid, token, account_sid=account_sid, http_client=hc)
    client.region = None
    client.edge = None
    return client


_used_numbers = set()
_used_numbers_lock = threading.Lock()


def new_phone():
    """A valid US number (+1 650 NXX XXXX) not handed out before in this process. Thread-safe."""
    with _used_numbers_lock:
        while True:
            n = "+1650%d%06d" % (random.randint(2, 9), random.randrange(10 ** 6))
            if n not in _used_numbers:
                _used_numbers.add(n)
                return n
