'use strict';
// A Twilio Verify v2 look-alike written the way a team would write it by hand: Express 5,
// better-sqlite3, one process. Only what the benchmark drives: create a service, create a
// verification, check a code.
//
//   PORT=3000 DATA_DIR=./data ACCOUNT_SID=AC... AUTH_TOKEN=... SERVICE_SID=VA... node server.js
//
// Prints PEER_URL=http://127.0.0.1:PORT once it listens (PORT=0 picks a free port).
const express = require('express');
const crypto = require('node:crypto');
const { open, now, newSid } = require('./db');

const PORT = Number(process.env.PORT ?? 3000);
const DATA_DIR = process.env.DATA_DIR ?? './data';
const ACCOUNT_SID = process.env.ACCOUNT_SID;
const AUTH_TOKEN = process.env.AUTH_TOKEN;
const SERVICE_SID = process.env.SERVICE_SID;
const CODE_TTL = Number(process.env.CODE_TTL ?? 600); // seconds
const MAX_SENDS = 5;
const MAX_CHECKS = 5;
const CHANNELS = ['sms', 'call', 'email', 'whatsapp'];

if (!ACCOUNT_SID || !AUTH_TOKEN) {
  console.error('ACCOUNT_SID and AUTH_TOKEN are required');
  process.exit(2);
}

const store = open(DATA_DIR, { accountSid: ACCOUNT_SID, serviceSid: SERVICE_SID });
const { db } = store;

const q = {
  insertService: db.prepare(`INSERT INTO services (sid, account_sid, friendly_name, code_length,
                               custom_code_enabled, date_created, date_updated)
                             VALUES (?, ?, ?, ?, ?, ?, ?)`),
  getService: db.prepare('SELECT * FROM services WHERE sid = ? AND account_sid = ?'),
  findPending: db.prepare(`SELECT * FROM verifications
                           WHERE service_sid = ? AND to_number = ? AND status = 'pending' AND expires_at > ?
                           ORDER BY rowid DESC LIMIT 1`),
  findPendingBySid: db.prepare(`SELECT * FROM verifications
                                WHERE service_sid = ? AND sid = ? AND status = 'pending' AND expires_at > ?`),
  resend: db.prepare(`UPDATE verifications SET send_attempts = ?, code_hash = ?, date_updated = ?
                      WHERE sid = ?`),
  updateCheck: db.prepare(`UPDATE verifications SET status = ?, check_attempts = ?, date_updated = ?
                           WHERE sid = ?`),
};

function twilioError(res, status, code, message) {
  res.status(status).json({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

function baseUrl(req) {
  return `${req.protocol}://${req.get('host')}`;
}

function verificationJson(req, v) {
  return {
    sid: v.sid,
    service_sid: v.service_sid,
    account_sid: v.account_sid,
    to: v.to_number,
    channel: v.channel,
    status: v.status,
    valid: v.status === 'approved',
    lookup: {},
    amount: null,
    payee: null,
    send_code_attempts: JSON.parse(v.send_attempts),
    date_created: v.date_created,
    date_updated: v.date_updated,
    sna: null,
    url: `${baseUrl(req)}/v2/Services/${v.service_sid}/Verifications/${v.sid}`,
  };
}

function checkJson(v) {
  return {
    sid: v.sid,
    service_sid: v.service_sid,
    account_sid: v.account_sid,
    to: v.to_number,
    channel: v.channel,
    status: v.status,
    valid: v.status === 'approved',
    amount: null,
    payee: null,
    sna_attempts_error_codes: [],
    date_created: v.date_created,
    date_updated: v.date_updated,
  };
}

function serviceJson(req, s) {
  return {
    sid: s.sid,
    account_sid: s.account_sid,
    friendly_name: s.friendly_name,
    code_length: s.code_length,
    custom_code_enabled: !!s.custom_code_enabled,
    date_created: s.date_created,
    date_updated: s.date_updated,
    url: `${baseUrl(req)}/v2/Services/${s.sid}`,
  };
}

const expectedAuth = crypto.createHash('sha256').update(`${ACCOUNT_SID}:${AUTH_TOKEN}`).digest();

function basicAuth(req, res, next) {
  const header = req.get('authorization') || '';
  const m = /^Basic\s+(.+)$/i.exec(header);
  const given = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
  const digest = crypto.createHash('sha256').update(given).digest();
  if (!m || !crypto.timingSafeEqual(digest, expectedAuth)) {
    res.set('WWW-Authenticate', 'Basic realm="Twilio API"');
    return twilioError(res, 401, 20003, 'Authenticate');
  }
  req.accountSid = ACCOUNT_SID;
  next();
}

function loadService(req, res, next) {
  const service = q.getService.get(req.params.sid, req.accountSid);
  if (!service) return twilioError(res, 404, 20404, `The requested resource /Services/${req.params.sid} was not found`);
  req.service = service;
  next();
}

const app = express();
app.disable('x-powered-by');
app.use(express.urlencoded({ extended: false, limit: '64kb' }));
app.use('/v2', basicAuth);

app.post('/v2/Services', (req, res) => {
  const body = req.body ?? {};
  if (!body.FriendlyName) return twilioError(res, 400, 60200, 'Missing required parameter FriendlyName in the post body');
  const codeLength = body.CodeLength ? Number(body.CodeLength) : 6;
  if (!Number.isInteger(codeLength) || codeLength < 4 || codeLength > 10) {
    return twilioError(res, 400, 60200, 'Invalid parameter: CodeLength');
  }
  const t = now();
  const sid = newSid('VA');
  q.insertService.run(sid, req.accountSid, body.FriendlyName, codeLength, body.CustomCodeEnabled === 'true' ? 1 : 0, t, t);
  res.status(201).json(serviceJson(req, q.getService.get(sid, req.accountSid)));
});

const createVerification = db.transaction((service, to, channel, customCode) => {
  const t = now();
  const attempt = { time: t, channel: channel.toUpperCase(), attempt_sid: newSid('VL') };
  const pending = q.findPending.get(service.sid, to, Date.now());
  if (pending) {
    const attempts = JSON.parse(pending.send_attempts);
    if (attempts.length >= MAX_SENDS) return { error: [429, 60203, 'Max send attempts reached'] };
    attempts.push(attempt);
    // The code of a resend: the custom code if one is given again, else the same code.
    const hash = customCode ? store.hashCode(pending.sid, customCode) : pending.code_hash;
    q.resend.run(JSON.stringify(attempts), hash, t, pending.sid);
    return { verification: { ...pending, send_attempts: JSON.stringify(attempts), code_hash: hash, date_updated: t } };
  }
  const sid = newSid('VE');
  const code = customCode ?? String(crypto.randomInt(0, 10 ** service.code_length)).padStart(service.code_length, '0');
  const row = {
    sid,
    service_sid: service.sid,
    account_sid: service.account_sid,
    to_number: to,
    channel,
    status: 'pending',
    code_hash: store.hashCode(sid, code),
    send_attempts: JSON.stringify([attempt]),
    expires_at: Date.now() + CODE_TTL * 1000,
    date_created: t,
    date_updated: t,
  };
  store.insertVerification.run(row);
  // Delivery would go here (an SMS provider call); the benchmark measures without it.
  return { verification: row };
});

app.post('/v2/Services/:sid/Verifications', loadService, (req, res) => {
  const body = req.body ?? {};
  const { To: to, Channel: channel, CustomCode: customCode } = body;
  if (!to) return twilioError(res, 400, 60200, 'Missing required parameter To in the post body');
  if (!channel) return twilioError(res, 400, 60200, 'Missing required parameter Channel in the post body');
  if (!CHANNELS.includes(channel)) return twilioError(res, 400, 60200, `Invalid parameter: Channel: '${channel}' is not supported`);
  if (channel !== 'email' && !/^\+[1-9]\d{7,14}$/.test(to)) return twilioError(res, 400, 60200, 'Invalid parameter: To');
  if (customCode !== undefined) {
    if (!req.service.custom_code_enabled) return twilioError(res, 400, 60204, 'Service does not support this feature: CustomCode');
    if (!/^\d{4,10}$/.test(customCode)) return twilioError(res, 400, 60200, 'Invalid parameter: CustomCode');
  }
  const result = createVerification(req.service, to, channel, customCode);
  if (result.error) return twilioError(res, ...result.error);
  res.status(201).json(verificationJson(req, result.verification));
});

const checkVerification = db.transaction((service, to, verificationSid, code) => {
  const v = verificationSid
    ? q.findPendingBySid.get(service.sid, verificationSid, Date.now())
    : q.findPending.get(service.sid, to, Date.now());
  if (!v) return null;
  const given = Buffer.from(store.hashCode(v.sid, code), 'hex');
  const stored = Buffer.from(v.code_hash, 'hex');
  const t = now();
  let { status, check_attempts: attempts } = v;
  if (crypto.timingSafeEqual(given, stored)) {
    status = 'approved';
  } else {
    attempts += 1;
    if (attempts >= MAX_CHECKS) status = 'max_attempts_reached';
  }
  q.updateCheck.run(status, attempts, t, v.sid);
  return { ...v, status, check_attempts: attempts, date_updated: t };
});

app.post('/v2/Services/:sid/VerificationCheck', loadService, (req, res) => {
  const body = req.body ?? {};
  const { To: to, VerificationSid: verificationSid, Code: code } = body;
  if (!code) return twilioError(res, 400, 60200, 'Missing required parameter Code in the post body');
  if (!to && !verificationSid) return twilioError(res, 400, 60200, 'Missing required parameter To in the post body');
  const v = checkVerification(req.service, to, verificationSid, code);
  if (!v) return twilioError(res, 404, 20404, `The requested resource /Services/${req.service.sid}/VerificationCheck was not found`);
  res.status(200).json(checkJson(v));
});

app.get('/healthz', (req, res) => res.json({ status: 'ok' }));

app.use((req, res) => twilioError(res, 404, 20404, `The requested resource ${req.path.replace(/^\/v2/, '')} was not found`));

app.use((err, req, res, next) => {
  if (err.type === 'entity.too.large') return twilioError(res, 413, 20413, 'Request entity too large');
  if (err.status === 400) return twilioError(res, 400, 60200, 'Invalid parameter: malformed form encoding');
  console.error(err);
  twilioError(res, 500, 20500, 'Internal Server Error');
});

const server = app.listen(PORT, '127.0.0.1', () => {
  console.log(`PEER_URL=http://127.0.0.1:${server.address().port}`);
});
server.keepAliveTimeout = 65_000;

function stop() {
  server.close(() => {
    db.close();
    process.exit(0);
  });
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
