"""Test harness: an HAProxy load balancer in front of verifyd nodes (loopback only).

Usage:

    from harness.haproxy import HaproxyServer

    lb = HaproxyServer(backends=[("127.0.0.1", 8081), ("127.0.0.1", 8082)])
    lb.url                      # "http://127.0.0.1:PORT"
    lb.host, lb.port
    lb.server_states()          # {"n0": "UP", "n1": "DOWN", ...} (from the stats page)
    lb.wait_states({"n1": "DOWN"}, timeout=10)
    lb.stop()                   # SIGTERM (then SIGKILL), removes the temp dir

The configuration (written to a temp dir, run with `haproxy -f cfg -db` in the foreground):
mode http, balance roundrobin, `option httpchk GET /healthz` (every `inter 500ms`, `fall 2`,
`rise 1`), `timeout connect 2s`, `timeout client/server 30s`, `retry-on conn-failure
empty-response`, `retries 2`, `option redispatch`. Backend servers are named n0, n1, ... in
the order given. A stats page (CSV) listens on a second free loopback port.

Only the Python standard library is used.
"""

import atexit
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HAPROXY_BIN = os.environ.get("HAPROXY_BIN", "/usr/sbin/haproxy")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

_LIVE = set()
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


class HaproxyError(AssertionError):
    pass


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _loopback(host):
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


class HaproxyServer(object):
    """A running HAProxy in front of `backends` ([(host, port), ...], loopback only)."""

    def __init__(self, backends, port=None, check_inter_ms=500, fall=2, rise=1, start=True):
        if not backends:
            raise HaproxyError("HaproxyServer needs at least one backend")
        self.backends = [(h, int(p)) for h, p in backends]
        for h, _p in self.backends:
            if not _loopback(h):
                raise HaproxyError("backend %r is not a loopback address" % h)
        self.names = ["n%d" % i for i in range(len(self.backends))]
        self.check_inter_ms = check_inter_ms
        self.fall = fall
        self.rise = rise
        self.dir = tempfile.mkdtemp(prefix="verifyd-haproxy-")
        self.cfg_path = os.path.join(self.dir, "haproxy.cfg")
        self.stderr_path = os.path.join(self.dir, "haproxy.log")
        self.host = "127.0.0.1"
        self.port = port
        self.stats_port = None
        self.proc = None
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    # ------------------------------------------------------------------ config
    def config_text(self):
        lines = [
            "global",
            "    maxconn 1024",
            "",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    timeout check 2s",
            "    timeout http-request 30s",
            "    timeout http-keep-alive 5s",
            "    retries 2",
            "    retry-on conn-failure empty-response",
            "    option redispatch",
            "",
            "frontend fe_verifyd",
            "    bind %s:%d" % (self.host, self.port),
            "    default_backend be_verifyd",
            "",
            "backend be_verifyd",
            "    balance roundrobin",
            "    option httpchk GET /healthz",
        ]
        for name, (h, p) in zip(self.names, self.backends):
            lines.append("    server %s %s:%d check inter %dms fall %d rise %d"
                         % (name, h, p, self.check_inter_ms, self.fall, self.rise))
        lines += [
            "",
            "listen stats",
            "    bind %s:%d" % (self.host, self.stats_port),
            "    stats enable",
            "    stats uri /stats",
            "    stats refresh 0",
            "",
        ]
        return "\n".join(lines)

    # ----------------------------------------------------------------- process
    def start(self, attempts=3):
        if self.proc is not None and self.proc.poll() is None:
            raise HaproxyError("haproxy already running")
        fixed = self.port is not None
        last = None
        for _ in range(attempts):
            if not fixed:
                self.port = _free_port()
            self.stats_port = _free_port()
            try:
                self._start_once()
                return self
            except HaproxyError as e:      # e.g. a port taken between pick and bind
                last = e
                self._kill()
        raise last

    def _start_once(self):
        with open(self.cfg_path, "w") as f:
            f.write(self.config_text())
        check = subprocess.run([HAPROXY_BIN, "-c", "-q", "-f", self.cfg_path],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        if check.returncode != 0:
            raise HaproxyError("haproxy -c rejected the config:\n%s\n%s%s"
                               % (self.config_text(), check.stdout.decode("utf-8", "replace"),
                                  check.stderr.decode("utf-8", "replace")))
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen([HAPROXY_BIN, "-f", self.cfg_path, "-db"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True, cwd=self.dir)
        finally:
            err.close()
        with _LIVE_LOCK:
            _LIVE.add(self.proc)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise HaproxyError("haproxy exited (rc=%s) at start:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if self._accepts(self.port) and self._accepts(self.stats_port):
                return
            if time.monotonic() > deadline:
                raise HaproxyError("haproxy did not accept on %s:%d within %.0f s:\n%s"
                                   % (self.host, self.port, START_TIMEOUT, self.log_tail()))
            time.sleep(0.05)

    def _accepts(self, port):
        try:
            s = socket.create_connection((self.host, port), timeout=0.5)
        except OSError:
            return False
        s.close()
        return True

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        with _LIVE_LOCK:
            _LIVE.discard(p)
        self.proc = None

    def stop(self):
        """Stop haproxy (SIGTERM, then SIGKILL) and remove its temp dir. Idempotent."""
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)   # hard stop: closes every connection
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        self._kill()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    cleanup = stop

    def log_tail(self, n=4000):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except Exception:
            return "<no haproxy log>"

    # ------------------------------------------------------------------- stats
    def server_states(self):
        """{"n0": "UP", "n1": "DOWN", ...}: the backend servers' states (stats CSV)."""
        c = http.client.HTTPConnection(self.host, self.stats_port, timeout=5)
        try:
            c.request("GET", "/stats;csv")
            r = c.getresponse()
            text = r.read().decode("utf-8", "replace")
        finally:
            c.close()
        lines = [l for l in text.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            raise HaproxyError("unexpected stats page: %r" % text[:500])
        cols = lines[0][2:].split(",")
        ipx, isv, ist = cols.index("pxname"), cols.index("svname"), cols.index("status")
        out = {}
        for l in lines[1:]:
            f = l.split(",")
            if len(f) > ist and f[ipx] == "be_verifyd" and f[isv] in self.names:
                out[f[isv]] = f[ist]
        return out

    def wait_states(self, wanted, timeout=10.0):
        """Wait until server_states() agrees with `wanted` ({"n1": "DOWN"}; prefix match, so
        "UP" matches "UP 1/2"); returns the states."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.server_states()
            if all(states.get(k, "").startswith(v) for k, v in wanted.items()):
                return states
            if time.monotonic() > deadline:
                raise HaproxyError("haproxy server states %r, wanted %r after %.0f s"
                                   % (states, wanted, timeout))
            time.sleep(0.1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
