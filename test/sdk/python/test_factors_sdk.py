"""TOTP and push factors through the official twilio-python SDK (Debian python3-twilio 7.7.1),
unchanged, against a real verifyd: Entities, Factors, Challenges, Notifications, Access Tokens
and Webhooks. TOTP codes come from oathtool (Debian package oathtool), as an authenticator app
would show them; push devices are simulated with P-256 keys (python3-cryptography).

Run:  VERIFYD_BIN=/work/main/build/h-factors/verifyd /usr/bin/python3 -m unittest discover \
          -s test/sdk/python -p "test_factors*.py" -v
"""

import base64
import datetime
import itertools
import json
import os
import re
import subprocess
import sys
import time
import unittest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from harness.verifyd import Verifyd  # noqa: E402

from twilio.base.exceptions import TwilioException, TwilioRestException  # noqa: E402


def sid_re(prefix):
    return re.compile(r"^%s[0-9a-f]{32}$" % prefix)


_ids = itertools.count(1)


def fresh_identity():
    return "py-user-%d-%d" % (os.getpid(), next(_ids))


def totp(secret, offset=0, digits=6, step=30):
    """The code an authenticator app shows `offset` seconds from now (oathtool)."""
    at = int(time.time()) + offset
    out = subprocess.run(["oathtool", "--totp", "-b", "--digits=%d" % digits,
                          "--time-step-size=%ds" % step, "-N", "@%d" % at, secret],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def wrong_code(secret):
    """A code that matches none of the steps around now."""
    near = {totp(secret, o) for o in (-60, -30, 0, 30, 60)}
    for d in range(10):
        if str(d) * 6 not in near:
            return str(d) * 6
    raise AssertionError("no wrong code")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Device(object):
    """A simulated Verify Push device: its P-256 key and what the mobile SDKs send."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        spki = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(spki).decode("ascii")

    def sign(self, message):
        """Factor verification: Base64 of a DER ECDSA-SHA256 signature."""
        return base64.b64encode(self.key.sign(message.encode(), ec.ECDSA(hashes.SHA256()))).decode()

    def jws(self, payload):
        """Challenge answers: a compact JWS, ES256, signature r||s."""
        signing_input = "%s.%s" % (b64url(json.dumps({"typ": "JWT", "alg": "ES256"}).encode()),
                                   b64url(json.dumps(payload).encode()))
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(),
                                                  ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


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


class FactorsSdkTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        c = SRV.twilio_client()
        cls.service_sid = c.verify.v2.services.create(friendly_name="Owl Bank").sid
        c.http_client.session.close()

    def setUp(self):
        self.client = self.mk_client()
        self.svc = self.client.verify.v2.services(self.service_sid)

    def mk_client(self, *a, **kw):
        c = SRV.twilio_client(*a, **kw)
        self.addCleanup(c.http_client.session.close)
        return c

    def device_client(self, token):
        """Basic `token:<access token>`, as the Verify Push SDKs authenticate."""
        return self.mk_client("token", token, account_sid=SRV.account_sid)

    def assertRestError(self, fn, status, code, what=""):
        with self.assertRaises(TwilioRestException, msg=what) as cm:
            fn()
        e = cm.exception
        self.assertEqual((e.status, e.code), (status, code),
                         "%s: got HTTP %s code %s msg %r" % (what, e.status, e.code, e.msg))
        return e

    def assertListError(self, fn, status, code, what=""):
        """7.7.1 raises a plain TwilioException, with the response, when a list page fails."""
        with self.assertRaises(TwilioException, msg=what) as cm:
            fn()
        response = cm.exception.args[1]
        self.assertEqual((response.status_code, json.loads(response.text)["code"]), (status, code),
                         "%s: %s" % (what, response.text))

    def new_totp(self, identity, **kw):
        return self.svc.entities(identity).new_factors.create(
            friendly_name="alice@example.com", factor_type="totp", **kw)

    def verified_totp(self, identity):
        f = self.new_totp(identity)
        v = self.svc.entities(identity).factors(f.sid).update(auth_payload=totp(f.binding["secret"]))
        self.assertEqual(v.status, "verified")
        return f

    # ------------------------------------------------------------------ TOTP
    def test_totp_walk_through(self):
        identity = fresh_identity()
        entity = self.svc.entities(identity)
        f = self.new_totp(identity)
        self.assertRegex(f.sid, sid_re("YF"))
        self.assertRegex(f.entity_sid, sid_re("YE"))
        self.assertEqual((f.identity, f.status, f.factor_type), (identity, "unverified", "totp"))
        self.assertEqual(f.config, {"alg": "sha1", "skew": 1, "code_length": 6, "time_step": 30})
        self.assertIsInstance(f.date_created, datetime.datetime)
        secret = f.binding["secret"]
        self.assertRegex(secret, r"^[A-Z2-7]{32}$")
        self.assertEqual(f.binding["uri"],
                         "otpauth://totp/Owl%%20Bank:alice%%40example.com?secret=%s"
                         "&issuer=Owl%%20Bank&algorithm=SHA1&digits=6&period=30" % secret)
        # Shown once only.
        entity.factors(f.sid).fetch()
        self.assertNotIn(secret, self.client.http_client.last_response.text)
        self.assertEqual([x.sid for x in entity.factors.list()], [f.sid])
        self.assertNotIn(secret, self.client.http_client.last_response.text)
        self.assertEqual(entity.fetch().sid, f.entity_sid)

        self.assertEqual(entity.factors(f.sid).update(auth_payload=wrong_code(secret)).status,
                         "unverified")
        self.assertEqual(entity.factors(f.sid).update(auth_payload=totp(secret)).status,
                         "verified")

        nxt = totp(secret, 30)
        c = entity.challenges.create(factor_sid=f.sid, auth_payload=nxt)
        self.assertRegex(c.sid, sid_re("YC"))
        self.assertEqual((c.status, c.factor_type, c.responded_reason),
                         ("approved", "totp", "none"))
        self.assertIsInstance(c.date_responded, datetime.datetime)
        self.assertEqual(c.expiration_date - c.date_created, datetime.timedelta(minutes=5))

        # Each code once: the same again, or the older one that verified the factor, is refused.
        replay = entity.challenges.create(factor_sid=f.sid, auth_payload=nxt)
        self.assertEqual(replay.status, "pending")
        self.assertEqual(entity.challenges(replay.sid).update(auth_payload=totp(secret)).status,
                         "pending")
        self.assertEqual([x.sid for x in entity.challenges.list(status="approved")], [c.sid])
        self.assertEqual([x.sid for x in entity.challenges.list(order="desc")],
                         [replay.sid, c.sid])

    def test_fifth_wrong_code_on_a_factor_is_60310(self):
        identity = fresh_identity()
        f = self.new_totp(identity)
        ctx = self.svc.entities(identity).factors(f.sid)
        bad = wrong_code(f.binding["secret"])
        for _ in range(4):
            self.assertEqual(ctx.update(auth_payload=bad).status, "unverified")
        self.assertRestError(lambda: ctx.update(auth_payload=bad), 429, 60310, "5th")
        self.assertRestError(lambda: ctx.update(auth_payload=totp(f.binding["secret"])), 429,
                             60310, "locked")

    def test_fifth_wrong_code_on_a_challenge_is_60308(self):
        identity = fresh_identity()
        f = self.verified_totp(identity)
        entity = self.svc.entities(identity)
        bad = wrong_code(f.binding["secret"])
        c = entity.challenges.create(factor_sid=f.sid)
        self.assertEqual(c.status, "pending")
        for _ in range(4):
            self.assertEqual(entity.challenges(c.sid).update(auth_payload=bad).status, "pending")
        self.assertRestError(lambda: entity.challenges(c.sid).update(auth_payload=bad), 429, 60308)

    def test_expiration_date_and_details(self):
        identity = fresh_identity()
        f = self.verified_totp(identity)
        entity = self.svc.entities(identity)
        at = datetime.datetime.utcnow().replace(microsecond=0) + datetime.timedelta(minutes=30)
        c = entity.challenges.create(
            factor_sid=f.sid, expiration_date=at, details_message="Log in?",
            details_fields=[{"label": "IP", "value": "10.0.0.1"}],
            hidden_details={"ip": "10.0.0.1"})
        self.assertEqual(c.expiration_date.replace(tzinfo=None), at)
        self.assertEqual(c.details, {"message": "Log in?",
                                     "fields": [{"label": "IP", "value": "10.0.0.1"}]})
        self.assertEqual(c.hidden_details, {"ip": "10.0.0.1"})
        fetched = entity.challenges(c.sid).fetch()
        self.assertEqual(fetched.status, "pending")
        self.assertTrue(self.client.http_client.last_response.headers
                        .get("Twilio-Verify-Signature-Fields"))
        self.assertRestError(lambda: entity.challenges.create(
            factor_sid=f.sid, expiration_date=at + datetime.timedelta(hours=1)), 400, 60200)

    # --------------------------------------------------------- entities, errors
    def test_entities_and_error_shapes(self):
        identity = fresh_identity()
        e = self.svc.entities.create(identity=identity)
        self.assertRegex(e.sid, sid_re("YE"))
        self.assertEqual(e.identity, identity)
        self.assertEqual(e.links["challenges"], e.url + "/Challenges")
        self.assertRestError(lambda: self.svc.entities.create(identity=identity), 409, 60360)
        self.assertRestError(lambda: self.svc.entities.create(identity="short"), 400, 60200)
        self.assertIn(e.sid, [x.sid for x in self.svc.entities.list()])
        f = self.new_totp(identity)
        self.assertRestError(lambda: self.svc.entities(identity).challenges.create(factor_sid=f.sid),
                             403, 60318)
        self.assertRestError(lambda: self.new_totp(identity, config_skew=5), 400, 60200)
        self.assertRestError(
            lambda: self.svc.entities(identity).factors("YF" + "0" * 32).fetch(), 404, 20404)
        self.assertTrue(self.svc.entities(identity).delete())
        self.assertRestError(lambda: self.svc.entities(identity).fetch(), 404, 20404)

    # ------------------------------------------------------------------ push
    def test_push_device_enrols_with_an_access_token_and_answers(self):
        identity = fresh_identity()
        at = self.svc.access_tokens.create(identity=identity, factor_type="push",
                                           factor_friendly_name="Alice's phone", ttl=300)
        self.assertRegex(at.sid, sid_re("YK"))
        self.assertEqual((at.entity_identity, at.factor_type, at.factor_friendly_name, at.ttl),
                         (identity, "push", "Alice's phone", 300))
        self.assertEqual(self.svc.access_tokens(at.sid).fetch().token, at.token)

        device = Device()
        dc = self.device_client(at.token)
        dsvc = dc.verify.v2.services(self.service_sid)
        f = dsvc.entities(identity).new_factors.create(
            friendly_name="Alice's phone", factor_type="push", binding_alg="ES256",
            binding_public_key=device.public_key, config_app_id="com.example.owlbank",
            config_notification_platform="apn", config_notification_token="a" * 64,
            config_sdk_version="2.0.0", metadata={"os": "iOS"})
        self.assertEqual(f.binding, {"alg": "ES256", "public_key": device.public_key})
        self.assertEqual(f.metadata, {"os": "iOS"})
        self.assertEqual(dsvc.entities(identity).factors(f.sid)
                         .update(auth_payload=device.sign(f.sid)).status, "verified")

        c = self.svc.entities(identity).challenges.create(
            factor_sid=f.sid, details_message="Log in to Owl Bank?",
            details_fields=[{"label": "IP", "value": "10.0.0.1"}], hidden_details={"ip": "10.0.0.1"})
        self.assertEqual(c.status, "pending")
        n = self.svc.entities(identity).challenges(c.sid).notifications.create(ttl=60)
        self.assertRegex(n.sid, sid_re("NT"))
        self.assertEqual((n.challenge_sid, n.ttl, n.priority), (c.sid, 60, "high"))

        def answer(signer, status):
            ctx = dsvc.entities(identity).challenges(c.sid)
            ctx.fetch()
            resp = dc.http_client.last_response
            fields = resp.headers["Twilio-Verify-Signature-Fields"].split(",")
            body = json.loads(resp.text)
            payload = {k: body[k] for k in fields}
            payload["status"] = status
            return ctx.update(auth_payload=signer.jws(payload), metadata={"os": "iOS"})

        self.assertRestError(lambda: answer(Device(), "approved"), 403, 60324, "other key")
        done = answer(device, "approved")
        self.assertEqual(done.status, "approved")
        self.assertEqual(done.metadata, {"os": "iOS"})
        # Nothing else with the token; a bad token is no credential.
        self.assertListError(lambda: dc.verify.v2.services.list(), 403, 20403)
        self.assertListError(lambda: dsvc.entities(identity).factors.list(), 403, 20403)
        self.assertListError(lambda: dsvc.entities(fresh_identity()).challenges.list(), 403, 20403)
        self.assertRestError(lambda: dsvc.entities(identity).fetch(), 403, 20403)
        bad = self.device_client(at.token + "x").verify.v2.services(self.service_sid)
        self.assertRestError(lambda: bad.entities(identity).challenges(c.sid).fetch(), 401, 20003)

    def test_access_token_parameters(self):
        self.assertRestError(lambda: self.svc.access_tokens.create(
            identity=fresh_identity(), factor_type="totp"), 400, 60200)
        self.assertRestError(lambda: self.svc.access_tokens.create(
            identity=fresh_identity(), factor_type="push", ttl=301), 400, 60200)
        t = self.svc.access_tokens.create(identity=fresh_identity(), factor_type="push")
        self.assertEqual((t.ttl, t.factor_friendly_name), (60, None))
        self.assertRestError(lambda: self.svc.access_tokens("YK" + "0" * 32).fetch(), 404, 20404)

    # -------------------------------------------------------------- webhooks
    def test_webhooks_crud(self):
        w = self.svc.webhooks.create(friendly_name="Owl Bank events",
                                     event_types=["factor.created", "factor.deleted"],
                                     webhook_url="https://owlbank.example/verify-events",
                                     status="enabled", version="v2")
        self.assertRegex(w.sid, sid_re("YW"))
        self.assertEqual(w.event_types, ["factor.created", "factor.deleted"])
        self.assertEqual((w.status, w.version, w.webhook_method), ("enabled", "v2", "POST"))
        self.assertIsInstance(w.date_created, datetime.datetime)
        self.assertEqual(self.svc.webhooks(w.sid).fetch().friendly_name, "Owl Bank events")
        u = self.svc.webhooks(w.sid).update(status="disabled", event_types=["*"], version="v1")
        self.assertEqual((u.status, u.event_types, u.version), ("disabled", ["*"], "v1"))
        self.assertIn(w.sid, [x.sid for x in self.svc.webhooks.list()])
        self.assertRestError(lambda: self.svc.webhooks.create(
            friendly_name="bad", event_types=["nope"], webhook_url="https://a.example"), 400, 60200)
        self.assertRestError(lambda: self.svc.webhooks(w.sid).update(status="paused"), 400, 60200)
        self.assertTrue(self.svc.webhooks(w.sid).delete())
        self.assertRestError(lambda: self.svc.webhooks(w.sid).fetch(), 404, 20404)


if __name__ == "__main__":
    unittest.main()
