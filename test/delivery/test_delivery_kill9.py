"""Delivery survives kill -9: every verification verifyd acknowledged (201) gets its message to
the provider after a crash in the middle of a burst, and a message reaches the provider twice only
when its attempt says outcome_unknown.

Run:  VERIFYD_BIN=/work/main/build/release/verifyd \
      /usr/bin/python3 -m unittest discover -s test/delivery -p "test_delivery_kill9.py" -v
Set VERIFYD_TEST_DEBUG=1 to print the burst statistics.
"""

import collections
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.fake_provider import FakeProvider, toml_config  # noqa: E402
from harness.verifyd import Verifyd, free_port, new_phone  # noqa: E402

THREADS = 8
PER_THREAD = 40
KILL_AFTER = 120          # acknowledged creates before the kill
SETTLE_TIMEOUT = 90.0     # after the restart, for every acknowledged attempt to settle
DEBUG = bool(os.environ.get("VERIFYD_TEST_DEBUG"))


class DeliveryKill9Test(unittest.TestCase):

    def setUp(self):
        self.fake = FakeProvider()
        self.addCleanup(self.fake.stop)
        self.fake.hook.delay = 0.02                 # keep messages in flight
        self.fake.hook.auto_callback = "delivered"
        fd, path = tempfile.mkstemp(prefix="verifyd-delivery-", suffix=".toml")
        with os.fdopen(fd, "w") as f:
            f.write(toml_config(
                {"workers": 4, "max_tries": 5, "retry_initial_ms": 50, "retry_max_ms": 500,
                 "lease_ms": 1000},
                [{"name": "hook", "type": "webhook", "channels": ["sms"], "timeout_ms": 2000,
                  "url": self.fake.hook_url}]))
        self.addCleanup(os.unlink, path)
        # A fixed port: status callbacks sent before the crash name the address of the restart.
        self.srv = Verifyd(extra_args=["--config", path], listen="127.0.0.1:%d" % free_port())
        self.addCleanup(self.srv.cleanup)

    def attempts(self, verification_sid):
        st, _h, b = self.srv.request("GET", "/v2/Attempts?VerificationSid=%s" % verification_sid)
        self.assertEqual(st, 200, b)
        return b["attempts"]

    def test_burst_kill9_restart_delivers_every_acknowledged_message(self):
        srv = self.srv
        acked = {}                 # VE -> To
        errors = collections.Counter()
        lock = threading.Lock()
        dead = threading.Event()

        def worker():
            for _ in range(PER_THREAD):
                if dead.is_set():
                    return
                to = new_phone()
                try:
                    st, _h, b = srv.request(
                        "POST", "/v2/Services/%s/Verifications" % srv.service_sid,
                        {"To": to, "Channel": "sms"}, timeout=10)
                except Exception as e:      # the server died under us: not acknowledged
                    with lock:
                        errors[type(e).__name__] += 1
                    return
                with lock:
                    if st == 201:
                        acked[b["sid"]] = to
                    else:
                        errors["HTTP %s" % st] += 1

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                n = len(acked)
            if n >= KILL_AFTER or not any(t.is_alive() for t in threads):
                break
            time.sleep(0.002)
        reached_before_kill = len(self.fake.requests_for("/hook"))
        rc = srv.kill9()
        dead.set()
        for t in threads:
            t.join(15)
        self.assertEqual(rc, -9, "verifyd did not die of SIGKILL (rc=%r)" % rc)
        with lock:
            acked = dict(acked)
        self.assertGreater(len(acked), 0, "no create was acknowledged: %r" % errors)
        self.assertFalse([e for e in errors if e.startswith("HTTP")],
                         "creates refused before the kill: %r" % errors)

        srv.restart()

        # Wait for every acknowledged verification's attempt to settle.
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
                self.fail("%d of %d acknowledged verifications never settled; e.g. %r\n"
                          "verifyd stderr:\n%s" % (len(pending), len(acked), sample,
                                                   srv.stderr_tail()))
            time.sleep(0.1)

        # What reached the provider, per attempt.
        reached = collections.defaultdict(list)
        for r in self.fake.requests_for("/hook"):
            sid = r.field("attempt_sid")
            if sid:
                reached[sid].append(r)

        missing, failed = [], []
        for ve, got in settled.items():
            self.assertEqual(len(got), 1, "one create, one attempt: %r" % got)
            a = got[0]
            cd = a["channel_data"]
            self.assertEqual(cd["to"], acked[ve])
            if cd["message_status"] == "failed":
                failed.append((ve, cd))
            if a["sid"] not in reached:
                missing.append((ve, a["sid"], cd["message_status"]))
            else:
                self.assertTrue(all(r.field("to") == acked[ve] for r in reached[a["sid"]]))
        self.assertFalse(missing, "acknowledged verifications whose message never reached the "
                         "provider: %r" % missing[:10])
        self.assertFalse(failed, "attempts failed although the provider accepts everything: %r"
                         % failed[:5])

        duplicates = {sid: rs for sid, rs in reached.items() if len(rs) > 1}
        for sid, rs in duplicates.items():
            st, _h, a = srv.request("GET", "/v2/Attempts/%s" % sid)
            self.assertEqual(st, 200, a)
            self.assertIs(a["channel_data"]["outcome_unknown"], True,
                          "attempt %s reached the provider %d times without outcome_unknown: %r"
                          % (sid, len(rs), a))

        if DEBUG:
            statuses = collections.Counter(
                got[0]["channel_data"]["message_status"] for got in settled.values())
            unknown = sum(1 for got in settled.values()
                          if got[0]["channel_data"]["outcome_unknown"])
            sys.stderr.write(
                "\nacked=%d errors=%r reached_before_kill=%d requests=%d distinct=%d "
                "duplicates=%d outcome_unknown=%d statuses=%r\n"
                % (len(acked), dict(errors), reached_before_kill,
                   len(self.fake.requests_for("/hook")), len(reached), len(duplicates),
                   unknown, dict(statuses)))
        srv.stop()

    def _settled(self, attempt):
        status = attempt["channel_data"]["message_status"]
        if status in ("delivered", "failed", "undelivered"):
            return True
        if status != "sent":
            return False
        # "sent" is final when the fake's delivered callback could not reach verifyd (it was
        # dead): the attempt then never hears more.
        sid = attempt["sid"]
        for req, _status, result in list(self.fake.callbacks):
            if req.field("attempt_sid") == sid and not isinstance(result, int):
                return True
        return False


if __name__ == "__main__":
    unittest.main()
