'use strict';
// Pre-creates pending verifications for the benchmark's `check` scenario straight into the peer's
// database (direct SQL, through the same insert statement and code hash as server.js): the peer's
// counterpart of verifyd_bench_loader. Run it while the server is stopped.
//
//   node seed.js --data-dir DIR --account AC... --service VA... --count N --first I --code 135790
//
// Writes number(I) ... number(I+N-1), the numbers of bench/wrk/common.lua and bench/loader.cc.
const { open, now, newSid } = require('./db');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['data-dir', 'account', 'service', 'count', 'first', 'code']) {
  if (args[k] === undefined) {
    console.error(`missing --${k}`);
    process.exit(2);
  }
}

const AREACODES = ['201', '202', '203', '205', '206', '207', '208', '209', '210', '212', '213', '214'];
function number(i) {
  return '+1' + AREACODES[Math.floor(i / 8000000) % AREACODES.length] + String(2000000 + (i % 8000000));
}

const store = open(args['data-dir'], { accountSid: args.account, serviceSid: args.service });
const count = Number(args.count);
const first = Number(args.first);
const ttl = Number(args.ttl ?? 86400);
const insertBatch = store.db.transaction((from, to) => {
  const t = now();
  const expires = Date.now() + ttl * 1000;
  for (let i = from; i < to; i++) {
    const sid = newSid('VE');
    store.insertVerification.run({
      sid,
      service_sid: args.service,
      account_sid: args.account,
      to_number: number(i),
      channel: 'sms',
      code_hash: store.hashCode(sid, args.code),
      send_attempts: JSON.stringify([{ time: t, channel: 'SMS', attempt_sid: newSid('VL') }]),
      expires_at: expires,
      date_created: t,
      date_updated: t,
    });
  }
});
const started = Date.now();
for (let i = first; i < first + count; i += 50000) insertBatch(i, Math.min(i + 50000, first + count));
store.db.close();
console.log(`seeded ${count} verifications in ${((Date.now() - started) / 1000).toFixed(1)} s`);
