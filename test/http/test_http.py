"""Raw HTTP tests for verifyd (docs/contract.md, VERIFY_API.md sections 1, 3.1-3.3, 4.1).

Run:  VERIFYD_BIN=/work/main/build/asan/verifyd /usr/bin/python3 -m unittest discover -s test/http -v
"""

import base64
import json
import os
import random
import re
import socket
import sys
import time
import unittest
import urllib.parse

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.verifyd import Verifyd, basic_auth_header, new_phone  # noqa: E402

ERROR_KEYS = {"code", "message", "more_info", "status"}
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def sid_re(prefix):
    return re.compile(r"^%s[0-9a-f]{32}$" % prefix)


VA_RE, AC_RE, VE_RE, VL_RE, MM_RE, SK_RE = (sid_re(p) for p in ("VA", "AC", "VE", "VL", "MM", "SK"))

SERVICE_FIELDS = ("sid account_sid friendly_name code_length lookup_enabled psd2_enabled "
                  "skip_sms_to_landlines dtmf_input_required tts_name do_not_share_warning_enabled "
                  "custom_code_enabled push totp default_template_sid whatsapp passkeys "
                  "verify_event_subscription_enabled date_created date_updated url links").split()
VERIFICATION_FIELDS = ("sid service_sid account_sid to channel status valid lookup amount payee "
                       "send_code_attempts date_created date_updated sna url").split()
CHECK_FIELDS = ("sid service_sid account_sid to channel status valid amount payee "
                "sna_attempts_error_codes date_created date_updated").split()
SERVICE_LINKS = {
    "verification_checks": "/VerificationCheck",
    "verifications": "/Verifications",
    "rate_limits": "/RateLimits",
    "messaging_configurations": "/MessagingConfigurations",
    "entities": "/Entities",
    "webhooks": "/Webhooks",
    "access_tokens": "/AccessTokens",
}
DO_NOT_SHARE = ". Don't share this code with anyone; our employees will never ask for the code."



def q(s):
    return urllib.parse.quote(s, safe="")


def parse_raw_response(out):
    """(status, {lower-case header: value}, parsed body) from raw response bytes."""
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"^HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
    if not m:
        raise AssertionError("not an HTTP response: %r" % out[:200])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    try:
        parsed = json.loads(body) if body else b""
    except ValueError:
        parsed = body
    return int(m.group(1)), headers, parsed


SRV = None


def setUpModule():
    global SRV
    SRV = Verifyd()


def tearDownModule():
    global SRV
    if SRV is not None:
        try:
            SRV.stop()          # asserts a graceful exit 0 after everything this module did
        finally:
            SRV.cleanup()
            SRV = None


class Base(unittest.TestCase):
    srv = None          # subclasses may override via setUpClass

    @property
    def s(self):
        return self.srv or SRV

    # ---------------------------------------------------------------- helpers
    def req(self, method, path, body=None, headers=None, **kw):
        return self.s.request(method, path, body=body, headers=headers, **kw)

    def svc_path(self, service_sid=None, tail=""):
        return "/v2/Services/%s%s" % (service_sid or self.s.service_sid, tail)

    def create_service(self, name="Test Svc", auth=None, **params):
        body = {"FriendlyName": name}
        body.update(params)
        kw = {} if auth is None else {"auth": auth}
        st, h, b = self.req("POST", "/v2/Services", body, **kw)
        self.assertEqual(st, 201, "POST /v2/Services %r -> %s %r" % (body, st, b))
        return b

    def create_verification(self, to=None, channel="sms", service_sid=None, auth=None, **params):
        to = to or new_phone()
        body = {"To": to, "Channel": channel}
        body.update(params)
        kw = {} if auth is None else {"auth": auth}
        st, h, b = self.req("POST", self.svc_path(service_sid, "/Verifications"), body, **kw)
        self.assertEqual(st, 201, "create verification %r -> %s %r" % (body, st, b))
        return b

    def check(self, to, code, service_sid=None, expect=200):
        st, h, b = self.req("POST", self.svc_path(service_sid, "/VerificationCheck"),
                            {"To": to, "Code": code})
        self.assertEqual(st, expect, "check %s/%s -> %s %r" % (to, code, st, b))
        return b

    def assert_error(self, resp, status, code, message=None, prefix=None, what=""):
        st, h, b = resp
        ctx = "%s -> %s %r" % (what, st, b)
        self.assertEqual(st, status, ctx)
        self.assertIsInstance(b, dict, ctx)
        self.assertEqual(set(b.keys()), ERROR_KEYS, ctx)
        self.assertEqual(b["code"], code, ctx)
        self.assertEqual(b["status"], status, ctx)
        self.assertEqual(b["more_info"], "https://www.twilio.com/docs/errors/%d" % code, ctx)
        self.assertIsInstance(b["message"], str, ctx)
        if message is not None:
            self.assertEqual(b["message"], message, ctx)
        if prefix is not None:
            self.assertTrue(b["message"].startswith(prefix), ctx)
        return b

    def assert_invalid_param(self, resp, name, what=""):
        b = self.assert_error(resp, 400, 60200, what=what)
        msg = b["message"]
        self.assertTrue(msg == "Invalid parameter: %s" % name
                        or msg.startswith("Invalid parameter: %s: " % name),
                        "%s: expected 'Invalid parameter: %s[: detail]', got %r" % (what, name, msg))
        return b

    def assert_missing_param(self, resp, name, what=""):
        return self.assert_error(resp, 400, 60200,
                                 "Missing required parameter %s in the post body" % name, what=what)

    def assert_alive(self):
        st, h, b = self.s.healthz()
        self.assertEqual((st, b), (200, {"status": "ok"}), "server no longer answers /healthz")

    def assert_nothing_created(self, to, service_sid=None):
        """No outbox message for `to` and no verification fetchable by To."""
        self.assertEqual(self.s.messages(to), [], "outbox has messages for %s" % to)
        path = self.svc_path(service_sid, "/Verifications/" + to)
        self.assert_error(self.req("GET", path), 404, 20404, what="GET " + path)

    def assert_keys_in_order(self, obj, fields, what):
        self.assertIsInstance(obj, dict, what)
        keys = list(obj.keys())
        missing = [f for f in fields if f not in keys]
        self.assertEqual(missing, [], "%s: missing keys (got %s)" % (what, keys))
        order = [k for k in keys if k in fields]
        self.assertEqual(order, list(fields), "%s: key order" % what)

    def count_services(self, auth=None):
        kw = {} if auth is None else {"auth": auth}
        st, h, b = self.req("GET", "/v2/Services?PageSize=1000", **kw)
        self.assertEqual(st, 200, b)
        return len(b["services"])


# ===========================================================================
class OwnServerBase(Base):
    """A test class with a server of its own, started with `server_args`."""
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Verifyd(extra_args=list(cls.server_args))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()


class HealthAndAuthTest(Base):

    def test_healthz_without_auth(self):
        st, h, b = self.req("GET", "/healthz", auth=None)
        self.assertEqual(st, 200)
        self.assertEqual(b, {"status": "ok"})

    def test_no_auth_is_401(self):
        for path in ("/v2/Services", self.svc_path(), "/dev/v1/Messages?To=%2B15551230000",
                     "/v2/Nope"):
            with self.subTest(path=path):
                resp = self.req("GET", path, auth=None)
                self.assert_error(resp, 401, 20003, "Authenticate", what="GET %s no auth" % path)
                www = resp[1].get("WWW-Authenticate")
                self.assertIsNotNone(www, "401 without WWW-Authenticate")
                self.assertTrue(www.lower().startswith("basic"), www)

    def test_no_auth_post_changes_nothing(self):
        to = new_phone()
        resp = self.req("POST", self.svc_path(tail="/Verifications"),
                        {"To": to, "Channel": "sms"}, auth=None)
        self.assert_error(resp, 401, 20003, "Authenticate")
        self.assert_nothing_created(to)
        n = self.count_services()
        self.assert_error(self.req("POST", "/v2/Services", {"FriendlyName": "NoAuth"}, auth=None),
                          401, 20003, "Authenticate")
        self.assertEqual(self.count_services(), n)

    def test_wrong_token_is_401(self):
        s = self.s
        cases = [
            (s.account_sid, s.auth_token + "x"),
            (s.account_sid, s.auth_token[:-1]),
            (s.account_sid, ""),
            ("AC" + "0" * 32, s.auth_token),
            (s.account_sid.lower(), s.auth_token),
        ]
        for user, pw in cases:
            with self.subTest(user=user, pw=pw):
                self.assert_error(self.req("GET", "/v2/Services", auth=(user, pw)), 401, 20003,
                                  "Authenticate", what="wrong creds")
        to = new_phone()
        self.assert_error(self.req("POST", self.svc_path(tail="/Verifications"),
                                   {"To": to, "Channel": "sms"},
                                   auth=(s.account_sid, "nottherighttoken")), 401, 20003)
        self.assert_nothing_created(to)

    def test_garbage_authorization_headers(self):
        s = self.s
        good = basic_auth_header(s.account_sid, s.auth_token)
        garbage = [
            "Basic !!!!not-base64!!!!",
            "Basic " + base64.b64encode(b"nocolonhere").decode(),
            "Basic " + base64.b64encode(b":").decode(),
            "Basic",
            "Basic ",
            "Bearer " + s.auth_token,
            "Digest username=\"%s\"" % s.account_sid,
            good[:-4],                      # truncated base64
            "Basic " + base64.b64encode(b"\xff\xfe\x00:\x00").decode(),
            "Basic " + "A" * 5000,
        ]
        for hv in garbage:
            with self.subTest(header=hv[:60]):
                resp = self.req("GET", "/v2/Services", auth=None, headers={"Authorization": hv})
                self.assert_error(resp, 401, 20003, "Authenticate", what="Authorization: %r" % hv[:60])
        self.assert_alive()

    def test_auth_scheme_is_case_insensitive(self):
        hv = basic_auth_header(self.s.account_sid, self.s.auth_token)
        for scheme in ("basic", "BASIC"):
            with self.subTest(scheme=scheme):
                st, h, b = self.req("GET", "/v2/Services", auth=None,
                                    headers={"Authorization": scheme + hv[5:]})
                self.assertEqual(st, 200, "RFC 9110 11.1: auth-scheme is case-insensitive; got %s %r" % (st, b))

    def test_other_accounts_token_rejected(self):
        sid2, tok2 = self.s.new_account()
        self.assert_error(self.req("GET", "/v2/Services", auth=(self.s.account_sid, tok2)),
                          401, 20003, "Authenticate")
        self.assert_error(self.req("GET", "/v2/Services", auth=(sid2, self.s.auth_token)),
                          401, 20003, "Authenticate")
        st, h, b = self.req("GET", "/v2/Services", auth=(sid2, tok2))
        self.assertEqual(st, 200, b)

    def test_api_key_auth(self):
        key, secret = self.s.new_api_key(self.s.account_sid)
        self.assertRegex(key, SK_RE)
        st, h, b = self.req("GET", self.svc_path(), auth=(key, secret))
        self.assertEqual(st, 200, b)
        self.assertEqual(b["sid"], self.s.service_sid)
        self.assertEqual(b["account_sid"], self.s.account_sid)
        self.assert_error(self.req("GET", self.svc_path(), auth=(key, secret + "x")), 401, 20003,
                          "Authenticate")
        self.assert_error(self.req("GET", self.svc_path(), auth=(key, self.s.auth_token)), 401,
                          20003, "Authenticate")


# ===========================================================================
class RoutingTest(Base):

    def test_unknown_path(self):
        self.assert_error(self.req("GET", "/v2/Nope"), 404, 20404,
                          "The requested resource /Nope was not found")
        self.assert_error(self.req("POST", "/v2/Nope", {"A": "b"}), 404, 20404,
                          "The requested resource /Nope was not found")

    def test_unknown_service_and_verification(self):
        va = "VA" + "0" * 32
        self.assert_error(self.req("GET", "/v2/Services/" + va), 404, 20404,
                          "The requested resource /Services/%s was not found" % va)
        ve = "VE" + "0" * 32
        path = self.svc_path(tail="/Verifications/" + ve)
        self.assert_error(self.req("GET", path), 404, 20404,
                          "The requested resource /Services/%s/Verifications/%s was not found"
                          % (self.s.service_sid, ve))
        to = new_phone()
        self.assert_error(self.req("POST", "/v2/Services/%s/Verifications" % va,
                                   {"To": to, "Channel": "sms"}), 404, 20404)
        self.assertEqual(self.s.messages(to), [])

    def test_method_not_allowed_verification_check(self):
        resp = self.req("DELETE", self.svc_path(tail="/VerificationCheck"))
        self.assert_error(resp, 405, 20004, "Method not allowed")
        allow = resp[1].get("Allow")
        self.assertIsNotNone(allow, "405 without Allow header")
        methods = {m.strip().upper() for m in allow.split(",")}
        self.assertIn("POST", methods)
        self.assertNotIn("DELETE", methods)

    def test_method_not_allowed_services(self):
        resp = self.req("PUT", "/v2/Services", {"FriendlyName": "Put"})
        self.assert_error(resp, 405, 20004, "Method not allowed")
        allow = resp[1].get("Allow")
        self.assertIsNotNone(allow, "405 without Allow header")
        methods = {m.strip().upper() for m in allow.split(",")}
        self.assertTrue({"GET", "POST"} <= methods, allow)
        self.assertNotIn("PUT", methods)
        resp = self.req("DELETE", "/v2/Services")
        self.assert_error(resp, 405, 20004, "Method not allowed")

    def test_unsupported_media_type(self):
        n = self.count_services()
        resp = self.req("POST", "/v2/Services", json.dumps({"FriendlyName": "Json"}),
                        headers={"Content-Type": "application/json"})
        self.assert_error(resp, 415, 20415, prefix="Unsupported Media Type: ")
        self.assertEqual(self.count_services(), n, "a 415 request created a service")
        to = new_phone()
        resp = self.req("POST", self.svc_path(tail="/Verifications"),
                        "To=%s&Channel=sms" % q(to), headers={"Content-Type": "text/plain"})
        self.assert_error(resp, 415, 20415, prefix="Unsupported Media Type: ")
        self.assert_nothing_created(to)

    def test_form_content_type_with_charset_accepted(self):
        st, h, b = self.req("POST", "/v2/Services", "FriendlyName=Charset+Svc",
                            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        self.assertEqual(st, 201, b)
        self.assertEqual(b["friendly_name"], "Charset Svc")

    def test_body_too_large(self):
        to = new_phone()
        body = ("To=%s&Channel=sms&Pad=%s" % (q(to), "x" * 70000)).encode()
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                % (self.svc_path(tail="/Verifications"), self.s.auth_headers()["Authorization"],
                   len(body))).encode()
        out = HttpRobustnessTest.send_big(self, head, [body])
        self.assert_error(parse_raw_response(out), 413, 20413, "Request entity too large")
        self.assert_nothing_created(to)
        self.assert_alive()

    def test_body_of_exactly_64k_accepted(self):
        to = new_phone()
        head = "To=%s&Channel=sms&Pad=" % q(to)
        body = head + "y" * (65536 - len(head))
        self.assertEqual(len(body), 65536)
        st, h, b = self.req("POST", self.svc_path(tail="/Verifications"), body)
        self.assertEqual(st, 201, "a 65536-byte body is not over 64 KiB: %s %r" % (st, b))
        self.assertEqual(b["to"], to)

    def test_get_on_verification_check_is_405(self):
        resp = self.req("GET", self.svc_path(tail="/VerificationCheck"))
        self.assert_error(resp, 405, 20004, "Method not allowed")


# ===========================================================================
class VerificationValidationTest(Base):

    def post_verification(self, body):
        return self.req("POST", self.svc_path(tail="/Verifications"), body)

    def test_missing_to(self):
        self.assert_missing_param(self.post_verification({"Channel": "sms"}), "To")

    def test_missing_channel(self):
        to = new_phone()
        self.assert_missing_param(self.post_verification({"To": to}), "Channel")
        self.assert_nothing_created(to)

    def test_invalid_to(self):
        for to in ("+1", "abc", "+999999999999999999", "15551234567", "+1555abc1234",
                   "+1650" + "2" * 10000, "+1 650 253 0000\x00"):
            with self.subTest(to=to):
                self.assert_invalid_param(self.post_verification({"To": to, "Channel": "sms"}),
                                          "To", what="To=%r" % to)
                self.assertEqual(self.s.messages(to), [])

    def test_email_channel_with_phone(self):
        to = new_phone()
        self.assert_invalid_param(self.post_verification({"To": to, "Channel": "email"}), "To")
        self.assert_nothing_created(to)

    def test_sms_channel_with_email_address(self):
        to = "someone%d@example.com" % random.randrange(10 ** 9)
        self.assert_invalid_param(self.post_verification({"To": to, "Channel": "sms"}), "To")
        self.assertEqual(self.s.messages(to), [])

    def test_unsupported_channel(self):
        to = new_phone()
        self.assert_error(self.post_verification({"To": to, "Channel": "fax"}), 400, 60200,
                          "Invalid parameter: Channel: 'fax' is not supported; "
                          "use sms, call, email or whatsapp")
        self.assert_nothing_created(to)

    def test_bad_percent_escape(self):
        for bad in ("Bad=%zz", "Bad=%4", "Bad=%", "Bad%G1=1"):
            with self.subTest(bad=bad):
                to = new_phone()
                body = "To=%s&Channel=sms&%s" % (q(to), bad)
                self.assert_error(self.post_verification(body), 400, 60200,
                                  "Invalid parameter: malformed form encoding", what=body)
                self.assert_nothing_created(to)
        self.assert_alive()

    def test_bad_percent_escape_in_service_create(self):
        n = self.count_services()
        self.assert_error(self.req("POST", "/v2/Services", "FriendlyName=Bad%ZZname"), 400, 60200,
                          "Invalid parameter: malformed form encoding")
        self.assertEqual(self.count_services(), n)

    def test_unknown_parameters_ignored(self):
        to = new_phone()
        b = self.create_verification(to, NoSuchParam="1", **{"Foo.Bar": "x"})
        self.assertEqual(b["to"], to)
        self.assertEqual(b["status"], "pending")

    def test_call_and_whatsapp_channels(self):
        for ch in ("call", "whatsapp"):
            with self.subTest(channel=ch):
                to = new_phone()
                b = self.create_verification(to, channel=ch)
                self.assertEqual((b["channel"], b["status"]), (ch, "pending"))
                msgs = self.s.messages(to)
                self.assertEqual(len(msgs), 1)
                self.assertEqual((msgs[0]["channel"], msgs[0]["verification_sid"]), (ch, b["sid"]))
                c = self.check(to, self.s.latest_code(to))
                self.assertEqual((c["channel"], c["status"]), (ch, "approved"))

    def test_email_verification_accepted(self):
        to = "user%d@example.com" % random.randrange(10 ** 9)
        b = self.create_verification(to, channel="email")
        self.assertEqual((b["to"], b["channel"], b["status"]), (to, "email", "pending"))
        msgs = self.s.messages(to)
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0]["channel"], "email")


# ===========================================================================
class ServiceValidationTest(Base):

    def post_service(self, body):
        return self.req("POST", "/v2/Services", body)

    def test_missing_friendly_name(self):
        n = self.count_services()
        self.assert_missing_param(self.post_service({"CodeLength": "6"}), "FriendlyName")
        self.assertEqual(self.count_services(), n)

    def test_code_length_bounds(self):
        for bad in ("3", "11", "0", "-6", "abc", "6.5"):
            with self.subTest(code_length=bad):
                self.assert_invalid_param(self.post_service({"FriendlyName": "CL", "CodeLength": bad}),
                                          "CodeLength", what="CodeLength=%s" % bad)
        for good in (4, 10):
            b = self.create_service("CL ok", CodeLength=str(good))
            self.assertEqual(b["code_length"], good)

    def test_code_length_on_update(self):
        b = self.create_service("CL upd")
        path = "/v2/Services/" + b["sid"]
        self.assert_invalid_param(self.req("POST", path, {"CodeLength": "11"}), "CodeLength")
        st, h, after = self.req("GET", path)
        self.assertEqual(after["code_length"], b["code_length"], "rejected update changed the service")

    def test_friendly_name_length(self):
        n = self.count_services()
        self.assert_invalid_param(self.post_service({"FriendlyName": "a" * 31}), "FriendlyName")
        self.assertEqual(self.count_services(), n)
        b = self.create_service("b" * 30)
        self.assertEqual(b["friendly_name"], "b" * 30)

    def test_booleans_any_case(self):
        for val, expect in (("true", True), ("True", True), ("TRUE", True), ("tRuE", True),
                            ("false", False), ("False", False), ("FALSE", False)):
            with self.subTest(val=val):
                b = self.create_service("Bool", LookupEnabled=val, DoNotShareWarningEnabled=val)
                self.assertIs(b["lookup_enabled"], expect)
                self.assertIs(b["do_not_share_warning_enabled"], expect)

    def test_boolean_garbage(self):
        n = self.count_services()
        for val in ("maybe", "yes!", "2"):
            with self.subTest(val=val):
                self.assert_invalid_param(self.post_service({"FriendlyName": "B", "LookupEnabled": val}),
                                          "LookupEnabled", what="LookupEnabled=%s" % val)
        self.assertEqual(self.count_services(), n)

    def test_plus_and_percent20_are_spaces(self):
        for raw in ("FriendlyName=My+Plus+Svc", "FriendlyName=My%20Plus%20Svc",
                    "FriendlyName=My+Plus%20Svc"):
            with self.subTest(raw=raw):
                st, h, b = self.req("POST", "/v2/Services", raw)
                self.assertEqual(st, 201, b)
                self.assertEqual(b["friendly_name"], "My Plus Svc")
        st, h, b = self.req("POST", "/v2/Services", "FriendlyName=Pct%2Dencoded%5FName")
        self.assertEqual(st, 201, b)
        self.assertEqual(b["friendly_name"], "Pct-encoded_Name")

    def test_nul_and_invalid_utf8_never_break_json(self):
        for raw in ("FriendlyName=a%00b", "FriendlyName=%FF%FE", "FriendlyName=%C3"):
            with self.subTest(raw=raw):
                n = self.count_services()
                st, h, b = self.req("POST", "/v2/Services", raw)
                self.assertIsInstance(b, dict, "response to %r is not JSON: %r" % (raw, b))
                self.assertIn(st, (201, 400), b)
                if st == 400:
                    self.assert_invalid_param((st, h, b), "FriendlyName", what=raw)
                    self.assertEqual(self.count_services(), n)
                else:
                    self.assertEqual(self.req("GET", "/v2/Services/" + b["sid"])[0], 200)
        self.assert_alive()

    def test_repeated_keys(self):
        st, h, b = self.req("POST", "/v2/Services", "FriendlyName=First&FriendlyName=Second")
        self.assertEqual(st, 201, b)
        self.assertIn(b["friendly_name"], ("First", "Second"))

    def test_unknown_parameters_ignored(self):
        b = self.create_service("Unknown ok", Bogus="1", **{"Totally.Made.Up": "x", "sid": "VA1"})
        self.assertRegex(b["sid"], VA_RE)
        self.assertEqual(b["friendly_name"], "Unknown ok")

    def test_page_size_bounds(self):
        for bad in ("0", "1001", "-1", "abc"):
            with self.subTest(page_size=bad):
                self.assert_invalid_param(self.req("GET", "/v2/Services?PageSize=" + bad), "PageSize",
                                          what="PageSize=%s" % bad)
        st, h, b = self.req("GET", "/v2/Services?PageSize=1000")
        self.assertEqual(st, 200, b)
        self.assertEqual(b["meta"]["page_size"], 1000)
        st, h, b = self.req("GET", "/v2/Services")
        self.assertEqual(st, 200, b)
        self.assertEqual(b["meta"]["page_size"], 50)


# ===========================================================================
class ResourceShapeTest(Base):

    def test_service_fields_and_order(self):
        st, h, b = self.req("POST", "/v2/Services", {"FriendlyName": "Shape Svc"})
        self.assertEqual(st, 201, b)
        self.assertTrue(h.get("Content-Type", "").startswith("application/json"), h.get("Content-Type"))
        self.assert_keys_in_order(b, SERVICE_FIELDS, "service create")
        self.assertRegex(b["sid"], VA_RE)
        self.assertEqual(b["account_sid"], self.s.account_sid)
        self.assertRegex(b["account_sid"], AC_RE)
        self.assertEqual(b["friendly_name"], "Shape Svc")
        self.assertIsInstance(b["code_length"], int)
        self.assertTrue(4 <= b["code_length"] <= 10, b["code_length"])
        for f in ("lookup_enabled", "psd2_enabled", "skip_sms_to_landlines", "dtmf_input_required",
                  "do_not_share_warning_enabled", "custom_code_enabled"):
            self.assertIs(b[f], False, f)
        for f in ("push", "totp", "whatsapp", "passkeys"):
            self.assertIsInstance(b[f], dict, "%s should be an object (members null when unset)" % f)
        self.assertRegex(b["date_created"], DATE_RE)
        self.assertRegex(b["date_updated"], DATE_RE)
        url = self.s.base_url + "/v2/Services/" + b["sid"]
        self.assertEqual(b["url"], url)
        self.assertIsInstance(b["links"], dict)
        for k, suffix in SERVICE_LINKS.items():
            self.assertEqual(b["links"].get(k), url + suffix, "links.%s" % k)
        # fetch returns the same object
        st, h, f = self.req("GET", "/v2/Services/" + b["sid"])
        self.assertEqual(st, 200, f)
        self.assert_keys_in_order(f, SERVICE_FIELDS, "service fetch")
        self.assertEqual(f, b)

    def test_bootstrap_service(self):
        lines = list(self.s.stdout_lines)
        self.assertEqual([ln.split("=", 1)[0] for ln in lines],
                         ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "VERIFICATION_SID", "VERIFYD_BASE_URL"],
                         "stdout must be exactly the four bootstrap lines: %r" % lines)
        self.assertRegex(self.s.service_sid, VA_RE)
        self.assertRegex(self.s.account_sid, AC_RE)
        st, h, b = self.req("GET", self.svc_path())
        self.assertEqual(st, 200, b)
        self.assertEqual(b["sid"], self.s.service_sid)
        self.assertEqual(b["account_sid"], self.s.account_sid)
        self.assertTrue(self.s.base_url.startswith("http://127.0.0.1:"), self.s.base_url)
        self.assertNotEqual(self.s.base_url, "http://127.0.0.1:0")

    def test_service_update_and_delete(self):
        b = self.create_service("Upd Svc")
        path = "/v2/Services/" + b["sid"]
        st, h, u = self.req("POST", path, {"FriendlyName": "Renamed Svc", "CodeLength": "8",
                                           "LookupEnabled": "True"})
        self.assertEqual(st, 200, u)
        self.assert_keys_in_order(u, SERVICE_FIELDS, "service update")
        self.assertEqual((u["sid"], u["friendly_name"], u["code_length"], u["lookup_enabled"]),
                         (b["sid"], "Renamed Svc", 8, True))
        self.assertEqual(u["date_created"], b["date_created"])
        self.assertRegex(u["date_updated"], DATE_RE)
        self.assertGreaterEqual(u["date_updated"], b["date_updated"])
        st, h, g = self.req("GET", path)
        self.assertEqual((st, g["friendly_name"], g["code_length"]), (200, "Renamed Svc", 8))
        to = new_phone()
        v = self.create_verification(to, service_sid=b["sid"])
        code = self.s.latest_code(to)
        self.assertEqual(len(code), 8, "service CodeLength 8 not used: %r" % code)
        # delete: 204 + empty body
        conn = self.s.connection()
        try:
            conn.request("DELETE", path, headers=self.s.auth_headers())
            r = conn.getresponse()
            raw = r.read()
            self.assertEqual(r.status, 204)
            self.assertEqual(raw, b"")
            self.assertIn(r.getheader("Content-Length"), (None, "0"))
            self.assertIsNone(r.getheader("Transfer-Encoding"), "204 must not carry a body framing")
            # the connection is still usable after the 204
            conn.request("GET", path, headers=self.s.auth_headers())
            r2 = conn.getresponse()
            body2 = json.loads(r2.read())
            self.assertEqual(r2.status, 404, body2)
            self.assertEqual(body2["code"], 20404)
        finally:
            conn.close()
        self.assert_error(self.req("DELETE", path), 404, 20404)
        self.assert_error(self.req("POST", path + "/Verifications", {"To": new_phone(), "Channel": "sms"}),
                          404, 20404)
        self.assert_error(self.req("GET", path + "/Verifications/" + v["sid"]), 404, 20404)
        self.assert_error(self.req("POST", path + "/VerificationCheck", {"To": to, "Code": code}), 404, 20404)
        st, h, lst = self.req("GET", "/v2/Services?PageSize=1000")
        self.assertNotIn(b["sid"], [x["sid"] for x in lst["services"]])

    def test_verification_fields_and_order(self):
        to = new_phone()
        st, h, b = self.req("POST", self.svc_path(tail="/Verifications"), {"To": to, "Channel": "sms"})
        self.assertEqual(st, 201, b)
        self.assert_keys_in_order(b, VERIFICATION_FIELDS, "verification create")
        self.assertRegex(b["sid"], VE_RE)
        self.assertEqual(b["service_sid"], self.s.service_sid)
        self.assertEqual(b["account_sid"], self.s.account_sid)
        self.assertEqual((b["to"], b["channel"], b["status"], b["valid"]), (to, "sms", "pending", False))
        self.assertIsInstance(b["lookup"], dict)
        self.assertIsNone(b["amount"])
        self.assertIsNone(b["payee"])
        self.assertIsNone(b["sna"])
        self.assertIsInstance(b["send_code_attempts"], list)
        self.assertEqual(len(b["send_code_attempts"]), 1)
        att = b["send_code_attempts"][0]
        self.assertTrue({"time", "channel", "attempt_sid"} <= set(att), att)
        self.assertRegex(att["attempt_sid"], VL_RE)
        self.assertRegex(att["time"], DATE_RE)
        self.assertRegex(b["date_created"], DATE_RE)
        self.assertRegex(b["date_updated"], DATE_RE)
        self.assertEqual(b["url"], "%s/v2/Services/%s/Verifications/%s"
                         % (self.s.base_url, self.s.service_sid, b["sid"]))
        # fetch by sid and by To (literal '+', not decoded to space)
        for key in (b["sid"], to):
            st, h, f = self.req("GET", self.svc_path(tail="/Verifications/" + key))
            self.assertEqual(st, 200, "fetch by %s -> %r" % (key, f))
            self.assert_keys_in_order(f, VERIFICATION_FIELDS, "verification fetch")
            self.assertEqual((f["sid"], f["to"], f["status"]), (b["sid"], to, "pending"))

    def test_verification_check_fields_and_lifecycle(self):
        to = new_phone()
        v = self.create_verification(to)
        code = self.s.latest_code(to)
        wrong = "".join("1" if c != "1" else "2" for c in code)
        c1 = self.check(to, wrong)
        self.assert_keys_in_order(c1, CHECK_FIELDS, "verification check (wrong)")
        self.assertNotIn("url", c1)
        self.assertEqual((c1["sid"], c1["status"], c1["valid"]), (v["sid"], "pending", False))
        self.assertEqual((c1["service_sid"], c1["account_sid"], c1["to"], c1["channel"]),
                         (self.s.service_sid, self.s.account_sid, to, "sms"))
        self.assertRegex(c1["date_created"], DATE_RE)
        self.assertRegex(c1["date_updated"], DATE_RE)
        c2 = self.check(to, code)
        self.assert_keys_in_order(c2, CHECK_FIELDS, "verification check (right)")
        self.assertEqual((c2["sid"], c2["status"], c2["valid"]), (v["sid"], "approved", True))
        # approved verifications are gone
        self.assert_error(self.req("POST", self.svc_path(tail="/VerificationCheck"),
                                   {"To": to, "Code": code}), 404, 20404,
                          "The requested resource /Services/%s/VerificationCheck was not found"
                          % self.s.service_sid)
        self.assert_error(self.req("GET", self.svc_path(tail="/Verifications/" + v["sid"])), 404, 20404)

    def test_check_by_verification_sid(self):
        to = new_phone()
        v = self.create_verification(to)
        code = self.s.latest_code(to)
        st, h, b = self.req("POST", self.svc_path(tail="/VerificationCheck"),
                            {"VerificationSid": v["sid"], "Code": code})
        self.assertEqual(st, 200, b)
        self.assertEqual((b["sid"], b["status"], b["valid"]), (v["sid"], "approved", True))

    def test_resend_same_sid_same_code(self):
        to = new_phone()
        v1 = self.create_verification(to)
        c1 = self.s.latest_code(to)
        v2 = self.create_verification(to)
        c2 = self.s.latest_code(to)
        self.assertEqual(v1["sid"], v2["sid"])
        self.assertEqual(c1, c2)
        self.assertEqual(len(v2["send_code_attempts"]), 2)
        a1, a2 = v2["send_code_attempts"]
        self.assertNotEqual(a1["attempt_sid"], a2["attempt_sid"])
        msgs = self.s.messages(to)
        self.assertEqual(len(msgs), 2)
        self.assertTrue(all(m["verification_sid"] == v1["sid"] for m in msgs), msgs)

    def test_cancel_verification(self):
        to = new_phone()
        v = self.create_verification(to)
        path = self.svc_path(tail="/Verifications/" + v["sid"])
        self.assert_invalid_param(self.req("POST", path, {"Status": "bogus"}), "Status")
        st, h, b = self.req("POST", path, {"Status": "canceled"})
        self.assertEqual(st, 200, b)
        self.assert_keys_in_order(b, VERIFICATION_FIELDS, "verification update")
        self.assertEqual((b["sid"], b["status"], b["valid"]), (v["sid"], "canceled", False))
        self.assert_error(self.req("GET", path), 404, 20404)
        self.assert_error(self.req("POST", self.svc_path(tail="/VerificationCheck"),
                                   {"To": to, "Code": self.s.latest_code(to)}), 404, 20404)

    def test_custom_code_requires_feature(self):
        to = new_phone()
        resp = self.req("POST", self.svc_path(tail="/Verifications"),
                        {"To": to, "Channel": "sms", "CustomCode": "867530"})
        self.assert_error(resp, 400, 60204, prefix="Service does not support this feature: ")
        self.assert_nothing_created(to)

    def test_custom_code_on_enabled_service(self):
        svc = self.create_service("Custom Svc", CustomCodeEnabled="true")
        self.assertIs(svc["custom_code_enabled"], True)
        to = new_phone()
        v = self.create_verification(to, service_sid=svc["sid"], CustomCode="867530")
        self.assertEqual(self.s.latest_code(to), "867530")
        c = self.check(to, "867530", service_sid=svc["sid"])
        self.assertEqual((c["sid"], c["status"]), (v["sid"], "approved"))

    def test_check_validation(self):
        to = new_phone()
        v = self.create_verification(to)
        path = self.svc_path(tail="/VerificationCheck")
        self.assert_invalid_param(self.req("POST", path, {"To": to, "Code": "12"}), "Code")
        self.assert_invalid_param(self.req("POST", path, {"To": to, "Code": "12345678901"}), "Code")
        b = self.assert_error(self.req("POST", path, {"Code": "123456"}), 400, 60200)
        self.assertTrue(b["message"].startswith("Missing required parameter "), b)
        st, h, f = self.req("GET", self.svc_path(tail="/Verifications/" + v["sid"]))
        self.assertEqual((st, f["status"]), (200, "pending"))

    def test_update_missing_status(self):
        to = new_phone()
        v = self.create_verification(to)
        path = self.svc_path(tail="/Verifications/" + v["sid"])
        self.assert_missing_param(self.req("POST", path, {}), "Status")
        st, h, b = self.req("GET", path)
        self.assertEqual((st, b["status"]), (200, "pending"))

    def test_code_length_respected(self):
        svc = self.create_service("Len Nine", CodeLength="9")
        to = new_phone()
        self.create_verification(to, service_sid=svc["sid"])
        code = self.s.latest_code(to)
        self.assertRegex(code, r"^\d{9}$")


# ===========================================================================
class NotImplementedTest(Base):
    """Spec resources are either implemented (200) or answer 501/20501 in the error envelope."""

    def test_spec_list_endpoints_200_or_501(self):
        paths = ["/v2/Attempts", "/v2/Attempts/Summary", "/v2/Templates",
                 self.svc_path(tail="/RateLimits"), self.svc_path(tail="/Entities"),
                 self.svc_path(tail="/Webhooks"), self.svc_path(tail="/MessagingConfigurations")]
        for path in paths:
            with self.subTest(path=path):
                resp = self.req("GET", path)
                self.assertIn(resp[0], (200, 501), "GET %s -> %s %r" % (path, resp[0], resp[2]))
                if resp[0] == 501:
                    self.assert_error(resp, 501, 20501, prefix="Not implemented in verifyd yet: ",
                                      what="GET " + path)
                else:
                    self.assertIsInstance(resp[2], dict)


# ===========================================================================
class OutboxTest(Base):

    def test_outbox_message_shape_and_body(self):
        svc = self.create_service("Outbox Svc")
        to = new_phone()
        v = self.create_verification(to, service_sid=svc["sid"])
        st, h, b = self.req("GET", "/dev/v1/Messages?To=%s&PageSize=5" % q(to))
        self.assertEqual(st, 200, b)
        self.assertEqual(len(b["messages"]), 1)
        m = b["messages"][0]
        self.assertEqual(set(m.keys()) >= {"sid", "to", "channel", "body", "service_sid",
                                           "verification_sid", "date_created"}, True, m)
        self.assertRegex(m["sid"], MM_RE)
        self.assertEqual((m["to"], m["channel"], m["service_sid"], m["verification_sid"]),
                         (to, "sms", svc["sid"], v["sid"]))
        self.assertRegex(m["date_created"], DATE_RE)
        code = re.search(r"(\d+)$", m["body"])
        self.assertIsNotNone(code, m["body"])
        self.assertEqual(len(code.group(1)), svc["code_length"])
        self.assertEqual(m["body"], "Your Outbox Svc verification code is: %s" % code.group(1))
        meta = b["meta"]
        self.assertEqual(meta["key"], "messages")
        self.assertEqual(meta["page"], 0)
        self.assertEqual(meta["page_size"], 5)
        self.assertTrue(meta["url"].startswith(self.s.base_url + "/dev/v1/Messages?"), meta["url"])
        self.assertIsNone(meta["next_page_url"])
        self.assertIsNone(meta["previous_page_url"])

    def test_outbox_newest_first_and_paging(self):
        to = new_phone()
        for _ in range(3):
            self.create_verification(to)
        st, h, b = self.req("GET", "/dev/v1/Messages?To=%s&PageSize=2" % q(to))
        self.assertEqual(st, 200, b)
        first = b["messages"]
        self.assertEqual(len(first), 2)
        self.assertGreaterEqual(first[0]["date_created"], first[1]["date_created"])
        nxt = b["meta"]["next_page_url"]
        self.assertTrue(nxt and nxt.startswith(self.s.base_url + "/dev/v1/Messages?"), nxt)
        qs = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)
        self.assertEqual(qs.get("To"), [to], "next_page_url lost the To filter: %s" % nxt)
        st, h, b2 = self.req("GET", nxt[len(self.s.base_url):])
        self.assertEqual(st, 200, b2)
        self.assertEqual(len(b2["messages"]), 1)
        self.assertIsNone(b2["meta"]["next_page_url"])
        sids = [m["sid"] for m in first + b2["messages"]]
        self.assertEqual(len(set(sids)), 3)
        # newest first: the newest message is the one returned with PageSize=1
        self.assertEqual(self.s.messages(to, page_size=1)[0]["sid"], first[0]["sid"])

    def test_do_not_share_warning(self):
        svc = self.create_service("Warn Svc", DoNotShareWarningEnabled="true")
        self.assertIs(svc["do_not_share_warning_enabled"], True)
        to = new_phone()
        self.create_verification(to, service_sid=svc["sid"])
        body = self.s.messages(to)[0]["body"]
        code = self.s.latest_code(to)
        self.assertEqual(body, "Your Warn Svc verification code is: %s%s" % (code, DO_NOT_SHARE))
        # and turning it off again removes the sentence
        st, h, u = self.req("POST", "/v2/Services/" + svc["sid"], {"DoNotShareWarningEnabled": "false"})
        self.assertEqual((st, u["do_not_share_warning_enabled"]), (200, False))
        to2 = new_phone()
        self.create_verification(to2, service_sid=svc["sid"])
        code2 = self.s.latest_code(to2)
        self.assertEqual(self.s.messages(to2)[0]["body"], "Your Warn Svc verification code is: %s" % code2)

    def test_outbox_scoped_to_account(self):
        to = new_phone()
        self.create_verification(to)
        self.assertEqual(len(self.s.messages(to)), 1)
        sid2, tok2 = self.s.new_account()
        st, h, b = self.req("GET", "/dev/v1/Messages?To=%s&PageSize=50" % q(to), auth=(sid2, tok2))
        self.assertEqual(st, 200, b)
        self.assertEqual(b["messages"], [], "account B sees account A's outbox")
        # B can neither see A's service nor its verification
        self.assert_error(self.req("GET", self.svc_path(), auth=(sid2, tok2)), 404, 20404,
                          "The requested resource /Services/%s was not found" % self.s.service_sid)
        self.assert_error(self.req("GET", self.svc_path(tail="/Verifications/" + to), auth=(sid2, tok2)),
                          404, 20404)
        self.assert_error(self.req("POST", self.svc_path(tail="/Verifications"),
                                   {"To": to, "Channel": "sms"}, auth=(sid2, tok2)), 404, 20404)
        self.assert_error(self.req("POST", self.svc_path(tail="/VerificationCheck"),
                                   {"To": to, "Code": self.s.latest_code(to)}, auth=(sid2, tok2)),
                          404, 20404)
        self.assert_error(self.req("DELETE", self.svc_path(), auth=(sid2, tok2)), 404, 20404)
        self.assertEqual(len(self.s.messages(to)), 1)
        st, h, b = self.req("GET", self.svc_path())
        self.assertEqual(st, 200, "account B's DELETE removed account A's service")


# ===========================================================================
class PagingTest(Base):

    def test_paging_meta_and_next_page(self):
        sid2, tok2 = self.s.new_account()
        auth = (sid2, tok2)
        # a fresh account may or may not get a service of its own; count what is there
        st, h, b0 = self.req("GET", "/v2/Services?PageSize=1000", auth=auth)
        self.assertEqual(st, 200, b0)
        existing = {s["sid"] for s in b0["services"]}
        created = {self.create_service("Page %d" % i, auth=auth)["sid"] for i in range(5 - len(existing))}
        expected = existing | created
        self.assertEqual(len(expected), 5)
        seen = []
        path = "/v2/Services?PageSize=2"
        pages = 0
        prev_url = None
        while path:
            st, h, b = self.req("GET", path, auth=auth)
            self.assertEqual(st, 200, b)
            meta = b["meta"]
            self.assertEqual(meta["key"], "services")
            self.assertEqual(meta["page"], pages)
            self.assertEqual(meta["page_size"], 2)
            for k in ("url", "first_page_url"):
                self.assertTrue(meta[k].startswith(self.s.base_url + "/v2/Services?"), (k, meta[k]))
            self.assertIn("PageSize=2", meta["first_page_url"])
            if pages == 0:
                self.assertIsNone(meta["previous_page_url"])
            else:
                self.assertIsNotNone(meta["previous_page_url"])
                self.assertTrue(meta["previous_page_url"].startswith(self.s.base_url + "/v2/Services?"))
            seen += [s["sid"] for s in b["services"]]
            nxt = meta["next_page_url"]
            if pages < 2:
                self.assertEqual(len(b["services"]), 2)
                self.assertIsNotNone(nxt, "page %d has no next_page_url" % pages)
                self.assertTrue(nxt.startswith(self.s.base_url + "/v2/Services?"), nxt)
                qs = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)
                self.assertEqual(qs.get("PageSize"), ["2"], nxt)
                self.assertIn("PageToken", qs, nxt)
                self.assertTrue(qs["PageToken"][0], nxt)
                path = nxt[len(self.s.base_url):]
            else:
                self.assertEqual(len(b["services"]), 1)
                self.assertIsNone(nxt)
                path = None
            prev_url = meta["url"]
            pages += 1
            self.assertLess(pages, 10, "paging does not terminate")
        self.assertEqual(pages, 3)
        self.assertEqual(len(seen), len(set(seen)), "duplicates across pages: %s" % seen)
        self.assertEqual(set(seen), expected)
        # the `url` of a page can be requested again and gives the same page
        st, h, again = self.req("GET", prev_url[len(self.s.base_url):], auth=auth)
        self.assertEqual(st, 200, again)
        self.assertEqual([s["sid"] for s in again["services"]], seen[4:])

    def test_services_list_scoped(self):
        sid2, tok2 = self.s.new_account()
        st, h, b = self.req("GET", "/v2/Services?PageSize=1000", auth=(sid2, tok2))
        self.assertEqual(st, 200, b)
        self.assertNotIn(self.s.service_sid, [s["sid"] for s in b["services"]])
        self.assertTrue(all(s["account_sid"] == sid2 for s in b["services"]))


# ===========================================================================
class HttpRobustnessTest(Base):

    def tearDown(self):
        self.assert_alive()

    def test_keep_alive_survives(self):
        conn = self.s.connection()
        try:
            conn.connect()
            sock = conn.sock
            auth = self.s.auth_headers()
            form = dict(auth, **{"Content-Type": "application/x-www-form-urlencoded"})
            to = new_phone()
            steps = [
                ("GET", "/healthz", None, {}, 200),
                ("GET", "/v2/Services", None, auth, 200),
                ("POST", "/v2/Services", "FriendlyName=KA+Svc", form, 201),
                ("POST", self.svc_path(tail="/Verifications"), "To=%s&Channel=sms" % q(to), form, 201),
                ("GET", self.svc_path(tail="/Verifications/" + to), None, auth, 200),
                ("GET", "/v2/Nope", None, auth, 404),
                ("POST", self.svc_path(tail="/Verifications"), "To=abc&Channel=sms", form, 400),
                ("GET", "/v2/Services", None, {}, 401),
                ("GET", "/dev/v1/Messages?To=%s&PageSize=1" % q(to), None, auth, 200),
                ("GET", "/healthz", None, {}, 200),
            ]
            for method, path, body, headers, expect in steps:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                self.assertEqual(r.status, expect, "%s %s -> %s %r" % (method, path, r.status, data))
                self.assertIs(conn.sock, sock, "server closed the keep-alive connection after %s %s"
                              % (method, path))
            # a DELETE (204) and then another request on the same connection
            st, h, svc = self.req("POST", "/v2/Services", {"FriendlyName": "KA Del"})
            conn.request("DELETE", "/v2/Services/" + svc["sid"], headers=auth)
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (204, b""))
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            self.assertIs(conn.sock, sock, "connection closed after a 204")
        finally:
            conn.close()

    def test_pipelined_requests(self):
        data = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = self.s.raw(data)
        self.assertEqual(len(re.findall(rb"HTTP/1\.1 200 ", out)), 2, out[:500])

    def test_many_pipelined_requests(self):
        one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        data = one * 49 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = self.s.raw(data)
        self.assertEqual(len(re.findall(rb"HTTP/1\.1 200 ", out)), 50, out[-300:])

    def test_parallel_creates(self):
        from concurrent.futures import ThreadPoolExecutor
        numbers = [new_phone() for _ in range(48)]

        def one(to):
            return to, self.s.request("POST", self.svc_path(tail="/Verifications"),
                                      {"To": to, "Channel": "sms"})

        with ThreadPoolExecutor(max_workers=16) as ex:
            results = list(ex.map(one, numbers))
        bad = [(to, r[0], r[2]) for to, r in results if r[0] != 201]
        self.assertEqual(bad, [])
        sids = [r[2]["sid"] for _, r in results]
        self.assertEqual(len(set(sids)), len(numbers), "duplicate sids")
        for to, r in results[:5]:
            self.assertEqual(r[2]["to"], to)
            self.assertEqual(self.s.messages(to)[0]["verification_sid"], r[2]["sid"])

    def test_http10_without_host(self):
        out = self.s.raw(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertRegex(out, rb"^HTTP/1\.[01] 200 ")
        self.assertIn(b'"status"', out)

    def assert_400_or_closed(self, data, what):
        out = self.s.raw(data)
        self.assertTrue(out == b"" or re.match(rb"^HTTP/1\.[01] 400 ", out),
                        "%s: expected 400 or a closed connection, got %r" % (what, out[:300]))
        self.assert_alive()

    def test_malformed_request_lines(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /healthz\r\n\r\n",
            b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"GET /healthz FTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
            b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHeaderLine\r\n\r\n",
            b"POST /v2/Services HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"POST /v2/Services HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"POST /v2/Services HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
            b"POST /v2/Services HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        ]
        for data in cases:
            with self.subTest(data=data[:40]):
                self.assert_400_or_closed(data, repr(data[:40]))

    def test_expect_100_continue(self):
        to = new_phone()
        body = ("To=%s&Channel=sms" % q(to)).encode()
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nExpect: 100-continue\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n"
                % (self.svc_path(tail="/Verifications"), self.s.auth_headers()["Authorization"],
                   len(body))).encode()
        sock = socket.create_connection((self.s.host, self.s.port), timeout=10)
        try:
            sock.sendall(head)
            sock.settimeout(1.0)
            interim = b""
            try:
                interim = sock.recv(4096)      # "HTTP/1.1 100 Continue" or nothing
            except socket.timeout:
                pass
            self.assertFalse(interim and not interim.startswith(b"HTTP/1.1 100"),
                             "answered before the body was sent: %r" % interim[:200])
            sock.settimeout(10)
            sock.sendall(body)
            out = b""
            while True:
                c = sock.recv(65536)
                if not c:
                    break
                out += c
        finally:
            sock.close()
        final = re.sub(rb"^HTTP/1\.1 100 [^\r]*\r\n(?:[^\r]+\r\n)*\r\n", b"", interim + out)
        self.assertRegex(final, rb"^HTTP/1\.1 201 ", final[:300])
        self.assertEqual(len(self.s.messages(to)), 1)

    def test_content_length_and_chunked_together(self):
        to = new_phone()
        body = ("To=%s&Channel=sms" % q(to)).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        smuggled = b"GET /v2/Nope HTTP/1.1\r\nHost: x\r\n\r\n"
        req = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               % (self.svc_path(tail="/Verifications"), self.s.auth_headers()["Authorization"],
                  len(chunked))).encode()
        out = self.s.raw(req + chunked + smuggled)
        # RFC 9112 6.1: reject, or use chunked framing and close the connection afterwards.
        self.assertTrue(out == b"" or re.match(rb"^HTTP/1\.1 (400|201) ", out), out[:300])
        self.assertNotIn(b"20404", out, "bytes after the chunked body were parsed as a second request")

    def test_huge_header(self):
        data = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
        out = self.s.raw(data)
        self.assertTrue(out == b"" or re.match(rb"^HTTP/1\.[01] (400|413|431) ", out),
                        "huge header: %r" % out[:300])
        self.assert_alive()

    def test_huge_request_line(self):
        data = b"GET /v2/" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        out = self.s.raw(data)
        self.assertTrue(out == b"" or re.match(rb"^HTTP/1\.[01] (400|404|414|431) ", out),
                        "huge request line: %r" % out[:300])
        self.assert_alive()

    def test_idle_and_partial_connections_do_not_block(self):
        socks = []
        try:
            for i in range(8):
                s = socket.create_connection((self.s.host, self.s.port), timeout=5)
                if i % 2:
                    s.sendall(b"POST /v2/Services HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nFriendly")
                else:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
                socks.append(s)
            t0 = time.monotonic()
            self.assert_alive()
            st, h, b = self.req("GET", "/v2/Services")
            self.assertEqual(st, 200)
            self.assertLess(time.monotonic() - t0, 5.0, "server blocked by idle connections")
        finally:
            for s in socks:
                s.close()

    def test_client_disconnects_mid_body(self):
        for _ in range(3):
            s = socket.create_connection((self.s.host, self.s.port), timeout=5)
            s.sendall(b"POST /v2/Services HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n\r\nFriendlyName=Half")
            s.close()
        self.assert_alive()

    def test_chunked_body(self):
        conn = self.s.connection()
        try:
            chunks = [b"Friendly", b"Name=Chunked", b"+Svc"]
            conn.request("POST", "/v2/Services", body=iter(chunks), encode_chunked=True,
                         headers=dict(self.s.auth_headers(), **{
                             "Content-Type": "application/x-www-form-urlencoded",
                             "Transfer-Encoding": "chunked"}))
            r = conn.getresponse()
            b = json.loads(r.read())
            self.assertEqual(r.status, 201, b)
            self.assertEqual(b["friendly_name"], "Chunked Svc")
        finally:
            conn.close()
        to = new_phone()
        raw_body = "To=%s&Channel=sms" % q(to)
        half = len(raw_body) // 2
        chunked = ("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                   % (half, raw_body[:half], len(raw_body) - half, raw_body[half:])).encode()
        req = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n" % (self.svc_path(tail="/Verifications"),
                                              self.s.auth_headers()["Authorization"])).encode()
        out = self.s.raw(req + chunked)
        self.assertRegex(out, rb"^HTTP/1\.1 201 ")
        self.assertEqual(len(self.s.messages(to)), 1)

    def send_big(self, head, parts):
        """Send head + parts on a raw socket, ignoring write errors (the server may
        answer and close early); return the response bytes that could be read."""
        sock = socket.create_connection((self.s.host, self.s.port), timeout=10)
        out = b""
        send_error = None
        try:
            try:
                sock.sendall(head)
                for p in parts:
                    sock.sendall(p)
            except OSError as e:
                send_error = e
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    out += chunk
                    m = re.search(rb"\r\nContent-Length: *(\d+)\r\n", out, re.I)
                    if m and b"\r\n\r\n" in out and \
                            len(out.split(b"\r\n\r\n", 1)[1]) >= int(m.group(1)):
                        break
            except OSError as e:
                if not out:
                    self.fail("no response readable: send error %r, then recv error %r" % (send_error, e))
        finally:
            sock.close()
        return out

    def test_chunked_body_over_limit(self):
        """A chunked body that grows past 64 KiB gets 413/20413. The client keeps
        sending; whatever happens to its writes, it must be able to read the 413."""
        to = new_phone()
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
                % (self.svc_path(tail="/Verifications"), self.s.auth_headers()["Authorization"])).encode()
        chunks = [("To=%s&Channel=sms&Pad=" % q(to)).encode()] + [b"z" * 8192] * 10
        out = self.send_big(head, [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks] + [b"0\r\n\r\n"])
        self.assertRegex(out, rb"^HTTP/1\.1 413 ", out[:300])
        self.assertIn(b'"code":20413', out.replace(b" ", b""))
        self.assert_nothing_created(to)

    def test_content_length_body_over_limit_raw(self):
        to = new_phone()
        body = ("To=%s&Channel=sms&Pad=" % q(to)).encode() + b"x" * 200000
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                % (self.svc_path(tail="/Verifications"), self.s.auth_headers()["Authorization"],
                   len(body))).encode()
        out = self.send_big(head, [body[i:i + 16384] for i in range(0, len(body), 16384)])
        self.assertRegex(out, rb"^HTTP/1\.1 413 ", out[:300])
        self.assertIn(b'"code":20413', out.replace(b" ", b""))
        self.assert_nothing_created(to)


# ===========================================================================
class DevOutboxOffTest(OwnServerBase):
    server_args = ["--dev-outbox", "off"]

    def test_dev_outbox_is_404(self):
        to = new_phone()
        self.create_verification(to)
        resp = self.req("GET", "/dev/v1/Messages?To=%s&PageSize=1" % q(to))
        self.assert_error(resp, 404, 20404, prefix="The requested resource ")
        # still needs auth like every /dev path? Either way, no messages leak
        st, h, b = self.req("GET", "/dev/v1/Messages?To=%s" % q(to), auth=None)
        self.assertIn(st, (401, 404), b)
        self.assertNotIn(b"verification code", json.dumps(b).encode() if isinstance(b, dict) else b)


class LimitsUnderConcurrencyTest(Base):
    """Every limit holds when requests arrive at once: fire them in parallel and count."""

    def parallel(self, fn, n):
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(fn, range(n)))

    def test_rate_limit_bucket(self):
        svc = self.create_service("Parallel Bucket")["sid"]
        st, _, rk = self.req("POST", self.svc_path(svc, "/RateLimits"), {"UniqueName": "ip"})
        self.assertEqual(st, 201, rk)
        st, _, b = self.req("POST", self.svc_path(svc, "/RateLimits/%s/Buckets" % rk["sid"]),
                            {"Max": "4", "Interval": "60"})
        self.assertEqual(st, 201, b)
        statuses = self.parallel(lambda i: self.req(
            "POST", self.svc_path(svc, "/Verifications"),
            {"To": new_phone(), "Channel": "sms", "RateLimits": '{"ip": "203.0.113.9"}'})[0], 20)
        self.assertEqual(statuses.count(201), 4, statuses)
        self.assertEqual(statuses.count(429), 16, statuses)

    def test_fetch_limit(self):
        to = new_phone()
        sid = self.create_verification(to)["sid"]
        statuses = self.parallel(
            lambda i: self.req("GET", self.svc_path(tail="/Verifications/" + sid))[0], 70)
        self.assertEqual(statuses.count(200), 60, statuses)
        self.assertEqual(statuses.count(429), 10, statuses)

    def test_pending_per_number_across_services(self):
        services = [self.create_service("Parallel %d" % i)["sid"] for i in range(8)]
        to = new_phone()
        statuses = self.parallel(lambda i: self.req(
            "POST", self.svc_path(services[i], "/Verifications"),
            {"To": to, "Channel": "sms"})[0], 8)
        self.assertEqual(statuses.count(201), 5, statuses)
        self.assertEqual(statuses.count(429), 3, statuses)


class FraudGuardAndGeoTest(OwnServerBase):
    """SMS pumping and geo permissions over real HTTP, with Fraud Guard at its default level."""
    server_args = ["--fraud-guard", "standard"]

    def start(self, to, **params):
        body = {"To": to, "Channel": "sms"}
        body.update(params)
        return self.req("POST", self.svc_path(tail="/Verifications"), body)

    def test_pumped_prefix_is_blocked_converting_ones_are_not(self):
        for i in range(10):  # real users in two prefixes check their codes
            for prefix in ("+15017122", "+16502530"):
                to = "%s%03d" % (prefix, i)
                st, _, v = self.start(to)
                self.assertEqual(st, 201, v)
                st, _, c = self.req("POST", self.svc_path(tail="/VerificationCheck"),
                                    {"To": to, "Code": self.s.latest_code(to)})
                self.assertEqual((st, c["status"]), (200, "approved"))
        results = [self.start("+14159929%03d" % i) for i in range(60)]
        accepted = sum(1 for r in results if r[0] == 201)
        blocked = [r for r in results if r[0] == 403]
        self.assertLessEqual(accepted, 15)
        self.assertEqual(accepted + len(blocked), 60)
        for r in blocked:
            self.assert_error(r, 403, 60410, prefix="Verify Fraud Guard blocked messages to +14159929")
        st, _, listed = self.req("GET", "/admin/v1/FraudGuard/BlockedPrefixes")
        self.assertEqual([b["prefix"] for b in listed["blocked_prefixes"]], ["+14159929"])
        self.assertEqual(self.start("+15017122999")[0], 201)  # converting prefix: never blocked
        self.assertEqual(self.start("+14159929800", RiskCheck="disable")[0], 201)
        st, _, _ = self.req("DELETE", "/admin/v1/FraudGuard/BlockedPrefixes/+14159929")
        self.assertEqual(st, 204)
        self.assertEqual(self.start("+14159929801")[0], 201)

    def test_geo_block_before_anything_is_stored(self):
        st, _, p = self.req("POST", "/admin/v1/GeoPermissions",
                            {"Channel": "sms", "Country": "GB", "Permission": "block"})
        self.assertEqual((st, p["permission"]), (200, "block"))
        to = "+447400123456"
        self.assert_error(self.start(to), 403, 60605)
        self.assertEqual(self.s.messages(to), [])
        st, _, _ = self.req("POST", "/v2/SafeList/Numbers", {"PhoneNumber": to})
        self.assertEqual(st, 201)
        self.assertEqual(self.start(to)[0], 201)


class AuthThrottlingTest(OwnServerBase):
    """Failed authentication from one address is slowed, then refused (low limits via flags)."""
    server_args = ["--auth-failures-before-delay", "2",
                                      "--auth-failures-before-refusal", "4",
                                      "--auth-failure-window", "60"]

    def test_slowed_then_refused(self):
        bad = (self.s.account_sid, "not-the-token")
        times = []
        for _ in range(4):
            t0 = time.monotonic()
            st, h, b = self.req("GET", "/v2/Services", auth=bad)
            times.append(time.monotonic() - t0)
            self.assertEqual((st, b["code"]), (401, 20003))
        self.assertLess(times[0], 0.9)   # failures 1 and 2: answered at once
        self.assertLess(times[1], 0.9)
        self.assertGreater(times[2], 0.9)  # failure 3: held back about 1 s
        self.assertGreater(times[3], 1.9)  # failure 4: about 2 s
        # Now every request from this address is refused, valid credentials included.
        resp = self.req("GET", "/v2/Services")
        self.assert_error(resp, 429, 20429, "Too many requests")
        self.assertIn("retry-after", {k.lower() for k in resp[1].keys()})
        # and the server still answers what needs no credentials
        self.assertEqual(self.req("GET", "/healthz", auth=None)[0], 200)


class CodeTtlTest(OwnServerBase):
    server_args = ["--code-ttl", "2"]

    def test_expired_verification_is_gone(self):
        to = new_phone()
        v = self.create_verification(to)
        code = self.s.latest_code(to)
        time.sleep(3.2)
        self.assert_error(self.req("POST", self.svc_path(tail="/VerificationCheck"),
                                   {"To": to, "Code": code}), 404, 20404)
        self.assert_error(self.req("GET", self.svc_path(tail="/Verifications/" + v["sid"])), 404, 20404)
        v2 = self.create_verification(to)
        self.assertNotEqual(v2["sid"], v["sid"])
        self.assertEqual(len(v2["send_code_attempts"]), 1)


class EnvConfigTest(unittest.TestCase):
    """Options also come from the environment (contract: each flag has an env variable)."""

    def test_bootstrap_account_from_env_and_env_options(self):
        sid = "AC" + "%032x" % random.getrandbits(128)
        token = "%032x" % random.getrandbits(128)
        srv = Verifyd(extra_env={"VERIFYD_ACCOUNT_SID": sid, "VERIFYD_AUTH_TOKEN": token,
                                 "VERIFYD_DEV_OUTBOX": "off",
                                 "VERIFYD_PUBLIC_URL": "http://env.example.test:8443"},
                      )
        try:
            self.assertEqual((srv.account_sid, srv.auth_token), (sid, token))
            st, h, b = srv.request("GET", "/v2/Services/" + srv.service_sid)
            self.assertEqual(st, 200, b)
            self.assertEqual(b["account_sid"], sid)
            self.assertEqual(b["url"], "http://env.example.test:8443/v2/Services/" + srv.service_sid)
            st, h, b = srv.request("GET", "/dev/v1/Messages?To=%2B16502530000")
            self.assertEqual((st, b.get("code") if isinstance(b, dict) else b), (404, 20404))
            srv.stop()
            # env is only used on first start; the stored account stays
            srv.extra_env = {"VERIFYD_ACCOUNT_SID": "AC" + "f" * 32, "VERIFYD_AUTH_TOKEN": "other"}
            srv.restart()
            self.assertEqual((srv.account_sid, srv.auth_token), (sid, token))
            srv.stop()
        finally:
            srv.cleanup()


class PublicUrlTest(OwnServerBase):
    PUBLIC = "http://example.test:9999"
    server_args = ["--public-url", PUBLIC]

    def test_urls_use_public_url(self):
        b = self.create_service("Public Svc")
        url = self.PUBLIC + "/v2/Services/" + b["sid"]
        self.assertEqual(b["url"], url)
        for k, suffix in SERVICE_LINKS.items():
            self.assertEqual(b["links"][k], url + suffix)
        to = new_phone()
        v = self.create_verification(to, service_sid=b["sid"])
        self.assertEqual(v["url"], url + "/Verifications/" + v["sid"])
        self.create_service("Public Svc 2")
        st, h, page = self.req("GET", "/v2/Services?PageSize=1")
        self.assertEqual(st, 200, page)
        meta = page["meta"]
        for k in ("url", "first_page_url", "next_page_url"):
            self.assertTrue(meta[k] and meta[k].startswith(self.PUBLIC + "/v2/Services?"), (k, meta[k]))
        st, h, m = self.req("GET", "/dev/v1/Messages?To=%s&PageSize=1" % q(to))
        self.assertEqual(st, 200, m)
        self.assertTrue(m["meta"]["url"].startswith(self.PUBLIC + "/dev/v1/Messages?"), m["meta"]["url"])


if __name__ == "__main__":
    unittest.main()
