"""The delivery layer's resources (docs/delivery.md) through the official twilio-python SDK
(Debian python3-twilio 7.7.1), unchanged, driving a real verifyd with no provider configured
(every message goes to the dev outbox only).

python3-twilio 7.7.1 has no VerificationAttemptsSummary resource: the summary is read with the
SDK's own Version.fetch (same HTTP client, authentication and error handling).

Run:  VERIFYD_BIN=/work/main/build/asan/verifyd /usr/bin/python3 -m unittest discover \
          -s test/sdk/python -p "test_*.py" -v
"""

import datetime
import itertools
import json
import os
import re
import sys
import time
import unittest

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from harness.verifyd import Verifyd  # noqa: E402

from twilio.base.exceptions import TwilioException, TwilioRestException  # noqa: E402

VL_RE = re.compile(r"^VL[0-9a-f]{32}$")
HJ_RE = re.compile(r"^HJ[0-9a-fA-F]{32}$")

# Twilio's 36 Verify locales (docs/delivery.md, "Message content").
LOCALES = sorted(["af", "ar", "ca", "cs", "da", "de", "el", "en", "en-GB", "es", "fi", "fr",
                  "he", "hi", "hr", "hu", "id", "it", "ja", "ko", "ms", "nb", "nl", "pl", "pt",
                  "pt-BR", "ro", "ru", "sv", "th", "tl", "tr", "vi", "zh", "zh-CN", "zh-HK"])

# The server allows 5 pending verifications and 5 sends per number per 10 minutes: every
# verification in this module goes to a number of its own.
_fr = itertools.count(1)
_us = itertools.count(1)
_ru = itertools.count(1)


def fr_phone():
    """+33 6 12 34 56 NN: a valid French mobile number, new on each call."""
    n = next(_fr)
    assert n < 100, "out of French numbers"
    return "+336123456%02d" % n


def us_phone():
    """+1 501 712 26NN: a valid US number, new on each call."""
    n = next(_us)
    assert n < 100, "out of US numbers"
    return "+15017122%03d" % (600 + n)


def ru_phone():
    """+7 916 123 45NN: a valid Russian mobile number, new on each call."""
    n = next(_ru)
    assert n < 100, "out of Russian numbers"
    return "+791612345%02d" % n


def wrong_code(code):
    return "".join("1" if c != "1" else "2" for c in code)


SRV = None


def setUpModule():
    global SRV
    SRV = Verifyd()


def tearDownModule():
    global SRV
    if SRV is not None:
        try:
            SRV.stop()
        finally:
            SRV.cleanup()
            SRV = None


class DeliverySdkTest(unittest.TestCase):
    _services = itertools.count(1)

    def setUp(self):
        self.client = SRV.twilio_client()
        self.addCleanup(self.client.http_client.session.close)
        self.v2 = self.client.verify.v2

    # ------------------------------------------------------------ helpers
    def new_service(self, **kw):
        kw.setdefault("friendly_name", "Py Dlv %d" % next(self._services))
        return self.v2.services.create(**kw)

    def assertRestError(self, fn, status, code, what=""):
        with self.assertRaises(TwilioRestException, msg=what) as cm:
            fn()
        e = cm.exception
        self.assertEqual((e.status, e.code), (status, code),
                         "%s: got HTTP %s code %s msg %r" % (what, e.status, e.code, e.msg))
        return e

    def outbox(self, to):
        msgs = SRV.messages(to, page_size=1)
        self.assertTrue(msgs, "dev outbox has no message for %s" % to)
        return msgs[0]

    def attempts_of(self, verification_sid):
        return self.v2.verification_attempts.list(verification_sid=verification_sid)

    def sids(self, **filters):
        return sorted(a.sid for a in self.v2.verification_attempts.list(**filters))

    def summary(self, **params):
        # 7.7.1 has no summary resource: the SDK's generic fetch on /v2/Attempts/Summary.
        return self.v2.fetch("GET", "/Attempts/Summary", params=params)

    # ------------------------------------------------ attempts and summary
    def test_attempts_list_fetch_conversion_and_summary(self):
        s = self.new_service(friendly_name="Py Attempts")
        svc = self.v2.services(s.sid)
        to = fr_phone()
        v = svc.verifications.create(to=to, channel="sms")
        self.assertEqual(len(v.send_code_attempts), 1)
        attempt_sid = v.send_code_attempts[0]["attempt_sid"]
        self.assertRegex(attempt_sid, VL_RE)

        listed = self.attempts_of(v.sid)
        self.assertEqual(len(listed), 1, listed)
        a = listed[0]
        self.assertEqual(
            (a.sid, a.account_sid, a.service_sid, a.verification_sid, a.channel,
             a.conversion_status, a.price, a.url),
            (attempt_sid, SRV.account_sid, s.sid, v.sid, "sms", "unconverted", None,
             "%s/v2/Attempts/%s" % (SRV.base_url, attempt_sid)))
        self.assertIsInstance(a.date_created, datetime.datetime)
        self.assertIsNotNone(a.date_created.tzinfo)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - a.date_created).total_seconds()), 120, a.date_created)
        cd = a.channel_data
        self.assertEqual(
            {k: cd.get(k) for k in ("verification_sid", "to", "message_status", "provider",
                                    "country", "locale", "code_length", "error_code",
                                    "outcome_unknown")},
            {"verification_sid": v.sid, "to": to, "message_status": "sent",
             "provider": "dev-outbox", "country": "FR", "locale": "fr", "code_length": 6,
             "error_code": None, "outcome_unknown": False}, cd)

        f = self.v2.verification_attempts(attempt_sid).fetch()
        self.assertEqual((f.sid, f.verification_sid, f.service_sid, f.conversion_status),
                         (attempt_sid, v.sid, s.sid, "unconverted"))
        self.assertEqual((f.channel_data["message_status"], f.channel_data["provider"],
                          f.channel_data["to"]), ("sent", "dev-outbox", to))
        self.assertRestError(lambda: self.v2.verification_attempts("VL" + "0" * 32).fetch(),
                             404, 20404, "fetch an unknown attempt")

        # three more verifications on the service that are never checked
        others = [svc.verifications.create(to=us_phone(), channel="sms") for _ in range(3)]

        code = SRV.latest_code(to)
        c = svc.verification_checks.create(to=to, code=wrong_code(code))
        self.assertEqual(c.status, "pending")
        self.assertEqual(self.v2.verification_attempts(attempt_sid).fetch().conversion_status,
                         "unconverted", "a wrong code does not convert the attempt")
        c = svc.verification_checks.create(to=to, code=code)
        self.assertEqual(c.status, "approved")

        self.assertEqual(self.v2.verification_attempts(attempt_sid).fetch().conversion_status,
                         "converted")
        for o in others:
            self.assertEqual([x.conversion_status for x in self.attempts_of(o.sid)],
                             ["unconverted"])

        summ = self.summary(VerifyServiceSid=s.sid)
        self.assertEqual(
            {k: summ.get(k) for k in ("total_attempts", "total_converted", "total_unconverted",
                                      "conversion_rate_percentage", "url")},
            {"total_attempts": 4, "total_converted": 1, "total_unconverted": 3,
             "conversion_rate_percentage": "25",
             "url": "%s/v2/Attempts/Summary" % SRV.base_url}, summ)
        fr = self.summary(VerifyServiceSid=s.sid, Country="FR")
        self.assertEqual((fr["total_attempts"], fr["total_converted"],
                          fr["conversion_rate_percentage"]), (1, 1, "100"))
        empty = self.new_service()
        none = self.summary(VerifyServiceSid=empty.sid)
        self.assertEqual((none["total_attempts"], none["total_converted"],
                          none["total_unconverted"]), (0, 0, 0))

    def test_attempts_filters(self):
        s = self.new_service(friendly_name="Py Filters")
        svc = self.v2.services(s.sid)
        to_fr = fr_phone()
        v_fr = svc.verifications.create(to=to_fr, channel="sms")
        v_call = svc.verifications.create(to=us_phone(), channel="call")
        [a_fr] = self.attempts_of(v_fr.sid)
        [a_call] = self.attempts_of(v_call.sid)
        self.assertEqual((a_call.channel, a_call.channel_data["country"]), ("call", "US"))

        # Two seconds later (date_created has one-second resolution): a third attempt.
        first = max(a_fr.date_created, a_call.date_created)
        while datetime.datetime.now(datetime.timezone.utc) < first + datetime.timedelta(seconds=2.1):
            time.sleep(0.05)
        v_us = svc.verifications.create(to=us_phone(), channel="sms")
        [a_us] = self.attempts_of(v_us.sid)
        self.assertGreaterEqual(a_us.date_created, first + datetime.timedelta(seconds=2))

        c = svc.verification_checks.create(to=to_fr, code=SRV.latest_code(to_fr))
        self.assertEqual(c.status, "approved")

        everything = sorted([a_fr.sid, a_call.sid, a_us.sid])
        base = {"verify_service_sid": s.sid}
        self.assertEqual(self.sids(**base), everything)
        self.assertEqual(self.sids(channel="call", **base), [a_call.sid])
        self.assertEqual(self.sids(channel="sms", **base), sorted([a_fr.sid, a_us.sid]))
        self.assertEqual(self.sids(channel="whatsapp", **base), [])

        self.assertEqual(self.sids(status="Converted", **base), [a_fr.sid])
        self.assertEqual(self.sids(status="Unconverted", **base), sorted([a_call.sid, a_us.sid]))
        self.assertEqual(self.sids(status="converted", **base), [a_fr.sid])
        self.assertEqual(self.sids(status="unconverted", **base), sorted([a_call.sid, a_us.sid]))
        self.assertEqual(self.sids(status="Unconverted", channel="sms", **base), [a_us.sid])

        self.assertEqual(self.sids(country="FR", **base), [a_fr.sid])
        self.assertEqual(self.sids(country="US", **base), sorted([a_call.sid, a_us.sid]))
        self.assertEqual(self.sids(country="DE", **base), [])

        split = first + datetime.timedelta(seconds=1)
        self.assertEqual(self.sids(date_created_after=split, **base), [a_us.sid])
        self.assertEqual(self.sids(date_created_before=split, **base),
                         sorted([a_fr.sid, a_call.sid]))
        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
        self.assertEqual(self.sids(date_created_after=first - datetime.timedelta(minutes=1),
                                   date_created_before=later, **base), everything)
        self.assertEqual(self.sids(date_created_after=later, **base), [])
        sent = self.client.http_client.log[-1][2]
        self.assertRegex(sent.get("DateCreatedAfter", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        # 7.7.1 raises a plain TwilioException (with the response) when a list page fails.
        with self.assertRaises(TwilioException) as cm:
            self.sids(status="bogus", **base)
        response = cm.exception.args[1]
        self.assertEqual(response.status_code, 400)
        self.assertEqual(json.loads(response.text)["code"], 60200, response.text)

    # ---------------------------------------------------------- templates
    def test_templates_and_template_sid(self):
        templates = self.v2.templates.list()
        self.assertEqual(sorted(t.friendly_name for t in templates), [
            "Base Verification Template",
            "Base Verification Template 2 with do not share",
            "Base Verification Template 3",
            "Base Verification Template 4 with expiry",
        ])
        for t in templates:
            self.assertRegex(t.sid, HJ_RE)
            self.assertEqual(t.account_sid, SRV.account_sid)
            self.assertEqual(sorted(t.translations), LOCALES, t.friendly_name)
            for loc in LOCALES:
                tr = t.translations[loc]
                self.assertEqual((tr["locale"], tr["status"]), (loc, "approved"),
                                 "%s/%s" % (t.friendly_name, loc))
                self.assertIn("{{code}}", tr["text"], "%s/%s" % (t.friendly_name, loc))
        t3 = [t for t in templates if t.friendly_name == "Base Verification Template 3"][0]
        self.assertEqual(t3.translations["en"]["text"],
                         "{{code}} is your verification code for {{friendly_name}}.")

        s = self.new_service(friendly_name="Py Tpl Shop")
        to = us_phone()
        v = self.v2.services(s.sid).verifications.create(to=to, channel="sms",
                                                         template_sid=t3.sid)
        self.assertEqual(v.status, "pending")
        msg = self.outbox(to)
        self.assertRegex(msg["code"], r"^\d{6}$")
        self.assertEqual(msg["body"], "%s is your verification code for Py Tpl Shop." % msg["code"])

    # ------------------------------------------------------------- locale
    def test_locale(self):
        s = self.new_service(friendly_name="Py Locale")
        svc = self.v2.services(s.sid)

        to = us_phone()
        v = svc.verifications.create(to=to, channel="sms", locale="fr")
        msg = self.outbox(to)
        self.assertIn(msg["code"], msg["body"])
        self.assertEqual(msg["body"], "Votre code de vérification pour Py Locale est : %s"
                         % msg["code"])
        [a] = self.attempts_of(v.sid)
        self.assertEqual((a.channel_data["locale"], a.channel_data["country"]), ("fr", "US"))

        to_xx = us_phone()
        self.assertRestError(lambda: svc.verifications.create(to=to_xx, channel="sms",
                                                              locale="xx"),
                             404, 20404, "Locale=xx")
        self.assertEqual(SRV.messages(to_xx), [], "nothing was sent for Locale=xx")

        to_ru = ru_phone()
        v_ru = svc.verifications.create(to=to_ru, channel="sms")
        msg = self.outbox(to_ru)
        self.assertEqual(msg["body"], "Ваш код подтверждения для Py Locale: %s" % msg["code"])
        [a] = self.attempts_of(v_ru.sid)
        self.assertEqual((a.channel_data["country"], a.channel_data["locale"]), ("RU", "ru"))

    # ------------------------------------------- messaging configurations
    def test_messaging_configurations(self):
        s = self.new_service()
        mcs = self.v2.services(s.sid).messaging_configurations
        mg1, mg2, mg3 = ("MG" + d * 32 for d in "123")

        m = mcs.create(country="FR", messaging_service_sid=mg1)
        self.assertEqual((m.account_sid, m.service_sid, m.country, m.messaging_service_sid, m.url),
                         (SRV.account_sid, s.sid, "FR", mg1,
                          "%s/v2/Services/%s/MessagingConfigurations/FR" % (SRV.base_url, s.sid)))
        self.assertIsInstance(m.date_created, datetime.datetime)

        f = mcs("FR").fetch()
        self.assertEqual((f.country, f.messaging_service_sid, f.service_sid), ("FR", mg1, s.sid))

        self.assertRestError(lambda: mcs.create(country="FR", messaging_service_sid=mg2),
                             400, 60213, "a second configuration for FR")

        mcs.create(country="all", messaging_service_sid=mg3)
        self.assertEqual(sorted((x.country, x.messaging_service_sid) for x in mcs.list()),
                         sorted([("FR", mg1), ("all", mg3)]))

        u = mcs("FR").update(messaging_service_sid=mg2)
        self.assertEqual((u.country, u.messaging_service_sid), ("FR", mg2))
        self.assertEqual(mcs("FR").fetch().messaging_service_sid, mg2)

        self.assertIs(mcs("FR").delete(), True)
        self.assertRestError(lambda: mcs("FR").fetch(), 404, 20404, "fetch after delete")
        self.assertRestError(lambda: mcs("FR").delete(), 404, 20404, "delete twice")
        self.assertEqual([x.country for x in mcs.list()], ["all"])

    # --------------------------------------------------------------- PSD2
    def test_psd2(self):
        s = self.new_service(friendly_name="Py PSD2 Shop", psd2_enabled=True)
        self.assertIs(s.psd2_enabled, True)
        svc = self.v2.services(s.sid)
        amount, payee = "€12.50", "Py Payee GmbH"

        self.assertRestError(lambda: svc.verifications.create(to=us_phone(), channel="sms"),
                             400, 60206, "start without amount and payee")
        self.assertRestError(lambda: svc.verifications.create(to=us_phone(), channel="sms",
                                                              payee=payee),
                             400, 60206, "start without amount")

        to = us_phone()
        v = svc.verifications.create(to=to, channel="sms", amount=amount, payee=payee)
        self.assertEqual((v.status, v.amount, v.payee), ("pending", amount, payee))
        msg = self.outbox(to)
        self.assertIn(amount, msg["body"])
        self.assertIn(payee, msg["body"])
        self.assertIn(msg["code"], msg["body"])
        code = msg["code"]

        self.assertRestError(lambda: svc.verification_checks.create(to=to, code=code),
                             400, 60206, "check without amount and payee")
        c = svc.verification_checks.create(to=to, code=code, amount=amount, payee="Someone Else")
        self.assertEqual((c.status, c.valid), ("pending", False), "another payee does not approve")
        c = svc.verification_checks.create(to=to, code=code, amount=amount, payee=payee)
        self.assertEqual((c.sid, c.status, c.valid, c.amount, c.payee),
                         (v.sid, "approved", True, amount, payee))

    # ------------------------------------------------------------ AppHash
    def test_app_hash(self):
        s = self.new_service(friendly_name="Py AppHash")
        to = fr_phone()
        app_hash = "He3/Kq7Zx+p"
        self.v2.services(s.sid).verifications.create(to=to, channel="sms", app_hash=app_hash,
                                                     locale="en")
        body = self.outbox(to)["body"]
        self.assertTrue(body.startswith("<#> "), repr(body))
        self.assertTrue(body.endswith("\n" + app_hash), repr(body))
        self.assertEqual(body, "<#> Your Py AppHash verification code is: %s\n%s"
                         % (self.outbox(to)["code"], app_hash))


if __name__ == "__main__":
    unittest.main()
