// Send a code by SMS and check it, with the official Twilio Node SDK pointed at verifyd.
// Run: set -a; . ./.env; set +a; node examples/quickstart.js +15017122661
'use strict';
const twilio = require('twilio');

// The SDK's own HTTP client, with every https://verify.twilio.com URL rewritten to verifyd.
class VerifydRequestClient extends twilio.RequestClient {
  constructor(baseUrl) {
    super();
    this.base = baseUrl.replace(/\/$/, '');
  }
  request(opts) {
    const u = new URL(opts.uri);
    if (/^(verify|lookups)\..*twilio\.com$/.test(u.hostname)) opts = { ...opts, uri: this.base + u.pathname + u.search };
    return super.request(opts);
  }
}

async function main() {
  const { TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: token, VERIFICATION_SID: service,
    VERIFYD_BASE_URL: base } = process.env;
  const to = process.argv[2] || '+15017122661';
  const client = twilio(sid, token, { httpClient: new VerifydRequestClient(base) });
  client.region = undefined;
  client.edge = undefined;

  const verification = await client.verify.v2.services(service).verifications.create({ to, channel: 'sms' });
  console.log(`sent: ${verification.sid} ${verification.status}`);

  // No phone needed: the dev outbox shows the message verifyd would have sent.
  const res = await fetch(`${base}/dev/v1/Messages?To=${encodeURIComponent(to)}&PageSize=1`, {
    headers: { Authorization: 'Basic ' + Buffer.from(`${sid}:${token}`).toString('base64') },
  });
  const body = (await res.json()).messages[0].body;
  const code = body.match(/(\d{4,10})/)[1];
  console.log(`outbox: ${body}`);

  const check = await client.verify.v2.services(service).verificationChecks.create({ to, code });
  console.log(`checked: ${check.status}`);
  if (check.status !== 'approved') process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
