"""Test harness: several verifyd nodes sharing one PostgreSQL (and one Redis) behind HAProxy.

Usage:

    from harness.cluster import Cluster

    c = Cluster(nodes=3)                 # PostgreSQL, Redis, `verifyd migrate`, 3 nodes, HAProxy
    try:
        st, h, b = c.request_via(0, "POST", "/v2/Services/%s/Verifications" % c.service_sid,
                                 {"To": "+15017122661", "Channel": "sms"})
        code = c.latest_code("+15017122661", via=1)       # the dev outbox is in the database
        st, h, b = c.request_via("lb", "POST", "/v2/Services/%s/VerificationCheck"
                                 % c.service_sid, {"To": "+15017122661", "Code": code})
    finally:
        c.cleanup()                      # stops everything, even after a failure

Cluster(nodes=3, redis=True, config_toml=None, extra_args=(), extra_env=None,
        fraud_guard="off", lb=True)
  nodes        number of verifyd processes (each its own --data-dir and port)
  redis        start a RedisServer and pass --redis-url to every node
  config_toml  text of a --config file (delivery providers), written to the shared temp dir
  extra_args / extra_env   added to every node's command line / environment

Attributes: .nodes (list of harness.verifyd.Verifyd), .lb (HaproxyServer), .lb_url, .pg
(PostgresServer), .redis (RedisServer or None), .account_sid, .auth_token, .service_sid (what
`verifyd migrate` printed; every node is checked to print the same), .secret_file, .dir.

Every node gets: --store postgres --postgres-url <pg.url> --secret-file <shared file>
[--redis-url <redis.url>] [--config <file>] --public-url <lb_url> --fraud-guard off, and the
harness's relaxed VERIFYD_AUTH_FAILURES_BEFORE_* environment. The public URL is the load
balancer's, so providers' status callbacks reach whichever node is alive.

request_via(target, method, path, data=None, ...) -> (status, headers, body): target is "lb",
a node index, a Verifyd, or the HaproxyServer.

Only the Python standard library is used (plus the sibling harness modules).
"""

import atexit
import http.client
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

from .haproxy import HaproxyServer
from .verifyd import (RELAXED_AUTH_THROTTLING, Verifyd, VerifydError, basic_auth_header,
                      decode_body, extract_code, free_port, verifyd_bin)

REQUEST_TIMEOUT = 30.0
MIGRATE_TIMEOUT = 120.0

_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _cleanup_all():
    with _LIVE_LOCK:
        live = list(_LIVE)
    for c in live:
        try:
            c.cleanup()
        except Exception:
            pass


atexit.register(_cleanup_all)


class ClusterError(AssertionError):
    pass


def _migrate_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("VERIFYD_") and k != "VERIFYD_BIN":
            del env[k]
    env.update(RELAXED_AUTH_THROTTLING)
    return env


def _parse_kv(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


class Cluster(object):

    def __init__(self, nodes=3, redis=True, config_toml=None, extra_args=(), extra_env=None,
                 fraud_guard="off", lb=True, log_level="warn"):
        self.n = nodes
        self.use_redis = redis
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
        self.fraud_guard = fraud_guard
        self.log_level = log_level
        self.dir = tempfile.mkdtemp(prefix="verifyd-cluster-")
        self.secret_file = os.path.join(self.dir, "server.key")
        self.config_path = None
        self.pg = None
        self.redis = None
        self.nodes = []
        self.lb = None
        self.lb_url = None
        self.migrate_output = None
        self._cleaned = False
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._start(config_toml, lb)
        except BaseException as e:
            diag = ""
            try:
                diag = self.diagnostics()
            except Exception:
                pass
            self.cleanup()
            if isinstance(e, Exception) and diag:
                raise ClusterError("cluster did not start: %s\n%s" % (e, diag)) from e
            raise

    # ---------------------------------------------------------------- start-up
    def _start(self, config_toml, lb):
        from .postgres import PostgresServer
        self.pg = PostgresServer()
        if self.use_redis:
            from .redis import RedisServer
            self.redis = RedisServer()
        if config_toml is not None:
            self.config_path = os.path.join(self.dir, "verifyd.toml")
            with open(self.config_path, "w") as f:
                f.write(config_toml)
        boot = self.migrate()
        self.account_sid = boot["TWILIO_ACCOUNT_SID"]
        self.auth_token = boot["TWILIO_AUTH_TOKEN"]
        self.service_sid = boot["VERIFICATION_SID"]

        lb_port = free_port()
        self.lb_url = "http://127.0.0.1:%d" % lb_port
        ports = [free_port() for _ in range(self.n)]
        started = [None] * self.n
        errors = [None] * self.n

        def start_node(i):
            try:
                started[i] = Verifyd(extra_args=self.node_args(), extra_env=self.extra_env,
                                     data_dir=self._node_dir(i),
                                     listen="127.0.0.1:%d" % ports[i], log_level=self.log_level)
            except BaseException as e:       # noqa: B902 - reported below
                errors[i] = e

        # Nodes start together (each also migrates at start-up, under an advisory lock).
        threads = [threading.Thread(target=start_node, args=(i,), daemon=True)
                   for i in range(self.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.nodes = [s for s in started if s is not None]
        failed = [(i, e) for i, e in enumerate(errors) if e is not None]
        if failed:
            raise ClusterError("node(s) failed to start: %s"
                               % "; ".join("node %d: %s" % (i, e) for i, e in failed))
        for i, node in enumerate(self.nodes):
            got = (node.account_sid, node.auth_token, node.service_sid)
            want = (self.account_sid, self.auth_token, self.service_sid)
            if got != want:
                raise ClusterError("node %d printed bootstrap %r, `verifyd migrate` printed %r"
                                   % (i, got, want))
        if lb:
            self.lb = HaproxyServer(backends=[(n.host, n.port) for n in self.nodes],
                                    port=lb_port)

    def _node_dir(self, i):
        d = os.path.join(self.dir, "node%d" % i)
        os.makedirs(d, exist_ok=True)
        return d

    def storage_args(self):
        return ["--store", "postgres", "--postgres-url", self.pg.url,
                "--secret-file", self.secret_file]

    def node_args(self):
        args = self.storage_args()
        if self.redis is not None:
            args += ["--redis-url", self.redis.url]
        if self.config_path:
            args += ["--config", self.config_path]
        if self.lb_url:
            args += ["--public-url", self.lb_url]
        if self.fraud_guard:
            args += ["--fraud-guard", self.fraud_guard]
        return args + self.extra_args

    def migrate(self):
        """`verifyd migrate` with the cluster's storage flags; returns the printed keys."""
        data_dir = os.path.join(self.dir, "migrate")
        os.makedirs(data_dir, exist_ok=True)
        argv = [verifyd_bin(), "migrate", "--data-dir", data_dir] + self.storage_args()
        last = None
        for _ in range(3):
            try:
                r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=MIGRATE_TIMEOUT, env=_migrate_env())
            except OSError as e:                    # the binary is being rebuilt
                last = "cannot exec: %s" % e
                time.sleep(3)
                continue
            out = r.stdout.decode("utf-8", "replace")
            self.migrate_output = out
            kv = _parse_kv(out)
            if r.returncode == 0 and all(k in kv for k in ("TWILIO_ACCOUNT_SID",
                                                           "TWILIO_AUTH_TOKEN",
                                                           "VERIFICATION_SID")):
                return kv
            last = "rc=%s stdout=%r stderr=%r" % (r.returncode, out,
                                                   r.stderr[-3000:].decode("utf-8", "replace"))
            if r.returncode > 0:
                break
            time.sleep(3)
        raise ClusterError("%s failed: %s" % (" ".join(argv), last))

    # ---------------------------------------------------------------- requests
    def _target(self, target):
        if target == "lb" or target is None:
            if self.lb is None:
                raise ClusterError("this cluster has no load balancer")
            return self.lb.host, self.lb.port
        if isinstance(target, HaproxyServer):
            return target.host, target.port
        if isinstance(target, int):
            target = self.nodes[target]
        if isinstance(target, Verifyd):
            return target.host, target.port
        raise ClusterError("unknown request target %r" % (target,))

    def request_via(self, target, method, path, data=None, headers=None, auth="default",
                    timeout=REQUEST_TIMEOUT):
        """One request on a fresh connection to `target` ("lb", node index, Verifyd,
        HaproxyServer). data: dict / list of pairs (form-encoded), str or bytes.
        auth: (user, password), None, or the bootstrap account by default.
        Returns (status, headers, json-or-bytes)."""
        host, port = self._target(target)
        hdrs = {}
        if auth == "default":
            auth = (self.account_sid, self.auth_token)
        if auth is not None:
            hdrs["Authorization"] = basic_auth_header(auth[0], auth[1])
        body = None
        if data is not None:
            if isinstance(data, (dict, list, tuple)):
                body = urllib.parse.urlencode(data, doseq=isinstance(data, dict)).encode("ascii")
            elif isinstance(data, str):
                body = data.encode("utf-8")
            else:
                body = data
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if headers:
            hdrs.update(headers)
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            raw = r.read()
            return r.status, r.headers, decode_body(raw)
        finally:
            c.close()

    def messages(self, to, via="lb", page_size=50):
        path = "/dev/v1/Messages?To=%s&PageSize=%d" % (urllib.parse.quote(to, safe=""),
                                                        page_size)
        st, _h, b = self.request_via(via, "GET", path)
        if st != 200 or not isinstance(b, dict):
            raise ClusterError("GET %s via %r -> %s %r" % (path, via, st, b))
        return b["messages"]

    def latest_code(self, to, via="lb"):
        msgs = self.messages(to, via=via, page_size=1)
        if not msgs:
            raise ClusterError("dev outbox has no message for %r" % to)
        if msgs[0].get("code"):
            return msgs[0]["code"]
        return extract_code(msgs[0]["body"])

    # ------------------------------------------------------------------- state
    def node_running(self, i):
        return self.nodes[i].running()

    def diagnostics(self, n=2500):
        """Stderr tails of every node and the HAProxy log, for assertion messages."""
        parts = []
        for i, node in enumerate(self.nodes):
            parts.append("--- node %d (%s:%s, %s) stderr:\n%s"
                         % (i, node.host, getattr(node, "port", "?"),
                            "running" if node.running() else "not running",
                            node.stderr_tail(n)))
        if self.lb is not None:
            parts.append("--- haproxy:\n%s" % self.lb.log_tail(n))
        return "\n".join(parts)

    def stop_nodes(self):
        """Stop every running node with SIGTERM and assert each exits 0."""
        errors = []
        for i, node in enumerate(self.nodes):
            if node.running():
                try:
                    node.stop()
                except VerifydError as e:
                    errors.append("node %d: %s" % (i, e))
        if errors:
            raise ClusterError("graceful stop failed: %s" % "\n".join(errors))

    def cleanup(self):
        """Stop everything (HAProxy, nodes, Redis, PostgreSQL) and remove the temp dirs.
        Never raises; safe to call twice."""
        if self._cleaned:
            return
        self._cleaned = True
        if self.lb is not None:
            try:
                self.lb.stop()
            except Exception:
                pass
        for node in self.nodes:
            try:
                node.cleanup()               # SIGKILL if still running
            except Exception:
                pass
        for srv in (self.redis, self.pg):
            if srv is None:
                continue
            try:
                srv.cleanup()
            except Exception:
                try:
                    srv.stop()
                except Exception:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
