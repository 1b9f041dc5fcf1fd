"""Several verifyd nodes on one PostgreSQL and one Redis, behind HAProxy.

1. create on node 1, check on node 2, fetch on node 3;
2. limits hold across nodes: 20 concurrent wrong checks count 5, a RateLimits bucket of 5
   lets exactly 5 of 20 concurrent creates through (with Redis, and without it);
3. kill -9 of a node during a burst through HAProxy: every acknowledged verification exists
   and its message reaches the provider exactly once (unless outcome_unknown);
4. PostgreSQL stopped and started under load: 503/20503 promptly, nodes stay up, recovery,
   nothing acknowledged is lost.

Run:  VERIFYD_BIN=/work/main/build/asan/verifyd \
      /usr/bin/python3 -m unittest discover -s test/cluster -p "test_*.py" -v
Set VERIFYD_TEST_DEBUG=1 to print burst statistics.
"""

import collections
import itertools
import json
import os
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.cluster import Cluster  # noqa: E402
from harness.fake_provider import FakeProvider, toml_config  # noqa: E402

DEBUG = bool(os.environ.get("VERIFYD_TEST_DEBUG"))
MAX_REQUEST_SECONDS = 15.0

# Valid for libphonenumber: +1 501 712 xxxx (Arkansas), +33 6 12 34 56 xx (French mobile).
# Each node allows 5 pending verifications and 5 sends per number: never reuse one.
_us = itertools.count(1000)
_fr = itertools.count(10)
_numbers_lock = threading.Lock()


def new_number():
    with _numbers_lock:
        n = next(_us)
    if n > 9999:
        raise AssertionError("ran out of +1501712xxxx numbers")
    return "+1501712%04d" % n


def new_fr_number():
    with _numbers_lock:
        n = next(_fr)
    if n > 99:
        raise AssertionError("ran out of +336123456xx numbers")
    return "+336123456%02d" % n


class Outcome(object):
    """One request made by a burst worker."""

    def __init__(self, to, t0):
        self.to = to
        self.t0 = t0
        self.t1 = None
        self.status = None        # HTTP status, or None when an exception was raised
        self.headers = None
        self.body = None
        self.error = None         # exception text

    @property
    def seconds(self):
        return self.t1 - self.t0

    def code(self):
        return self.body.get("code") if isinstance(self.body, dict) else None

    def __repr__(self):
        what = self.status if self.error is None else self.error
        body = self.body if not isinstance(self.body, (bytes, bytearray)) else self.body[:200]
        return "<%s %s %.2fs..%.2fs: %r>" % (self.to, what, self.t0, self.t1 or -1, body)


def run_concurrently(n, fn):
    """Run fn(i) for i in range(n) on n threads released together; returns the results in
    order (an exception becomes ("exception", text))."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        try:
            barrier.wait(30)
            results[i] = fn(i)
        except Exception as e:       # reported by the caller
            results[i] = ("exception", "%s: %s" % (type(e).__name__, e))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


class ClusterCase(unittest.TestCase):
    """Helpers shared by the test classes; self.c is the Cluster."""

    def vpath(self, sid_or_to=""):
        p = "/v2/Services/%s/Verifications" % self.c.service_sid
        if sid_or_to:
            p += "/" + urllib.parse.quote(sid_or_to, safe="+")
        return p

    def create(self, via, to, timeout=30.0, **extra):
        data = {"To": to, "Channel": "sms"}
        data.update(extra)
        return self.c.request_via(via, "POST", self.vpath(), data, timeout=timeout)

    def check(self, via, to, code):
        return self.c.request_via(via, "POST",
                                  "/v2/Services/%s/VerificationCheck" % self.c.service_sid,
                                  {"To": to, "Code": code})

    def attempts(self, verification_sid, via="lb"):
        st, _h, b = self.c.request_via(via, "GET",
                                       "/v2/Attempts?VerificationSid=%s" % verification_sid)
        self.assertEqual(st, 200, b)
        return b["attempts"]

    def diag(self):
        return self.c.diagnostics()


# ---------------------------------------------------------------------------------------
# 1 and 2: any node answers any request; limits hold across nodes
# ---------------------------------------------------------------------------------------
class ConcurrentLimitsMixin(object):

    def test_wrong_checks_spread_over_nodes_count_five(self):
        c = self.c
        n = len(c.nodes)
        to = new_number()
        st, _h, v = self.create(0, to)
        self.assertEqual(st, 201, v)
        code = c.latest_code(to, via=n - 1)
        wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))

        results = run_concurrently(20, lambda i: self.check(i % n, to, wrong))

        pending, maxed, refused, other = [], [], [], []
        for i, r in enumerate(results):
            if r[0] == "exception":
                other.append((i, r))
                continue
            st, _h, b = r
            body = b if isinstance(b, dict) else {}
            if st == 200 and body.get("status") == "pending" and body.get("valid") is False:
                pending.append(i)
            elif st == 200 and body.get("status") == "max_attempts_reached" \
                    and body.get("valid") is False:
                maxed.append(i)
            elif (st, body.get("code")) in ((429, 60202), (404, 20404)):
                refused.append(i)
            else:
                other.append((i, st, b))
        summary = "pending=%r max_attempts_reached=%r refused=%r other=%r" % (
            pending, maxed, refused, other)
        self.assertEqual(other, [], "unexpected answers to concurrent wrong checks: %s\n%s"
                         % (summary, self.diag()))
        self.assertEqual((len(pending), len(maxed), len(refused)), (4, 1, 15),
                         "20 concurrent wrong checks over %d nodes: exactly 5 must be counted "
                         "(4 pending, then 1 max_attempts_reached): %s" % (n, summary))

        st, _h, b = self.check(n - 1, to, code)
        body = b if isinstance(b, dict) else {}
        self.assertNotEqual((st, body.get("status")), (200, "approved"),
                            "the right code approved after 5 wrong checks: %r" % (b,))
        self.assertIn((st, body.get("code")), ((429, 60202), (404, 20404)),
                      "right code after max attempts: %s %r" % (st, b))

    def test_rate_limit_bucket_holds_across_nodes(self):
        c = self.c
        n = len(c.nodes)
        st, _h, rl = c.request_via(0, "POST", "/v2/Services/%s/RateLimits" % c.service_sid,
                                   {"UniqueName": "ip"})
        self.assertEqual(st, 201, rl)
        st, _h, bucket = c.request_via(
            n - 1, "POST", "/v2/Services/%s/RateLimits/%s/Buckets" % (c.service_sid, rl["sid"]),
            {"Max": "5", "Interval": "60"})
        self.assertEqual(st, 201, bucket)
        self.assertEqual((int(bucket["max"]), int(bucket["interval"])), (5, 60), bucket)

        numbers = [new_number() for _ in range(20)]
        key = json.dumps({"ip": "1.2.3.4"})
        results = run_concurrently(
            20, lambda i: self.create(i % n, numbers[i], RateLimits=key))

        created, limited, other = [], [], []
        for i, r in enumerate(results):
            if r[0] == "exception":
                other.append((i, r))
                continue
            st, h, b = r
            if st == 201:
                created.append(i)
            elif st == 429 and isinstance(b, dict) and b.get("code") == 20429:
                limited.append(i)
            else:
                other.append((i, st, b))
        summary = "201=%r 429/20429=%r other=%r" % (created, limited, other)
        self.assertEqual(other, [], "unexpected answers: %s\n%s" % (summary, self.diag()))
        self.assertEqual((len(created), len(limited)), (5, 15),
                         "a bucket of Max=5 over %d nodes: exactly 5 creates may pass: %s"
                         % (n, summary))

        # The bucket counts per key: another address still passes, on any node.
        st, _h, b = self.create(n - 1, new_number(), RateLimits=json.dumps({"ip": "5.6.7.8"}))
        self.assertEqual(st, 201, b)


class ClusterTest(ConcurrentLimitsMixin, ClusterCase):
    """Three nodes, PostgreSQL and Redis, HAProxy in front (shared by these tests)."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(nodes=3, redis=True)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.c.stop_nodes()           # graceful exit 0 on SIGTERM, on every node
        finally:
            cls.c.cleanup()

    def test_create_on_one_node_check_on_another_fetch_on_a_third(self):
        c = self.c
        to = new_number()
        st, _h, v = self.create(0, to)
        self.assertEqual(st, 201, v)
        self.assertEqual((v["to"], v["status"]), (to, "pending"))
        sid = v["sid"]

        # The dev outbox is in the database: every node reads the same message.
        code = c.latest_code(to, via=2)
        self.assertEqual(c.latest_code(to, via=1), code)
        self.assertEqual(c.latest_code(to, via="lb"), code)

        st, _h, chk = self.check(1, to, code)
        self.assertEqual(st, 200, chk)
        self.assertEqual((chk["sid"], chk["status"], chk["valid"]), (sid, "approved", True))

        # Fetch after approval answers 404, as Twilio does, on whichever node.
        st, _h, b = c.request_via(2, "GET", self.vpath(sid))
        self.assertEqual(st, 404, b)
        self.assertEqual(b.get("code") if isinstance(b, dict) else b, 20404)

        # A second, pending verification, created on node 1, is seen on node 3.
        to2 = new_fr_number()
        st, _h, v2 = self.create(0, to2)
        self.assertEqual(st, 201, v2)
        st, _h, b = c.request_via(2, "GET", self.vpath(v2["sid"]))
        self.assertEqual(st, 200, b)
        self.assertEqual((b["sid"], b["to"], b["status"], b["channel"]),
                         (v2["sid"], to2, "pending", "sms"))
        st, _h, b = c.request_via(1, "GET", self.vpath(to2))
        self.assertEqual((st, b.get("sid") if isinstance(b, dict) else b), (200, v2["sid"]))

        # A resend on another node finds the pending verification (one per To).
        st, _h, again = self.create(2, to2)
        self.assertEqual(st, 201, again)
        self.assertEqual(again["sid"], v2["sid"])


class ClusterWithoutRedisTest(ConcurrentLimitsMixin, ClusterCase):
    """Two nodes on PostgreSQL only: buckets and check counts are held by the database."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(nodes=2, redis=False)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.c.stop_nodes()
        finally:
            cls.c.cleanup()


# ---------------------------------------------------------------------------------------
# 3: kill -9 of one node during a burst through HAProxy
# ---------------------------------------------------------------------------------------
KILL_THREADS = 4
ACKED_BEFORE_KILL = 24
STARTED_AFTER_KILL = 24
SETTLE_TIMEOUT = 60.0


class ClusterKill9Test(ClusterCase):

    def setUp(self):
        self.fake = FakeProvider()
        self.addCleanup(self.fake.stop)
        self.fake.hook.delay = 0.05                 # keep messages in flight at the kill
        self.fake.hook.auto_callback = "delivered"
        config = toml_config(
            {"workers": 2, "max_tries": 5, "retry_initial_ms": 50, "retry_max_ms": 500,
             "lease_ms": 1000, "poll_ms": 50},
            [{"name": "hook", "type": "webhook", "channels": ["sms"], "timeout_ms": 2000,
              "url": self.fake.hook_url}])
        self.c = Cluster(nodes=3, redis=True, config_toml=config)
        self.addCleanup(self.c.cleanup)

    def test_kill9_one_node_during_burst_through_lb(self):
        c = self.c
        victim = 1
        lock = threading.Lock()
        outcomes = []
        stop = threading.Event()

        def worker():
            while not stop.is_set():
                to = new_number()
                o = Outcome(to, time.monotonic())
                try:
                    o.status, o.headers, o.body = self.create("lb", to, timeout=20.0)
                except Exception as e:
                    o.error = "%s: %s" % (type(e).__name__, e)
                o.t1 = time.monotonic()
                with lock:
                    outcomes.append(o)

        def count(pred):
            with lock:
                return sum(1 for o in outcomes if pred(o))

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(KILL_THREADS)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 60
            while count(lambda o: o.status == 201) < ACKED_BEFORE_KILL:
                if time.monotonic() > deadline:
                    self.fail("only %d creates acknowledged before the kill; outcomes %r\n%s"
                              % (count(lambda o: o.status == 201), outcomes[-10:], self.diag()))
                time.sleep(0.01)
            kill_t = time.monotonic()
            rc = c.nodes[victim].kill9()
            killed_t = time.monotonic()
            deadline = time.monotonic() + 60
            while count(lambda o: o.t0 > killed_t) < STARTED_AFTER_KILL:
                if time.monotonic() > deadline:
                    self.fail("only %d creates completed after the kill within 60 s: %r\n%s"
                              % (count(lambda o: o.t0 > killed_t), outcomes[-10:], self.diag()))
                time.sleep(0.01)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(rc, -9, "node %d did not die of SIGKILL (rc=%r)" % (victim, rc))

        # The other nodes kept serving; HAProxy noticed the dead one.
        for i, node in enumerate(c.nodes):
            if i != victim:
                self.assertTrue(node.running(), "node %d died:\n%s" % (i, self.diag()))
        c.lb.wait_states({"n%d" % victim: "DOWN"}, timeout=10)

        # Only requests in flight when the node died may have failed.
        in_flight = [o for o in outcomes if o.t0 <= killed_t and o.t1 >= kill_t]
        failed = [o for o in outcomes if o.status != 201]
        not_excused = [o for o in failed if o not in in_flight]
        self.assertEqual(not_excused, [],
                         "creates through the LB failed although not in flight at the kill "
                         "(%d in flight): %r\n%s" % (len(in_flight), not_excused, self.diag()))
        self.assertLessEqual(len(failed), KILL_THREADS)
        for o in outcomes:
            self.assertLess(o.seconds, MAX_REQUEST_SECONDS, "slow request %r" % o)

        acked = {o.body["sid"]: o.to for o in outcomes if o.status == 201}
        self.assertEqual(len(acked), sum(1 for o in outcomes if o.status == 201),
                         "two acknowledged creates answered the same SID")

        # Every acknowledged verification exists, through the LB.
        for ve, to in acked.items():
            st, _h, b = c.request_via("lb", "GET", self.vpath(ve))
            self.assertEqual(st, 200, "acknowledged %s (To %s) not found after the kill: %s %r"
                             % (ve, to, st, b))
            self.assertEqual((b["sid"], b["to"], b["status"]), (ve, to, "pending"))

        # ... and its attempts settle: another node takes over what the dead one was sending.
        settled = {}
        pending = set(acked)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while pending:
            for ve in sorted(pending):
                got = self.attempts(ve)
                if got and all(self._settled(a) for a in got):
                    settled[ve] = got
                    pending.discard(ve)
            if not pending:
                break
            if time.monotonic() > deadline:
                sample = {ve: self.attempts(ve) for ve in sorted(pending)[:3]}
                self.fail("%d of %d acknowledged verifications never settled; e.g. %r\n%s"
                          % (len(pending), len(acked), sample, self.diag()))
            time.sleep(0.1)

        reached = collections.defaultdict(list)
        for r in self.fake.requests_for("/hook"):
            sid = r.field("attempt_sid")
            if sid:
                reached[sid].append(r)

        missing, failed_attempts, duplicates = [], [], []
        for ve, got in settled.items():
            for a in got:
                cd = a["channel_data"]
                self.assertEqual((a["verification_sid"], cd["to"]), (ve, acked[ve]), a)
                if cd["message_status"] in ("failed", "undelivered"):
                    failed_attempts.append((ve, a["sid"], cd))
                n = len(reached.get(a["sid"], []))
                if n == 0:
                    missing.append((ve, a["sid"], cd["message_status"]))
                elif n > 1 and cd.get("outcome_unknown") is not True:
                    duplicates.append((ve, a["sid"], n, cd))
                for r in reached.get(a["sid"], []):
                    self.assertEqual(r.field("to"), acked[ve])
        self.assertEqual(missing, [], "acknowledged verifications whose message never reached "
                         "the provider: %r" % missing[:10])
        self.assertEqual(duplicates, [], "messages that reached the provider more than once "
                         "without outcome_unknown: %r" % duplicates[:5])
        self.assertEqual(failed_attempts, [], "attempts failed although the provider accepts "
                         "everything: %r" % failed_attempts[:5])

        if DEBUG:
            statuses = collections.Counter(a["channel_data"]["message_status"]
                                           for got in settled.values() for a in got)
            unknown = sum(1 for got in settled.values() for a in got
                          if a["channel_data"]["outcome_unknown"])
            sys.stderr.write(
                "\nrequests=%d acked=%d in_flight_at_kill=%d failed=%r hook_requests=%d "
                "outcome_unknown=%d statuses=%r\n"
                % (len(outcomes), len(acked), len(in_flight), failed,
                   len(self.fake.requests_for("/hook")), unknown, dict(statuses)))

    def _settled(self, attempt):
        status = attempt["channel_data"]["message_status"]
        if status in ("delivered", "failed", "undelivered"):
            return True
        if status != "sent":
            return False
        # "sent" is final when the fake's delivered callback could not reach verifyd.
        sid = attempt["sid"]
        for req, _status, result in list(self.fake.callbacks):
            if req.field("attempt_sid") == sid and not isinstance(result, int):
                return True
        return False


# ---------------------------------------------------------------------------------------
# 4: PostgreSQL stopped and started under load
# ---------------------------------------------------------------------------------------
PG_THREADS = 3
ACKED_BEFORE_STOP = 9
ANSWERS_WHILE_DOWN = 6
RECOVERY_SECONDS = 15.0


class ClusterPostgresRestartTest(ClusterCase):

    def setUp(self):
        self.c = Cluster(nodes=3, redis=True)
        self.addCleanup(self.c.cleanup)

    def test_postgres_down_answers_503_then_recovers(self):
        c = self.c
        lock = threading.Lock()
        outcomes = []
        stop = threading.Event()

        def worker():
            while not stop.is_set():
                to = new_number()
                o = Outcome(to, time.monotonic())
                try:
                    o.status, o.headers, o.body = self.create("lb", to, timeout=20.0)
                except Exception as e:
                    o.error = "%s: %s" % (type(e).__name__, e)
                o.t1 = time.monotonic()
                with lock:
                    outcomes.append(o)
                stop.wait(0.02)

        def matching(pred):
            with lock:
                return [o for o in outcomes if pred(o)]

        def wait_for(pred, n, timeout, what):
            deadline = time.monotonic() + timeout
            while len(matching(pred)) < n:
                if time.monotonic() > deadline:
                    self.fail("%s: %d of %d within %.0f s; last outcomes %r\n%s"
                              % (what, len(matching(pred)), n, timeout, outcomes[-8:],
                                 self.diag()))
                time.sleep(0.02)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(PG_THREADS)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda o: o.status == 201, ACKED_BEFORE_STOP, 60, "creates before the stop")
            c.pg.stop()
            stopped_t = time.monotonic()
            # Requests started with PostgreSQL down answer 503 (bounded time, no hang).
            wait_for(lambda o: o.t0 >= stopped_t, ANSWERS_WHILE_DOWN, 30,
                     "answers with PostgreSQL down")
            down = matching(lambda o: o.t0 >= stopped_t)
            for i, node in enumerate(c.nodes):
                self.assertTrue(node.running(), "node %d died with PostgreSQL down:\n%s"
                                % (i, self.diag()))
            # Each node, asked directly, answers 503 too.
            for i in range(len(c.nodes)):
                t0 = time.monotonic()
                st, h, b = self.create(i, new_number(), timeout=20.0)
                self.assertLess(time.monotonic() - t0, MAX_REQUEST_SECONDS)
                self.assert_503(st, h, b, "node %d with PostgreSQL down" % i)

            start_called_t = time.monotonic()
            c.pg.start()
            started_t = time.monotonic()
            # Every node serves again within a few seconds.
            recovered_after = {}
            direct = {}                  # VE -> To, created on a node directly
            for i in range(len(c.nodes)):
                deadline = started_t + RECOVERY_SECONDS
                while True:
                    st, h, b = self.create(i, new_number(), timeout=20.0)
                    if st == 201:
                        recovered_after[i] = time.monotonic() - started_t
                        direct[b["sid"]] = b["to"]
                        break
                    self.assert_503(st, h, b, "node %d while PostgreSQL restarts" % i)
                    if time.monotonic() > deadline:
                        self.fail("node %d still answers %s %r %.0f s after PostgreSQL "
                                  "started\n%s" % (i, st, b, RECOVERY_SECONDS, self.diag()))
                    time.sleep(0.1)
            recovered_t = time.monotonic()
            wait_for(lambda o: o.t0 >= recovered_t and o.status == 201, 6, 30,
                     "creates through the LB after recovery")
        finally:
            stop.set()
            for t in threads:
                t.join(30)

        for i, node in enumerate(c.nodes):
            self.assertTrue(node.running(), "node %d died:\n%s" % (i, self.diag()))

        slow = [o for o in outcomes if o.t1 - o.t0 > MAX_REQUEST_SECONDS]
        self.assertEqual(slow, [], "requests took more than %.0f s" % MAX_REQUEST_SECONDS)
        errors = [o for o in outcomes if o.error is not None]
        self.assertEqual(errors, [], "requests failed without an HTTP answer:\n%s" % self.diag())
        for o in outcomes:
            if o.status != 201:
                self.assert_503(o.status, o.headers, o.body, "create through the LB %r" % o)
        self.assertTrue([o for o in down if o.status == 503],
                        "no 503 while PostgreSQL was down: %r" % down)
        while_down = [o for o in outcomes if o.t0 >= stopped_t and o.t1 <= start_called_t]
        self.assertEqual([o for o in while_down if o.status != 503], [],
                         "acknowledged while PostgreSQL was down")
        # After the recovery every create through the LB succeeds.
        late = [o for o in outcomes if o.t0 >= recovered_t and o.status != 201]
        self.assertEqual(late, [], "creates failed after every node had recovered")

        acked = {o.body["sid"]: o.to for o in outcomes if o.status == 201}
        self.assertEqual(len(acked), sum(1 for o in outcomes if o.status == 201),
                         "two acknowledged creates answered the same SID")
        acked.update(direct)
        for ve, to in acked.items():
            st, _h, b = c.request_via("lb", "GET", self.vpath(ve))
            self.assertEqual(st, 200, "acknowledged %s (To %s) missing after the PostgreSQL "
                             "restart: %s %r" % (ve, to, st, b))
            self.assertEqual((b["sid"], b["to"], b["status"]), (ve, to, "pending"))

        if DEBUG:
            sys.stderr.write(
                "\nrequests=%d acked=%d answers_while_down=%r recovered_after=%r\n"
                % (len(outcomes), len(acked),
                   dict(collections.Counter(o.status for o in down)), recovered_after))

    def assert_503(self, st, headers, body, what):
        self.assertEqual(st, 503, "%s: expected 503/20503, got %s %r\n%s"
                         % (what, st, body, self.diag()))
        self.assertIsInstance(body, dict, "%s: 503 without a Twilio error body: %r"
                              % (what, body))
        self.assertEqual((body.get("code"), body.get("message"), body.get("status")),
                         (20503, "Service unavailable, please retry", 503), body)
        self.assertTrue(headers.get("Retry-After"), "%s: 503 without Retry-After" % what)


if __name__ == "__main__":
    unittest.main()
