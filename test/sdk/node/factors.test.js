'use strict';
// TOTP and push factors through the official twilio-node SDK (6.3.1), unchanged, against a real
// verifyd: Entities, Factors, Challenges, Notifications, Access Tokens and Webhooks.
// TOTP codes come from oathtool (Debian package oathtool), as an authenticator app would show
// them; push devices are simulated with node:crypto P-256 keys.
// Run from /work/main:  VERIFYD_BIN=build/h-factors/verifyd node --test test/sdk/node/factors.test.js

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const twilio = require('twilio');
const { RestException } = twilio;

const { startServer, makeClient, RedirectingRequestClient } = require('./harness');

const SID = (prefix) => new RegExp(`^${prefix}[0-9a-fA-F]{32}$`);

let server;
let client;
let service;

before(async () => {
  server = await startServer();
  client = makeClient(server);
  service = await client.verify.v2.services.create({ friendlyName: 'Owl Bank' });
});

after(async () => {
  if (server) await server.stop();
});

// --- helpers ---------------------------------------------------------------

const svc = (c = client) => c.verify.v2.services(service.sid);

let identityCounter = 0;
/** A fresh entity identity (8-64 letters, digits, '-'). */
function freshIdentity() {
  identityCounter += 1;
  return `node-user-${process.pid}-${identityCounter}`;
}

/** The TOTP code an authenticator app shows `offset` seconds from now (oathtool). */
function totp(secret, offset = 0, { digits = 6, step = 30 } = {}) {
  const at = Math.floor(Date.now() / 1000) + offset;
  return execFileSync('oathtool', ['--totp', '-b', `--digits=${digits}`, `--time-step-size=${step}s`,
    '-N', `@${at}`, secret], { encoding: 'utf8' }).trim();
}

/** A code that matches none of the steps around now. */
function wrongCode(secret) {
  const near = new Set([-60, -30, 0, 30, 60].map((o) => totp(secret, o)));
  for (let d = 0; ; d += 1) {
    const c = String(d).repeat(6);
    if (!near.has(c)) return c;
  }
}

async function expectRestError(promise, { status, code }, what = '') {
  let err;
  let result;
  try {
    result = await promise;
  } catch (e) {
    err = e;
  }
  const label = what ? `${what}: ` : '';
  if (!err) {
    assert.fail(`${label}expected RestException ${status}/${code}, but the call succeeded: ` +
      JSON.stringify(result && result.toJSON ? result.toJSON() : result));
  }
  assert.ok(err instanceof RestException, `${label}expected a RestException, got ${err}`);
  assert.deepEqual({ status: err.status, code: err.code }, { status, code },
    `${label}wrong status/code (message: ${JSON.stringify(err.message)})`);
  assert.equal(err.moreInfo, `https://www.twilio.com/docs/errors/${code}`);
  return err;
}

function rawBody(c = client) {
  const { body } = c.httpClient.lastResponse;
  return typeof body === 'string' && body.length ? JSON.parse(body) : body;
}

async function newTotpFactor(identity, params = {}) {
  return svc().entities(identity).newFactors.create({
    friendlyName: 'alice@example.com', factorType: 'totp', ...params,
  });
}

async function verifiedTotpFactor(identity) {
  const f = await newTotpFactor(identity);
  const v = await svc().entities(identity).factors(f.sid).update({ authPayload: totp(f.binding.secret) });
  assert.equal(v.status, 'verified');
  return f;
}

/** A simulated Verify Push device: its P-256 key and what the mobile SDKs send. */
function newDevice() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    // Factor verification: the standard Base64 of a DER ECDSA-SHA256 signature.
    sign: (message) => crypto.sign('sha256', Buffer.from(message), privateKey).toString('base64'),
    // Challenge answers: a compact JWS, ES256, signature r||s.
    jws: (payload) => {
      const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const input = `${enc({ typ: 'JWT', alg: 'ES256' })}.${enc(payload)}`;
      const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${sig.toString('base64url')}`;
    },
  };
}

/** A client that authenticates as a device: Basic `token:<access token>`. */
function deviceClient(accessToken) {
  const c = twilio('token', accessToken, {
    accountSid: server.accountSid,
    httpClient: new RedirectingRequestClient(server.baseUrl),
  });
  c.region = undefined;
  c.edge = undefined;
  return c;
}

/** What the device SDKs do to answer: fetch, sign the fields the header names, post. */
async function answer(c, identity, challengeSid, device, status) {
  const ctx = svc(c).entities(identity).challenges(challengeSid);
  await ctx.fetch();
  const { headers } = c.httpClient.lastResponse;
  const fields = headers['twilio-verify-signature-fields'];
  assert.ok(fields, 'the challenge fetch names the fields to sign');
  assert.ok(!fields.includes(' '), 'no spaces: the device SDKs split on "," without trimming');
  const fetched = rawBody(c);
  const payload = {};
  for (const f of fields.split(',')) payload[f] = fetched[f];
  payload.status = status;
  return ctx.update({ authPayload: device.jws(payload), metadata: { os: 'Android' } });
}

// --- TOTP ------------------------------------------------------------------

test('TOTP walk-through: create, verify with an authenticator code, approve a challenge', async () => {
  const identity = freshIdentity();
  const entity = svc().entities(identity);
  const f = await newTotpFactor(identity);
  assert.match(f.sid, SID('YF'));
  assert.match(f.entitySid, SID('YE'));
  assert.equal(f.identity, identity);
  assert.equal(f.status, 'unverified');
  assert.equal(f.factorType, 'totp');
  assert.deepEqual(f.config, { alg: 'sha1', skew: 1, code_length: 6, time_step: 30 });
  assert.ok(f.dateCreated instanceof Date);
  const { secret, uri } = f.binding;
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.equal(uri, `otpauth://totp/Owl%20Bank:alice%40example.com?secret=${secret}` +
    '&issuer=Owl%20Bank&algorithm=SHA1&digits=6&period=30');

  // The binding is shown once: not on fetch or list.
  const fetched = await entity.factors(f.sid).fetch();
  assert.equal(fetched.status, 'unverified');
  assert.equal(JSON.stringify(rawBody()).includes(secret), false);
  const listed = await entity.factors.list();
  assert.deepEqual(listed.map((x) => x.sid), [f.sid]);
  assert.equal(JSON.stringify(rawBody()).includes(secret), false);
  // The entity was created with the factor.
  const e = await entity.fetch();
  assert.equal(e.sid, f.entitySid);

  // A wrong code: 200, still unverified.
  const wrong = await entity.factors(f.sid).update({ authPayload: wrongCode(secret) });
  assert.equal(wrong.status, 'unverified');
  // The app's code verifies it.
  const verified = await entity.factors(f.sid).update({ authPayload: totp(secret) });
  assert.equal(verified.status, 'verified');

  // A challenge with the next code (within the skew) is approved at once.
  const next = totp(secret, 30);
  const c = await entity.challenges.create({ factorSid: f.sid, authPayload: next });
  assert.match(c.sid, SID('YC'));
  assert.equal(c.status, 'approved');
  assert.equal(c.factorType, 'totp');
  assert.ok(c.dateResponded instanceof Date);
  assert.ok(c.expirationDate instanceof Date);
  assert.ok(c.expirationDate - c.dateCreated === 5 * 60 * 1000);

  // A code is accepted once: the same code again, or the one that verified the factor, is not.
  const replay = await entity.challenges.create({ factorSid: f.sid, authPayload: next });
  assert.equal(replay.status, 'pending');
  const older = await entity.challenges(replay.sid).update({ authPayload: totp(secret) });
  assert.equal(older.status, 'pending');

  const list = await entity.challenges.list({ status: 'approved' });
  assert.deepEqual(list.map((x) => x.sid), [c.sid]);
  const desc = await entity.challenges.list({ order: 'desc', factorSid: f.sid });
  assert.deepEqual(desc.map((x) => x.sid), [replay.sid, c.sid]);
});

test('TOTP factor: the fifth wrong code answers 429 60310', async () => {
  const identity = freshIdentity();
  const f = await newTotpFactor(identity);
  const ctx = svc().entities(identity).factors(f.sid);
  const bad = wrongCode(f.binding.secret);
  for (let i = 0; i < 4; i += 1) {
    const r = await ctx.update({ authPayload: bad });
    assert.equal(r.status, 'unverified');
  }
  await expectRestError(ctx.update({ authPayload: bad }), { status: 429, code: 60310 }, '5th');
  await expectRestError(ctx.update({ authPayload: totp(f.binding.secret) }),
    { status: 429, code: 60310 }, 'locked');
});

test('TOTP challenge: the fifth wrong code answers 429 60308', async () => {
  const identity = freshIdentity();
  const f = await verifiedTotpFactor(identity);
  const entity = svc().entities(identity);
  const bad = wrongCode(f.binding.secret);
  const c = await entity.challenges.create({ factorSid: f.sid, authPayload: bad });
  assert.equal(c.status, 'pending');
  for (let i = 0; i < 3; i += 1) {
    const r = await entity.challenges(c.sid).update({ authPayload: bad });
    assert.equal(r.status, 'pending');
  }
  await expectRestError(entity.challenges(c.sid).update({ authPayload: bad }),
    { status: 429, code: 60308 });
});

test('TOTP factor with its own secret and config', async () => {
  const identity = freshIdentity();
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const f = await newTotpFactor(identity, {
    'binding.secret': secret, 'config.codeLength': 8, 'config.timeStep': 60, 'config.skew': 0,
  });
  assert.equal(f.binding.secret, secret);
  assert.deepEqual(f.config, { alg: 'sha1', skew: 0, code_length: 8, time_step: 60 });
  const v = await svc().entities(identity).factors(f.sid)
    .update({ authPayload: totp(secret, 0, { digits: 8, step: 60 }) });
  assert.equal(v.status, 'verified');
  await expectRestError(newTotpFactor(freshIdentity(), { 'config.timeStep': 10 }),
    { status: 400, code: 60200 });
});

// --- entities and errors -----------------------------------------------------

test('entities: create, fetch, list, delete and error shapes', async () => {
  const identity = freshIdentity();
  const e = await svc().entities.create({ identity });
  assert.match(e.sid, SID('YE'));
  assert.equal(e.identity, identity);
  assert.equal(e.url, `${server.baseUrl}/v2/Services/${service.sid}/Entities/${identity}`);
  assert.equal(e.links.factors, `${e.url}/Factors`);
  await expectRestError(svc().entities.create({ identity }), { status: 409, code: 60360 }, 'dup');
  await expectRestError(svc().entities.create({ identity: 'short' }), { status: 400, code: 60200 });
  const all = await svc().entities.list();
  assert.ok(all.some((x) => x.sid === e.sid));
  const f = await newTotpFactor(identity);
  await expectRestError(svc().entities(identity).challenges.create({ factorSid: f.sid }),
    { status: 403, code: 60318 }, 'unverified factor');
  await expectRestError(svc().entities(identity).factors(`YF${'0'.repeat(32)}`).fetch(),
    { status: 404, code: 20404 });
  assert.equal(await svc().entities(identity).remove(), true);
  await expectRestError(svc().entities(identity).fetch(), { status: 404, code: 20404 });
  await expectRestError(svc().entities(identity).factors(f.sid).fetch(), { status: 404, code: 20404 });
});

// --- push ------------------------------------------------------------------

test('push: a device enrols with an access token and answers a challenge', async () => {
  const identity = freshIdentity();
  const at = await svc().accessTokens.create({
    identity, factorType: 'push', factorFriendlyName: "Alice's phone", ttl: 300,
  });
  assert.match(at.sid, SID('YK'));
  assert.equal(at.entityIdentity, identity);
  assert.equal(at.factorType, 'push');
  assert.equal(at.factorFriendlyName, "Alice's phone");
  assert.equal(at.ttl, 300);
  assert.ok(at.token.split('.').length === 3);
  const again = await svc().accessTokens(at.sid).fetch();
  assert.equal(again.token, at.token);

  const device = newDevice();
  const dc = deviceClient(at.token);
  const f = await svc(dc).entities(identity).newFactors.create({
    friendlyName: "Alice's phone",
    factorType: 'push',
    'binding.alg': 'ES256',
    'binding.publicKey': device.publicKey,
    'config.appId': 'com.example.owlbank',
    'config.notificationPlatform': 'fcm',
    'config.notificationToken': 'f'.repeat(64),
    'config.sdkVersion': '2.0.0',
    metadata: { os: 'Android' },
  });
  assert.deepEqual(f.binding, { alg: 'ES256', public_key: device.publicKey });
  assert.deepEqual(f.metadata, { os: 'Android' });
  assert.equal(f.config.notification_platform, 'fcm');
  const v = await svc(dc).entities(identity).factors(f.sid).update({ authPayload: device.sign(f.sid) });
  assert.equal(v.status, 'verified');

  // The app's backend asks; the device answers with the token alone.
  const c = await svc().entities(identity).challenges.create({
    factorSid: f.sid,
    'details.message': 'Log in to Owl Bank?',
    'details.fields': [{ label: 'IP', value: '10.0.0.1' }, { label: 'City', value: 'Berlin' }],
    hiddenDetails: { ip: '10.0.0.1' },
  });
  assert.equal(c.status, 'pending');
  assert.deepEqual(c.details, {
    message: 'Log in to Owl Bank?',
    fields: [{ label: 'IP', value: '10.0.0.1' }, { label: 'City', value: 'Berlin' }],
  });
  assert.deepEqual(c.hiddenDetails, { ip: '10.0.0.1' });
  const pending = await svc(dc).entities(identity).challenges.list({ status: 'pending' });
  assert.deepEqual(pending.map((x) => x.sid), [c.sid]);

  // A signature by another key: 403 60324.
  await expectRestError(answer(dc, identity, c.sid, newDevice(), 'approved'),
    { status: 403, code: 60324 }, 'other key');
  const approved = await answer(dc, identity, c.sid, device, 'approved');
  assert.equal(approved.status, 'approved');
  assert.ok(approved.dateResponded instanceof Date);
  assert.deepEqual(approved.metadata, { os: 'Android' });

  const d = await svc().entities(identity).challenges.create({ factorSid: f.sid, 'details.message': 'Pay 10 EUR?' });
  const n = await svc().entities(identity).challenges(d.sid).notifications.create({ ttl: 120 });
  assert.match(n.sid, SID('NT'));
  assert.equal(n.challengeSid, d.sid);
  assert.equal(n.ttl, 120);
  assert.equal(n.priority, 'high');
  const denied = await answer(dc, identity, d.sid, device, 'denied');
  assert.equal(denied.status, 'denied');

  // The token reaches nothing else.
  await expectRestError(dc.verify.v2.services.list(), { status: 403, code: 20403 }, 'services');
  await expectRestError(svc(dc).entities(identity).factors.list(), { status: 403, code: 20403 });
  await expectRestError(svc(dc).entities(freshIdentity()).challenges.list(),
    { status: 403, code: 20403 }, 'another identity');
  await expectRestError(svc(dc).webhooks.list(), { status: 403, code: 20403 });
  await expectRestError(deviceClient(`${at.token}x`).verify.v2.services(service.sid)
    .entities(identity).challenges.list(), { status: 401, code: 20003 });
});

test('access tokens: parameters are checked', async () => {
  await expectRestError(svc().accessTokens.create({ identity: freshIdentity(), factorType: 'totp' }),
    { status: 400, code: 60200 });
  await expectRestError(svc().accessTokens.create({ identity: freshIdentity(), factorType: 'push', ttl: 30 }),
    { status: 400, code: 60200 });
  const t = await svc().accessTokens.create({ identity: freshIdentity(), factorType: 'push' });
  assert.equal(t.ttl, 60);
  assert.equal(t.factorFriendlyName, null);
  await expectRestError(svc().accessTokens(`YK${'0'.repeat(32)}`).fetch(), { status: 404, code: 20404 });
});

// --- webhooks --------------------------------------------------------------

test('webhooks: create, fetch, list, update, remove', async () => {
  const w = await svc().webhooks.create({
    friendlyName: 'Owl Bank events',
    eventTypes: ['factor.verified', 'challenge.approved', 'challenge.denied'],
    webhookUrl: 'https://owlbank.example/verify-events',
    versionParam: 'v2',
  });
  assert.match(w.sid, SID('YW'));
  assert.deepEqual(w.eventTypes, ['factor.verified', 'challenge.approved', 'challenge.denied']);
  assert.equal(w.status, 'enabled');
  assert.equal(w.version, 'v2');
  assert.equal(w.webhookMethod, 'POST');
  assert.equal(w.url, `${server.baseUrl}/v2/Services/${service.sid}/Webhooks/${w.sid}`);
  const fetched = await svc().webhooks(w.sid).fetch();
  assert.equal(fetched.friendlyName, 'Owl Bank events');
  const updated = await svc().webhooks(w.sid).update({ status: 'disabled', eventTypes: ['*'] });
  assert.equal(updated.status, 'disabled');
  assert.deepEqual(updated.eventTypes, ['*']);
  const list = await svc().webhooks.list();
  assert.ok(list.some((x) => x.sid === w.sid));
  await expectRestError(svc().webhooks.create({
    friendlyName: 'bad', eventTypes: ['factor.exploded'], webhookUrl: 'https://owlbank.example/',
  }), { status: 400, code: 60200 });
  await expectRestError(svc().webhooks.create({
    friendlyName: 'bad', eventTypes: ['*'], webhookUrl: 'owlbank.example',
  }), { status: 400, code: 60200 });
  assert.equal(await svc().webhooks(w.sid).remove(), true);
  await expectRestError(svc().webhooks(w.sid).fetch(), { status: 404, code: 20404 });
});
