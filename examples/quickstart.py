"""Send a code by SMS and check it, with the official Twilio Python SDK pointed at verifyd.

Run with Debian's interpreter (it sees python3-twilio):
    set -a; . ./.env; set +a; /usr/bin/python3 examples/quickstart.py +15017122661
"""
import base64
import json
import os
import re
import sys
import urllib.parse
import urllib.request

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client


class VerifydHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, with every https://verify.twilio.com URL rewritten to verifyd."""

    def __init__(self, base_url):
        super().__init__()
        self.base = base_url.rstrip("/")
        self.session.trust_env = False  # never send loopback traffic through a proxy

    def request(self, method, url, **kwargs):
        u = urllib.parse.urlsplit(url)
        if re.match(r"^(verify|lookups)\..*twilio\.com$", u.hostname or ""):
            url = self.base + u.path + ("?" + u.query if u.query else "")
        return super().request(method, url, **kwargs)


def main():
    sid, token = os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"]
    service, base = os.environ["VERIFICATION_SID"], os.environ["VERIFYD_BASE_URL"]
    to = sys.argv[1] if len(sys.argv) > 1 else "+15017122661"
    client = Client(sid, token, http_client=VerifydHttpClient(base))
    client.region = client.edge = None

    verification = client.verify.v2.services(service).verifications.create(to=to, channel="sms")
    print(f"sent: {verification.sid} {verification.status}")

    # No phone needed: the dev outbox shows the message verifyd would have sent.
    req = urllib.request.Request(
        f"{base}/dev/v1/Messages?To={urllib.parse.quote(to)}&PageSize=1",
        headers={"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()})
    body = json.load(urllib.request.urlopen(req))["messages"][0]["body"]
    code = re.search(r"(\d{4,10})", body).group(1)
    print(f"outbox: {body}")

    check = client.verify.v2.services(service).verification_checks.create(to=to, code=code)
    print(f"checked: {check.status}")
    sys.exit(0 if check.status == "approved" else 1)


if __name__ == "__main__":
    main()
