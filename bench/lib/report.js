'use strict';
// Turns the raw records of one bench/run.sh run into bench/results/latest.{json,md} (and copies
// under results/runs/) plus the data file of the chart.
//
//   node report.js --summary SCENARIO.json          one line about one scenario (progress output)
//   node report.js --work WORK_DIR --results DIR    the full report
const fs = require('node:fs');
const path = require('node:path');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const round = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(d)));

function derive(rec) {
  const w = rec.wrk;
  const out = {
    id: rec.id,
    system: rec.system,
    scenario: rec.scenario,
    store_size: rec.store_size,
  };
  if (!w) return { ...out, failed: true };
  const seconds = w.duration_us / 1e6;
  const rps = w.requests / seconds;
  const socket = w.socket_errors.connect + w.socket_errors.read + w.socket_errors.write + w.socket_errors.timeout;
  Object.assign(out, {
    duration_s: round(seconds, 2),
    requests: w.requests,
    requests_per_s: round(rps, 0),
    latency_ms: {
      p50: round(w.latency_us.p50 / 1000, 2),
      p90: round(w.latency_us.p90 / 1000, 2),
      p99: round(w.latency_us.p99 / 1000, 2),
      p999: round(w.latency_us.p999 / 1000, 2),
      max: round(w.latency_us.max / 1000, 2),
      mean: round(w.latency_us.mean / 1000, 2),
    },
    errors: {
      total: w.non2xx + w.unexpected + socket,
      non_2xx: w.non2xx,
      unexpected_2xx: w.unexpected,
      socket: w.socket_errors,
      ran_out: w.ran_out,
      first_bad_response: w.first_bad || null,
    },
    server: {
      cpu_pct_of_one_core: round((rec.server_cpu_ticks / rec.clk_tck / rec.wall_s) * 100, 0),
      peak_rss_mb: round(rec.server_vmhwm_kb / 1024, 1),
      peak_rss_scope: rec.hwm_reset ? 'this scenario (VmHWM reset before it)' : 'since the process started',
    },
    load_generator: {
      cpu_pct_of_one_core: round(((rec.wrk_user_s + rec.wrk_sys_s) / rec.wrk_wall_s) * 100, 0),
      user_s: rec.wrk_user_s,
      sys_s: rec.wrk_sys_s,
    },
    host_cpu_busy_pct: round((rec.host_busy_jiffies / rec.host_total_jiffies) * 100, 0),
  });
  // CPU the rest of the machine used meanwhile (other processes, and kernel time charged to
  // neither process), in % of one core: high values mean the figures are disturbed.
  const nproc = rec.nproc || 1;
  out.other_cpu_pct_of_one_core = Math.max(
    0,
    round((out.host_cpu_busy_pct * nproc) - out.server.cpu_pct_of_one_core - out.load_generator.cpu_pct_of_one_core, 0)
  );
  if (rec.scenario === 'flow') {
    out.flows_per_s = round(rps / 3, 0);
    out.flows = {
      started: w.flows_started,
      completed: w.flows_completed,
      failed: w.flows_failed,
      completed_per_s: round(w.flows_completed / seconds, 0),
    };
  }
  return out;
}

function fmtInt(x) {
  return x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US');
}
function fmt(x, d = 2) {
  return x === null || x === undefined ? '–' : x.toFixed(d);
}
function label(s) {
  const store = s.store_size ? ` @${s.store_size >= 1e6 ? s.store_size / 1e6 + 'M' : s.store_size / 1e3 + 'k'}` : '';
  return s.system === 'floor' ? 'floor' : `${s.system} ${s.scenario}${store}`;
}
function errorText(s) {
  if (s.failed) return 'wrk failed';
  const e = s.errors;
  const parts = [];
  if (e.non_2xx) parts.push(`${e.non_2xx} non-2xx`);
  if (e.unexpected_2xx) parts.push(`${e.unexpected_2xx} wrong 2xx`);
  const sock = e.socket.connect + e.socket.read + e.socket.write + e.socket.timeout;
  if (sock) parts.push(`${sock} socket`);
  if (e.ran_out) parts.push(`RAN OUT ×${e.ran_out}`);
  return parts.length ? parts.join(', ') : '0';
}

if (args.summary) {
  const s = derive(JSON.parse(fs.readFileSync(args.summary, 'utf8')));
  if (s.failed) {
    console.log(`  ${s.id}: FAILED (no wrk result)`);
  } else {
    const flows = s.flows_per_s !== undefined ? `, ${fmtInt(s.flows_per_s)} flows/s` : '';
    console.log(
      `  ${s.id}: ${fmtInt(s.requests_per_s)} req/s${flows}, p50 ${fmt(s.latency_ms.p50)} ms, p99 ${fmt(s.latency_ms.p99)} ms, ` +
        `p99.9 ${fmt(s.latency_ms.p999)} ms, errors ${errorText(s)}, server CPU ${s.server.cpu_pct_of_one_core}%, ` +
        `RSS ${s.server.peak_rss_mb} MB, wrk CPU ${s.load_generator.cpu_pct_of_one_core}%, rest of the machine ${s.other_cpu_pct_of_one_core}%`
    );
    if (s.errors.first_bad_response) console.log(`    first unexpected response: ${s.errors.first_bad_response}`);
  }
  process.exit(0);
}

const work = args.work;
const results = args.results;
const readLines = (f) =>
  fs.existsSync(f)
    ? fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
    : [];

const config = JSON.parse(fs.readFileSync(path.join(work, 'config.json'), 'utf8'));
const machine = JSON.parse(fs.readFileSync(path.join(work, 'machine.json'), 'utf8'));
const loads = readLines(path.join(work, 'loads.jsonl')).map((l) => JSON.parse(l));
for (const l of loads) l.per_s = round(l.count / l.seconds, 0);
const skipped = readLines(path.join(work, 'skipped.txt'));
const notes = readLines(path.join(work, 'notes.txt'));
const scenDir = path.join(work, 'scenarios');
const scenarios = fs
  .readdirSync(scenDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => derive(JSON.parse(fs.readFileSync(path.join(scenDir, f), 'utf8'))));

const floor = scenarios.find((s) => s.system === 'floor' && !s.failed);
const find = (system, scenario, store = 0) =>
  scenarios.find((s) => s.system === system && s.scenario === scenario && s.store_size === store && !s.failed);
const ratio = (a, b) => (a && b ? round(a / b, 3) : null);

for (const s of scenarios) {
  if (s.failed) continue;
  s.ratio_to_floor = ratio(s.requests_per_s, floor && floor.requests_per_s);
  if (s.system === 'verifyd') {
    const peer = find('peer', s.scenario);
    s.ratio_to_peer = ratio(s.requests_per_s, peer && peer.requests_per_s);
    if (s.store_size) {
      const base = find('verifyd', s.scenario);
      s.ratio_to_empty_store = ratio(s.requests_per_s, base && base.requests_per_s);
    }
  }
}

const ratios = { floor_requests_per_s: floor ? floor.requests_per_s : null };
for (const sc of ['create', 'check', 'flow']) {
  const v = find('verifyd', sc);
  const p = find('peer', sc);
  ratios[`verifyd_${sc}_vs_floor`] = ratio(v && v.requests_per_s, floor && floor.requests_per_s);
  ratios[`peer_${sc}_vs_floor`] = ratio(p && p.requests_per_s, floor && floor.requests_per_s);
  ratios[`${sc}_verifyd_vs_peer`] = ratio(v && v.requests_per_s, p && p.requests_per_s);
}
ratios.flow_vs_peer = ratios.flow_verifyd_vs_peer;

const report = {
  schema: 1,
  run_id: config.run_id,
  generated_at: new Date().toISOString(),
  machine,
  config,
  ratios,
  scenarios,
  loads,
  skipped,
  notes,
  how_to_read: 'bench/README.md',
};

// --- Markdown ---
const md = [];
md.push(`# verifyd benchmark — run ${config.run_id}`);
md.push('');
md.push(
  `${machine.nproc} × ${machine.cpu_model}, ${machine.os}, kernel ${machine.kernel}, data on ${machine.data_fs}; ` +
    `${machine.wrk}, node ${machine.node}, g++ ${machine.gxx}, verifyd ${machine.verifyd_commit}.`
);
md.push(
  `wrk: ${config.connections} keep-alive connections, ${config.wrk_threads} threads, ${config.duration_s} s per scenario, loopback. ` +
    `Floor body: ${config.floor_body_bytes} bytes (a verifyd verification response).`
);
md.push('');
md.push(
  '| system / scenario | req/s | × floor | flows/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU % | server peak RSS MB | wrk CPU % | other CPU % |'
);
md.push('|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|');
for (const s of scenarios) {
  if (s.failed) {
    md.push(`| ${label(s)} | failed | | | | | | wrk failed | | | | |`);
    continue;
  }
  md.push(
    `| ${label(s)} | ${fmtInt(s.requests_per_s)} | ${fmt(s.ratio_to_floor, 3)} | ${s.flows_per_s !== undefined ? fmtInt(s.flows_per_s) : ''} | ` +
      `${fmt(s.latency_ms.p50)} | ${fmt(s.latency_ms.p99)} | ${fmt(s.latency_ms.p999)} | ${errorText(s)} | ` +
      `${s.server.cpu_pct_of_one_core} | ${fmt(s.server.peak_rss_mb, 1)} | ${s.load_generator.cpu_pct_of_one_core} | ${s.other_cpu_pct_of_one_core} |`
  );
}
md.push('');
md.push('verifyd ÷ peer (requests/s, same run): ' +
  ['create', 'check', 'flow'].map((sc) => `${sc} ${ratios[`${sc}_verifyd_vs_peer`] ?? '–'}×`).join(', ') + '.');
const pgRatios = ['create', 'flow']
  .map((sc) => [sc, ratio((find('verifyd-postgres', sc) || {}).requests_per_s, (find('verifyd', sc) || {}).requests_per_s)])
  .filter(([, r]) => r !== null);
if (pgRatios.length) {
  md.push('verifyd on PostgreSQL ÷ verifyd on SQLite (one node, same run): ' +
    pgRatios.map(([sc, r]) => `${sc} ${r}×`).join(', ') + '.');
}
const providers = ['instant', 'hung']
  .map((m) => find(`verifyd+${m}-provider`, 'create'))
  .filter(Boolean);
if (providers.length) {
  md.push('Creates while sending through a provider (p99 ms): ' +
    providers.map((s) => `${s.system.replace('verifyd+', '')} ${fmtInt(s.requests_per_s)}/s, p99 ${fmt(s.latency_ms.p99)}`).join('; ') +
    ` (no provider: ${fmtInt((find('verifyd', 'create') || {}).requests_per_s)}/s, p99 ${fmt(((find('verifyd', 'create') || {}).latency_ms || {}).p99)}).`);
}
const scaled = scenarios.filter((s) => s.store_size && !s.failed);
if (scaled.length) {
  md.push('verifyd with a filled store ÷ verifyd on an empty store: ' +
    scaled.map((s) => `${label(s).replace('verifyd ', '')} ${s.ratio_to_empty_store ?? '–'}×`).join(', ') + '.');
}
const flows = scenarios.filter((s) => s.flows && !s.failed);
if (flows.length) {
  md.push('Flows completed (create → wrong check → right check → approved): ' +
    flows.map((s) => `${label(s)} ${fmtInt(s.flows.completed)} (${fmtInt(s.flows.completed_per_s)}/s, ${s.flows.failed} failed)`).join('; ') + '.');
}
if (loads.length) {
  md.push('');
  md.push('| store preparation | verifications | seconds | per second | data MB |');
  md.push('|---|--:|--:|--:|--:|');
  for (const l of loads) {
    md.push(`| ${l.label}${l.exit_code ? ' (FAILED, exit ' + l.exit_code + ')' : ''} | ${fmtInt(l.count)} | ${fmt(l.seconds, 1)} | ${fmtInt(l.per_s)} | ${l.db_mb} |`);
  }
}
const bad = scenarios.filter((s) => !s.failed && s.errors.first_bad_response);
const disturbed = scenarios.filter((s) => !s.failed && s.other_cpu_pct_of_one_core > 25);
const remarks = [
  ...bad.map((s) => `- ${label(s)}: first unexpected response: \`${s.errors.first_bad_response.slice(0, 160)}\``),
  ...skipped.map((s) => `- skipped: ${s}`),
  ...notes.map((n) => `- ${n}`),
];
if (disturbed.length) {
  remarks.push(
    '- disturbed: the rest of the machine used CPU during ' +
      disturbed.map((s) => `${label(s)} (${s.other_cpu_pct_of_one_core}% of a core)`).join(', ') +
      '; rerun on an idle machine for figures to compare.'
  );
}
if (remarks.length) md.push('', ...remarks);
md.push('');
md.push(
  'CPU % is of one core (the machine has ' + machine.nproc + ' cores, so ' + machine.nproc * 100 + '% is all of it). ' +
    '"other" is what the rest of the machine used meanwhile (other processes, kernel time charged to neither). ' +
    'Server peak RSS is VmHWM, reset before each scenario. See bench/README.md.'
);
md.push('');

// --- chart data: label, requests/s, p99 ms, colour (1 floor, 2 verifyd, 3 peer, 4 verifyd at scale) ---
const colour = (s) => (s.system === 'floor' ? 1 : s.system === 'peer' ? 3 : s.store_size ? 4 : 2);
const dat = scenarios
  .filter((s) => !s.failed)
  .map((s) => `"${label(s)}" ${s.requests_per_s} ${s.latency_ms.p99} ${colour(s)}`)
  .join('\n');
fs.writeFileSync(path.join(work, 'chart.dat'), dat + '\n');
fs.writeFileSync(
  path.join(work, 'chart.title'),
  `verifyd benchmark ${config.run_id}: ${config.connections} connections, ${config.duration_s} s each, ${machine.nproc} cores (${machine.cpu_model})\n`
);

const json = JSON.stringify(report, null, 2) + '\n';
fs.mkdirSync(path.join(results, 'runs'), { recursive: true });
fs.writeFileSync(path.join(results, 'latest.json'), json);
fs.writeFileSync(path.join(results, 'latest.md'), md.join('\n'));
fs.writeFileSync(path.join(results, 'runs', `${config.run_id}.json`), json);
fs.writeFileSync(path.join(results, 'runs', `${config.run_id}.md`), md.join('\n'));
