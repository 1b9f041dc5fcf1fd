'use strict';
// Test harness for the Node SDK suite: starts a real verifyd process and builds
// official twilio-node clients whose HTTP client is redirected to it.
//
// Not a test file itself (node --test only picks up *.test.js here).

const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const https = require('node:https');
const readline = require('node:readline');

const twilio = require('twilio');
const { RequestClient } = twilio;

const START_TIMEOUT_MS = 30_000; // the test build uses AddressSanitizer and is slower
const STOP_GRACE_MS = 10_000;
const STDERR_KEEP = 64 * 1024;
const REQUIRED_LINES = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'VERIFICATION_SID', 'VERIFYD_BASE_URL'];

function verifydBin() {
  const bin = process.env.VERIFYD_BIN;
  if (!bin) {
    throw new Error('VERIFYD_BIN is not set: point it at the verifyd binary, e.g. ' +
      'VERIFYD_BIN=build/asan/verifyd node --test test/sdk/node/');
  }
  if (!fs.existsSync(bin)) {
    throw new Error(`VERIFYD_BIN=${bin} does not exist`);
  }
  return bin;
}

// The child must not pick up settings from the developer's environment
// (VERIFYD_LISTEN, VERIFYD_DATA_DIR, VERIFYD_ACCOUNT_SID, ...): flags are authoritative,
// but e.g. VERIFYD_ACCOUNT_SID/AUTH_TOKEN have no flag.
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('VERIFYD_') && k !== 'VERIFYD_BIN') continue;
    env[k] = v;
  }
  // Suites send deliberate bad credentials from 127.0.0.1; the per-address throttling of failed
  // authentication would slow and then refuse the rest of the suite.
  env.VERIFYD_AUTH_FAILURES_BEFORE_DELAY = '1000000';
  env.VERIFYD_AUTH_FAILURES_BEFORE_REFUSAL = '1000000';
  // Suites send many unchecked codes to consecutive numbers: SMS pumping to Fraud Guard.
  env.VERIFYD_FRAUD_GUARD = 'off';
  return Object.assign(env, extra);
}

function parseKeyValues(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/**
 * Starts verifyd on 127.0.0.1:0 with a fresh data dir.
 * @param {object} [opts]
 * @param {string[]} [opts.args] extra CLI args (e.g. ['--code-ttl', '2'])
 * @param {object}   [opts.env]  extra environment variables for the child
 * @returns {Promise<{baseUrl, accountSid, authToken, serviceSid, dataDir, proc, stderr(), stop()}>}
 */
async function startServer(opts = {}) {
  const bin = verifydBin();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'verifyd-node-sdk-'));
  const args = ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn',
    ...(opts.args || [])];
  const proc = spawn(bin, args, { env: childEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });

  let stderrBuf = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    stderrBuf += d;
    if (stderrBuf.length > STDERR_KEEP) stderrBuf = stderrBuf.slice(-STDERR_KEEP);
  });
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let exitInfo = null;
  exited.then((e) => { exitInfo = e; });

  const removeDir = () => fs.rmSync(dataDir, { recursive: true, force: true });
  let stopped = false;
  async function stop() {
    if (stopped) return exitInfo;
    stopped = true;
    if (exitInfo === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => { if (exitInfo === null) proc.kill('SIGKILL'); }, STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    removeDir();
    return exitInfo;
  }

  const values = {};
  const stdoutLines = [];
  const rl = readline.createInterface({ input: proc.stdout });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`verifyd did not print its 4 start-up lines within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      const done = (err) => {
        clearTimeout(timer);
        rl.removeListener('line', onLine);
        proc.removeListener('exit', onExit);
        proc.removeListener('error', onError);
        if (err) reject(err); else resolve();
      };
      const onLine = (line) => {
        stdoutLines.push(line);
        const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (m && REQUIRED_LINES.includes(m[1])) values[m[1]] = m[2];
        if (REQUIRED_LINES.every((k) => k in values)) done();
      };
      const onExit = (code, signal) => done(new Error(
        `verifyd exited before start-up was complete (code ${code}, signal ${signal})`));
      const onError = (err) => done(new Error(`cannot start verifyd (${bin}): ${err.message}`));
      rl.on('line', onLine);
      proc.once('exit', onExit);
      proc.once('error', onError);
    });
  } catch (err) {
    await stop().catch(() => {});
    err.message += `\n  command: ${bin} ${args.join(' ')}` +
      `\n  stdout: ${JSON.stringify(stdoutLines)}` +
      `\n  stderr (tail): ${stderrBuf.slice(-4000)}`;
    throw err;
  }
  // Keep draining stdout so the child can never block on a full pipe.
  rl.on('line', (line) => stdoutLines.push(line));

  const baseUrl = values.VERIFYD_BASE_URL.replace(/\/+$/, '');
  return {
    baseUrl,
    accountSid: values.TWILIO_ACCOUNT_SID,
    authToken: values.TWILIO_AUTH_TOKEN,
    serviceSid: values.VERIFICATION_SID,
    dataDir,
    proc,
    args,
    stdoutLines,
    stderr: () => stderrBuf,
    stop,
  };
}

// ---------------------------------------------------------------------------
// SDK redirection

// verify.twilio.com, lookups.twilio.com and their edge/region variants
// (verify.us1.twilio.com, verify.sydney.au1.twilio.com).
const TWILIO_PRODUCT_HOST = /^(verify|lookups)(\.[a-z0-9-]+){0,2}\.twilio\.com$/i;

/**
 * twilio-node's own RequestClient, with the absolute URL rewritten just before it is sent:
 * https://verify.twilio.com/v2/... -> BASE/v2/... . URLs already on the base host (e.g. a
 * server-issued next_page_url) pass through. In strict mode any other host is refused, so
 * credentials never reach the real Twilio.
 */
class RedirectingRequestClient extends RequestClient {
  constructor(baseUrl, opts = {}) {
    const { strict = true, onRequest = null, ...rcOpts } = opts;
    super(rcOpts);
    this.base = new URL(baseUrl);
    this.basePath = this.base.pathname.replace(/\/+$/, '');
    this.strict = strict;
    this.onRequest = onRequest;
    this.requests = []; // trace: {method, uri, originalUri, params}
  }

  rewrite(uri) {
    const u = new URL(uri);
    if (u.host === this.base.host && u.protocol === this.base.protocol) return u.href;
    if (TWILIO_PRODUCT_HOST.test(u.hostname)) {
      return this.base.origin + this.basePath + u.pathname + u.search;
    }
    if (this.strict) {
      throw new Error(`RedirectingRequestClient: refusing request to ${u.origin}`);
    }
    return u.href;
  }

  request(opts) {
    let uri;
    try {
      uri = this.rewrite(opts.uri);
    } catch (err) {
      return Promise.reject(err);
    }
    // uri has no query for first-page requests (the SDK passes PageSize etc. in opts.params);
    // next_page_url requests carry everything in the uri.
    const entry = { method: opts.method, uri, originalUri: opts.uri, params: opts.params };
    this.requests.push(entry);
    if (this.requests.length > 1000) this.requests.shift();
    if (this.onRequest) this.onRequest(entry);
    return super.request({ ...opts, uri });
  }
}

/**
 * An official twilio client talking to `server`. `sid` may be an AC sid (with the auth
 * token) or an SK API key (with its secret; pass accountSid in opts then, default: the
 * server's bootstrap account).
 */
function makeClient(server, sid = server.accountSid, token = server.authToken, opts = {}) {
  const { accountSid, ...httpOpts } = opts;
  const clientOpts = { httpClient: new RedirectingRequestClient(server.baseUrl, httpOpts) };
  if (sid.startsWith('SK')) clientOpts.accountSid = accountSid || server.accountSid;
  const client = twilio(sid, token, clientOpts);
  // BaseTwilio falls back to TWILIO_REGION / TWILIO_EDGE, which would turn the host into
  // verify.us1.twilio.com; the rewrite copes with that, but keep the URL canonical.
  client.region = undefined;
  client.edge = undefined;
  return client;
}

// ---------------------------------------------------------------------------
// CLI helpers

function runCli(args) {
  const bin = verifydBin();
  return new Promise((resolve, reject) => {
    execFile(bin, args, { env: childEnv(), timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n  command: ${bin} ${args.join(' ')}\n  stdout: ${stdout}\n  stderr: ${stderr}`;
        reject(err);
        return;
      }
      resolve({ stdout, stderr, values: parseKeyValues(stdout) });
    });
  });
}

/** `verifyd accounts create` → {accountSid, authToken, values} */
async function newAccount(server, friendlyName) {
  const args = ['accounts', 'create', '--data-dir', server.dataDir];
  if (friendlyName) args.push('--friendly-name', friendlyName);
  const { values, stdout } = await runCli(args);
  if (!values.TWILIO_ACCOUNT_SID || !values.TWILIO_AUTH_TOKEN) {
    throw new Error(`accounts create printed no TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN: ${stdout}`);
  }
  return { accountSid: values.TWILIO_ACCOUNT_SID, authToken: values.TWILIO_AUTH_TOKEN, values };
}

/** `verifyd keys create` → {apiKeySid, apiKeySecret, values} */
async function newApiKey(server, accountSid = server.accountSid, friendlyName) {
  const args = ['keys', 'create', '--data-dir', server.dataDir, '--account', accountSid];
  if (friendlyName) args.push('--friendly-name', friendlyName);
  const { values, stdout } = await runCli(args);
  if (!values.API_KEY_SID || !values.API_KEY_SECRET) {
    throw new Error(`keys create printed no API_KEY_SID/API_KEY_SECRET: ${stdout}`);
  }
  return { apiKeySid: values.API_KEY_SID, apiKeySecret: values.API_KEY_SECRET, values };
}

// ---------------------------------------------------------------------------
// Raw HTTP (dev outbox)

/** Plain GET with Basic auth; resolves {status, headers, body (parsed JSON or text)}. */
function rawGet(url, username, password) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      method: 'GET',
      headers: { Authorization: `Basic ${auth}`, Accept: 'application/json' },
      agent: false,
      timeout: 30_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let body = text;
        try { body = JSON.parse(text); } catch { /* keep text */ }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Newest dev-outbox message for `to` (or null when there is none). */
async function latestMessage(server, to, sid = server.accountSid, token = server.authToken) {
  const url = `${server.baseUrl}/dev/v1/Messages?To=${encodeURIComponent(to)}&PageSize=1`;
  const res = await rawGet(url, sid, token);
  if (res.status !== 200) {
    throw new Error(`GET ${url} -> ${res.status} ${JSON.stringify(res.body)}`);
  }
  const messages = res.body && res.body.messages;
  if (!Array.isArray(messages)) {
    throw new Error(`GET ${url}: no messages array in ${JSON.stringify(res.body)}`);
  }
  return messages.length ? messages[0] : null;
}

/** The code in the newest dev-outbox message for `to`. */
async function latestCode(server, to, sid = server.accountSid, token = server.authToken) {
  const msg = await latestMessage(server, to, sid, token);
  if (!msg) throw new Error(`dev outbox has no message for ${to}`);
  if (msg.code) return String(msg.code);
  const body = String(msg.body);
  const m = /verification code is: ([0-9]+)/.exec(body) || /([0-9]{4,10})/.exec(body);
  if (!m) throw new Error(`no code in outbox message body ${JSON.stringify(body)}`);
  return m[1];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = {
  startServer,
  makeClient,
  newAccount,
  newApiKey,
  latestCode,
  latestMessage,
  rawGet,
  runCli,
  sleep,
  RedirectingRequestClient,
  parseKeyValues,
};
