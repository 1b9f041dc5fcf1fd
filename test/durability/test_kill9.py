"""Crash durability: a 201 from verifyd means the verification survives kill -9.

Run:  VERIFYD_BIN=/work/main/build/asan/verifyd /usr/bin/python3 -m unittest discover -s test/durability -v
"""

import os
import re
import signal
import sqlite3
import stat
import sys
import threading
import unittest
import urllib.parse

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.verifyd import Verifyd, new_phone  # noqa: E402

VE_RE = re.compile(r"^VE[0-9a-f]{32}$")


def is_sqlite(path):
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def files_under(d):
    for root, _dirs, files in os.walk(d):
        for fn in files:
            yield os.path.join(root, fn)


class Kill9Test(unittest.TestCase):

    def setUp(self):
        self.srv = Verifyd()
        self.addCleanup(self.srv.cleanup)

    def create(self, to, srv=None, conn=None):
        srv = srv or self.srv
        return srv.request("POST", "/v2/Services/%s/Verifications" % srv.service_sid,
                           {"To": to, "Channel": "sms"}, conn=conn)

    def restart_after_kill(self):
        first = dict(self.srv.boot)
        rc = self.srv.kill9()
        self.assertEqual(rc, -9, "process did not die of SIGKILL (rc=%r)" % rc)
        self.srv.restart()
        again = dict(self.srv.boot)
        for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "VERIFICATION_SID"):
            self.assertEqual(again[k], first[k], "%s changed across restart" % k)

    def assert_survived(self, sid, to):
        st, h, b = self.srv.request(
            "GET", "/v2/Services/%s/Verifications/%s" % (self.srv.service_sid, sid))
        self.assertEqual(st, 200, "verification %s (To %s) lost after kill -9: %s %r" % (sid, to, st, b))
        self.assertEqual((b["sid"], b["to"], b["status"]), (sid, to, "pending"))
        st, h, b2 = self.srv.request(
            "GET", "/v2/Services/%s/Verifications/%s" % (self.srv.service_sid, urllib.parse.quote(to, safe="+")))
        self.assertEqual((st, b2.get("sid") if isinstance(b2, dict) else b2), (200, sid))
        code = self.srv.latest_code(to)
        st, h, c = self.srv.request("POST", "/v2/Services/%s/VerificationCheck" % self.srv.service_sid,
                                    {"To": to, "Code": code})
        self.assertEqual(st, 200, c)
        self.assertEqual((c["sid"], c["status"], c["valid"]), (sid, "approved", True))

    # ------------------------------------------------------------------
    def test_single_create_then_kill9(self):
        to = new_phone()
        st, h, b = self.create(to)
        self.assertEqual(st, 201, b)
        self.srv.kill9()                      # right after reading the reply
        first = dict(self.srv.boot)
        self.srv.restart()
        self.assertEqual({k: self.srv.boot[k] for k in first if k != "VERIFYD_BASE_URL"},
                         {k: first[k] for k in first if k != "VERIFYD_BASE_URL"},
                         "bootstrap credentials changed across restart")
        self.assertRegex(b["sid"], VE_RE)
        self.assert_survived(b["sid"], to)
        self.srv.stop()

    def test_burst_from_threads_then_kill9(self):
        ok = []                 # (sid, to) of every create that got a complete 201
        other = []
        lock = threading.Lock()
        stop = threading.Event()
        enough = threading.Event()

        def worker(n):
            conn = self.srv.connection(timeout=10)
            for _ in range(n):
                if stop.is_set():
                    break
                to = new_phone()
                try:
                    st, h, b = self.create(to, conn=conn)
                except Exception as e:           # killed mid-request: expected
                    with lock:
                        other.append((to, repr(e)))
                    break
                with lock:
                    if st == 201:
                        ok.append((b["sid"], to))
                    else:
                        other.append((to, st, b))
                    if len(ok) >= 20:
                        enough.set()
            conn.close()

        threads = [threading.Thread(target=worker, args=(60,)) for _ in range(4)]
        for t in threads:
            t.start()
        enough.wait(60)
        self.srv.kill9()                       # mid-burst
        stop.set()
        for t in threads:
            t.join(30)
        with lock:
            acknowledged = list(ok)
        if os.environ.get("VERIFYD_TEST_DEBUG"):
            sys.stderr.write("\nburst: %d acknowledged, %d interrupted\n" % (len(acknowledged), len(other)))
        self.assertGreaterEqual(len(acknowledged), 20, "burst did not get going: ok=%s other=%s"
                                % (acknowledged, other[:5]))
        self.assertFalse([o for o in other if len(o) == 3],
                         "non-201 answers during the burst: %s" % other[:5])
        self.srv.restart()
        for sid, to in acknowledged:
            with self.subTest(sid=sid):
                self.assert_survived(sid, to)
        self.srv.stop()

    def test_restart_keeps_credentials_and_state(self):
        to = new_phone()
        st, h, svc = self.srv.request("POST", "/v2/Services", {"FriendlyName": "Durable Svc"})
        self.assertEqual(st, 201, svc)
        sid2, tok2 = self.srv.new_account()
        key, secret = self.srv.new_api_key(self.srv.account_sid)
        st, h, b = self.create(to)
        self.assertEqual(st, 201, b)
        self.restart_after_kill()
        st, h, f = self.srv.request("GET", "/v2/Services/" + svc["sid"])
        self.assertEqual((st, f.get("friendly_name")), (200, "Durable Svc"))
        st, h, _ = self.srv.request("GET", "/v2/Services", auth=(sid2, tok2))
        self.assertEqual(st, 200, "account created before kill -9 cannot authenticate")
        st, h, _ = self.srv.request("GET", "/v2/Services", auth=(key, secret))
        self.assertEqual(st, 200, "API key created before kill -9 cannot authenticate")
        self.assert_survived(b["sid"], to)
        # graceful restart too
        first = dict(self.srv.boot)
        self.srv.stop()
        self.srv.restart()
        for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "VERIFICATION_SID"):
            self.assertEqual(self.srv.boot[k], first[k])
        self.srv.stop()

    def test_sigint_is_graceful(self):
        to = new_phone()
        st, h, b = self.create(to)
        self.assertEqual(st, 201, b)
        proc = self.srv.proc
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(10)
        self.assertEqual(rc, 0, "SIGINT exit code\n" + self.srv.stderr_tail())
        self.srv._forget()
        self.srv.proc = None
        self.srv.restart()
        self.assert_survived(b["sid"], to)
        self.srv.stop()

    def test_secret_file_mode_and_no_plaintext_code(self):
        to = new_phone()
        st, h, b = self.create(to)
        self.assertEqual(st, 201, b)
        code = self.srv.latest_code(to)
        key_sid, key_secret = self.srv.new_api_key(self.srv.account_sid)
        st, h, _ = self.srv.request("GET", "/v2/Services", auth=(key_sid, key_secret))
        self.assertEqual(st, 200)
        self.srv.stop()                        # let the server checkpoint and close the DB

        files = list(files_under(self.srv.data_dir))
        def looks_secret(path):
            name = os.path.basename(path).lower()
            return "secret" in name or name == "key" or name.endswith(".key")
        secrets = [f for f in files if looks_secret(f)]
        self.assertTrue(secrets, "no server secret file in %s: %s" % (self.srv.data_dir, files))
        for f in secrets:
            mode = stat.S_IMODE(os.stat(f).st_mode)
            self.assertEqual(mode, 0o600, "%s has mode %o" % (f, mode))

        dbs = [f for f in files if is_sqlite(f)]
        self.assertTrue(dbs, "no SQLite database in %s: %s" % (self.srv.data_dir, files))
        found_table = False
        rows_seen = 0
        for path in dbs:
            con = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True)
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "verifications" not in tables:
                    continue
                found_table = True
                cur = con.execute("SELECT * FROM verifications")
                cols = [d[0] for d in cur.description]
                for row in cur:
                    rows_seen += 1
                    for col, val in zip(cols, row):
                        as_text = val.decode("utf-8", "replace") if isinstance(val, (bytes, bytearray)) \
                            else str(val)
                        self.assertNotEqual(as_text, code,
                                            "verifications.%s holds the plain-text code %s" % (col, code))
            finally:
                con.close()
        self.assertTrue(found_table, "no `verifications` table in %s" % dbs)
        self.assertGreaterEqual(rows_seen, 1, "verifications table is empty")

        # contract: an API key secret is shown once; only its HMAC is stored
        for path in dbs:
            con = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True)
            try:
                tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
                for t in tables:
                    cur = con.execute('SELECT * FROM "%s"' % t.replace('"', '""'))
                    cols = [d[0] for d in cur.description]
                    for row in cur:
                        for col, val in zip(cols, row):
                            if isinstance(val, (bytes, bytearray)):
                                val = val.decode("latin-1")
                            if isinstance(val, str):
                                self.assertNotIn(key_secret, val,
                                                 "%s.%s stores the API key secret in plain text" % (t, col))
            finally:
                con.close()
        for f in files:
            with open(f, "rb") as fh:
                self.assertNotIn(key_secret.encode(), fh.read(), "%s contains the API key secret" % f)


if __name__ == "__main__":
    unittest.main()
