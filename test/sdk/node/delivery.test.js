'use strict';
// The delivery layer's resources (docs/delivery.md) through the official twilio-node SDK
// (6.3.1), unchanged, driving a real verifyd process with no provider configured (every
// message goes to the dev outbox only).
// Run from /work/main:
//   VERIFYD_BIN=build/asan/verifyd node --test --test-concurrency=1 test/sdk/node/

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { RestException } = require('twilio');

const { startServer, makeClient, latestCode, latestMessage, sleep } = require('./harness');

const SID = (prefix) => new RegExp(`^${prefix}[0-9a-fA-F]{32}$`);

// Twilio's 36 Verify locales (docs/delivery.md, "Message content").
const LOCALES = ['af', 'ar', 'ca', 'cs', 'da', 'de', 'el', 'en', 'en-GB', 'es', 'fi', 'fr', 'he',
  'hi', 'hr', 'hu', 'id', 'it', 'ja', 'ko', 'ms', 'nb', 'nl', 'pl', 'pt', 'pt-BR', 'ro', 'ru',
  'sv', 'th', 'tl', 'tr', 'vi', 'zh', 'zh-CN', 'zh-HK'];

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
// The server allows 5 pending verifications and 5 sends per number per 10 minutes: every
// verification in this file goes to a number of its own.

let frCounter = 0;
/** +33 6 12 34 56 NN: a valid French mobile number, new on each call. */
function frPhone() {
  frCounter += 1;
  assert.ok(frCounter < 100, 'out of French numbers');
  return `+336123456${String(frCounter).padStart(2, '0')}`;
}

let usCounter = 0;
/** +1 501 712 26NN: a valid US number, new on each call. */
function usPhone() {
  usCounter += 1;
  assert.ok(usCounter < 100, 'out of US numbers');
  return `+15017122${String(600 + usCounter)}`;
}

let ruCounter = 0;
/** +7 916 123 45NN: a valid Russian mobile number, new on each call. */
function ruPhone() {
  ruCounter += 1;
  assert.ok(ruCounter < 100, 'out of Russian numbers');
  return `+791612345${String(ruCounter).padStart(2, '0')}`;
}

let serviceCounter = 0;
async function newService(params = {}) {
  serviceCounter += 1;
  return client.verify.v2.services.create({ friendlyName: `Node Dlv ${serviceCounter}`, ...params });
}

function svc(sid) {
  return client.verify.v2.services(sid);
}

function lastResponse() {
  return client.httpClient.lastResponse;
}

async function expectRestError(promise, { status, code }, what) {
  let result;
  let err;
  try {
    result = await promise;
  } catch (e) {
    err = e;
  }
  if (!err) {
    assert.fail(`${what}: expected RestException ${status}/${code}, but the call succeeded: ` +
      `${JSON.stringify(result && result.toJSON ? result.toJSON() : result)}`);
  }
  assert.ok(err instanceof RestException,
    `${what}: expected a RestException ${status}/${code}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
  assert.deepEqual({ status: err.status, code: err.code }, { status, code },
    `${what}: wrong status/code (message: ${JSON.stringify(err.message)})`);
  assert.equal(err.moreInfo, `https://www.twilio.com/docs/errors/${code}`, `${what}: more_info`);
  return err;
}

function wrongCode(code) {
  const first = code[0] === '9' ? '1' : String(Number(code[0]) + 1);
  return first + code.slice(1);
}

async function attemptsOf(verificationSid) {
  return client.verify.v2.verificationAttempts.list({ verificationSid });
}

/** The sorted attempt sids a filtered list returns. */
async function listedSids(params) {
  const got = await client.verify.v2.verificationAttempts.list(params);
  return got.map((a) => a.sid).sort();
}

// --- attempts and summary -----------------------------------------------------

test('attempts: a verification shows up in the list, fetch, conversion and the summary', async () => {
  const s = await newService({ friendlyName: 'Node Attempts' });
  const to = frPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms' });
  assert.equal(v.sendCodeAttempts.length, 1);
  const attemptSid = v.sendCodeAttempts[0].attempt_sid;
  assert.match(attemptSid, SID('VL'));

  const listed = await attemptsOf(v.sid);
  assert.equal(lastResponse().statusCode, 200);
  assert.equal(listed.length, 1, `one attempt for ${v.sid}: ${JSON.stringify(listed)}`);
  const a = listed[0];
  assert.deepEqual({
    sid: a.sid,
    accountSid: a.accountSid,
    serviceSid: a.serviceSid,
    verificationSid: a.verificationSid,
    channel: a.channel,
    conversionStatus: a.conversionStatus,
    price: a.price,
    url: a.url,
  }, {
    sid: attemptSid,
    accountSid: server.accountSid,
    serviceSid: s.sid,
    verificationSid: v.sid,
    channel: 'sms',
    conversionStatus: 'unconverted',
    price: null,
    url: `${server.baseUrl}/v2/Attempts/${attemptSid}`,
  });
  assert.ok(a.dateCreated instanceof Date && !Number.isNaN(a.dateCreated.getTime()), 'dateCreated is a Date');
  assert.ok(Math.abs(Date.now() - a.dateCreated.getTime()) < 120_000, `dateCreated ${a.dateCreated} is now`);
  const cd = a.channelData;
  assert.deepEqual({
    verification_sid: cd.verification_sid,
    to: cd.to,
    message_status: cd.message_status,
    provider: cd.provider,
    country: cd.country,
    locale: cd.locale,
    code_length: cd.code_length,
    error_code: cd.error_code,
    outcome_unknown: cd.outcome_unknown,
  }, {
    verification_sid: v.sid,
    to,
    message_status: 'sent',
    provider: 'dev-outbox',
    country: 'FR',
    locale: 'fr',
    code_length: 6,
    error_code: null,
    outcome_unknown: false,
  }, `channel_data ${JSON.stringify(cd)}`);

  const f = await client.verify.v2.verificationAttempts(attemptSid).fetch();
  assert.equal(lastResponse().statusCode, 200);
  assert.equal(f.sid, attemptSid);
  assert.equal(f.verificationSid, v.sid);
  assert.equal(f.serviceSid, s.sid);
  assert.equal(f.conversionStatus, 'unconverted');
  assert.equal(f.channelData.message_status, 'sent');
  assert.equal(f.channelData.provider, 'dev-outbox');
  assert.equal(f.channelData.to, to);
  await expectRestError(client.verify.v2.verificationAttempts(`VL${'0'.repeat(32)}`).fetch(),
    { status: 404, code: 20404 }, 'fetch an unknown attempt');

  // A second verification on the same service that is never checked.
  const other = await svc(s.sid).verifications.create({ to: usPhone(), channel: 'sms' });

  const code = await latestCode(server, to);
  const bad = await svc(s.sid).verificationChecks.create({ to, code: wrongCode(code) });
  assert.equal(bad.status, 'pending');
  assert.equal((await client.verify.v2.verificationAttempts(attemptSid).fetch()).conversionStatus,
    'unconverted', 'a wrong code does not convert the attempt');
  const ok = await svc(s.sid).verificationChecks.create({ to, code });
  assert.equal(ok.status, 'approved');

  const converted = await client.verify.v2.verificationAttempts(attemptSid).fetch();
  assert.equal(converted.conversionStatus, 'converted');
  const otherAttempts = await attemptsOf(other.sid);
  assert.equal(otherAttempts.length, 1);
  assert.equal(otherAttempts[0].conversionStatus, 'unconverted');

  const summary = await client.verify.v2.verificationAttemptsSummary().fetch({ verifyServiceSid: s.sid });
  assert.equal(lastResponse().statusCode, 200);
  assert.deepEqual({
    totalAttempts: summary.totalAttempts,
    totalConverted: summary.totalConverted,
    totalUnconverted: summary.totalUnconverted,
    conversionRatePercentage: summary.conversionRatePercentage,
  }, { totalAttempts: 2, totalConverted: 1, totalUnconverted: 1, conversionRatePercentage: '50' });
  assert.equal(typeof summary.conversionRatePercentage, 'string', 'conversion_rate_percentage is a string');
  assert.equal(summary.url, `${server.baseUrl}/v2/Attempts/Summary`);

  const byCountry = await client.verify.v2.verificationAttemptsSummary()
    .fetch({ verifyServiceSid: s.sid, country: 'FR' });
  assert.deepEqual([byCountry.totalAttempts, byCountry.totalConverted, byCountry.conversionRatePercentage],
    [1, 1, '100'], 'summary of the French attempts only');

  const empty = await newService();
  const none = await client.verify.v2.verificationAttemptsSummary().fetch({ verifyServiceSid: empty.sid });
  assert.deepEqual([none.totalAttempts, none.totalConverted, none.totalUnconverted],
    [0, 0, 0], 'summary of a service without attempts');
});

test('attempts filters: channel, status, country, dateCreatedAfter/Before', async () => {
  const s = await newService({ friendlyName: 'Node Filters' });
  const toFr = frPhone();
  const vFr = await svc(s.sid).verifications.create({ to: toFr, channel: 'sms' });
  const vCall = await svc(s.sid).verifications.create({ to: usPhone(), channel: 'call' });
  const [aFr] = await attemptsOf(vFr.sid);
  const [aCall] = await attemptsOf(vCall.sid);
  assert.ok(aFr && aCall, 'both attempts are listed');
  assert.equal(aCall.channel, 'call');
  assert.equal(aCall.channelData.country, 'US');

  // Two seconds later (date_created has one-second resolution): a third attempt.
  const firstSecond = Math.max(aFr.dateCreated.getTime(), aCall.dateCreated.getTime());
  while (Date.now() < firstSecond + 2100) await sleep(50);
  const vUs = await svc(s.sid).verifications.create({ to: usPhone(), channel: 'sms' });
  const [aUs] = await attemptsOf(vUs.sid);
  assert.ok(aUs.dateCreated.getTime() >= firstSecond + 2000,
    `third attempt at ${aUs.dateCreated.toISOString()}, the first two by ${new Date(firstSecond).toISOString()}`);

  const ok = await svc(s.sid).verificationChecks.create({ to: toFr, code: await latestCode(server, toFr) });
  assert.equal(ok.status, 'approved');

  const all = [aFr.sid, aCall.sid, aUs.sid].sort();
  const base = { verifyServiceSid: s.sid };
  assert.deepEqual(await listedSids(base), all, 'verifyServiceSid alone');
  assert.deepEqual(await listedSids({ ...base, channel: 'call' }), [aCall.sid], 'channel call');
  assert.deepEqual(await listedSids({ ...base, channel: 'sms' }), [aFr.sid, aUs.sid].sort(), 'channel sms');
  assert.deepEqual(await listedSids({ ...base, channel: 'email' }), [], 'channel email');

  assert.deepEqual(await listedSids({ ...base, status: 'converted' }), [aFr.sid], 'status converted');
  assert.deepEqual(await listedSids({ ...base, status: 'unconverted' }), [aCall.sid, aUs.sid].sort(),
    'status unconverted');
  // Twilio documents the filter values capitalised.
  assert.deepEqual(await listedSids({ ...base, status: 'Converted' }), [aFr.sid], 'status Converted');
  assert.deepEqual(await listedSids({ ...base, status: 'Unconverted' }), [aCall.sid, aUs.sid].sort(),
    'status Unconverted');
  assert.deepEqual(await listedSids({ ...base, status: 'converted', channel: 'call' }), [],
    'status and channel together');

  assert.deepEqual(await listedSids({ ...base, country: 'FR' }), [aFr.sid], 'country FR');
  assert.deepEqual(await listedSids({ ...base, country: 'US' }), [aCall.sid, aUs.sid].sort(), 'country US');
  assert.deepEqual(await listedSids({ ...base, country: 'DE' }), [], 'country DE');

  const split = new Date(firstSecond + 1000);
  assert.deepEqual(await listedSids({ ...base, dateCreatedAfter: split }), [aUs.sid], 'dateCreatedAfter');
  assert.deepEqual(await listedSids({ ...base, dateCreatedBefore: split }), [aFr.sid, aCall.sid].sort(),
    'dateCreatedBefore');
  assert.deepEqual(await listedSids({
    ...base, dateCreatedAfter: new Date(firstSecond - 60_000), dateCreatedBefore: new Date(Date.now() + 60_000),
  }), all, 'a window around everything');
  assert.deepEqual(await listedSids({ ...base, dateCreatedAfter: new Date(Date.now() + 60_000) }), [],
    'dateCreatedAfter in the future');

  const rest = client.httpClient.requests.slice(-1)[0];
  assert.match(String(rest.params.DateCreatedAfter), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/,
    'the SDK sent an ISO 8601 date');

  const sum = await client.verify.v2.verificationAttemptsSummary().fetch({ verifyServiceSid: s.sid, channel: 'sms' });
  assert.deepEqual([sum.totalAttempts, sum.totalConverted, sum.totalUnconverted, sum.conversionRatePercentage],
    [2, 1, 1, '50'], 'summary filtered by channel');
});

// --- templates -------------------------------------------------------------------

test('templates: four built-in templates in 36 locales; TemplateSid picks the text', async () => {
  const templates = await client.verify.v2.templates.list();
  assert.equal(lastResponse().statusCode, 200);
  assert.deepEqual(templates.map((t) => t.friendlyName).sort(), [
    'Base Verification Template',
    'Base Verification Template 2 with do not share',
    'Base Verification Template 3',
    'Base Verification Template 4 with expiry',
  ]);
  for (const t of templates) {
    assert.match(t.sid, SID('HJ'), t.friendlyName);
    assert.ok(Array.isArray(t.channels) && t.channels.includes('sms'), `${t.friendlyName}: channels ${t.channels}`);
    assert.deepEqual(Object.keys(t.translations).sort(), [...LOCALES].sort(), `${t.friendlyName}: translations`);
    for (const loc of LOCALES) {
      const tr = t.translations[loc];
      assert.equal(tr.locale, loc, `${t.friendlyName}/${loc}: locale`);
      assert.equal(tr.status, 'approved', `${t.friendlyName}/${loc}: status`);
      assert.ok(tr.text.includes('{{code}}'), `${t.friendlyName}/${loc}: text ${JSON.stringify(tr.text)}`);
    }
  }
  const t3 = templates.find((t) => t.friendlyName === 'Base Verification Template 3');
  assert.equal(t3.translations.en.text, '{{code}} is your verification code for {{friendly_name}}.');
  const byName = await client.verify.v2.templates.list({ friendlyName: 'Base Verification Template 3' });
  assert.ok(byName.some((t) => t.sid === t3.sid), 'friendlyName filter finds template 3');

  const s = await newService({ friendlyName: 'Node Tpl Shop' });
  const to = usPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms', templateSid: t3.sid });
  assert.equal(v.status, 'pending');
  const msg = await latestMessage(server, to);
  assert.ok(msg, 'outbox has the message');
  assert.match(String(msg.code), /^[0-9]{6}$/);
  assert.equal(msg.body, `${msg.code} is your verification code for Node Tpl Shop.`);

  // An unknown TemplateSid is refused (the code is not pinned: Twilio does not document it).
  const toBad = usPhone();
  await assert.rejects(
    svc(s.sid).verifications.create({ to: toBad, channel: 'sms', templateSid: `HJ${'f'.repeat(32)}` }),
    (e) => e instanceof RestException && e.status >= 400 && e.status < 500,
    'unknown TemplateSid');
  assert.equal(await latestMessage(server, toBad), null, 'nothing was sent for an unknown TemplateSid');
});

// --- locale ------------------------------------------------------------------------

test('locale: Locale=fr gives French, an unsupported locale is 404, +7 defaults to Russian', async () => {
  const s = await newService({ friendlyName: 'Node Locale' });

  const toFr = usPhone();
  const v = await svc(s.sid).verifications.create({ to: toFr, channel: 'sms', locale: 'fr' });
  const fr = await latestMessage(server, toFr);
  assert.match(String(fr.code), /^[0-9]{6}$/);
  assert.ok(fr.body.includes(fr.code), `French body contains the code: ${fr.body}`);
  assert.equal(fr.body, `Votre code de vérification pour Node Locale est : ${fr.code}`);
  const [a] = await attemptsOf(v.sid);
  assert.equal(a.channelData.locale, 'fr');
  assert.equal(a.channelData.country, 'US');

  const toXx = usPhone();
  await expectRestError(svc(s.sid).verifications.create({ to: toXx, channel: 'sms', locale: 'xx' }),
    { status: 404, code: 20404 }, 'Locale=xx');
  assert.equal(await latestMessage(server, toXx), null, 'nothing was sent for Locale=xx');

  const toRu = ruPhone();
  const vRu = await svc(s.sid).verifications.create({ to: toRu, channel: 'sms' });
  const ru = await latestMessage(server, toRu);
  assert.equal(ru.body, `Ваш код подтверждения для Node Locale: ${ru.code}`);
  const [aRu] = await attemptsOf(vRu.sid);
  assert.deepEqual([aRu.channelData.country, aRu.channelData.locale], ['RU', 'ru']);

  // Locale wins over the country of the number.
  const toRuEn = ruPhone();
  await svc(s.sid).verifications.create({ to: toRuEn, channel: 'sms', locale: 'en' });
  const en = await latestMessage(server, toRuEn);
  assert.equal(en.body, `Your Node Locale verification code is: ${en.code}`);
});

// --- messaging configurations --------------------------------------------------------

test('messaging configurations: create, fetch, list, update, remove; duplicate is 60213', async () => {
  const s = await newService();
  const mcs = svc(s.sid).messagingConfigurations;
  const mg1 = `MG${'1'.repeat(32)}`;
  const mg2 = `MG${'2'.repeat(32)}`;
  const mg3 = `MG${'3'.repeat(32)}`;
  const url = `${server.baseUrl}/v2/Services/${s.sid}/MessagingConfigurations/FR`;

  const created = await mcs.create({ country: 'FR', messagingServiceSid: mg1 });
  assert.equal(lastResponse().statusCode, 201);
  assert.deepEqual({
    accountSid: created.accountSid, serviceSid: created.serviceSid, country: created.country,
    messagingServiceSid: created.messagingServiceSid, url: created.url,
  }, { accountSid: server.accountSid, serviceSid: s.sid, country: 'FR', messagingServiceSid: mg1, url });
  assert.ok(created.dateCreated instanceof Date && !Number.isNaN(created.dateCreated.getTime()));

  const fetched = await svc(s.sid).messagingConfigurations('FR').fetch();
  assert.equal(lastResponse().statusCode, 200);
  assert.deepEqual([fetched.country, fetched.messagingServiceSid, fetched.serviceSid], ['FR', mg1, s.sid]);

  await expectRestError(mcs.create({ country: 'FR', messagingServiceSid: mg2 }),
    { status: 400, code: 60213 }, 'a second configuration for FR');

  await mcs.create({ country: 'all', messagingServiceSid: mg3 });
  const listed = await mcs.list();
  assert.equal(lastResponse().statusCode, 200);
  assert.deepEqual(listed.map((m) => [m.country, m.messagingServiceSid]).sort(),
    [['FR', mg1], ['all', mg3]].sort());

  const updated = await svc(s.sid).messagingConfigurations('FR').update({ messagingServiceSid: mg2 });
  assert.equal(lastResponse().statusCode, 200);
  assert.deepEqual([updated.country, updated.messagingServiceSid], ['FR', mg2]);
  assert.equal((await svc(s.sid).messagingConfigurations('FR').fetch()).messagingServiceSid, mg2);

  assert.equal(await svc(s.sid).messagingConfigurations('FR').remove(), true);
  assert.equal(lastResponse().statusCode, 204);
  await expectRestError(svc(s.sid).messagingConfigurations('FR').fetch(),
    { status: 404, code: 20404 }, 'fetch after remove');
  await expectRestError(svc(s.sid).messagingConfigurations('FR').remove(),
    { status: 404, code: 20404 }, 'remove twice');
  assert.deepEqual((await mcs.list()).map((m) => m.country), ['all']);

  // the country is free again
  const again = await mcs.create({ country: 'FR', messagingServiceSid: mg1 });
  assert.equal(again.messagingServiceSid, mg1);
});

// --- PSD2 ----------------------------------------------------------------------------

test('PSD2: amount and payee are required on start and check, are in the text, must match', async () => {
  const s = await newService({ friendlyName: 'Node PSD2 Shop', psd2Enabled: true });
  assert.equal(s.psd2Enabled, true);
  const amount = '€39.99';
  const payee = 'Acme Ltd';

  await expectRestError(svc(s.sid).verifications.create({ to: usPhone(), channel: 'sms' }),
    { status: 400, code: 60206 }, 'start without amount and payee');
  await expectRestError(svc(s.sid).verifications.create({ to: usPhone(), channel: 'sms', amount }),
    { status: 400, code: 60206 }, 'start without payee');

  const to = usPhone();
  const v = await svc(s.sid).verifications.create({ to, channel: 'sms', amount, payee });
  assert.equal(v.status, 'pending');
  assert.equal(v.amount, amount);
  assert.equal(v.payee, payee);
  const msg = await latestMessage(server, to);
  assert.ok(msg.body.includes(amount), `text has the amount: ${msg.body}`);
  assert.ok(msg.body.includes(payee), `text has the payee: ${msg.body}`);
  assert.ok(msg.body.includes(msg.code), `text has the code: ${msg.body}`);
  const code = String(msg.code);

  await expectRestError(svc(s.sid).verificationChecks.create({ to, code }),
    { status: 400, code: 60206 }, 'check without amount and payee');
  const mismatch = await svc(s.sid).verificationChecks.create({ to, code, amount: '€1.00', payee });
  assert.deepEqual([mismatch.status, mismatch.valid], ['pending', false], 'another amount does not approve');
  const ok = await svc(s.sid).verificationChecks.create({ to, code, amount, payee });
  assert.deepEqual([ok.sid, ok.status, ok.valid, ok.amount, ok.payee], [v.sid, 'approved', true, amount, payee]);
});

// --- AppHash ---------------------------------------------------------------------------

test('AppHash: the SMS starts with "<#> " and ends with a newline and the hash', async () => {
  const s = await newService({ friendlyName: 'Node AppHash' });
  const to = frPhone();
  const appHash = 'FA+9qCX9VSu';
  await svc(s.sid).verifications.create({ to, channel: 'sms', appHash, locale: 'en' });
  const msg = await latestMessage(server, to);
  assert.ok(msg.body.startsWith('<#> '), `body starts with "<#> ": ${JSON.stringify(msg.body)}`);
  assert.ok(msg.body.endsWith(`\n${appHash}`), `body ends with the hash: ${JSON.stringify(msg.body)}`);
  assert.equal(msg.body, `<#> Your Node AppHash verification code is: ${msg.code}\n${appHash}`);
});
