"""End to end: verifyd -> the kannel provider -> a real Kannel (bearerbox + smsbox) -> the SMSC,
and Kannel's delivery reports back to verifyd's status callback.

    VERIFYD_BIN=/work/main/build/release/verifyd \
      /usr/bin/python3 -m unittest discover -s test/delivery -p "test_kannel.py" -v
"""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.kannel import KannelStack  # noqa: E402
from harness.verifyd import Verifyd, free_port  # noqa: E402

FINAL_STATUSES = ("delivered", "undelivered", "failed")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)     # a TOML basic string


def write_config(directory, delivery, providers):
    lines = ["[delivery]"] + ["%s = %s" % (k, toml_value(v)) for k, v in delivery.items()]
    for p in providers:
        lines += ["", "[[provider]]"] + ["%s = %s" % (k, toml_value(v)) for k, v in p.items()]
    path = os.path.join(directory, "verifyd.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_verifyd(config_path):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    return Verifyd(listen="127.0.0.1:%d" % port,
                   extra_args=["--config", config_path, "--public-url", url])


DELIVERY = {"workers": 2, "max_tries": 2, "retry_initial_ms": 50, "retry_max_ms": 200,
            "lease_ms": 30000}


class KannelCase(unittest.TestCase):
    mode = "fake"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="verifyd-kannel-test-")
        cls.kannel = KannelStack(mode=cls.mode)
        try:
            cfg = write_config(cls.tmp, DELIVERY, [{
                "name": "kannel-local", "type": "kannel", "channels": ["sms"],
                "timeout_ms": 5000, "url": cls.kannel.sendsms_url,
                "username": cls.kannel.username, "password": cls.kannel.password,
                "from": "VERIFY"}])
            cls.v = start_verifyd(cfg)
        except BaseException:
            cls.kannel.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.v.stop()
        finally:
            cls.v.cleanup()
            cls.kannel.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def create(self, to, channel="sms", **fields):
        data = {"To": to, "Channel": channel}
        data.update(fields)
        status, _h, body = self.v.request(
            "POST", "/v2/Services/%s/Verifications" % self.v.service_sid, data)
        self.assertEqual(status, 201, body)
        return body

    def outbox_body(self, to):
        msgs = self.v.messages(to)
        self.assertTrue(msgs, "no dev outbox message for %s" % to)
        return msgs[0]

    def attempts(self, verification_sid):
        status, _h, body = self.v.request(
            "GET", "/v2/Attempts?VerificationSid=%s" % urllib.parse.quote(verification_sid))
        self.assertEqual(status, 200, body)
        return body["attempts"]

    def wait_attempt(self, verification_sid, statuses=FINAL_STATUSES, timeout=15.0):
        """The verification's attempt once channel_data.message_status is one of `statuses`."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            attempts = self.attempts(verification_sid)
            if attempts:
                last = attempts[0]
                if last["channel_data"]["message_status"] in statuses:
                    return last
            time.sleep(0.05)
        self.fail("attempt of %s not in %s within %.0f s: %r\nverifyd stderr:\n%s\nkannel:\n%s"
                  % (verification_sid, statuses, timeout, last, self.v.stderr_tail(),
                     self.kannel.log_tail(2000)))


class KannelFakeSmscTest(KannelCase):
    """bearerbox's fake SMSC: every MT is accepted, DLRs are type 8 then type 1 (delivered)."""

    mode = "fake"

    def check_text_intact(self, to, locale=None):
        fields = {"Locale": locale} if locale else {}
        ve = self.create(to, **fields)
        mt = self.kannel.wait_for_message(to, timeout=10)
        outbox = self.outbox_body(to)
        self.assertEqual(mt["text"], outbox["body"])
        self.assertEqual(mt["sender"], "VERIFY")
        code = outbox.get("code") or ""
        self.assertTrue(code.isdigit() and code in mt["text"], (code, mt))
        return ve, mt

    def test_french_number_code_intact_and_delivered(self):
        ve, mt = self.check_text_intact("+33612345678")
        attempt = self.wait_attempt(ve["sid"], statuses=("delivered",))
        data = attempt["channel_data"]
        self.assertEqual(data["message_status"], "delivered")
        self.assertEqual(data["provider"], "kannel-local")
        self.assertEqual(data["to"], "+33612345678")
        self.assertFalse(data["outcome_unknown"])
        self.assertIsNone(data["error_code"])

    def test_sent_exactly_once(self):
        """An MT Kannel accepted (202, status "queued") is not sent again."""
        to = "+33612345605"
        ve = self.create(to)
        self.kannel.wait_for_message(to)
        attempt = self.wait_attempt(ve["sid"], statuses=("delivered",))
        time.sleep(0.3)          # a duplicate would be sent within the retry backoff (<=200 ms)
        mts = [m for m in self.kannel.messages if m["receiver"] == to]
        self.assertEqual(len(mts), 1, "the SMSC got %d MTs for one verification: %r\nattempt: %r"
                         % (len(mts), mts, attempt))
        self.assertEqual(attempt["channel_data"]["tries"], 1, attempt)

    def test_latin_with_accents(self):
        _ve, mt = self.check_text_intact("+33612345601", "fr")
        # 'fr' uses characters outside GSM 03.38 or not: either way the text arrives exactly
        self.assertIn(mt["coding"], (0, 2))

    def test_cyrillic(self):
        ve, mt = self.check_text_intact("+33612345602", "ru")
        self.assertEqual(mt["coding"], 2)
        self.assertTrue(any("\u0400" <= c <= "\u04ff" for c in mt["text"]), mt["text"])
        self.wait_attempt(ve["sid"], statuses=("delivered",))

    def test_japanese(self):
        _ve, mt = self.check_text_intact("+33612345603", "ja")
        self.assertEqual(mt["coding"], 2)

    def test_chinese_hong_kong(self):
        _ve, mt = self.check_text_intact("+33612345604", "zh-HK")
        self.assertEqual(mt["coding"], 2)


class KannelOperatorTest(KannelCase):
    """Kannel's generic HTTP SMSC with a fake operator that answers with failure DLRs."""

    mode = "operator"

    def test_delivered(self):
        self.kannel.next_outcome = "delivered"
        ve = self.create("+33612345611")
        mt = self.kannel.wait_for_message("+33612345611")
        self.assertEqual(mt["text"], self.outbox_body("+33612345611")["body"])
        attempt = self.wait_attempt(ve["sid"])
        self.assertEqual(attempt["channel_data"]["message_status"], "delivered")

    def test_failed_dlr_marks_undelivered(self):
        self.kannel.next_outcome = "failed"
        ve = self.create("+33612345612")
        self.kannel.wait_for_message("+33612345612")
        attempt = self.wait_attempt(ve["sid"])
        self.assertEqual(attempt["channel_data"]["message_status"], "undelivered", attempt)

    def test_rejected_mt_marks_undelivered(self):
        self.kannel.next_outcome = "rejected"
        ve = self.create("+33612345613")
        self.kannel.wait_for_message("+33612345613")
        attempt = self.wait_attempt(ve["sid"])
        self.assertEqual(attempt["channel_data"]["message_status"], "undelivered", attempt)


if __name__ == "__main__":
    unittest.main()
