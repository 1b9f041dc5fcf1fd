'use strict';
// The official twilio-node SDK (6.3.1), unchanged, driving a real verifyd process.
// Run from /work/main:  VERIFYD_BIN=build/asan/verifyd node --test test/sdk/node/
//
// Expected values come from docs/contract.md and /work/shared/spec/VERIFY_API.md.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { RestException } = require('twilio');

const {
  startServer, makeClient, newAccount, newApiKey, latestCode, latestMessage, sleep,
} = require('./harness');

const SID = (prefix) => new RegExp(`^${prefix}[0-9a-fA-F]{32}$`);
const TWILIO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

let server;
let client;

before(async () => {
  server = await startServer();
  client = makeClient(server);
});

after(async () => {
  if (server) await server.stop();
});

// --- helpers ---------------------------------------------------------------

let phoneCounter = 0;
/** A fresh E.164 number per call, so verifications never collide between tests. */
function freshPhone() {
  phoneCounter += 1;
  return `+1501712${String(2000 + phoneCounter).padStart(4, '0')}`;
}

let serviceCounter = 0;
async function newService(params = {}, c = client) {
  serviceCounter += 1;
  return c.verify.v2.services.create({ friendlyName: `Node Svc ${serviceCounter}`, ...params });
}

function svc(sid, c = client) {
  return c.verify.v2.services(sid);
}

/** The raw response of the last request the client made (statusCode, body, headers). */
function lastResponse(c = client) {
  return c.httpClient.lastResponse;
}

function rawBody(c = client) {
  const body = lastResponse(c).body;
  return typeof body === 'string' && body.length ? JSON.parse(body) : body;
}

/**
 * Awaits `promise`, expects it to reject with a twilio RestException carrying exactly the
 * HTTP status, Twilio code and more_info of the contract's error envelope.
 */
async function expectRestError(promise, { status, code, message }, what = '') {
  let result;
  let err;
  try {
    result = await promise;
  } catch (e) {
    err = e;
  }
  const label = what ? `${what}: ` : '';
  if (!err) {
    assert.fail(`${label}expected RestException ${status}/${code}, but the call succeeded: ` +
      `${JSON.stringify(result && result.toJSON ? result.toJSON() : result)}`);
  }
  assert.ok(err instanceof RestException,
    `${label}expected a RestException ${status}/${code}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
  assert.deepEqual({ status: err.status, code: err.code }, { status, code },
    `${label}wrong status/code (message: ${JSON.stringify(err.message)})`);
  assert.equal(err.moreInfo, `https://www.twilio.com/docs/errors/${code}`, `${label}more_info`);
  if (message instanceof RegExp) assert.match(err.message, message, `${label}message`);
  else if (typeof message === 'string') assert.equal(err.message, message, `${label}message`);
  return err;
}

/** A code of the same length as `code` that is certainly different. */
function wrongCode(code) {
  const first = code[0] === '9' ? '1' : String(Number(code[0]) + 1);
  return first + code.slice(1);
}

// --- bootstrap ---------------------------------------------------------------

test('bootstrap: the printed service belongs to the printed account', async () => {
  assert.match(server.accountSid, SID('AC'));
  assert.match(server.serviceSid, SID('VA'));
  assert.match(server.baseUrl, /^http:\/\/127\.0\.0\.1:[1-9][0-9]*$/);
  const s = await svc(server.serviceSid).fetch();
  assert.equal(lastResponse().statusCode, 200);
  assert.equal(s.sid, server.serviceSid);
  assert.equal(s.accountSid, server.accountSid);
  assert.equal(s.url, `${server.baseUrl}/v2/Services/${server.serviceSid}`);
});

// --- services ----------------------------------------------------------------

test('service CRUD: create with many fields, fetch, update, remove', async () => {
  const created = await client.verify.v2.services.create({
    friendlyName: 'Node CRUD Service',
    codeLength: 8,
    lookupEnabled: true,
    skipSmsToLandlines: true,
    dtmfInputRequired: true,
    psd2Enabled: false,
    doNotShareWarningEnabled: true,
    customCodeEnabled: true,
    'totp.issuer': 'AcmeNode',
    'totp.timeStep': 45,
    'totp.codeLength': 7,
    'totp.skew': 2,
  });
  assert.equal(lastResponse().statusCode, 201, 'create service answers 201');
  const raw = rawBody();
  assert.match(raw.date_created, TWILIO_DATE, 'raw date_created is YYYY-MM-DDTHH:MM:SSZ');
  assert.match(raw.date_updated, TWILIO_DATE, 'raw date_updated is YYYY-MM-DDTHH:MM:SSZ');

  const sid = created.sid;
  assert.match(sid, SID('VA'));

  const expectFields = (s, expected, label) => {
    const actual = {
      sid: s.sid,
      accountSid: s.accountSid,
      friendlyName: s.friendlyName,
      codeLength: s.codeLength,
      lookupEnabled: s.lookupEnabled,
      skipSmsToLandlines: s.skipSmsToLandlines,
      dtmfInputRequired: s.dtmfInputRequired,
      psd2Enabled: s.psd2Enabled,
      doNotShareWarningEnabled: s.doNotShareWarningEnabled,
      customCodeEnabled: s.customCodeEnabled,
      totp: s.totp && {
        issuer: s.totp.issuer,
        time_step: s.totp.time_step,
        code_length: s.totp.code_length,
        skew: s.totp.skew,
      },
      url: s.url,
    };
    assert.deepEqual(actual, expected, label);
    assert.ok(s.dateCreated instanceof Date && !Number.isNaN(s.dateCreated.getTime()),
      `${label}: dateCreated is a Date`);
    assert.ok(s.dateUpdated instanceof Date && !Number.isNaN(s.dateUpdated.getTime()),
      `${label}: dateUpdated is a Date`);
    assert.ok(s.dateUpdated.getTime() >= s.dateCreated.getTime(), `${label}: dateUpdated >= dateCreated`);
  };

  const expected = {
    sid,
    accountSid: server.accountSid,
    friendlyName: 'Node CRUD Service',
    codeLength: 8,
    lookupEnabled: true,
    skipSmsToLandlines: true,
    dtmfInputRequired: true,
    psd2Enabled: false,
    doNotShareWarningEnabled: true,
    customCodeEnabled: true,
    totp: { issuer: 'AcmeNode', time_step: 45, code_length: 7, skew: 2 },
    url: `${server.baseUrl}/v2/Services/${sid}`,
  };
  expectFields(created, expected, 'create response');
  assert.equal(typeof created.links, 'object');
  assert.ok(created.links !== null, 'links present');
  assert.equal(created.links.verifications, `${server.baseUrl}/v2/Services/${sid}/Verifications`);
  assert.equal(created.links.verification_checks, `${server.baseUrl}/v2/Services/${sid}/VerificationCheck`);

  const fetched = await svc(sid).fetch();
  assert.equal(lastResponse().statusCode, 200);
  expectFields(fetched, expected, 'fetch response');
  assert.equal(fetched.dateCreated.getTime(), created.dateCreated.getTime(), 'dateCreated is stable');

  const updated = await svc(sid).update({
    friendlyName: 'Node CRUD Renamed',
    codeLength: 6,
    doNotShareWarningEnabled: false,
    'totp.issuer': 'AcmeNode2',
  });
  assert.equal(lastResponse().statusCode, 200, 'update answers 200');
  const expectedAfterUpdate = {
    ...expected,
    friendlyName: 'Node CRUD Renamed',
    codeLength: 6,
    doNotShareWarningEnabled: false,
    totp: { ...expected.totp, issuer: 'AcmeNode2' },
  };
  expectFields(updated, expectedAfterUpdate, 'update response');
  expectFields(await svc(sid).fetch(), expectedAfterUpdate, 'fetch after update');

  const removed = await svc(sid).remove();
  assert.equal(removed, true);
  assert.equal(lastResponse().statusCode, 204, 'delete answers 204');
  const delBody = lastResponse().body;
  assert.ok(delBody === '' || delBody === undefined || delBody === null, `delete body is empty: ${JSON.stringify(delBody)}`);

  await expectRestError(svc(sid).fetch(), {
    status: 404, code: 20404, message: `The requested resource /Services/${sid} was not found`,
  }, 'fetch after remove');
  await expectRestError(svc(sid).remove(), { status: 404, code: 20404 }, 'second remove');
});

test('paging: list and page()/nextPage() across more than two pages', async () => {
  const tag = `Pg${Date.now() % 100000}`;
  const mine = [];
  for (let i = 0; i < 7; i++) {
    mine.push((await client.verify.v2.services.create({ friendlyName: `${tag} ${i}` })).sid);
  }

  const httpClient = client.httpClient;
  const startIdx = httpClient.requests.length;
  const all = await client.verify.v2.services.list({ pageSize: 2 });
  const traced = httpClient.requests.slice(startIdx);
  // >= 8 services (7 + bootstrap) at 2 per page: at least ceil(n/2) requests (one more if the
  // server cannot tell that a full last page is the last one).
  assert.ok(traced.length >= 4, `list({pageSize:2}) over >= 8 services needs >= 4 requests, made ${traced.length}`);
  assert.equal(traced[0].uri, `${server.baseUrl}/v2/Services`);
  assert.equal(traced[0].params && traced[0].params.PageSize, 2, 'first request sends PageSize=2');
  for (const r of traced.slice(1)) {
    assert.ok(r.uri.startsWith(`${server.baseUrl}/v2/Services?`), `next page request went to ${r.uri}`);
    assert.match(r.uri, /[?&]PageSize=2(&|$)/, `next_page_url carries PageSize: ${r.uri}`);
  }

  const sids = all.map((s) => s.sid);
  assert.ok(traced.length >= Math.ceil(sids.length / 2) && traced.length <= Math.ceil(sids.length / 2) + 1,
    `${sids.length} services at PageSize=2 took ${traced.length} requests`);
  assert.equal(new Set(sids).size, sids.length, 'no service listed twice');
  for (const sid of mine) assert.ok(sids.includes(sid), `list contains ${sid}`);
  assert.ok(sids.includes(server.serviceSid), 'list contains the bootstrap service');
  for (const s of all) assert.equal(s.accountSid, server.accountSid);

  // Walk page by page.
  let page = await client.verify.v2.services.page({ pageSize: 2 });
  const walked = [];
  let pages = 0;
  let prevSids = new Set();
  while (page) {
    const meta = page._payload.meta;
    assert.ok(meta, 'page has meta');
    assert.equal(meta.key, 'services');
    assert.equal(meta.page, pages, 'meta.page counts from 0');
    assert.equal(meta.page_size, 2);
    assert.ok(meta.url.startsWith(`${server.baseUrl}/v2/Services?`), `meta.url absolute on base: ${meta.url}`);
    assert.ok(meta.first_page_url.startsWith(`${server.baseUrl}/v2/Services?`),
      `first_page_url absolute on base: ${meta.first_page_url}`);
    if (pages === 0) {
      assert.equal(meta.previous_page_url, null, 'no previous page on page 0');
    } else {
      assert.ok(typeof meta.previous_page_url === 'string' &&
        meta.previous_page_url.startsWith(`${server.baseUrl}/v2/Services?`),
        `previous_page_url absolute on base: ${meta.previous_page_url}`);
    }
    if (meta.next_page_url !== null) {
      assert.ok(meta.next_page_url.startsWith(`${server.baseUrl}/v2/Services?`),
        `next_page_url absolute on base: ${meta.next_page_url}`);
      assert.equal(page.instances.length, 2, 'full page before the last');
    } else {
      assert.ok(page.instances.length <= 2, 'last page has at most 2 records');
      if (pages === 0) assert.ok(page.instances.length >= 1, 'page 0 is not empty');
    }
    const here = page.instances.map((s) => s.sid);
    for (const s of here) assert.ok(!prevSids.has(s), `page ${pages} repeats ${s} from the previous page`);
    prevSids = new Set(here);
    walked.push(...here);
    pages += 1;
    assert.ok(pages < 100, 'paging terminates');
    page = await page.nextPage();
  }
  assert.ok(pages > 2, `more than two pages (got ${pages})`);
  assert.deepEqual([...walked].sort(), [...sids].sort(), 'page walk sees the same services as list()');
});

// --- verification lifecycle ---------------------------------------------------

test('lifecycle: create, wrong code, right code, then the verification is gone', async () => {
  const s = await newService({ friendlyName: 'Node Lifecycle' });
  const to = '+15017122661';
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  assert.equal(lastResponse().statusCode, 201, 'verification create answers 201');
  assert.match(rawBody().date_created, TWILIO_DATE);
  assert.match(v.sid, SID('VE'));
  assert.equal(v.status, 'pending');
  assert.equal(v.valid, false);
  assert.equal(v.to, to);
  assert.equal(v.channel, 'sms');
  assert.equal(v.serviceSid, s.sid);
  assert.equal(v.accountSid, server.accountSid);
  assert.equal(v.url, `${server.baseUrl}/v2/Services/${s.sid}/Verifications/${v.sid}`);
  assert.ok(v.dateCreated instanceof Date && !Number.isNaN(v.dateCreated.getTime()));
  assert.ok(Array.isArray(v.sendCodeAttempts), 'sendCodeAttempts is an array');
  assert.equal(v.sendCodeAttempts.length, 1);
  assert.match(v.sendCodeAttempts[0].attempt_sid, SID('VL'));

  const msg = await latestMessage(server, to);
  assert.ok(msg, 'dev outbox has a message');
  assert.equal(msg.to, to);
  assert.equal(msg.verification_sid, v.sid);
  assert.equal(msg.service_sid, s.sid);
  const code = await latestCode(server, to);
  assert.equal(code.length, s.codeLength, 'code has the service code length');
  assert.equal(msg.body, `Your Node Lifecycle verification code is: ${code}`);

  // fetch while pending
  const f = await svc(s.sid).verifications(v.sid).fetch();
  assert.equal(f.sid, v.sid);
  assert.equal(f.status, 'pending');

  const bad = await svc(s.sid).verificationChecks.create({ to, code: wrongCode(code) });
  assert.equal(lastResponse().statusCode, 200, 'VerificationCheck answers 200');
  assert.equal(bad.sid, v.sid);
  assert.equal(bad.status, 'pending');
  assert.equal(bad.valid, false);

  const good = await svc(s.sid).verificationChecks.create({ to, code });
  assert.equal(lastResponse().statusCode, 200, 'VerificationCheck answers 200');
  assert.equal(good.sid, v.sid);
  assert.equal(good.status, 'approved');
  assert.equal(good.valid, true);
  assert.equal(good.to, to);
  assert.equal(good.channel, 'sms');
  assert.equal(good.serviceSid, s.sid);
  assert.equal(good.accountSid, server.accountSid);

  await expectRestError(svc(s.sid).verificationChecks.create({ to, code }),
    { status: 404, code: 20404, message: /^The requested resource \/Services\/VA[0-9a-fA-F]{32}\/\S+ was not found$/ },
    'check after approval');
  await expectRestError(svc(s.sid).verifications(v.sid).fetch(), {
    status: 404, code: 20404,
    message: `The requested resource /Services/${s.sid}/Verifications/${v.sid} was not found`,
  }, 'fetch after approval');
});

test('fetch a verification by its To instead of the SID', async () => {
  const s = await newService();
  const to = freshPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  const f = await svc(s.sid).verifications(to).fetch();
  assert.equal(f.sid, v.sid);
  assert.equal(f.to, to);
  assert.equal(f.status, 'pending');
});

test('message text follows code length and the do-not-share flag', async () => {
  const s = await newService({ friendlyName: 'Node Eight', codeLength: 8, doNotShareWarningEnabled: true });
  const to = freshPhone();
  await svc(s.sid).verifications.create({ to, channel: 'sms' });
  const code = await latestCode(server, to);
  assert.match(code, /^[0-9]{8}$/);
  const msg = await latestMessage(server, to);
  assert.equal(msg.body, `Your Node Eight verification code is: ${code}. ` +
    "Don't share this code with anyone; our employees will never ask for the code.");
});

test('channels: call, email and whatsapp start; fax is refused with 60200', async () => {
  const s = await newService();
  const cases = [
    { to: freshPhone(), channel: 'call' },
    { to: 'node.user@example.com', channel: 'email' },
    { to: freshPhone(), channel: 'whatsapp' },
  ];
  for (const c of cases) {
    const v = await svc(s.sid).verifications.create(c);
    assert.equal(lastResponse().statusCode, 201, `${c.channel}: 201`);
    assert.match(v.sid, SID('VE'), `${c.channel}: sid`);
    assert.equal(v.status, 'pending', `${c.channel}: status`);
    assert.equal(v.channel, c.channel, `${c.channel}: channel`);
    assert.equal(v.to, c.to, `${c.channel}: to`);
    const msg = await latestMessage(server, c.to);
    assert.ok(msg, `${c.channel}: outbox has a message`);
    assert.equal(msg.verification_sid, v.sid);
    assert.equal(msg.channel, c.channel, `${c.channel}: outbox channel`);
  }
  await expectRestError(svc(s.sid).verifications.create({ to: freshPhone(), channel: 'fax' }), {
    status: 400, code: 60200, message: /^Invalid parameter: Channel\b/,
  }, 'channel fax');
});

test('resend: same sid and code, one more attempt; the 6th send is 429/60203', async () => {
  const s = await newService();
  const to = freshPhone();
  const v1 = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  const code1 = await latestCode(server, to);
  const msg1 = await latestMessage(server, to);

  const v2 = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  assert.equal(v2.sid, v1.sid, 'resend returns the same verification');
  assert.equal(v2.status, 'pending');
  assert.equal(v2.sendCodeAttempts.length, 2);
  const msg2 = await latestMessage(server, to);
  assert.notEqual(msg2.sid, msg1.sid, 'resend puts a new message in the outbox');
  assert.equal(await latestCode(server, to), code1, 'resend delivers the same code');

  for (let n = 3; n <= 5; n++) {
    const vn = await svc(s.sid).verifications.create({ to, channel: 'sms' });
    assert.equal(vn.sid, v1.sid, `send ${n}: same sid`);
    assert.equal(vn.sendCodeAttempts.length, n, `send ${n}: attempts`);
  }
  await expectRestError(svc(s.sid).verifications.create({ to, channel: 'sms' }), {
    status: 429, code: 60203, message: 'Max send attempts reached',
  }, '6th send');

  // The refused send does not end the verification: the code still works.
  const ok = await svc(s.sid).verificationChecks.create({ to, code: code1 });
  assert.equal(ok.status, 'approved');
});

test('check by VerificationSid', async () => {
  const s = await newService();
  const to = freshPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  const code = await latestCode(server, to);
  const bad = await svc(s.sid).verificationChecks.create({ verificationSid: v.sid, code: wrongCode(code) });
  assert.equal(bad.status, 'pending');
  assert.equal(bad.valid, false);
  const c = await svc(s.sid).verificationChecks.create({ verificationSid: v.sid, code });
  assert.equal(c.sid, v.sid);
  assert.equal(c.to, to);
  assert.equal(c.status, 'approved');
  assert.equal(c.valid, true);
});

test('update: cancel ends the verification, approve works, bad status is 60200', async () => {
  const s = await newService();

  const toA = freshPhone();
  const a = await svc(s.sid).verifications.create({ to: toA, channel: 'sms' });
  const canceled = await svc(s.sid).verifications(a.sid).update({ status: 'canceled' });
  assert.equal(lastResponse().statusCode, 200, 'update answers 200');
  assert.equal(canceled.sid, a.sid);
  assert.equal(canceled.status, 'canceled');
  assert.equal(canceled.valid, false);
  await expectRestError(svc(s.sid).verifications(a.sid).fetch(), { status: 404, code: 20404 }, 'fetch after cancel');
  const codeA = await latestCode(server, toA);
  await expectRestError(svc(s.sid).verificationChecks.create({ to: toA, code: codeA }),
    { status: 404, code: 20404 }, 'check after cancel');

  const toB = freshPhone();
  const b = await svc(s.sid).verifications.create({ to: toB, channel: 'sms' });
  const approved = await svc(s.sid).verifications(b.sid).update({ status: 'approved' });
  assert.equal(lastResponse().statusCode, 200);
  assert.equal(approved.sid, b.sid);
  assert.equal(approved.status, 'approved');
  assert.equal(approved.valid, true);
  await expectRestError(svc(s.sid).verifications(b.sid).fetch(), { status: 404, code: 20404 }, 'fetch after approve');

  const toC = freshPhone();
  const c = await svc(s.sid).verifications.create({ to: toC, channel: 'sms' });
  await expectRestError(svc(s.sid).verifications(c.sid).update({ status: 'bogus' }), {
    status: 400, code: 60200, message: /^Invalid parameter: Status\b/,
  }, 'status bogus');
  const still = await svc(s.sid).verifications(c.sid).fetch();
  assert.equal(still.status, 'pending', 'a refused update leaves the verification pending');

  await expectRestError(svc(s.sid).verifications(`VE${'0'.repeat(32)}`).update({ status: 'canceled' }),
    { status: 404, code: 20404 }, 'update unknown verification');
});

test('five wrong checks: the 5th is max_attempts_reached, the 6th is 429/60202', async () => {
  const s = await newService();
  const to = freshPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  const code = await latestCode(server, to);
  const wrong = wrongCode(code);
  for (let i = 1; i <= 4; i++) {
    const c = await svc(s.sid).verificationChecks.create({ to, code: wrong });
    assert.equal(c.status, 'pending', `wrong check ${i}`);
    assert.equal(c.valid, false, `wrong check ${i}`);
  }
  const fifth = await svc(s.sid).verificationChecks.create({ to, code: wrong });
  assert.equal(lastResponse().statusCode, 200, '5th wrong check answers 200');
  assert.equal(fifth.sid, v.sid);
  assert.equal(fifth.status, 'max_attempts_reached');
  assert.equal(fifth.valid, false);

  await expectRestError(svc(s.sid).verificationChecks.create({ to, code: wrong }), {
    status: 429, code: 60202, message: 'Max check attempts reached',
  }, '6th wrong check');
  await expectRestError(svc(s.sid).verificationChecks.create({ to, code }), {
    status: 429, code: 60202, message: 'Max check attempts reached',
  }, 'right code after max attempts');
});

test('20 concurrent wrong checks: at most 5 are counted, the rest are 429/60202', async () => {
  const s = await newService();
  const to = freshPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  const code = await latestCode(server, to);
  const wrong = wrongCode(code);

  const results = await Promise.allSettled(
    Array.from({ length: 20 }, () => svc(s.sid).verificationChecks.create({ verificationSid: v.sid, code: wrong })),
  );
  const fulfilled = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const rejected = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  const restErrors = rejected.filter((e) => e instanceof RestException);
  const transport = rejected.filter((e) => !(e instanceof RestException));

  const unexpected = restErrors.filter((e) => e.status !== 429 || e.code !== 60202);
  assert.deepEqual(unexpected.map((e) => `${e.status}/${e.code} ${e.message}`), [],
    'every rejection is 429/60202');
  assert.ok(fulfilled.length <= 5, `at most 5 checks may be counted, ${fulfilled.length} were answered 200: ` +
    JSON.stringify(fulfilled.map((c) => c.status)));
  if (transport.length === 0) {
    assert.equal(fulfilled.length, 5, 'with all 20 requests answered, exactly 5 are 200');
    assert.equal(restErrors.length, 15);
    const statuses = fulfilled.map((c) => c.status).sort();
    assert.deepEqual(statuses, ['max_attempts_reached', 'pending', 'pending', 'pending', 'pending'],
      'four pending answers and one max_attempts_reached');
  } else {
    // A request that never got an answer is itself suspicious; report it.
    assert.fail(`transport errors on concurrent checks: ${transport.map((e) => e.message).join('; ')}`);
  }
  for (const c of fulfilled) assert.equal(c.valid, false);

  let afterwards;
  try {
    afterwards = await svc(s.sid).verificationChecks.create({ verificationSid: v.sid, code });
  } catch (e) {
    assert.ok(e instanceof RestException, `right code afterwards: ${e.message}`);
    assert.ok((e.status === 429 && e.code === 60202) || (e.status === 404 && e.code === 20404),
      `right code afterwards must be 429/60202 or 404/20404, got ${e.status}/${e.code}`);
  }
  assert.equal(afterwards, undefined, `right code afterwards must not succeed, got status ${afterwards && afterwards.status}`);
});

test('custom code: accepted with customCodeEnabled, 60204 without', async () => {
  const s = await newService({ customCodeEnabled: true });
  assert.equal(s.customCodeEnabled, true);
  const to = freshPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms', customCode: '867530' });
  assert.equal(v.status, 'pending');
  assert.equal(await latestCode(server, to), '867530', 'the custom code is delivered');
  const c = await svc(s.sid).verificationChecks.create({ to, code: '867530' });
  assert.equal(c.sid, v.sid);
  assert.equal(c.status, 'approved');
  assert.equal(c.valid, true);

  const plain = await newService();
  await expectRestError(
    svc(plain.sid).verifications.create({ to: freshPhone(), channel: 'sms', customCode: '867530' }),
    { status: 400, code: 60204, message: /^Service does not support this feature/ },
    'custom code on a plain service');
});

// --- errors, auth, isolation ----------------------------------------------------

test('invalid To is 400/60200 naming To', async () => {
  const s = await newService();
  for (const to of ['+1', 'abc']) {
    await expectRestError(svc(s.sid).verifications.create({ to, channel: 'sms' }), {
      status: 400, code: 60200, message: /^Invalid parameter: To\b/,
    }, `To=${to}`);
  }
});

test('check: code too short is 400/60200; unknown To is 404/20404', async () => {
  const s = await newService();
  const to = freshPhone();
  await svc(s.sid).verifications.create({ to, channel: 'sms' });
  await expectRestError(svc(s.sid).verificationChecks.create({ to, code: '12' }), {
    status: 400, code: 60200, message: /^Invalid parameter: Code\b/,
  }, 'code 12');
  // The refused check did not consume the verification.
  const code = await latestCode(server, to);
  const ok = await svc(s.sid).verificationChecks.create({ to, code });
  assert.equal(ok.status, 'approved');

  await expectRestError(svc(s.sid).verificationChecks.create({ to: freshPhone(), code: '123456' }),
    { status: 404, code: 20404 }, 'check for a To without a verification');
});

test('wrong credentials are 401/20003', async () => {
  const bad = makeClient(server, server.accountSid, 'not-the-token');
  await expectRestError(bad.verify.v2.services.list(), {
    status: 401, code: 20003, message: 'Authenticate',
  }, 'list with a wrong token');
  await expectRestError(bad.verify.v2.services(server.serviceSid).fetch(),
    { status: 401, code: 20003 }, 'fetch with a wrong token');
  const www = bad.httpClient.lastResponse.headers['www-authenticate'];
  assert.ok(www && /^Basic/i.test(www), `WWW-Authenticate header: ${www}`);

  const unknown = makeClient(server, `AC${'0'.repeat(32)}`, server.authToken);
  await expectRestError(unknown.verify.v2.services.list(), { status: 401, code: 20003 }, 'unknown account');
});

test('a second account cannot see or use the first account\'s services', async () => {
  const s1 = await newService({ friendlyName: 'Node Acct One' });
  const to = freshPhone();
  await svc(s1.sid).verifications.create({ to, channel: 'sms' });

  const acct2 = await newAccount(server);
  assert.match(acct2.accountSid, SID('AC'));
  assert.notEqual(acct2.accountSid, server.accountSid);
  const c2 = makeClient(server, acct2.accountSid, acct2.authToken);

  await expectRestError(svc(server.serviceSid, c2).fetch(), {
    status: 404, code: 20404, message: `The requested resource /Services/${server.serviceSid} was not found`,
  }, 'other account fetches the bootstrap service');
  await expectRestError(svc(s1.sid, c2).fetch(), { status: 404, code: 20404 }, 'other account fetches s1');
  await expectRestError(svc(s1.sid, c2).verifications.create({ to, channel: 'sms' }),
    { status: 404, code: 20404 }, 'other account starts a verification on s1');
  await expectRestError(svc(s1.sid, c2).update({ friendlyName: 'hijacked' }),
    { status: 404, code: 20404 }, 'other account updates s1');
  await expectRestError(svc(s1.sid, c2).remove(), { status: 404, code: 20404 }, 'other account removes s1');

  const list2 = await c2.verify.v2.services.list();
  const sids2 = list2.map((s) => s.sid);
  assert.ok(!sids2.includes(server.serviceSid), 'bootstrap service not in the other account\'s list');
  assert.ok(!sids2.includes(s1.sid), 's1 not in the other account\'s list');

  const own = await newService({ friendlyName: 'Node Acct Two' }, c2);
  assert.equal(own.accountSid, acct2.accountSid);
  const list1 = await client.verify.v2.services.list();
  assert.ok(!list1.map((s) => s.sid).includes(own.sid), 'account 1 does not see account 2\'s service');
  assert.ok((await c2.verify.v2.services.list()).map((s) => s.sid).includes(own.sid));

  // The dev outbox is per account, too.
  assert.equal(await latestMessage(server, to, acct2.accountSid, acct2.authToken), null,
    'account 2 does not see account 1\'s outbox');
  // s1 is untouched.
  assert.equal((await svc(s1.sid).fetch()).friendlyName, 'Node Acct One');
});

test('API key (SK + secret) authenticates for the key\'s account', async () => {
  const key = await newApiKey(server, server.accountSid);
  assert.match(key.apiKeySid, SID('SK'));
  const kc = makeClient(server, key.apiKeySid, key.apiKeySecret, { accountSid: server.accountSid });
  const list = await kc.verify.v2.services.list();
  assert.equal(kc.httpClient.lastResponse.statusCode, 200);
  assert.ok(list.map((s) => s.sid).includes(server.serviceSid), 'API key lists the account\'s services');
  const created = await newService({ friendlyName: 'Node Via Key' }, kc);
  assert.equal(created.accountSid, server.accountSid);

  const badKey = makeClient(server, key.apiKeySid, 'wrong-secret', { accountSid: server.accountSid });
  await expectRestError(badKey.verify.v2.services.list(), { status: 401, code: 20003 }, 'API key with a wrong secret');
});

test('unknown service is 404/20404', async () => {
  const none = `VA${'0'.repeat(32)}`;
  await expectRestError(svc(none).fetch(), {
    status: 404, code: 20404, message: `The requested resource /Services/${none} was not found`,
  }, 'fetch');
  // The envelope is exactly {code, message, more_info, status}.
  const raw = rawBody();
  assert.deepEqual(Object.keys(raw).sort(), ['code', 'message', 'more_info', 'status']);
  assert.deepEqual({ code: raw.code, status: raw.status, more_info: raw.more_info },
    { code: 20404, status: 404, more_info: 'https://www.twilio.com/docs/errors/20404' });
  await expectRestError(svc(none).verifications.create({ to: freshPhone(), channel: 'sms' }),
    { status: 404, code: 20404 }, 'verification on an unknown service');
  await expectRestError(svc(none).verificationChecks.create({ to: freshPhone(), code: '123456' }),
    { status: 404, code: 20404 }, 'check on an unknown service');
  await expectRestError(svc('XX-not-a-sid').fetch(), { status: 404, code: 20404 }, 'malformed sid');
});

// --- expiry (own server with a 2 s code TTL) ------------------------------------

test('expiry: with --code-ttl 2 a check after 3 s is 404/20404', async () => {
  const short = await startServer({ args: ['--code-ttl', '2'] });
  try {
    const c = makeClient(short);
    const to = freshPhone();
    const v = await c.verify.v2.services(short.serviceSid).verifications.create({ to, channel: 'sms' });
    assert.equal(v.status, 'pending');
    const code = await latestCode(short, to);
    await sleep(3000);
    await expectRestError(c.verify.v2.services(short.serviceSid).verificationChecks.create({ to, code }),
      { status: 404, code: 20404 }, 'check after expiry');
    await expectRestError(c.verify.v2.services(short.serviceSid).verifications(v.sid).fetch(),
      { status: 404, code: 20404 }, 'fetch after expiry');
  } finally {
    await short.stop();
  }
});

test('rate limits and buckets: CRUD through the SDK and RateLimits enforced on create', async () => {
  const s = await newService({ friendlyName: 'Node Limits' });
  const rl = await svc(s.sid).rateLimits.create({ uniqueName: 'end_user_ip', description: 'Limit by IP' });
  assert.match(rl.sid, SID('RK'));
  assert.equal(rl.uniqueName, 'end_user_ip');
  assert.equal(rl.description, 'Limit by IP');
  await expectRestError(svc(s.sid).rateLimits.create({ uniqueName: 'end_user_ip' }),
    { status: 400, code: 60208 }, 'duplicate unique name');

  const bucket = await svc(s.sid).rateLimits(rl.sid).buckets.create({ max: 2, interval: 60 });
  assert.match(bucket.sid, SID('BL'));
  assert.equal(bucket.max, 2);
  assert.equal(bucket.interval, 60);
  await expectRestError(svc(s.sid).rateLimits(rl.sid).buckets.create({ max: 3, interval: 60 }),
    { status: 400, code: 60211 }, 'duplicate interval');
  const listed = await svc(s.sid).rateLimits(rl.sid).buckets.list();
  assert.deepEqual(listed.map((b) => b.sid), [bucket.sid]);
  const updated = await svc(s.sid).rateLimits(rl.sid).buckets(bucket.sid).update({ max: 3 });
  assert.equal(updated.max, 3);

  const start = (ip) => svc(s.sid).verifications.create({
    to: freshPhone(), channel: 'sms', rateLimits: { end_user_ip: ip } });
  for (let i = 0; i < 3; i++) assert.equal((await start('198.51.100.7')).status, 'pending');
  await expectRestError(start('198.51.100.7'), { status: 429, code: 20429 }, 'fourth start from one IP');
  assert.equal((await start('198.51.100.8')).status, 'pending', 'another IP has its own bucket');

  assert.equal(await svc(s.sid).rateLimits(rl.sid).buckets(bucket.sid).remove(), true);
  assert.equal((await start('198.51.100.7')).status, 'pending', 'no bucket, no limit');
  assert.equal(await svc(s.sid).rateLimits(rl.sid).remove(), true);
  await expectRestError(svc(s.sid).rateLimits(rl.sid).fetch(), { status: 404, code: 20404 });
});

test('safe list through the SDK: create, fetch, remove', async () => {
  const phoneNumber = '+447400123999';
  const entry = await client.verify.v2.safelist.create({ phoneNumber });
  assert.match(entry.sid, SID('GN'));
  assert.equal(entry.phoneNumber, phoneNumber);
  assert.equal(entry.url, `${server.baseUrl}/v2/SafeList/Numbers/${phoneNumber}`);
  assert.equal((await client.verify.v2.safelist(phoneNumber).fetch()).sid, entry.sid);
  assert.equal(await client.verify.v2.safelist(phoneNumber).remove(), true);
  await expectRestError(client.verify.v2.safelist(phoneNumber).fetch(), { status: 404, code: 20404 });
  await expectRestError(client.verify.v2.safelist.create({ phoneNumber: '12' }), { status: 400, code: 60200 });
});

test('Lookups v2 through the SDK: formats and line type from offline metadata', async () => {
  const info = await client.lookups.v2.phoneNumbers('+447400123456').fetch({ fields: 'line_type_intelligence' });
  assert.equal(info.valid, true);
  assert.equal(info.countryCode, 'GB');
  assert.equal(info.nationalFormat, '07400 123456');
  assert.equal(info.lineTypeIntelligence.type, 'mobile');
  const invalid = await client.lookups.v2.phoneNumbers('+141599299600').fetch();
  assert.equal(invalid.valid, false);
  assert.deepEqual(invalid.validationErrors, ['TOO_LONG']);
});
