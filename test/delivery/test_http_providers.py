"""The twilio and webhook providers end to end: the real verifyd (--config) sending to the fake
provider (test/harness/fake_provider.py) on loopback, with retries, fail-over, timeouts and status
callbacks.

Run:  VERIFYD_BIN=/work/main/build/release/verifyd \
      /usr/bin/python3 -m unittest discover -s test/delivery -p "test_http_providers.py" -v
"""

import os
import re
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.fake_provider import FakeProvider, toml_config  # noqa: E402
from harness.verifyd import Verifyd, VerifydError, free_port, new_phone  # noqa: E402

FROM = "+15005550006"
TERMINAL = ("delivered", "undelivered", "failed")
WAIT = 20.0   # generous deadline for anything the dispatcher does (ASan builds are slow)


class ProvidersTestBase(unittest.TestCase):

    def setUp(self):
        self.fake = FakeProvider()
        self.addCleanup(self.fake.stop)
        self.srv = None

    # ---------------------------------------------------------------- setup
    def twilio(self, name="tw", channels=("sms",), timeout_ms=2000, **settings):
        p = {"name": name, "type": "twilio", "channels": list(channels),
             "timeout_ms": timeout_ms, "from": FROM}
        p.update(self.fake.twilio_settings())
        p.update(settings)
        return p

    def webhook(self, name="hook", channels=("sms",), timeout_ms=2000, path="/hook", **settings):
        p = {"name": name, "type": "webhook", "channels": list(channels),
             "timeout_ms": timeout_ms, "url": self.fake.url + path}
        p.update(settings)
        return p

    def start(self, providers, **delivery):
        d = {"workers": 4, "max_tries": 3, "retry_initial_ms": 50, "retry_max_ms": 200,
             "lease_ms": 5000}
        d.update(delivery)
        fd, path = tempfile.mkstemp(prefix="verifyd-delivery-", suffix=".toml")
        with os.fdopen(fd, "w") as f:
            f.write(toml_config(d, providers))
        self.addCleanup(os.unlink, path)
        self.config_path = path
        # An explicit port: the status callback URLs then name the address verifyd listens on.
        self.srv = Verifyd(extra_args=["--config", path],
                           listen="127.0.0.1:%d" % free_port())
        self.addCleanup(self.srv.cleanup)
        return self.srv

    # -------------------------------------------------------------- helpers
    def create(self, to, channel="sms", **params):
        body = {"To": to, "Channel": channel}
        body.update(params)
        st, _h, b = self.srv.request(
            "POST", "/v2/Services/%s/Verifications" % self.srv.service_sid, body)
        self.assertEqual(st, 201, b)
        return b

    def attempts(self, verification_sid):
        st, _h, b = self.srv.request(
            "GET", "/v2/Attempts?VerificationSid=%s" % verification_sid)
        self.assertEqual(st, 200, b)
        return b["attempts"]

    def wait_attempt(self, verification_sid, predicate, what, timeout=WAIT):
        """Poll the verification's single attempt until predicate(attempt) holds."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            got = self.attempts(verification_sid)
            if got:
                self.assertEqual(len(got), 1, got)
                last = got[0]
                if predicate(last):
                    return last
            if time.monotonic() > deadline:
                self.fail("attempt of %s never became %s; last: %r\nverifyd stderr:\n%s"
                          % (verification_sid, what, last, self.srv.stderr_tail()))
            time.sleep(0.05)

    def wait_status(self, verification_sid, statuses, timeout=WAIT, tries=None):
        """Poll until the attempt has one of `statuses` (and, given `tries`, that many tries
        recorded: a receipt can arrive while its try is still being recorded)."""
        if isinstance(statuses, str):
            statuses = (statuses,)
        return self.wait_attempt(
            verification_sid,
            lambda a: a["channel_data"]["message_status"] in statuses
            and (tries is None or a["channel_data"]["tries"] == tries),
            "/".join(statuses) + ("" if tries is None else " after %d tries" % tries), timeout)

    def wait_request(self, kind, to, count=1, timeout=WAIT):
        def match(r):
            if r.kind != kind:
                return False
            dest = r.field("To") if kind in ("messages", "calls") else r.field("to")
            return dest is not None and dest.endswith(to)
        return self.fake.wait_for(match, count=count, timeout=timeout)

    def assert_sent_once(self, kind, to, expected=1, quiet=0.3):
        """After the provider accepted, no further try of the message follows (quiet period)."""
        time.sleep(quiet)
        got = [r for r in self.fake.requests_for(kind)
               if (r.field("To") if kind in ("messages", "calls") else r.field("to") or "")
               .endswith(to)]
        self.assertEqual(len(got), expected,
                         "the provider received %d requests for one message (wanted %d): the "
                         "accepted message was sent again" % (len(got), expected))

    def outbox_text(self, to):
        msgs = self.srv.messages(to, page_size=1)
        self.assertTrue(msgs, "dev outbox has no message for %s" % to)
        return msgs[0]["body"]

    def assert_callback_ok(self, result):
        st, body = result
        self.assertTrue(200 <= st < 300, "status callback answered %s %r" % (st, body))

    def assert_no_secret(self, text):
        self.assertNotIn(self.fake.auth_token, text or "")


class TwilioProviderTest(ProvidersTestBase):

    def test_sms_request_and_status_callbacks(self):
        self.start([self.twilio(channels=("sms",))])
        to = new_phone()
        v = self.create(to)
        req = self.wait_request("messages", to)
        f = req.form
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.basic_auth(), (self.fake.account_sid, self.fake.auth_token))
        self.assertEqual(f["To"], to)
        self.assertEqual(f["From"], FROM)
        self.assertNotIn("MessagingServiceSid", f)
        text = self.outbox_text(to)
        self.assertEqual(f["Body"], text)
        code = re.search(r"\d{4,10}", text).group(0)
        self.assertIn(code, f["Body"])
        cb = f.get("StatusCallback", "")
        self.assertTrue(cb.startswith("http://%s:%d/callbacks/v1/tw/" % (self.srv.host,
                                                                          self.srv.port)), cb)
        self.assertNotIn(code, cb)
        a = self.wait_status(v["sid"], ("queued", "sent"))
        a = self.wait_attempt(v["sid"], lambda a: a["channel_data"]["provider_message_id"],
                              "accepted by the provider")
        cd = a["channel_data"]
        self.assertEqual(cd["provider"], "tw")
        self.assertEqual(cd["provider_message_id"], req.sid)
        self.assertEqual(cd["tries"], 1)
        self.assertIs(cd["outcome_unknown"], False)
        self.assertIn(a["sid"], cb)
        self.assert_sent_once("messages", to)
        self.assertEqual(self.attempts(v["sid"])[0]["channel_data"]["tries"], 1)

        self.assert_callback_ok(self.fake.send_status_callback(req, "delivered"))
        a = self.wait_status(v["sid"], "delivered")
        self.assertIsNone(a["channel_data"]["error_code"])

        # undelivered, with Twilio's error code
        to2 = new_phone()
        v2 = self.create(to2)
        req2 = self.wait_request("messages", to2)
        self.assert_callback_ok(self.fake.send_status_callback(req2, "undelivered",
                                                               error_code=30008))
        a2 = self.wait_status(v2["sid"], "undelivered")
        self.assertEqual(str(a2["channel_data"]["error_code"]), "30008")

    def test_status_callback_with_bad_token_is_refused(self):
        self.start([self.twilio(channels=("sms",))])
        to = new_phone()
        v = self.create(to)
        req = self.wait_request("messages", to)
        self.wait_attempt(v["sid"], lambda a: a["channel_data"]["provider_message_id"],
                          "accepted")
        forged = req.form["StatusCallback"]
        forged = re.sub(r"([?&]t=)[^&]*", r"\1forged", forged)
        req.form["StatusCallback"] = forged
        st, _ = self.fake.send_status_callback(req, "delivered")
        self.assertGreaterEqual(st, 400)
        time.sleep(0.2)   # give a wrongly accepted callback the time to show
        self.assertNotEqual(self.attempts(v["sid"])[0]["channel_data"]["message_status"],
                            "delivered")

    def test_whatsapp_prefixes(self):
        self.start([self.twilio(channels=("whatsapp",))])
        to = new_phone()
        v = self.create(to, channel="whatsapp")
        req = self.wait_request("messages", to)
        self.assertEqual(req.form["To"], "whatsapp:" + to)
        self.assertEqual(req.form["From"], "whatsapp:" + FROM)
        self.assertTrue(req.form["Body"])
        self.assertTrue(req.form.get("StatusCallback"))
        self.wait_status(v["sid"], ("queued", "sent"))
        self.assert_sent_once("messages", to)
        self.assert_callback_ok(self.fake.send_status_callback(req, "delivered"))
        self.wait_status(v["sid"], "delivered")

    def test_messaging_service_sid_setting(self):
        mg = "MG" + "a" * 32
        self.start([self.twilio(channels=("sms",), messaging_service_sid=mg)])
        to = new_phone()
        self.create(to)
        req = self.wait_request("messages", to)
        self.assertEqual(req.form.get("MessagingServiceSid"), mg)
        self.assertNotIn("From", req.form)

    def test_call_twiml_says_the_digits_twice(self):
        self.start([self.twilio(channels=("call",))])
        to = new_phone()
        v = self.create(to, channel="call")
        req = self.wait_request("calls", to)
        self.assertEqual(req.form["To"], to)
        self.assertEqual(req.form["From"], FROM)
        self.assertTrue(req.form.get("StatusCallback"))
        root = ET.fromstring(req.form["Twiml"])
        self.assertEqual(root.tag, "Response")
        says = root.findall("Say")
        self.assertEqual(len(says), 1, req.form["Twiml"])
        self.assertRegex(says[0].get("language") or "", r"^[a-z]{2}(-[A-Z]{2})?$")
        spoken = says[0].text or ""
        # the digits one by one ("1, 2, 3, ..."), said twice
        runs = [re.sub(r"\D", "", m.group(0))
                for m in re.finditer(r"\d(?:[^\d\w]+\d){3,9}", spoken)]
        self.assertGreaterEqual(len(runs), 2, spoken)
        self.assertEqual(runs[0], runs[1], spoken)
        code = runs[0]
        self.assertNotRegex(spoken, r"\d\d", "digits are not spoken one by one: %r" % spoken)
        self.assert_sent_once("calls", to)
        # and they are the code
        st, _h, c = self.srv.request("POST", "/v2/Services/%s/VerificationCheck"
                                     % self.srv.service_sid, {"To": to, "Code": code})
        self.assertEqual(st, 200, c)
        self.assertEqual(c["status"], "approved")
        self.assert_callback_ok(self.fake.send_status_callback(req, "delivered"))
        self.wait_status(v["sid"], "delivered")

    def test_retry_after_transient_errors(self):
        self.start([self.twilio(channels=("sms",))], max_tries=3, retry_initial_ms=50)
        self.fake.messages.fail_next(2, status=503)
        to = new_phone()
        v = self.create(to)
        reqs = self.wait_request("messages", to, count=3)
        self.assertEqual([r.answer_status for r in reqs[:2]], [503, 503])
        a = self.wait_attempt(v["sid"], lambda a: a["channel_data"]["provider_message_id"],
                              "accepted")
        self.assert_sent_once("messages", to, expected=3)
        self.assertEqual(a["channel_data"]["provider_message_id"], reqs[2].sid)
        self.assert_callback_ok(self.fake.send_status_callback(reqs[2], "delivered"))
        a = self.wait_status(v["sid"], "delivered", tries=3)
        self.assertEqual(len(self.attempts(v["sid"])), 1)
        self.assertEqual(a["channel_data"]["tries"], 3)
        self.assertEqual(a["channel_data"]["provider"], "tw")
        self.assertIs(a["channel_data"]["outcome_unknown"], False)

    def test_failover_after_5xx(self):
        self.start([self.twilio(channels=("sms",)), self.webhook(channels=("sms",))],
                   max_tries=2, retry_initial_ms=50)
        self.fake.messages.always_fail(500)
        to = new_phone()
        v = self.create(to)
        hook = self.wait_request("/hook", to)
        self.assertEqual(len(self.wait_request("messages", to, count=2)), 2)
        self.assert_callback_ok(self.fake.send_status_callback(hook, "delivered"))
        a = self.wait_status(v["sid"], "delivered", tries=3)
        self.assertEqual(a["channel_data"]["provider"], "hook")
        self.assertEqual(a["channel_data"]["tries"], 3)
        self.assertEqual(len(self.fake.requests_for("messages")), 2)

    def test_failover_after_permanent_refusal_without_retry(self):
        self.start([self.twilio(channels=("sms",)), self.webhook(channels=("sms",))],
                   max_tries=3, retry_initial_ms=50)
        self.fake.messages.reject_next(1, status=400, code=21211)
        to = new_phone()
        v = self.create(to)
        hook = self.wait_request("/hook", to)
        self.assert_callback_ok(self.fake.send_status_callback(hook, "delivered"))
        a = self.wait_status(v["sid"], "delivered", tries=2)
        self.assertEqual(a["channel_data"]["provider"], "hook")
        self.assertEqual(len(self.fake.requests_for("messages")), 1,
                         "a permanent refusal must not be retried on the same provider")
        self.assertEqual(a["channel_data"]["tries"], 2)

    def test_timeout_fails_over_with_outcome_unknown(self):
        self.start([self.twilio(channels=("sms",), timeout_ms=500),
                    self.webhook(channels=("sms",))], max_tries=2, retry_initial_ms=50)
        self.fake.messages.hang = True
        to = new_phone()
        v = self.create(to)
        self.wait_request("messages", to)
        hook = self.wait_request("/hook", to)
        self.assert_callback_ok(self.fake.send_status_callback(hook, "delivered"))
        a = self.wait_status(v["sid"], "delivered")
        self.assertEqual(a["channel_data"]["provider"], "hook")
        self.assertIs(a["channel_data"]["outcome_unknown"], True)

    def test_all_providers_fail(self):
        self.start([self.twilio(channels=("sms",)), self.webhook(channels=("sms",))],
                   max_tries=2, retry_initial_ms=20, retry_max_ms=50)
        self.fake.messages.always_fail(500)
        self.fake.hook.always_fail(502)
        to = new_phone()
        v = self.create(to)
        a = self.wait_status(v["sid"], "failed")
        cd = a["channel_data"]
        self.assertIsNotNone(cd["error_code"])
        self.assertTrue(cd["error_message"])
        self.assert_no_secret(cd["error_message"])
        self.assertEqual(cd["tries"], 4)
        self.assertEqual(len(self.fake.requests_for("messages")), 2)
        self.assertEqual(len(self.fake.requests_for("/hook")), 2)
        # the verification itself is still pending and checkable
        st, _h, b = self.srv.request("GET", "/v2/Services/%s/Verifications/%s"
                                     % (self.srv.service_sid, v["sid"]))
        self.assertEqual((st, b["status"]), (200, "pending"))

    def test_secret_and_code_stay_out_of_errors(self):
        self.start([self.twilio(channels=("sms",))], max_tries=1)
        to = new_phone()
        self.fake.messages.fail_next(1, status=400, body={
            "code": 21211, "status": 400,
            "message": "echo " + self.fake.auth_token})
        v = self.create(to)
        a = self.wait_status(v["sid"], "failed")
        cd = a["channel_data"]
        self.assertEqual(str(cd["error_code"]), "21211")
        self.assert_no_secret(cd["error_message"])

    def test_hanging_provider_does_not_slow_the_api(self):
        self.start([self.twilio(channels=("sms",), timeout_ms=5000)], workers=2)
        self.fake.messages.hang = True
        self.addCleanup(setattr, self.fake.messages, "hang", False)
        slowest = 0.0
        for _ in range(20):
            t0 = time.monotonic()
            self.create(new_phone())
            slowest = max(slowest, time.monotonic() - t0)
        self.assertLess(slowest, 1.0, "a create took %.2f s while the provider hangs" % slowest)
        self.fake.wait_for(lambda r: r.kind == "messages")   # the dispatcher did try

    def test_config_refuses_email_on_twilio(self):
        with self.assertRaises(VerifydError):
            self.start([self.twilio(channels=("sms", "email"))])


class WebhookProviderTest(ProvidersTestBase):

    def test_default_body(self):
        self.start([self.webhook(channels=("sms",))])
        to = new_phone()
        v = self.create(to)
        req = self.wait_request("/hook", to)
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.headers.get("Content-Type"), "application/json")
        body = req.json
        self.assertEqual(set(body), {"to", "channel", "text", "code", "locale", "attempt_sid",
                                     "status_callback"})
        self.assertEqual(body["to"], to)
        self.assertEqual(body["channel"], "sms")
        self.assertEqual(body["text"], self.outbox_text(to))
        self.assertIn(body["code"], body["text"])
        a = self.wait_status(v["sid"], ("sent",))
        self.assertEqual(body["attempt_sid"], a["sid"])
        self.assertEqual(req.headers.get("Idempotency-Key"), a["sid"])
        self.assertEqual(a["channel_data"]["provider"], "hook")
        self.assert_callback_ok(self.fake.send_status_callback(req, "delivered"))
        self.wait_status(v["sid"], "delivered")

    def test_template_headers_and_id_field(self):
        template = ('{"message": {"recipient": "{{to}}", "content": "{{text}}", '
                    '"lang": "{{locale}}"}, "refs": {"attempt": "{{attempt_sid}}", '
                    '"verification": "{{verification_sid}}", "service": "{{service_sid}}"}, '
                    '"status_callback": "{{status_callback}}", "kind": "{{channel}}"}')
        self.start([self.webhook(channels=("sms",), body=template,
                                 headers={"Authorization": "Bearer s3cret", "X-Tenant": "t-1"},
                                 id_field="/data/message_id")])
        to = new_phone()
        v = self.create(to, FriendlyName='Acme "quoted" \\ shop')
        req = self.fake.wait_for(
            lambda r: r.kind == "/hook" and isinstance(r.json, dict)
            and r.json.get("message", {}).get("recipient") == to, timeout=WAIT)
        self.assertEqual(req.headers.get("Authorization"), "Bearer s3cret")
        self.assertEqual(req.headers.get("X-Tenant"), "t-1")
        self.assertEqual(req.headers.get("Content-Type"), "application/json")
        body = req.json
        self.assertEqual(body["message"]["content"], self.outbox_text(to))
        self.assertEqual(body["refs"]["verification"], v["sid"])
        self.assertEqual(body["refs"]["service"], self.srv.service_sid)
        self.assertEqual(body["kind"], "sms")
        a = self.wait_attempt(v["sid"], lambda a: a["channel_data"]["provider_message_id"],
                              "with the id from /data/message_id")
        self.assertEqual(a["channel_data"]["provider_message_id"], req.sid)
        self.assertEqual(body["refs"]["attempt"], a["sid"])
        self.assertEqual(req.headers.get("Idempotency-Key"), a["sid"])
        self.assert_callback_ok(self.fake.send_status_callback(
            req, "undelivered", error_code="E42", error_message="no route"))
        a = self.wait_status(v["sid"], "undelivered")
        self.assertIsNotNone(a["channel_data"]["error_code"])

    def test_basic_auth_custom_content_type_and_put(self):
        self.start([self.webhook(channels=("sms",), method="PUT", basic_user="gw",
                                 basic_password="pw", content_type="application/vnd.x+json")])
        to = new_phone()
        self.create(to)
        req = self.fake.wait_for(lambda r: r.kind == "/hook", timeout=WAIT)
        self.assertEqual(req.method, "PUT")
        self.assertEqual(req.basic_auth(), ("gw", "pw"))
        self.assertEqual(req.headers.get("Content-Type"), "application/vnd.x+json")
        self.assertIsInstance(req.json, dict, "PUT arrived without its JSON body: %r" % req.body)
        self.assertEqual(req.json["to"], to)

    def test_webhook_for_call_and_email(self):
        template = ('{"to": "{{to}}", "channel": "{{channel}}", "speech": "{{speech}}", '
                    '"language": "{{speech_language}}", "subject": "{{subject}}", '
                    '"html": "{{html}}", "text": "{{text}}"}')
        self.start([self.webhook(channels=("call", "email"), body=template)])
        to = new_phone()
        self.create(to, channel="call")
        call = self.fake.wait_for(lambda r: r.kind == "/hook" and r.json
                                  and r.json["to"] == to, timeout=WAIT)
        self.assertEqual(call.json["channel"], "call")
        self.assertTrue(call.json["speech"])
        self.assertTrue(call.json["language"])
        addr = "user%d@example.com" % free_port()
        self.create(addr, channel="email")
        mail = self.fake.wait_for(lambda r: r.kind == "/hook" and r.json
                                  and r.json["to"] == addr, timeout=WAIT)
        self.assertEqual(mail.json["channel"], "email")
        self.assertTrue(mail.json["subject"])
        self.assertIn("<", mail.json["html"])

    def test_webhook_4xx_is_permanent_and_429_transient(self):
        self.start([self.webhook(channels=("sms",))], max_tries=3, retry_initial_ms=20)
        self.fake.hook.fail_next(1, status=429)
        to = new_phone()
        v = self.create(to)
        reqs = self.wait_request("/hook", to, count=2)
        self.assertEqual(reqs[0].answer_status, 429)
        a = self.wait_status(v["sid"], "sent")
        self.assertEqual(a["channel_data"]["tries"], 2)

        self.fake.hook.fail_next(1, status=422)
        to2 = new_phone()
        v2 = self.create(to2)
        a2 = self.wait_status(v2["sid"], "failed")
        self.assertEqual(str(a2["channel_data"]["error_code"]), "422")
        time.sleep(0.2)
        self.assertEqual(len([r for r in self.fake.requests_for("/hook")
                              if r.json and r.json.get("to") == to2]), 1)

    def test_config_refuses_bad_template(self):
        with self.assertRaises(VerifydError):
            self.start([self.webhook(body='{"code": {{code}}}')])


class RoutingTest(ProvidersTestBase):
    """Which provider a message goes to: `countries` and Messaging Configurations."""

    FR_NUMBERS = ("+33612345671", "+33612345672", "+33612345673")

    def assert_not_received(self, fake, kind, to, quiet=0.3):
        time.sleep(quiet)
        got = [r for r in fake.requests_for(kind)
               if (r.field("To") if kind in ("messages", "calls") else r.field("to") or "")
               .endswith(to)]
        self.assertEqual(got, [], "%s %s received a message for %s" % (fake.url, kind, to))

    def test_country_routing(self):
        self.start([self.webhook(name="hook-fr", path="/hookfr", countries=["FR"]),
                    self.webhook(name="hook-any", path="/hookany")])
        to_fr = self.FR_NUMBERS[0]
        v_fr = self.create(to_fr)
        req = self.wait_request("/hookfr", to_fr)
        self.assertEqual(req.json["text"], self.outbox_text(to_fr))
        a = self.wait_status(v_fr["sid"], "sent")
        self.assertEqual((a["channel_data"]["provider"], a["channel_data"]["country"]),
                         ("hook-fr", "FR"))

        to_us = "+15017122671"
        v_us = self.create(to_us)
        req = self.wait_request("/hookany", to_us)
        self.assertEqual(req.json["text"], self.outbox_text(to_us))
        a = self.wait_status(v_us["sid"], "sent")
        self.assertEqual((a["channel_data"]["provider"], a["channel_data"]["country"]),
                         ("hook-any", "US"))
        self.assertEqual(a["channel_data"]["tries"], 1)

        self.assert_not_received(self.fake, "/hookfr", to_us)
        self.assert_not_received(self.fake, "/hookany", to_fr, quiet=0)
        self.assertEqual(len(self.fake.requests_for("/hookfr")), 1)
        self.assertEqual(len(self.fake.requests_for("/hookany")), 1)

    def test_messaging_configuration_route(self):
        mg = "MG" + "5" * 32
        second = FakeProvider(account_sid="AC" + "e" * 32, auth_token="second-fake-token-0123")
        self.addCleanup(second.stop)
        self.start([self.twilio(name="tw-main"),
                    self.twilio(name="tw-mg", messaging_service_sid=mg,
                                **second.twilio_settings())])
        va = self.srv.service_sid

        # Without a configuration the order of the file decides: France goes to the first.
        before = self.FR_NUMBERS[1]
        v0 = self.create(before)
        req = self.wait_request("messages", before)
        self.assertEqual((req.form["From"], req.form.get("MessagingServiceSid")), (FROM, None))
        a = self.wait_attempt(v0["sid"], lambda a: a["channel_data"]["provider_message_id"],
                              "accepted")
        self.assertEqual(a["channel_data"]["provider"], "tw-main")
        self.assert_not_received(second, "messages", before, quiet=0)

        st, _h, b = self.srv.request("POST", "/v2/Services/%s/MessagingConfigurations" % va,
                                     {"Country": "FR", "MessagingServiceSid": mg})
        self.assertEqual(st, 201, b)
        self.assertEqual((b["country"], b["messaging_service_sid"]), ("FR", mg))

        to_fr = self.FR_NUMBERS[2]
        v_fr = self.create(to_fr)
        req = second.wait_for(lambda r: r.kind == "messages" and r.form.get("To") == to_fr,
                              timeout=WAIT)
        self.assertEqual(req.basic_auth(), (second.account_sid, second.auth_token))
        self.assertEqual(req.account_sid, second.account_sid)
        self.assertEqual(req.form.get("MessagingServiceSid"), mg)
        self.assertNotIn("From", req.form)
        self.assertEqual(req.form["Body"], self.outbox_text(to_fr))
        a = self.wait_attempt(v_fr["sid"], lambda a: a["channel_data"]["provider_message_id"],
                              "accepted by tw-mg")
        self.assertEqual((a["channel_data"]["provider"], a["channel_data"]["provider_message_id"]),
                         ("tw-mg", req.sid))

        # another country still goes to the first provider, with From
        to_us = "+15017122672"
        v_us = self.create(to_us)
        req = self.wait_request("messages", to_us)
        self.assertEqual(req.form["From"], FROM)
        self.assertNotIn("MessagingServiceSid", req.form)
        a = self.wait_attempt(v_us["sid"], lambda a: a["channel_data"]["provider_message_id"],
                              "accepted by tw-main")
        self.assertEqual(a["channel_data"]["provider"], "tw-main")

        self.assert_not_received(self.fake, "messages", to_fr)
        self.assert_not_received(second, "messages", to_us, quiet=0)
        self.assertEqual(len(second.requests_for("messages")), 1)


if __name__ == "__main__":
    unittest.main()
