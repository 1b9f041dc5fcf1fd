"""Fake push services for the push tests: a fake FCM (OAuth 2 token endpoint + HTTP v1
messages:send) and a fake APNs (HTTP/2 over cleartext, prior knowledge). Both check what a real
service checks about the credentials and record every request.

Usage:

    from harness.push_fakes import FakeFcm, FakeApns

    fcm = FakeFcm(project_id="demo-project")       # serving on 127.0.0.1:<free port>
    fcm.credentials_file(dir)                      # writes a service-account JSON, returns path
    fcm.provider()                                 # a [[provider]] dict for toml_config()
    msg = fcm.wait_for(lambda m: m.token == tok)   # one recorded messages:send (FcmMessage)
    fcm.fail_next(2, status=503)                   # the next 2 sends answer 503

    apns = FakeApns(topic="com.example.app")       # HTTP/2 cleartext on 127.0.0.1:<free port>
    apns.key_file(dir)                             # writes the .p8 (PKCS#8 P-256) key
    apns.provider()
    push = apns.wait_for(lambda p: p.token == tok) # one recorded notification (ApnsPush)

FCM: the token endpoint verifies the RS256 assertion (signature with the service account's
public key, iss, aud, scope, iat/exp) and hands out a random access token; messages:send answers
401 unless the Bearer token is one it issued and 404 for another project. APNs: the fake speaks
only HTTP/2 (h2c with prior knowledge, python3-h2) and checks the ES256 provider token (kid,
iss, iat, signature with the key it wrote), apns-topic, apns-push-type and apns-priority.

Needs Debian's python3-cryptography and python3-h2; run with /usr/bin/python3.
"""

import base64
import json
import os
import secrets
import socket
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def split_jwt(token):
    """(header dict, claims dict, signing input bytes, signature bytes); raises ValueError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), b64url_decode(parts[2])


class _Recorder(object):
    def __init__(self):
        self.records = []
        self.cond = threading.Condition()

    def add(self, rec):
        with self.cond:
            self.records.append(rec)
            self.cond.notify_all()

    def wait_for(self, predicate=None, count=1, timeout=20.0, what="request"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [r for r in self.records if predicate is None or predicate(r)]
                if len(found) >= count:
                    return found[0] if count == 1 else found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%d matching %s(s) after %.1f s, wanted %d; got %r"
                                         % (len(found), what, timeout, count, self.records[-10:]))
                self.cond.wait(min(remaining, 0.1))


# ------------------------------------------------------------------------------------ FCM

class FcmMessage(object):
    """One messages:send the fake FCM accepted or refused."""

    def __init__(self, project_id, headers, body, status):
        self.project_id = project_id
        self.headers = headers
        self.body = body                          # parsed JSON
        self.status = status                      # what the fake answered
        message = (body or {}).get("message") or {}
        self.token = message.get("token")
        self.data = message.get("data") or {}
        self.android = message.get("android") or {}

    def __repr__(self):
        return "FcmMessage(%s, token=%s, data=%r)" % (self.status, self.token, self.data)


class FakeFcm(object):
    def __init__(self, project_id="verifyd-test"):
        self.project_id = project_id
        self.client_email = "verifyd-push@%s.iam.gserviceaccount.com" % project_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.messages = _Recorder()
        self.token_requests = []          # (ok, reason) per token exchange
        self.issued = set()
        self._failures = []               # statuses to answer next, in order
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                if path == "/token":
                    status, answer = fake._token(body)
                elif path.startswith("/v1/projects/") and path.endswith("/messages:send"):
                    project = path[len("/v1/projects/"):-len("/messages:send")]
                    status, answer = fake._send(project, self.headers, body)
                else:
                    status, answer = 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
                data = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.token_uri = self.url + "/token"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def fail_next(self, n, status=503):
        with self._lock:
            self._failures += [status] * n

    def credentials_file(self, directory):
        pem = self.key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode("ascii")
        creds = {"type": "service_account", "project_id": self.project_id,
                 "private_key_id": secrets.token_hex(20), "private_key": pem,
                 "client_email": self.client_email, "client_id": "1234567890",
                 "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                 "token_uri": self.token_uri}
        path = os.path.join(directory, "fcm-service-account.json")
        with open(path, "w") as f:
            json.dump(creds, f)
        return path

    def provider(self, directory, name="fcm", timeout_ms=3000):
        return {"name": name, "type": "fcm", "channels": ["push"], "timeout_ms": timeout_ms,
                "credentials_file": self.credentials_file(directory), "base_url": self.url}

    def wait_for(self, predicate=None, count=1, timeout=20.0):
        return self.messages.wait_for(lambda m: m.status == 200 and
                                      (predicate is None or predicate(m)),
                                      count, timeout, "FCM message")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # ----------------------------------------------------------------------------- serve
    def _token(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        reason = None
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            reason = "bad grant_type %r" % form.get("grant_type")
        else:
            try:
                header, claims, signed, sig = split_jwt(form.get("assertion", ""))
                if header.get("alg") != "RS256":
                    reason = "alg %r" % header.get("alg")
                else:
                    self.key.public_key().verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
                    now = time.time()
                    if claims.get("iss") != self.client_email:
                        reason = "iss %r" % claims.get("iss")
                    elif claims.get("aud") != self.token_uri:
                        reason = "aud %r" % claims.get("aud")
                    elif FCM_SCOPE not in str(claims.get("scope", "")).split():
                        reason = "scope %r" % claims.get("scope")
                    elif not (claims.get("iat", 0) <= now + 60 < claims.get("exp", 0) + 60):
                        reason = "iat/exp %r/%r" % (claims.get("iat"), claims.get("exp"))
                    elif claims["exp"] - claims["iat"] > 3600:
                        reason = "lifetime over an hour"
            except (ValueError, KeyError, TypeError) as e:
                reason = "malformed assertion: %s" % e
            except InvalidSignature:
                reason = "bad signature"
        with self._lock:
            self.token_requests.append((reason is None, reason))
        if reason:
            return 400, {"error": "invalid_grant", "error_description": reason}
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _send(self, project, headers, body):
        try:
            parsed = json.loads(body.decode("utf-8"))
        except ValueError:
            parsed = None
        auth = headers.get("Authorization") or ""
        with self._lock:
            known = auth.startswith("Bearer ") and auth[7:] in self.issued
            failure = self._failures.pop(0) if (known and self._failures) else None
        if not known:
            status, answer = 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
        elif project != self.project_id:
            status, answer = 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
        elif not isinstance(parsed, dict) or not (parsed.get("message") or {}).get("token"):
            status, answer = 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}
        elif failure:
            status, answer = failure, {"error": {"code": failure, "status": "UNAVAILABLE"}}
        else:
            status = 200
            answer = {"name": "projects/%s/messages/%d" % (project, secrets.randbelow(10 ** 12))}
        self.messages.add(FcmMessage(project, dict(headers.items()), parsed, status))
        return status, answer


# ----------------------------------------------------------------------------------- APNs

class ApnsPush(object):
    """One notification request the fake APNs received."""

    def __init__(self, headers, body, status, reason):
        self.headers = headers                    # dict, lower-case names (h2 pseudo-headers too)
        self.path = headers.get(":path", "")
        self.token = self.path.rsplit("/", 1)[-1] if self.path.startswith("/3/device/") else None
        self.raw = body
        try:
            self.body = json.loads(body.decode("utf-8"))
        except ValueError:
            self.body = None
        self.status = status
        self.reason = reason

    def __repr__(self):
        return "ApnsPush(%s %s, token=%s, reason=%s)" % (self.status, self.path, self.token,
                                                          self.reason)


class FakeApns(object):
    """APNs over HTTP/2 cleartext with prior knowledge (no HTTP/1.1, no TLS)."""

    def __init__(self, topic="com.example.verifyd", key_id="ABC123DEFG", team_id="TEAM123456"):
        import h2.config  # noqa: F401  (python3-h2; imported here so FCM-only users need not)
        self.topic = topic
        self.key_id = key_id
        self.team_id = team_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.pushes = _Recorder()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self._sock.getsockname()[1]
        self._stopping = False
        self._conns = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def key_file(self, directory):
        pem = self.key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        path = os.path.join(directory, "AuthKey_%s.p8" % self.key_id)
        with open(path, "wb") as f:
            f.write(pem)
        return path

    def provider(self, directory, name="apns", timeout_ms=3000):
        return {"name": name, "type": "apns", "channels": ["push"], "timeout_ms": timeout_ms,
                "key_file": self.key_file(directory), "key_id": self.key_id,
                "team_id": self.team_id, "topic": self.topic, "base_url": self.url}

    def wait_for(self, predicate=None, count=1, timeout=20.0):
        return self.pushes.wait_for(lambda p: p.status == 200 and
                                    (predicate is None or predicate(p)),
                                    count, timeout, "APNs notification")

    def stop(self):
        self._stopping = True
        try:
            self._sock.close()
        except OSError:
            pass
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    # ----------------------------------------------------------------------------- serve
    def _accept(self):
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _check(self, headers):
        """(status, reason) for a request's headers."""
        if headers.get(":method") != "POST":
            return 405, "MethodNotAllowed"
        if not headers.get(":path", "").startswith("/3/device/"):
            return 404, "BadPath"
        if headers.get("apns-topic") != self.topic:
            return 400, "TopicDisallowed"
        if headers.get("apns-push-type") != "alert":
            return 400, "InvalidPushType"
        if headers.get("apns-priority") != "10":
            return 400, "BadPriority"
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return 403, "MissingProviderToken"
        try:
            header, claims, signed, sig = split_jwt(auth[7:])
        except (ValueError, TypeError):
            return 403, "InvalidProviderToken"
        if header.get("alg") != "ES256" or header.get("kid") != self.key_id:
            return 403, "InvalidProviderToken"
        if claims.get("iss") != self.team_id:
            return 403, "InvalidProviderToken"
        if len(sig) != 64:
            return 403, "InvalidProviderToken"
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                   int.from_bytes(sig[32:], "big"))
        try:
            self.key.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return 403, "InvalidProviderToken"
        if abs(time.time() - float(claims.get("iat", 0))) > 3600:
            return 403, "ExpiredProviderToken"
        return 200, None

    def _serve(self, sock):
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions

        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        streams = {}
        closed = False
        try:
            sock.sendall(conn.data_to_send())
            while not self._stopping and not closed:
                data = sock.recv(65536)
                if not data:
                    break
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    sock.sendall(conn.data_to_send())
                    break
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = [dict((k.lower(), v) for k, v in event.headers),
                                                    b""]
                    elif isinstance(event, h2.events.DataReceived):
                        if event.stream_id in streams:
                            streams[event.stream_id][1] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id, ({}, b""))
                        status, reason = self._check(headers)
                        self.pushes.add(ApnsPush(headers, body, status, reason))
                        out = [(":status", str(status))]
                        payload = b""
                        if status == 200:
                            out.append(("apns-id", str(uuid.uuid4()).upper()))
                        else:
                            payload = json.dumps({"reason": reason}).encode("utf-8")
                            out += [("content-type", "application/json"),
                                    ("content-length", str(len(payload)))]
                        conn.send_headers(event.stream_id, out, end_stream=not payload)
                        if payload:
                            conn.send_data(event.stream_id, payload, end_stream=True)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        closed = True
                sock.sendall(conn.data_to_send())
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass
            if sock in self._conns:
                self._conns.remove(sock)
