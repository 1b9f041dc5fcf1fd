"""Webhook events and push notifications end to end: the real verifyd (--config) delivering the
factor outbox to a webhook receiver run by the test, to a fake FCM and to a fake APNs over
HTTP/2 (test/harness/push_fakes.py), and a device, simulated with its own P-256 key, enrolling a
push factor and answering challenges as Twilio's Verify Push SDKs do.

Webhook signatures are checked with the official SDKs' validators, unchanged: Python's
twilio.request_validator.RequestValidator (Debian's python3-twilio) and Node's
twilio.validateRequestWithBody (node_modules, run with node).

Run:  VERIFYD_BIN=/work/main/build/release/verifyd \
      /usr/bin/python3 -m unittest discover -s test/delivery -p "test_push*.py" -v
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from twilio.request_validator import RequestValidator

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.fake_provider import toml_config  # noqa: E402
from harness.push_fakes import FakeApns, FakeFcm  # noqa: E402
from harness.verifyd import Verifyd, free_port  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
WAIT = 20.0
NODE_VALIDATE = (
    "const twilio = require('twilio');"
    "const [token, signature, url, body] = process.argv.slice(1);"
    "process.stdout.write(String(twilio.validateRequestWithBody(token, signature, url, body)));")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def node_available():
    if not shutil.which("node"):
        return False
    r = subprocess.run(["node", "-e", "require('twilio')"], cwd=REPO, capture_output=True)
    return r.returncode == 0


# ------------------------------------------------------------------------ webhook receiver

class Received(object):
    def __init__(self, path, headers, body, answered):
        self.path = path                  # with the query, as requested
        self.headers = headers
        self.body = body                  # raw bytes
        self.answered = answered
        try:
            self.json = json.loads(body.decode("utf-8"))
        except ValueError:
            self.json = None

    @property
    def type(self):
        return (self.json or {}).get("type")

    def __repr__(self):
        return "Received(%s %s %s)" % (self.answered, self.path, self.type)


class WebhookReceiver(object):
    """The customer's webhook endpoint: records every request; `fail_next(path, n)` makes the
    next n requests to a path answer 500."""

    def __init__(self):
        self.requests = []
        self.cond = threading.Condition()
        self.failures = {}
        self.hang = set()                 # paths whose requests get no answer until released
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urllib.parse.urlsplit(self.path).path
                with receiver.cond:
                    left = receiver.failures.get(path, 0)
                    status = 500 if left > 0 else 200
                    if left > 0:
                        receiver.failures[path] = left - 1
                    hang = path in receiver.hang
                    if hang:
                        receiver.hang.discard(path)
                        status = None
                    receiver.requests.append(Received(self.path, self.headers, body, status))
                    receiver.cond.notify_all()
                if hang:
                    receiver.released.wait(WAIT)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # verifyd closing a kept-alive connection is not an error

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail_next(self, path, n):
        with self.cond:
            self.failures[path] = n

    def wait_for(self, predicate, count=1, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [r for r in self.requests if predicate(r)]
                if len(found) >= count:
                    return found if count > 1 else found[0]
                if time.monotonic() > deadline:
                    raise AssertionError("webhook receiver: %d matching request(s), wanted %d; "
                                         "got %r" % (len(found), count, self.requests))
                self.cond.wait(0.1)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------- device

class Device(object):
    """A phone running the Verify Push SDK: its own P-256 key, HTTP Basic `token:<JWT>`."""

    def __init__(self, srv, service_sid, identity, access_token):
        self.srv = srv
        self.service_sid = service_sid
        self.identity = identity
        self.auth = ("token", access_token)
        self.key = ec.generate_private_key(ec.SECP256R1())

    def public_key_b64(self):
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    def path(self, rest=""):
        return "/v2/Services/%s/Entities/%s%s" % (self.service_sid, self.identity, rest)

    def create_factor(self, platform, notification_token, name="Alice's phone"):
        return self.srv.request("POST", self.path("/Factors"), {
            "FriendlyName": name, "FactorType": "push", "Binding.Alg": "ES256",
            "Binding.PublicKey": self.public_key_b64(), "Config.AppId": "com.example.verifyd",
            "Config.NotificationPlatform": platform,
            "Config.NotificationToken": notification_token, "Config.SdkVersion": "2.2.0"},
            auth=self.auth)

    def verify_factor(self, factor_sid):
        sig = self.key.sign(factor_sid.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        return self.srv.request("POST", self.path("/Factors/" + factor_sid),
                                {"AuthPayload": base64.b64encode(sig).decode("ascii")},
                                auth=self.auth)

    def fetch_challenge(self, challenge_sid):
        return self.srv.request("GET", self.path("/Challenges/" + challenge_sid), auth=self.auth)

    def jws(self, fetched, fields_header, status, key=None):
        header = {"typ": "JWT", "alg": "ES256"}
        payload = {}
        for name in fields_header.split(","):
            payload[name] = fetched[name]
        payload["status"] = status
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode("utf-8")) + "."
                         + b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8")))
        der = (key or self.key).sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def factor_jwt(self, factor_sid, account_sid, key=None, lifetime=300):
        """The JWT an enrolled Verify Push SDK signs with its own key (AuthenticationProvider):
        header typ/cty/kid/alg ES256; sub = account, exp, nbf, grants.verify_push."""
        now = int(time.time())
        header = {"typ": "JWT", "cty": "twilio-pba;v=1", "kid": "CR" + "0" * 32, "alg": "ES256"}
        payload = {"sub": account_sid, "exp": now + lifetime, "nbf": now,
                   "grants": {"verify_push": {"factor_sid": factor_sid,
                                              "entity_sid": self.identity,
                                              "service_sid": self.service_sid}}}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode("utf-8")) + "."
                         + b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8")))
        der = (key or self.key).sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def answer(self, challenge_sid, status, key=None):
        st, h, fetched = self.fetch_challenge(challenge_sid)
        if st != 200:
            raise AssertionError("device fetch of %s: %s %r" % (challenge_sid, st, fetched))
        fields = h.get("Twilio-Verify-Signature-Fields")
        if not fields:
            raise AssertionError("no Twilio-Verify-Signature-Fields header on the fetch")
        return self.srv.request("POST", self.path("/Challenges/" + challenge_sid),
                                {"AuthPayload": self.jws(fetched, fields, status, key)},
                                auth=self.auth)


# ------------------------------------------------------------------------------------ tests

class PushWebhooksTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="verifyd-push-")
        cls.receiver = WebhookReceiver()
        cls.fcm = FakeFcm(project_id="verifyd-push-test")
        cls.apns = FakeApns(topic="com.example.verifyd")
        # The first FCM provider answers nothing (its port is closed): every FCM notification
        # fails over to the second.
        dead = cls.fcm.provider(cls.dir, name="fcm-down", timeout_ms=1000)
        dead["base_url"] = "http://127.0.0.1:%d" % free_port()
        providers = [dead, cls.fcm.provider(cls.dir, name="fcm"), cls.apns.provider(cls.dir)]
        delivery = {"event_retry_initial_ms": 300, "event_retry_max_ms": 600,
                    "event_max_tries": 5, "poll_ms": 50, "lease_ms": 5000}
        cls.config = os.path.join(cls.dir, "verifyd.toml")
        with open(cls.config, "w") as f:
            f.write(toml_config(delivery, providers))
        cls.srv = Verifyd(extra_args=["--config", cls.config])
        cls.sid = cls.srv.service_sid
        cls.validator = RequestValidator(cls.srv.auth_token)
        cls.node = node_available()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()
            cls.receiver.stop()
            cls.fcm.stop()
            cls.apns.stop()
            shutil.rmtree(cls.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def api(self, method, path, body=None, expect=None):
        st, h, b = self.srv.request(method, "/v2/Services/%s%s" % (self.sid, path), body)
        if expect is not None:
            self.assertEqual(st, expect, "%s %s -> %s %r\nverifyd stderr:\n%s"
                             % (method, path, st, b, self.srv.stderr_tail()))
        return st, h, b

    def subscribe(self, path, event_types, query=""):
        url = self.receiver.base + path + query
        _, _, hook = self.api("POST", "/Webhooks", [("FriendlyName", "events " + path),
                                                     ("WebhookUrl", url)] +
                              [("EventTypes", t) for t in event_types], expect=201)
        self.assertEqual(hook["webhook_url"], url)
        self.assertEqual(sorted(hook["event_types"]), sorted(event_types))
        self.assertEqual(hook["status"], "enabled")
        return hook

    def device(self, identity):
        _, _, token = self.api("POST", "/AccessTokens", {"Identity": identity,
                                                          "FactorType": "push", "Ttl": 300},
                               expect=201)
        self.assertTrue(token["token"])
        return Device(self.srv, self.sid, identity, token["token"])

    def enrol(self, device, platform, notification_token):
        st, _h, factor = device.create_factor(platform, notification_token)
        self.assertEqual(st, 201, factor)
        self.assertEqual(factor["status"], "unverified")
        self.assertEqual(factor["config"]["notification_platform"], platform)
        st, _h, verified = device.verify_factor(factor["sid"])
        self.assertEqual(st, 200, verified)
        self.assertEqual(verified["status"], "verified", verified)
        return factor["sid"]

    def challenge(self, identity, factor_sid, message="Log in to Example?"):
        _, _, c = self.api("POST", "/Entities/%s/Challenges" % identity, [
            ("FactorSid", factor_sid), ("Details.Message", message),
            ("Details.Fields", json.dumps({"label": "IP", "value": "203.0.113.7"})),
            ("Details.Fields", json.dumps({"label": "Browser", "value": "Firefox"})),
            ("HiddenDetails", json.dumps({"session": "s-42"}))], expect=201)
        self.assertEqual(c["status"], "pending")
        return c

    def assert_signed(self, req):
        """The request carries a signature both official SDK validators accept."""
        url = self.receiver.base + req.path
        signature = req.headers.get("X-Twilio-Signature")
        body = req.body.decode("utf-8")
        self.assertTrue(signature, "no X-Twilio-Signature")
        self.assertIn("bodySHA256=", req.path)
        self.assertEqual(req.headers.get("Content-Type"), "application/json")
        self.assertTrue(req.headers.get("I-Twilio-Idempotency-Token"))
        self.assertTrue(self.validator.validate(url, body, signature),
                        "Python RequestValidator refused %s %s" % (url, signature))
        self.assertFalse(RequestValidator("not-the-token").validate(url, body, signature))
        self.assertFalse(self.validator.validate(url, body + " ", signature))
        self.assertTrue(self.node, "node and node_modules/twilio are needed: scripts/deps.sh")
        if self.node:
            out = subprocess.run(["node", "-e", NODE_VALIDATE, self.srv.auth_token, signature,
                                  url, body], cwd=REPO, capture_output=True, text=True,
                                 timeout=30)
            self.assertEqual(out.stdout, "true", "Node validateRequestWithBody refused %s: %s"
                             % (url, out.stderr))

    # -------------------------------------------------------------------- tests
    def test_1_device_flow_fcm_with_signed_webhooks(self):
        hook = self.subscribe("/events", ["factor.created", "factor.verified",
                                          "challenge.approved", "challenge.denied"],
                              query="?tenant=acme&x=a%20b")
        identity = "user-fcm-0001"
        device = self.device(identity)
        fcm_token = "fcm-" + "d" * 60
        factor_sid = self.enrol(device, "fcm", fcm_token)

        created = self.receiver.wait_for(lambda r: r.type == "factor.created" and
                                         r.json.get("factor_sid") == factor_sid)
        verified = self.receiver.wait_for(lambda r: r.type == "factor.verified" and
                                          r.json.get("factor_sid") == factor_sid)
        for req in (created, verified):
            self.assert_signed(req)
            self.assertTrue(req.path.startswith("/events?tenant=acme&x=a%20b&bodySHA256="),
                            req.path)
            self.assertEqual(req.json["entity_identity"], identity)
            self.assertEqual(req.json["service_sid"], self.sid)
        self.assertNotEqual(created.headers["I-Twilio-Idempotency-Token"],
                            verified.headers["I-Twilio-Idempotency-Token"])
        self.assertTrue(hook["sid"].startswith("YW"))

        # Approve: the backend asks, the device is notified through FCM (failing over from the
        # provider that is down), fetches the challenge and signs its fields.
        c = self.challenge(identity, factor_sid)
        msg = self.fcm.wait_for(lambda m: m.data.get("challenge_sid") == c["sid"])
        self.assertEqual(msg.token, fcm_token)
        self.assertEqual(msg.data["factor_sid"], factor_sid)
        self.assertEqual(msg.data["message"], "Log in to Example?")
        self.assertEqual(msg.data["type"], "verify_push_challenge")
        self.assertTrue(all(isinstance(v, str) for v in msg.data.values()), msg.data)
        self.assertEqual(msg.android.get("priority"), "high")
        self.assertTrue(msg.headers.get("Authorization", "").startswith("Bearer ya29.fake-"))
        self.assertTrue(self.fcm.token_requests and all(ok for ok, _ in self.fcm.token_requests),
                        self.fcm.token_requests)

        st, _h, answered = device.answer(c["sid"], "approved")
        self.assertEqual(st, 200, answered)
        self.assertEqual(answered["status"], "approved")
        self.assertIsNotNone(answered["date_responded"])
        approved = self.receiver.wait_for(lambda r: r.type == "challenge.approved" and
                                          r.json.get("challenge_sid") == c["sid"])
        self.assert_signed(approved)
        self.assertEqual(approved.json["factor_sid"], factor_sid)
        self.assertEqual(approved.json.get("challenge_status"), "approved")

        # Deny a second one, the way an enrolled SDK calls: with a JWT signed by its own key
        # instead of the (by now expired, in real life) access token.
        c2 = self.challenge(identity, factor_sid, message="Pay 10 EUR?")
        self.fcm.wait_for(lambda m: m.data.get("challenge_sid") == c2["sid"])
        account_sid = hook["account_sid"]
        device.auth = ("token", device.factor_jwt(factor_sid, account_sid))
        for bad in (device.factor_jwt(factor_sid, account_sid, key=ec.generate_private_key(
                        ec.SECP256R1())),
                    device.factor_jwt(factor_sid, account_sid, lifetime=-10)):
            st, _h, err = self.srv.request("GET", device.path("/Challenges/" + c2["sid"]),
                                           auth=("token", bad))
            self.assertEqual(st, 401, err)
        st, _h, denied = device.answer(c2["sid"], "denied")
        self.assertEqual(st, 200, denied)
        self.assertEqual(denied["status"], "denied")
        den = self.receiver.wait_for(lambda r: r.type == "challenge.denied" and
                                     r.json.get("challenge_sid") == c2["sid"])
        self.assert_signed(den)

        # A JWS made with another key is refused and leaves the challenge pending.
        c3 = self.challenge(identity, factor_sid, message="Change e-mail?")
        st, _h, err = device.answer(c3["sid"], "approved", key=ec.generate_private_key(
            ec.SECP256R1()))
        self.assertEqual(st, 403, err)
        self.assertEqual(err["code"], 60324, err)
        st, _h, still = self.api("GET", "/Entities/%s/Challenges/%s" % (identity, c3["sid"]))
        self.assertEqual(still["status"], "pending")

        # Each event was delivered once (a 200 on the first try).
        for sid in (c["sid"], c2["sid"]):
            got = [r for r in self.receiver.requests if (r.json or {}).get("challenge_sid") == sid]
            self.assertEqual(len(got), 1, got)

    def test_2_webhook_retried_until_it_answers(self):
        self.subscribe("/flaky", ["factor.created"])
        self.receiver.fail_next("/flaky", 2)
        identity = "user-flaky-0001"
        device = self.device(identity)
        st, _h, factor = device.create_factor("none", "n" * 40)
        self.assertEqual(st, 201, factor)
        tries = self.receiver.wait_for(lambda r: r.path.startswith("/flaky") and
                                       (r.json or {}).get("factor_sid") == factor["sid"],
                                       count=3)
        self.assertEqual([r.answered for r in tries], [500, 500, 200])
        # The same event each time: same body, same idempotency token, valid signatures.
        self.assertEqual(len({r.body for r in tries}), 1)
        self.assertEqual(len({r.headers["I-Twilio-Idempotency-Token"] for r in tries}), 1)
        for r in tries:
            self.assert_signed(r)
        time.sleep(1.5)  # past the longest backoff: no fourth try after the 200
        got = [r for r in self.receiver.requests if r.path.startswith("/flaky") and
               (r.json or {}).get("factor_sid") == factor["sid"]]
        self.assertEqual(len(got), 3, got)

    def test_4_lease_taken_over_after_kill9(self):
        """A node killed while a webhook call is in flight: after the restart the delivery's
        lease runs out and it is sent again, with the same idempotency token."""
        self.subscribe("/slow", ["factor.created"])
        self.receiver.hang.add("/slow")
        self.receiver.released.clear()
        identity = "user-kill-0001"
        device = self.device(identity)
        st, _h, factor = device.create_factor("none", "k" * 40)
        self.assertEqual(st, 201, factor)
        match = (lambda r: r.path.startswith("/slow") and
                 (r.json or {}).get("factor_sid") == factor["sid"])
        first = self.receiver.wait_for(match)
        self.assertIsNone(first.answered)
        self.srv.kill9()
        self.receiver.released.set()
        self.srv.restart()
        tries = self.receiver.wait_for(match, count=2, timeout=WAIT)
        self.assertEqual(tries[1].answered, 200)
        self.assertEqual(tries[0].headers["I-Twilio-Idempotency-Token"],
                         tries[1].headers["I-Twilio-Idempotency-Token"])
        self.assertEqual(tries[0].body, tries[1].body)
        self.assert_signed(tries[1])

    def test_3_apns_over_http2(self):
        identity = "user-apns-0001"
        device = self.device(identity)
        apn_token = "ab" * 32
        factor_sid = self.enrol(device, "apn", apn_token)
        c = self.challenge(identity, factor_sid, message="Sign in on a new Mac?")
        push = self.apns.wait_for(lambda p: (p.body or {}).get("challenge_sid") == c["sid"])
        self.assertEqual(push.token, apn_token)
        self.assertEqual(push.headers["apns-topic"], "com.example.verifyd")
        self.assertEqual(push.headers["apns-push-type"], "alert")
        self.assertEqual(push.headers["apns-priority"], "10")
        self.assertEqual(push.body["aps"]["alert"]["body"], "Sign in on a new Mac?")
        self.assertEqual(push.body["factor_sid"], factor_sid)
        self.assertEqual(push.body["type"], "verify_push_challenge")
        # Nothing for an APNs device went to FCM.
        self.assertFalse([m for m in self.fcm.messages.records
                          if m.data.get("challenge_sid") == c["sid"]])
        st, _h, answered = device.answer(c["sid"], "approved")
        self.assertEqual(st, 200, answered)
        self.assertEqual(answered["status"], "approved")


if __name__ == "__main__":
    unittest.main()
