"""A throwaway PostgreSQL server (Debian's postgresql-15 binaries) for tests.

Usage:

    from harness.postgres import PostgresServer

    pg = PostgresServer()          # initdb + start on a free loopback port, database `verifyd`
    pg.url                         # postgresql://postgres@127.0.0.1:PORT/verifyd
    pg.stop(); pg.start()          # a clean restart on the same data dir and port
    pg.kill9(); pg.start()         # a crash (the postmaster and every backend), then recovery
    pg.cleanup()                   # stop it and remove its files

From a shell, run a command with VERIFYD_TEST_POSTGRES_URL set to a fresh server's URL:

    /usr/bin/python3 test/harness/postgres.py run -- build/x/test/verifyd_store_contract_tests

Everything lives in one temp dir (data/, sock/, log); the server listens on 127.0.0.1 only,
with trust authentication, fsync on. PostgreSQL refuses to run as root: as root, initdb and
pg_ctl run as the `postgres` system user (created by Debian's postgresql package) through
`runuser`, with the temp dir chowned to it. Set PG_KEEP=1 to keep the dir after cleanup().
Only the standard library is used.
"""

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PG_BIN = os.environ.get("VERIFYD_PG_BIN", "/usr/lib/postgresql/15/bin")
START_TIMEOUT = 30
STOP_TIMEOUT = 30

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


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class PostgresError(AssertionError):
    pass


class PostgresServer:
    def __init__(self, database="verifyd", start=True):
        self.database = database
        self.dir = tempfile.mkdtemp(prefix="verifyd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "log")
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        os.mkdir(self.sock)
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            for path in (self.dir, self.sock):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.running = False
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U",
                   "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        if start:
            self.start()
            self._run([os.path.join(PG_BIN, "createdb"), "-h", "127.0.0.1", "-p",
                       str(self.port), "-U", "postgres", self.database])

    @property
    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, self.database)

    def url_for(self, database):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, database)

    # ------------------------------------------------------------------ lifecycle
    def _cmd(self, argv):
        return (["runuser", "-u", "postgres", "--"] + argv) if self._as_root else argv

    def _run(self, argv, timeout=START_TIMEOUT):
        p = subprocess.run(self._cmd(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout, cwd=self.dir)
        if p.returncode != 0:
            raise PostgresError("%s failed (%d):\n%s\n%s" % (
                " ".join(argv), p.returncode, p.stdout.decode(errors="replace"), self._log_tail()))
        return p.stdout.decode(errors="replace")

    def _log_tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-30:])
        except OSError:
            return ""

    def start(self):
        """Starts the server (again) on the same data dir and port; waits until it accepts."""
        opts = "-p %d -h 127.0.0.1 -k %s -c fsync=on -c max_connections=200" % (
            self.port, self.sock)
        self._run([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT),
                   "-D", self.data, "-l", self.log, "-o", opts], timeout=START_TIMEOUT + 10)
        self.running = True

    def stop(self, mode="fast"):
        """A clean shutdown (mode fast: open sessions are ended)."""
        if not self.running:
            return
        self._run([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-t", str(STOP_TIMEOUT),
                   "-D", self.data, "-m", mode], timeout=STOP_TIMEOUT + 10)
        self.running = False

    def _postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _children(pid):
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
                # The fields after the command name (in parentheses): state, ppid, ...
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(entry))
        return out

    def kill9(self):
        """A crash: SIGKILL to the postmaster and all its backends, as a power cut would do."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        victims = [pid] + self._children(pid)
        for v in victims:
            try:
                os.kill(v, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + STOP_TIMEOUT
        while time.time() < deadline and any(os.path.exists("/proc/%d" % v) and
                                             not self._is_zombie(v) for v in victims):
            time.sleep(0.05)
        # A dead postmaster that is not reaped yet still answers kill(pid, 0), and start()
        # would take it for a live one: its lock file goes once every process is dead.
        reaped = time.time() + 2
        while time.time() < reaped and any(os.path.exists("/proc/%d" % v) for v in victims):
            time.sleep(0.05)
        try:
            os.unlink(os.path.join(self.data, "postmaster.pid"))
        except FileNotFoundError:
            pass
        self.running = False

    @staticmethod
    def _is_zombie(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            return stat[stat.rindex(")") + 2] == "Z"
        except (OSError, ValueError, IndexError):
            return True

    def cleanup(self):
        try:
            if self.running:
                try:
                    self.stop(mode="immediate")
                except Exception:
                    self.kill9()
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if os.environ.get("PG_KEEP") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def _main(argv):
    if len(argv) < 2 or argv[0] != "run":
        sys.stderr.write("usage: postgres.py run [--] COMMAND [ARGS...]\n")
        return 2
    cmd = argv[1:]
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    started = time.time()
    server = PostgresServer()
    sys.stderr.write("postgres.py: PostgreSQL at %s (started in %.1f s)\n" % (
        server.url, time.time() - started))
    try:
        env = dict(os.environ, VERIFYD_TEST_POSTGRES_URL=server.url)
        return subprocess.call(cmd, env=env)
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
