"""verifyd driven through the official twilio-python SDK (Debian python3-twilio 7.7.1), unchanged.

Run:  VERIFYD_BIN=/work/main/build/asan/verifyd /usr/bin/python3 -m unittest discover -s test/sdk/python -v
"""

import datetime
import os
import re
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from harness.verifyd import Verifyd, new_phone  # noqa: E402

from twilio.base.exceptions import TwilioRestException  # noqa: E402

VA_RE = re.compile(r"^VA[0-9a-f]{32}$")
VE_RE = re.compile(r"^VE[0-9a-f]{32}$")



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


class SdkTest(unittest.TestCase):

    def setUp(self):
        self.srv = SRV
        self.client = self.mk_client()
        self.svc = self.client.verify.v2.services(SRV.service_sid)

    def mk_client(self, *a, **kw):
        c = SRV.twilio_client(*a, **kw)
        self.addCleanup(c.http_client.session.close)
        return c

    def assertRestError(self, fn, status, code, what=""):
        with self.assertRaises(TwilioRestException, msg=what) as cm:
            fn()
        e = cm.exception
        self.assertEqual((e.status, e.code), (status, code),
                         "%s: got HTTP %s code %s msg %r" % (what, e.status, e.code, e.msg))
        return e

    def start(self, to=None, svc=None, channel="sms"):
        to = to or new_phone()
        v = (svc or self.svc).verifications.create(to=to, channel=channel)
        return to, v

    # ----------------------------------------------------------- services
    def test_service_crud(self):
        services = self.client.verify.v2.services
        s = services.create(friendly_name="SDK Svc", code_length=7, lookup_enabled=True,
                            do_not_share_warning_enabled=False, psd2_enabled=False)
        self.assertRegex(s.sid, VA_RE)
        self.assertEqual(s.account_sid, SRV.account_sid)
        self.assertEqual((s.friendly_name, s.code_length, s.lookup_enabled,
                          s.do_not_share_warning_enabled, s.psd2_enabled),
                         ("SDK Svc", 7, True, False, False))
        self.assertIsInstance(s.date_created, datetime.datetime,
                              "date_created %r did not parse as %%Y-%%m-%%dT%%H:%%M:%%SZ" % s.date_created)
        self.assertIsNotNone(s.date_created.tzinfo)
        self.assertEqual(s.date_created.utcoffset(), datetime.timedelta(0))
        self.assertIsInstance(s.date_updated, datetime.datetime)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - s.date_created).total_seconds()), 120, s.date_created)
        self.assertEqual(s.url, "%s/v2/Services/%s" % (SRV.base_url, s.sid))
        self.assertEqual(s.links["verifications"], s.url + "/Verifications")

        f = services(s.sid).fetch()
        self.assertEqual((f.sid, f.friendly_name, f.code_length, f.lookup_enabled),
                         (s.sid, "SDK Svc", 7, True))

        u = services(s.sid).update(friendly_name="SDK Renamed", lookup_enabled=False, code_length=5)
        self.assertEqual((u.sid, u.friendly_name, u.lookup_enabled, u.code_length),
                         (s.sid, "SDK Renamed", False, 5))
        self.assertGreaterEqual(u.date_updated, s.date_updated)
        self.assertEqual(u.date_created, s.date_created)
        self.assertEqual(services(s.sid).fetch().friendly_name, "SDK Renamed")

        self.assertIs(services(s.sid).delete(), True)
        self.assertRestError(lambda: services(s.sid).fetch(), 404, 20404, "fetch deleted service")
        self.assertRestError(lambda: services(s.sid).delete(), 404, 20404, "delete twice")

    def test_service_create_invalid(self):
        services = self.client.verify.v2.services
        self.assertRestError(lambda: services.create(friendly_name="x", code_length=3), 400, 60200,
                             "code_length=3")
        self.assertRestError(lambda: services.create(friendly_name="n" * 31), 400, 60200,
                             "31-char friendly_name")

    def test_list_paging(self):
        sid2, tok2 = SRV.new_account()
        client = self.mk_client(sid2, tok2)
        services = client.verify.v2.services
        existing = {s.sid for s in services.list()}
        created = {services.create(friendly_name="Pg %d" % i).sid for i in range(max(0, 5 - len(existing)))}
        expected = existing | created
        self.assertGreaterEqual(len(expected), 5)

        log = client.http_client.log
        n0 = len(log)
        listed = services.list(page_size=2)
        self.assertEqual(len(listed), len(expected))
        self.assertEqual({s.sid for s in listed}, expected)
        gets = [e for e in log[n0:] if e[0] == "GET"]
        self.assertGreaterEqual(len(gets), 3, "list(page_size=2) over %d services used %d requests"
                                % (len(expected), len(gets)))
        for method, url, params, data in gets[1:]:
            self.assertTrue(url.startswith(SRV.base_url_for_clients() + "/v2/Services?"), url)

        limited = services.list(limit=3, page_size=2)
        self.assertEqual(len(limited), 3)

        page = services.page(page_size=2)
        sids = [s.sid for s in page]
        self.assertEqual(len(sids), 2)
        pages = 1
        while True:
            page = page.next_page()
            if page is None:
                break
            pages += 1
            recs = [s.sid for s in page]
            self.assertTrue(1 <= len(recs) <= 2, recs)
            sids += recs
            self.assertLess(pages, 10, "next_page() never ends")
        self.assertEqual(pages, (len(expected) + 1) // 2)
        self.assertEqual(len(sids), len(set(sids)))
        self.assertEqual(set(sids), expected)

    # ------------------------------------------------------ verifications
    def test_verification_lifecycle(self):
        to, v = self.start()
        self.assertRegex(v.sid, VE_RE)
        self.assertEqual((v.status, v.valid, v.to, v.channel, v.service_sid, v.account_sid),
                         ("pending", False, to, "sms", SRV.service_sid, SRV.account_sid))
        self.assertIsInstance(v.date_created, datetime.datetime)
        self.assertIsNotNone(v.date_created.tzinfo)
        self.assertEqual(len(v.send_code_attempts), 1)

        fetched = self.svc.verifications(v.sid).fetch()
        self.assertEqual((fetched.sid, fetched.status), (v.sid, "pending"))
        by_to = self.svc.verifications(to).fetch()
        self.assertEqual(by_to.sid, v.sid)

        code = SRV.latest_code(to)
        c = self.svc.verification_checks.create(to=to, code=wrong_code(code))
        self.assertEqual((c.sid, c.status, c.valid), (v.sid, "pending", False))
        c = self.svc.verification_checks.create(to=to, code=code)
        self.assertEqual((c.sid, c.status, c.valid, c.to, c.channel), (v.sid, "approved", True, to, "sms"))
        self.assertIsInstance(c.date_updated, datetime.datetime)

        e = self.assertRestError(lambda: self.svc.verification_checks.create(to=to, code=code),
                                 404, 20404, "check after approval")
        self.assertEqual(e.method, "POST")
        self.assertRestError(lambda: self.svc.verifications(v.sid).fetch(), 404, 20404,
                             "fetch after approval")
        # a new start for the same number is a new verification with a fresh sid
        to2, v2 = self.start(to)
        self.assertNotEqual(v2.sid, v.sid)
        self.assertEqual(v2.status, "pending")

    def test_check_by_verification_sid(self):
        to, v = self.start()
        code = SRV.latest_code(to)
        c = self.svc.verification_checks.create(verification_sid=v.sid, code=code)
        self.assertEqual((c.sid, c.status, c.valid), (v.sid, "approved", True))

    def test_resend_same_sid(self):
        to, v1 = self.start()
        code1 = SRV.latest_code(to)
        _, v2 = self.start(to)
        code2 = SRV.latest_code(to)
        self.assertEqual(v2.sid, v1.sid)
        self.assertEqual(code2, code1)
        self.assertEqual(len(v2.send_code_attempts), 2)
        self.assertEqual(len(SRV.messages(to)), 2)

    def test_sixth_send_is_429(self):
        to, v = self.start()
        for i in range(4):
            _, vi = self.start(to)
            self.assertEqual(vi.sid, v.sid)
        self.assertEqual(len(vi.send_code_attempts), 5)
        self.assertRestError(lambda: self.start(to), 429, 60203, "6th send")
        self.assertEqual(len(SRV.messages(to)), 5, "the refused 6th send still delivered a message")
        # the verification is still pending and the code still works
        c = self.svc.verification_checks.create(to=to, code=SRV.latest_code(to))
        self.assertEqual(c.status, "approved")

    def test_max_check_attempts(self):
        to, v = self.start()
        code = SRV.latest_code(to)
        bad = wrong_code(code)
        for i in range(4):
            c = self.svc.verification_checks.create(to=to, code=bad)
            self.assertEqual((c.status, c.valid), ("pending", False), "wrong check #%d" % (i + 1))
        c = self.svc.verification_checks.create(to=to, code=bad)
        self.assertEqual((c.sid, c.status, c.valid), (v.sid, "max_attempts_reached", False))
        self.assertRestError(lambda: self.svc.verification_checks.create(to=to, code=code),
                             429, 60202, "6th check (right code)")

    def test_concurrent_wrong_checks(self):
        to, v = self.start()
        code = SRV.latest_code(to)
        bad = wrong_code(code)

        def one(_):
            client = SRV.twilio_client()
            try:
                r = client.verify.v2.services(SRV.service_sid).verification_checks.create(to=to, code=bad)
                return ("ok", r.status, r.valid)
            except TwilioRestException as e:
                return ("err", e.status, e.code)
            finally:
                client.http_client.session.close()

        with ThreadPoolExecutor(max_workers=20) as ex:
            results = list(ex.map(one, range(20)))
        ok = [r for r in results if not (r[0] == "err" and r[1] == 429)]
        self.assertLessEqual(len(ok), 5, "more than 5 checks were evaluated: %s" % results)
        self.assertEqual(len(ok), 5, "wrong checks were refused before 5 were evaluated: %s" % results)
        self.assertTrue(all(r[0] == "ok" and r[2] is False for r in ok), results)
        self.assertEqual(sorted(r[1] for r in ok), ["max_attempts_reached"] + ["pending"] * 4, results)
        errs = [r for r in results if r[0] == "err"]
        self.assertTrue(all(r[1:] == (429, 60202) for r in errs), results)
        self.assertRestError(lambda: self.svc.verification_checks.create(to=to, code=code),
                             429, 60202, "right code after the storm")

    def test_concurrent_sends_same_number(self):
        to = new_phone()

        def one(_):
            client = SRV.twilio_client()
            try:
                v = client.verify.v2.services(SRV.service_sid).verifications.create(to=to, channel="sms")
                return ("ok", v.sid, len(v.send_code_attempts))
            except TwilioRestException as e:
                return ("err", e.status, e.code)
            finally:
                client.http_client.session.close()

        with ThreadPoolExecutor(max_workers=12) as ex:
            results = list(ex.map(one, range(12)))
        ok = [r for r in results if r[0] == "ok"]
        errs = [r for r in results if r[0] == "err"]
        self.assertEqual(len(ok), 5, results)
        self.assertEqual(len({r[1] for r in ok}), 1, "concurrent starts created several verifications: %s"
                         % results)
        self.assertEqual(sorted(r[2] for r in ok), [1, 2, 3, 4, 5], results)
        self.assertTrue(all(r[1:] == (429, 60203) for r in errs), results)
        self.assertEqual(len(SRV.messages(to)), 5)

    def test_cancel(self):
        to, v = self.start()
        u = self.svc.verifications(v.sid).update(status="canceled")
        self.assertEqual((u.sid, u.status, u.valid), (v.sid, "canceled", False))
        self.assertRestError(lambda: self.svc.verification_checks.create(to=to, code=SRV.latest_code(to)),
                             404, 20404, "check after cancel")
        self.assertRestError(lambda: self.svc.verifications(v.sid).fetch(), 404, 20404, "fetch after cancel")

    def test_approve_by_update(self):
        to, v = self.start()
        u = self.svc.verifications(v.sid).update(status="approved")
        self.assertEqual((u.sid, u.status, u.valid), (v.sid, "approved", True))

    def test_unsupported_channel(self):
        to = new_phone()
        e = self.assertRestError(lambda: self.svc.verifications.create(to=to, channel="fax"), 400, 60200,
                                 "channel=fax")
        self.assertIn("Channel", e.msg)
        self.assertEqual(SRV.messages(to), [])

    def test_invalid_to(self):
        self.assertRestError(lambda: self.svc.verifications.create(to="not-a-number", channel="sms"),
                             400, 60200, "to=not-a-number")

    def test_bad_token(self):
        bad = self.mk_client(SRV.account_sid, SRV.auth_token + "nope")
        self.assertRestError(lambda: bad.verify.v2.services(SRV.service_sid).fetch(), 401, 20003, "bad token")
        to = new_phone()
        self.assertRestError(lambda: bad.verify.v2.services(SRV.service_sid).verifications.create(
            to=to, channel="sms"), 401, 20003, "bad token create")
        self.assertEqual(SRV.messages(to), [])

    def test_api_key_auth(self):
        key, secret = SRV.new_api_key(SRV.account_sid)
        client = self.mk_client(key, secret, account_sid=SRV.account_sid)
        svc = client.verify.v2.services(SRV.service_sid)
        self.assertEqual(svc.fetch().sid, SRV.service_sid)
        to = new_phone()
        v = svc.verifications.create(to=to, channel="sms")
        self.assertEqual((v.status, v.account_sid), ("pending", SRV.account_sid))
        c = svc.verification_checks.create(to=to, code=SRV.latest_code(to))
        self.assertEqual(c.status, "approved")
        self.assertIn(SRV.service_sid, [s.sid for s in client.verify.v2.services.list()])
        wrong = self.mk_client(key, secret + "x", account_sid=SRV.account_sid)
        self.assertRestError(lambda: wrong.verify.v2.services(SRV.service_sid).fetch(), 401, 20003,
                             "api key wrong secret")

    def test_second_account_isolation(self):
        to, v = self.start()
        sid2, tok2 = SRV.new_account()
        other = self.mk_client(sid2, tok2)
        osvc = other.verify.v2.services(SRV.service_sid)
        self.assertRestError(lambda: osvc.fetch(), 404, 20404, "other account fetches service")
        self.assertRestError(lambda: osvc.verifications(v.sid).fetch(), 404, 20404,
                             "other account fetches verification")
        self.assertRestError(lambda: osvc.verification_checks.create(to=to, code=SRV.latest_code(to)),
                             404, 20404, "other account checks")
        self.assertRestError(lambda: osvc.verifications(v.sid).update(status="canceled"), 404, 20404,
                             "other account cancels")
        self.assertRestError(lambda: osvc.update(friendly_name="Hijack"), 404, 20404,
                             "other account updates service")
        self.assertRestError(lambda: osvc.delete(), 404, 20404, "other account deletes service")
        self.assertNotIn(SRV.service_sid, [s.sid for s in other.verify.v2.services.list()])
        # still intact for the owner
        self.assertEqual(self.svc.verifications(v.sid).fetch().status, "pending")
        self.assertNotEqual(self.svc.fetch().friendly_name, "Hijack")




class RateLimitSdkTest(unittest.TestCase):
    def test_rate_limit_bucket_enforced(self):
        client = SRV.twilio_client()
        svc = client.verify.v2.services.create(friendly_name="Py Limits")
        rl = client.verify.v2.services(svc.sid).rate_limits.create(unique_name="user_id", description="per user")
        self.assertRegex(rl.sid, r"^RK[0-9a-f]{32}$")
        bucket = client.verify.v2.services(svc.sid).rate_limits(rl.sid).buckets.create(max=1, interval=60)
        self.assertEqual((bucket.max, bucket.interval), (1, 60))
        first = client.verify.v2.services(svc.sid).verifications.create(
            to=new_phone(), channel="sms", rate_limits={"user_id": "u-1"})
        self.assertEqual(first.status, "pending")
        with self.assertRaises(TwilioRestException) as ctx:
            client.verify.v2.services(svc.sid).verifications.create(
                to=new_phone(), channel="sms", rate_limits={"user_id": "u-1"})
        self.assertEqual((ctx.exception.status, ctx.exception.code), (429, 20429))
        self.assertTrue(client.verify.v2.services(svc.sid).rate_limits(rl.sid).delete())


if __name__ == "__main__":
    unittest.main()
