"""End to end: verifyd -> the smtp provider -> a real SMTP server (aiosmtpd, STARTTLS + AUTH).

    VERIFYD_BIN=/work/main/build/release/verifyd \
      /usr/bin/python3 -m unittest discover -s test/delivery -p "test_smtp.py" -v
"""

import email.utils
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.smtp_sink import SmtpSink  # noqa: E402
from harness.verifyd import Verifyd, free_port  # noqa: E402

FINAL_STATUSES = ("delivered", "undelivered", "failed")
DELIVERY = {"workers": 2, "max_tries": 2, "retry_initial_ms": 50, "retry_max_ms": 200,
            "lease_ms": 30000}
CHANNEL_CONFIGURATION = json.dumps({"from": "security@acme.test", "from_name": "Acmé Security",
                                    "substitutions": {"name": "Ada"}}, ensure_ascii=False)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)     # a TOML basic string


def write_config(directory, name, delivery, providers):
    lines = ["[delivery]"] + ["%s = %s" % (k, toml_value(v)) for k, v in delivery.items()]
    for p in providers:
        lines += ["", "[[provider]]"] + ["%s = %s" % (k, toml_value(v)) for k, v in p.items()]
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def smtp_provider(sink, password):
    return {"name": "mail", "type": "smtp", "channels": ["email"], "timeout_ms": 5000,
            "url": sink.url, "tls": "starttls", "ca_file": sink.cert_path,
            "username": "alice", "password": password,
            "from": "no-reply@verifyd.test", "from_name": "Verifyd"}


def start_verifyd(config_path):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    return Verifyd(listen="127.0.0.1:%d" % port,
                   extra_args=["--config", config_path, "--public-url", url])


class SmtpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="verifyd-smtp-test-")
        cls.sink = SmtpSink(tls=True, auth=("alice", "s3cret"))
        cls.servers = []
        try:
            cls.v = cls.start(smtp_provider(cls.sink, "s3cret"), "good.toml")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, provider, name):
        v = start_verifyd(write_config(cls.tmp, name, DELIVERY, [provider]))
        cls.servers.append(v)
        return v

    @classmethod
    def tearDownClass(cls):
        try:
            for v in cls.servers:
                try:
                    v.stop()
                finally:
                    v.cleanup()
        finally:
            cls.sink.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def create(self, v, to, **fields):
        data = {"To": to, "Channel": "email"}
        data.update(fields)
        status, _h, body = v.request("POST", "/v2/Services/%s/Verifications" % v.service_sid, data)
        self.assertEqual(status, 201, body)
        return body

    def wait_attempt(self, v, verification_sid, statuses=FINAL_STATUSES, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            status, _h, body = v.request(
                "GET", "/v2/Attempts?VerificationSid=%s" % urllib.parse.quote(verification_sid))
            self.assertEqual(status, 200, body)
            if body["attempts"]:
                last = body["attempts"][0]
                if last["channel_data"]["message_status"] in statuses:
                    return last
            time.sleep(0.05)
        self.fail("attempt of %s not in %s within %.0f s: %r\nverifyd stderr:\n%s\nsink:\n%s"
                  % (verification_sid, statuses, timeout, last, v.stderr_tail(),
                     self.sink.log_tail()))

    def mails_to(self, to):
        return [m for m in self.sink.messages() if m["X-Sink-Rcpt-To"] == to]

    # ------------------------------------------------------------------ tests
    def test_email_with_starttls_and_auth(self):
        to = "someone@example.test"
        ve = self.create(self.v, to, ChannelConfiguration=CHANNEL_CONFIGURATION)
        deadline = time.monotonic() + 10
        while not self.mails_to(to):
            self.assertLess(time.monotonic(), deadline, "no mail at the sink:\n%s\n%s"
                            % (self.v.stderr_tail(), self.sink.log_tail()))
            time.sleep(0.05)
        mails = self.mails_to(to)
        self.assertEqual(len(mails), 1)
        mail = mails[0]
        outbox = self.v.messages(to)
        self.assertTrue(outbox, "no dev outbox message for %s" % to)
        code = outbox[0].get("code")
        self.assertTrue(code and code.isdigit(), outbox[0])

        # envelope: over TLS, authenticated as alice, from the ChannelConfiguration address
        self.assertEqual(mail["X-Sink-TLS"], "True")
        self.assertEqual(mail["X-Sink-Auth-User"], "alice")
        self.assertEqual(mail["X-Sink-Mail-From"], "security@acme.test")
        # headers
        sender = mail["From"].addresses
        self.assertEqual(len(sender), 1)
        self.assertEqual(sender[0].display_name, "Acmé Security")
        self.assertEqual(sender[0].addr_spec, "security@acme.test")
        self.assertEqual([a.addr_spec for a in mail["To"].addresses], [to])
        subject = str(mail["Subject"])
        self.assertTrue(subject and "=?" not in subject, subject)
        self.assertIn("verification code", subject.lower())
        self.assertIsNotNone(email.utils.parsedate_to_datetime(str(mail["Date"])))
        message_id = str(mail["Message-ID"])
        self.assertRegex(message_id, r"^<VL[0-9a-f]{32}@verifyd>$")
        self.assertEqual(str(mail["MIME-Version"]), "1.0")
        # body: multipart/alternative, text then HTML, both with the code
        self.assertEqual(mail.get_content_type(), "multipart/alternative")
        parts = list(mail.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "text/html"])
        for p in parts:
            self.assertEqual(p.get_content_charset(), "utf-8")
            self.assertEqual(p["Content-Transfer-Encoding"], "base64")
            self.assertIn(code, p.get_content())
        # every line of the raw message is CRLF-terminated and short
        raw = [r for r in self.sink.raw_messages() if b"X-Sink-Rcpt-To: " + to.encode() in r][0]
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))
        self.assertTrue(all(len(line) <= 998 for line in raw.split(b"\r\n")))

        attempt = self.wait_attempt(self.v, ve["sid"])
        data = attempt["channel_data"]
        self.assertEqual(data["message_status"], "delivered", attempt)
        self.assertEqual(data["provider"], "mail")
        self.assertEqual(data["provider_message_id"], message_id)
        self.assertEqual(attempt["sid"], message_id[1:-len("@verifyd>")])
        self.assertEqual(data["tries"], 1, attempt)

    def test_default_sender_from_config(self):
        to = "plain@example.test"
        ve = self.create(self.v, to)
        attempt = self.wait_attempt(self.v, ve["sid"])
        self.assertEqual(attempt["channel_data"]["message_status"], "delivered", attempt)
        mails = self.mails_to(to)
        self.assertEqual(len(mails), 1)
        sender = mails[0]["From"].addresses[0]
        self.assertEqual((sender.display_name, sender.addr_spec),
                         ("Verifyd", "no-reply@verifyd.test"))
        self.assertEqual(mails[0]["X-Sink-Mail-From"], "no-reply@verifyd.test")

    def test_wrong_password_fails_without_mail(self):
        v = self.start(smtp_provider(self.sink, "wrong-password"), "bad.toml")
        to = "denied@example.test"
        ve = self.create(v, to, ChannelConfiguration=CHANNEL_CONFIGURATION)
        attempt = self.wait_attempt(v, ve["sid"])
        data = attempt["channel_data"]
        self.assertEqual(data["message_status"], "failed", attempt)
        self.assertTrue(data["error_code"], attempt)
        self.assertNotIn("wrong-password", json.dumps(attempt))
        self.assertEqual(self.mails_to(to), [])


if __name__ == "__main__":
    unittest.main()
