'use strict';
// The peer's storage: one SQLite file, WAL, synchronous=FULL (every commit is fsync'd before the
// answer goes out, like verifyd). better-sqlite3 is synchronous, so every statement runs on the
// event loop thread; each write is its own transaction.
const Database = require('better-sqlite3');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services (
  sid TEXT PRIMARY KEY,
  account_sid TEXT NOT NULL,
  friendly_name TEXT NOT NULL,
  code_length INTEGER NOT NULL DEFAULT 6,
  custom_code_enabled INTEGER NOT NULL DEFAULT 0,
  date_created TEXT NOT NULL,
  date_updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verifications (
  sid TEXT PRIMARY KEY,
  service_sid TEXT NOT NULL,
  account_sid TEXT NOT NULL,
  to_number TEXT NOT NULL,
  channel TEXT NOT NULL,
  status TEXT NOT NULL,
  code_hash TEXT NOT NULL,
  check_attempts INTEGER NOT NULL DEFAULT 0,
  send_attempts TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  date_created TEXT NOT NULL,
  date_updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verifications_by_to ON verifications (service_sid, to_number, status);
`;

function now() {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function newSid(prefix) {
  return prefix + crypto.randomBytes(16).toString('hex');
}

function open(dataDir, { accountSid, serviceSid }) {
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'peer.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);

  let key = db.prepare("SELECT value FROM settings WHERE key = 'hmac_key'").pluck().get();
  if (!key) {
    key = crypto.randomBytes(32).toString('hex');
    db.prepare("INSERT INTO settings (key, value) VALUES ('hmac_key', ?)").run(key);
  }
  const hmacKey = Buffer.from(key, 'hex');

  // The default service, like verifyd's bootstrap service.
  if (serviceSid) {
    const t = now();
    db.prepare(`INSERT OR IGNORE INTO services (sid, account_sid, friendly_name, date_created, date_updated)
                VALUES (?, ?, 'peer', ?, ?)`).run(serviceSid, accountSid, t, t);
  }

  return {
    db,
    // The stored check value: HMAC-SHA256(server key, verification sid + ":" + code).
    hashCode(sid, code) {
      return crypto.createHmac('sha256', hmacKey).update(sid + ':' + code).digest('hex');
    },
    insertVerification: db.prepare(`
      INSERT INTO verifications (sid, service_sid, account_sid, to_number, channel, status, code_hash,
                                 check_attempts, send_attempts, expires_at, date_created, date_updated)
      VALUES (@sid, @service_sid, @account_sid, @to_number, @channel, 'pending', @code_hash,
              0, @send_attempts, @expires_at, @date_created, @date_updated)`),
  };
}

module.exports = { open, now, newSid };
