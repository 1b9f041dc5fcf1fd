"""Test harness: a throwaway redis-server on a free loopback port (Debian's `redis-server`).

Usage:

    from harness.redis import RedisServer

    r = RedisServer()                  # started; RedisServer(password="pw") adds requirepass
    r.url                              # "redis://127.0.0.1:PORT/0" (":pw@" when a password is set)
    r.host, r.port, r.dir
    r.command("ZCARD", "verifyd:k")    # a tiny RESP client: int, str, bytes, list or None
    r.stop()                           # SIGTERM, waits (the data is gone: no RDB, no AOF)
    r.start()                          # again, on the same port (what a restart test needs)
    r.pause(); r.resume()              # SIGSTOP / SIGCONT: a hung Redis
    r.cleanup()                        # stop() and remove r.dir (unless REDIS_KEEP=1)

Started with `--port P --bind 127.0.0.1 --save '' --appendonly no --dir <tmp>`; the log is
<tmp>/redis.log. Servers still running at interpreter exit are killed. REDIS_SERVER overrides the
binary. Run with /usr/bin/python3; only the standard library is used.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _reap_all():
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for s in servers:
        try:
            s.cleanup()
        except Exception:
            pass


atexit.register(_reap_all)


class RedisError(AssertionError):
    pass


class ReplyError(Exception):
    """An error reply (-ERR ...) from Redis."""


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise ReplyError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exactly(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError("unexpected reply from Redis: %r" % line)


class RedisServer:
    def __init__(self, password=None, extra_args=(), start=True):
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.password = password
        self.extra_args = list(extra_args)
        self.dir = tempfile.mkdtemp(prefix="verifyd-redis-")
        self.proc = None
        if start:
            self.start()

    @property
    def url(self):
        auth = ""
        if self.password:
            from urllib.parse import quote
            auth = ":" + quote(self.password, safe="") + "@"
        return "redis://%s%s:%d/0" % (auth, self.host, self.port)

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            return
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", self.host, "--save", "",
                "--appendonly", "no", "--dir", self.dir,
                "--logfile", os.path.join(self.dir, "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                info = self.command("INFO", "server")
                if ("process_id:%d" % self.proc.pid).encode() in info:
                    return self
            except (OSError, ConnectionError, ReplyError):
                pass
            time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RedisError("redis-server did not start on port %d; log:\n%s" % (self.port, log))

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def command(self, *args, timeout=5.0):
        """Runs one command on a fresh connection (AUTH first when there is a password)."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            reader = _Reader(s)
            if self.password:
                s.sendall(_encode(["AUTH", self.password]))
                reader.reply()
            s.sendall(_encode(list(args)))
            return reader.reply()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.proc = None

    def cleanup(self):
        self.stop()
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if os.environ.get("REDIS_KEEP") == "1":
            return
        shutil.rmtree(self.dir, ignore_errors=True)
