#!/usr/bin/env bash
# The verifyd benchmark (bench/README.md). Run through `make bench`, which builds Release and the
# loader first; this script expects build/release/verifyd (and verifyd_bench_loader) to exist.
#
# In one run, on loopback only, with wrk at BENCH_CONNECTIONS keep-alive connections:
#   floor    a minimal Boost.Beast server answering 200 + a fixed body (bench/floor)
#   verifyd  create, check, flow
#   peer     the same on an Express + better-sqlite3 service (bench/peers/node-express)
#   scale    verifyd create, check, flow with the store pre-filled with BENCH_SCALE verifications
# Results: bench/results/latest.{json,md,png} (+ a timestamped copy under bench/results/runs/).
#
# Environment: BENCH_DURATION (s, default 10), BENCH_SCALE (default "1000000 10000000", "" skips),
# BENCH_CONNECTIONS (64), BENCH_THREADS (wrk threads, 2), BENCH_CHECK_COUNT (verifications
# pre-created for `check`, default 50,000 x duration), BENCH_FILL_FIRST (first number index of the
# scale fill, 60,000,000), BENCH_KEEP_DATA=1 keeps the data directories, VERIFYD_BIN,
# VERIFYD_BENCH_LOADER.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench

DURATION=${BENCH_DURATION:-10}
SCALE=${BENCH_SCALE-1000000 10000000}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_THREADS:-2}
CHECK_COUNT=${BENCH_CHECK_COUNT:-$((DURATION * 50000 > 120000 ? DURATION * 50000 : 120000))}
FILL_FIRST=${BENCH_FILL_FIRST:-60000000}
VERIFYD=${VERIFYD_BIN:-$ROOT/build/release/verifyd}
LOADER=${VERIFYD_BENCH_LOADER:-$ROOT/build/release/verifyd_bench_loader}
CODE=135790

# Phone number index ranges (number(i), bench/wrk/common.lua; number(i) = number(i + 96M)).
# create: thread t sends t*50M + k (k < 10M); check: [10M, 10M+CHECK_COUNT); flow: 20M + t*5M + k;
# the response-size probe: 30M; the scale fill: [FILL_FIRST, FILL_FIRST+size) within [60M, 96M).
CREATE_LIMIT=10000000
CHECK_FIRST=10000000
FLOW_FIRST=20000000
FLOW_STRIDE=5000000
PROBE_NUMBER=+12062000000 # number(30,000,000)

RESULTS=$BENCH/results
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
WORK=$RESULTS/tmp/$RUN_ID
# Logs and raw output of the last 5 runs are kept under results/tmp/.
for old in $(ls -1d "$RESULTS"/tmp/2*/ 2>/dev/null | head -n -4); do rm -rf "$old"; done
SCEN=$WORK/scenarios
mkdir -p "$SCEN" "$RESULTS/runs"
: >"$WORK/skipped.txt"
: >"$WORK/loads.jsonl"
: >"$WORK/notes.txt"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
skip() { log "SKIPPED: $*"; printf '%s\n' "$*" >>"$WORK/skipped.txt"; }
note() { log "note: $*"; printf '%s\n' "$*" >>"$WORK/notes.txt"; }

# --- processes: every one this script starts is tracked and stopped on exit -------------------
declare -A PIDS=()
track() { PIDS[$1]=1; }
reap() { # pid: wait for a process that has ended and forget it (so that its id is never signalled again)
  local rc=0
  wait "$1" 2>/dev/null || rc=$?
  unset "PIDS[$1]"
  return $rc
}
stop_pid() { # pid [signal]: stop one process (and the children of a wrapper such as /usr/bin/time)
  local p=$1 sig=${2:-TERM} i
  [ -n "${PIDS[$p]:-}" ] || return 0
  kill -0 "$p" 2>/dev/null || { reap "$p" || true; return 0; }
  for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill -"$sig" "$c" 2>/dev/null || true; done
  kill -"$sig" "$p" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
  reap "$p" || true
}
cleanup() {
  local rc=$?
  for p in "${!PIDS[@]}"; do stop_pid "$p"; done
  if [ "${BENCH_KEEP_DATA:-0}" != 1 ]; then rm -rf "$WORK/data"; fi
  [ $rc = 0 ] || log "failed (exit $rc); logs in ${WORK#"$ROOT"/}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_line() { # file pattern timeout_s pid: wait until `pattern` appears in file
  local f=$1 pat=$2 t=$3 p=$4 i
  for i in $(seq $((t * 10))); do
    grep -q "$pat" "$f" 2>/dev/null && return 0
    kill -0 "$p" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- prerequisites ---------------------------------------------------------------------------
for tool in wrk gnuplot node npm g++ curl /usr/bin/time ps; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh bench installs it)"
done
[ -x "$VERIFYD" ] || die "$VERIFYD is missing: run make bench (or make build)"
HAVE_LOADER=1
if [ ! -x "$LOADER" ]; then
  HAVE_LOADER=0
  skip "verifyd check and every scale scenario: $LOADER does not exist (cmake --build build/release --target verifyd_bench_loader)"
fi
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "node $NODE_MAJOR found; the peer (better-sqlite3 12) needs Node 20+"
case "$DURATION" in '' | *[!0-9]*) die "BENCH_DURATION must be whole seconds" ;; esac
for s in $SCALE; do
  case "$s" in '' | *[!0-9]*) die "BENCH_SCALE holds counts, got '$s'" ;; esac
  [ $((FILL_FIRST % 96000000 + s)) -le 96000000 ] ||
    die "scale size $s from $FILL_FIRST would wrap into the scenarios' numbers (at most $((96000000 - FILL_FIRST % 96000000)))"
done
[ "$CHECK_COUNT" -le 10000000 ] || die "BENCH_CHECK_COUNT is at most 10,000,000"

log "run $RUN_ID: ${DURATION}s per scenario, $CONNS connections, $WRK_THREADS wrk threads, scale: ${SCALE:-none}"

# --- builds ----------------------------------------------------------------------------------
BIN=$RESULTS/tmp/bin
mkdir -p "$BIN"
if [ ! -x "$BIN/floor_server" ] || [ "$BENCH/floor/floor_server.cc" -nt "$BIN/floor_server" ]; then
  log "compiling bench/floor/floor_server.cc"
  g++ -O2 -std=c++20 -pthread "$BENCH/floor/floor_server.cc" -o "$BIN/floor_server"
fi
PEER_DIR=$BENCH/peers/node-express
if ! cmp -s "$PEER_DIR/package-lock.json" "$PEER_DIR/node_modules/.bench-lock" 2>/dev/null; then
  log "npm ci in bench/peers/node-express"
  (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$PEER_DIR/package-lock.json" "$PEER_DIR/node_modules/.bench-lock"
fi

# --- helpers ---------------------------------------------------------------------------------
cpu_ticks() { # utime+stime of a process, in clock ticks
  local line rest
  read -r line <"/proc/$1/stat"
  rest=${line##*) }
  set -- $rest
  echo $((${12} + ${13}))
}
host_cpu() { # "busy total" jiffies of the whole machine
  local _ user nice system idle iowait irq softirq steal
  read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
now() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# How busy the machine is before we start: other work on it skews every figure.
IDLE_H0=$(host_cpu)
sleep 2
IDLE_H1=$(host_cpu)
BUSY_BEFORE=$(awk -v a="$IDLE_H0" -v b="$IDLE_H1" 'BEGIN { split(a, x, " "); split(b, y, " ");
  t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }')
[ "$BUSY_BEFORE" -le 10 ] || note "the machine was ${BUSY_BEFORE}% busy (of all cores) before the run started: other work competes with the benchmark"

VERIFYD_PID=""
start_verifyd() { # data_dir: start verifyd, set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, VERIFICATION_SID, VERIFYD_BASE_URL
  local dir=$1 out
  out=$dir.stdout
  mkdir -p "$dir"
  "$VERIFYD" --code-ttl 86400 --log-level warn --dev-outbox off --fraud-guard off --listen 127.0.0.1:0 \
    --data-dir "$dir" ${VERIFYD_EXTRA:-} >"$out" 2>>"$dir.stderr" &
  VERIFYD_PID=$!
  track "$VERIFYD_PID"
  wait_line "$out" '^VERIFYD_BASE_URL=' 300 "$VERIFYD_PID" || die "verifyd did not start; see ${dir#"$ROOT"/}.stderr"
  TWILIO_ACCOUNT_SID=$(sed -n 's/^TWILIO_ACCOUNT_SID=//p' "$out")
  TWILIO_AUTH_TOKEN=$(sed -n 's/^TWILIO_AUTH_TOKEN=//p' "$out")
  VERIFICATION_SID=$(sed -n 's/^VERIFICATION_SID=//p' "$out")
  VERIFYD_BASE_URL=$(sed -n 's/^VERIFYD_BASE_URL=//p' "$out")
  case "$VERIFYD_BASE_URL" in http://127.0.0.1:*) ;; *) die "verifyd is not on loopback: $VERIFYD_BASE_URL" ;; esac
  AUTH="Basic $(printf '%s' "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" | base64 -w0)"
}
stop_verifyd() {
  kill -TERM "$VERIFYD_PID"
  local rc=0
  reap "$VERIFYD_PID" || rc=$?
  [ $rc = 0 ] || die "verifyd exited with $rc on SIGTERM"
}

create_service() { # base_url account token: create the custom-code service, print its SID
  local body
  body=$(curl -sS --fail-with-body -u "$2:$3" -X POST "$1/v2/Services" \
    --data-urlencode FriendlyName=bench --data-urlencode CustomCodeEnabled=true) ||
    die "creating the bench service at $1 failed: $body"
  printf '%s' "$body" | sed -n 's/.*"sid":"\(VA[0-9a-f]\{32\}\)".*/\1/p'
}

run_loader() { # label count first service: run the loader while verifyd is stopped; 0 = success
  local label=$1 count=$2 first=$3 service=$4 lp rc=0 t0 t1 secs lines=0
  local lg=$WORK/loader-$label.log
  log "loader ($label): $count verifications from number($first) into ${DATA#"$ROOT"/}"
  t0=$(now)
  "$LOADER" --data-dir "$DATA" --account "$TWILIO_ACCOUNT_SID" --service "$service" \
    --count "$count" --first "$first" --code "$CODE" >"$lg" 2>&1 &
  lp=$!
  track "$lp"
  local last=$SECONDS n
  while kill -0 "$lp" 2>/dev/null; do
    sleep 1
    n=$(wc -l <"$lg")
    if [ "$n" -gt "$lines" ]; then
      sed -n "$((lines + 1)),${n}p" "$lg" | while IFS= read -r l; do log "  | $l"; done
      lines=$n
      last=$SECONDS
    elif [ $((SECONDS - last)) -ge 15 ]; then
      log "  loader: running for $(printf '%.0f' "$(minus "$(now)" "$t0")") s, data directory $(du -sm "$DATA" | cut -f1) MB"
      last=$SECONDS
    fi
  done
  reap "$lp" || rc=$?
  t1=$(now)
  n=$(wc -l <"$lg")
  [ "$n" -le "$lines" ] || sed -n "$((lines + 1)),${n}p" "$lg" | while IFS= read -r l; do log "  | $l"; done
  secs=$(minus "$t1" "$t0")
  log "loader ($label): exit $rc after $(printf '%.1f' "$secs") s"
  printf '{"label":"%s","count":%s,"first":%s,"seconds":%s,"exit_code":%s,"db_mb":%s}\n' \
    "$label" "$count" "$first" "$secs" "$rc" "$(du -sm "$DATA" | cut -f1)" >>"$WORK/loads.jsonl"
  return $rc
}

SCEN_N=0
run_scenario() { # id system scenario store_size server_pid url script args...
  local id=$1 system=$2 scenario=$3 store=$4 pid=$5 url=$6 script=$7
  shift 7
  local out=$SCEN/$(printf '%02d' $SCEN_N)-$id
  SCEN_N=$((SCEN_N + 1))
  log "$id: wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s $url ($script)"
  local hwm_reset=true
  echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || hwm_reset=false
  local c0 h0 t0 c1 h1 t1 wp rc=0
  c0=$(cpu_ticks "$pid")
  h0=$(host_cpu)
  t0=$(now)
  /usr/bin/time -f '%U %S %e' -o "$out.time" \
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$BENCH/wrk/$script" "$url" -- "$@" \
    >"$out.wrk" 2>&1 &
  wp=$!
  track "$wp"
  reap "$wp" || rc=$?
  t1=$(now)
  kill -0 "$pid" 2>/dev/null || die "$id: the server (pid $pid) died during the run"
  c1=$(cpu_ticks "$pid")
  h1=$(host_cpu)
  local hwm wrkjson wrktime
  hwm=$(vm_kb "$pid" VmHWM)
  wrkjson=$(sed -n 's/^BENCH_RESULT //p' "$out.wrk" | tail -1)
  wrktime=$(tail -1 "$out.time" 2>/dev/null || true)
  if [ $rc != 0 ] || [ -z "$wrkjson" ]; then
    log "$id: wrk failed (exit $rc):"
    sed 's/^/    /' "$out.wrk" >&2
    wrkjson=null
  fi
  set -- $wrktime
  printf '{"id":"%s","system":"%s","scenario":"%s","store_size":%s,"nproc":%s,"wall_s":%s,"clk_tck":%s,"server_cpu_ticks":%s,"server_vmhwm_kb":%s,"hwm_reset":%s,"host_busy_jiffies":%s,"host_total_jiffies":%s,"wrk_user_s":%s,"wrk_sys_s":%s,"wrk_wall_s":%s,"wrk":%s}\n' \
    "$id" "$system" "$scenario" "$store" "$(nproc)" "$(minus "$t1" "$t0")" "$(getconf CLK_TCK)" "$((c1 - c0))" \
    "${hwm:-0}" "$hwm_reset" "$(($(cut -d' ' -f1 <<<"$h1") - $(cut -d' ' -f1 <<<"$h0")))" \
    "$(($(cut -d' ' -f2 <<<"$h1") - $(cut -d' ' -f2 <<<"$h0")))" "${1:-0}" "${2:-0}" "${3:-0}" "$wrkjson" \
    >"$out.json"
  node "$BENCH/lib/report.js" --summary "$out.json" >&2
}

verifyd_scenarios() { # system store_size check_service flow_service have_checks
  local system=$1 store=$2 svc_check=$3 svc_flow=$4 have_checks=$5 suffix=""
  [ "$store" = 0 ] || suffix="@$store"
  run_scenario "verifyd-create$suffix" "$system" create "$store" "$VERIFYD_PID" "$VERIFYD_BASE_URL" create.lua \
    "$AUTH" "$VERIFICATION_SID" "$CREATE_LIMIT"
  if [ "$have_checks" = 1 ]; then
    run_scenario "verifyd-check$suffix" "$system" check "$store" "$VERIFYD_PID" "$VERIFYD_BASE_URL" check.lua \
      "$AUTH" "$svc_check" "$CHECK_FIRST" "$CHECK_COUNT" "$CODE" "$WRK_THREADS"
  fi
  run_scenario "verifyd-flow$suffix" "$system" flow "$store" "$VERIFYD_PID" "$VERIFYD_BASE_URL" flow.lua \
    "$AUTH" "$svc_flow" "$FLOW_FIRST" "$FLOW_STRIDE"
}

# Sets BENCH_SVC and loads the check set; 0 when the check set is in place.
prepare_verifyd_store() { # data_dir fill_count
  DATA=$1
  local fill=$2 ok=1
  start_verifyd "$DATA"
  BENCH_SVC=$(create_service "$VERIFYD_BASE_URL" "$TWILIO_ACCOUNT_SID" "$TWILIO_AUTH_TOKEN")
  [ -n "$BENCH_SVC" ] || die "no service SID in the answer to POST /v2/Services"
  if [ "$HAVE_LOADER" = 1 ]; then
    stop_verifyd
    # The loader writes through the Verifier with a custom code, so it loads into the bench service
    # (custom_code_enabled); the check and flow scenarios use that service too.
    if [ "$fill" != 0 ]; then
      run_loader "fill-$fill" "$fill" "$FILL_FIRST" "$BENCH_SVC" || { skip "scale $fill: the loader failed (see loader-fill-$fill.log)"; return 2; }
    fi
    run_loader "checks-$fill" "$CHECK_COUNT" "$CHECK_FIRST" "$BENCH_SVC" || {
      skip "check scenario (store $fill): the loader failed (see ${WORK#"$ROOT"/}/loader-checks-$fill.log)"
      ok=0
    }
    start_verifyd "$DATA"
  else
    ok=0
  fi
  [ $ok = 1 ]
}

# --- verifyd, base store ---------------------------------------------------------------------
HAVE_CHECKS=1
prepare_verifyd_store "$WORK/data/verifyd" 0 || HAVE_CHECKS=0
# The size of a verification response (one send attempt), for the floor's body.
BODY_BYTES=$(curl -sS -o /dev/null -w '%{size_download}' -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" \
  -X POST "$VERIFYD_BASE_URL/v2/Services/$VERIFICATION_SID/Verifications" \
  --data-urlencode "To=$PROBE_NUMBER" --data-urlencode Channel=sms)
log "verifyd pid $VERIFYD_PID at $VERIFYD_BASE_URL; a verification response is $BODY_BYTES bytes"

# --- floor -----------------------------------------------------------------------------------
"$BIN/floor_server" 0 "$BODY_BYTES" 2 >"$WORK/floor.stdout" 2>&1 &
FLOOR_PID=$!
track "$FLOOR_PID"
wait_line "$WORK/floor.stdout" '^FLOOR_URL=' 30 "$FLOOR_PID" || die "the floor server did not start"
FLOOR_URL=$(sed -n 's/^FLOOR_URL=//p' "$WORK/floor.stdout")
run_scenario floor floor floor 0 "$FLOOR_PID" "$FLOOR_URL" floor.lua
stop_pid "$FLOOR_PID"

# --- verifyd ---------------------------------------------------------------------------------
verifyd_scenarios verifyd 0 "$BENCH_SVC" "$BENCH_SVC" "$HAVE_CHECKS"
stop_verifyd

# --- verifyd sending through a provider: one that answers at once, one that never answers -----
# Creates only: the dispatcher sends off the request path, so a hung provider must not move the
# create figures (its workers wait out timeout_ms while creates keep committing).
for mode in instant hung; do
  node "$BENCH/lib/provider.js" "$mode" >"$WORK/provider-$mode.stdout" 2>&1 &
  PROV_PID=$!
  track "$PROV_PID"
  wait_line "$WORK/provider-$mode.stdout" '^PROVIDER_URL=' 30 "$PROV_PID" || die "the $mode provider did not start"
  PROV_URL=$(sed -n 's/^PROVIDER_URL=//p' "$WORK/provider-$mode.stdout")
  printf '[delivery]\nworkers = 4\nmax_tries = 2\nretry_initial_ms = 1000\n\n[[provider]]\nname = "bench"\ntype = "webhook"\nchannels = ["sms"]\ntimeout_ms = 2000\nurl = "%s/messages"\n' \
    "$PROV_URL" >"$WORK/provider-$mode.toml"
  VERIFYD_EXTRA="--config $WORK/provider-$mode.toml"
  start_verifyd "$WORK/data/verifyd-provider-$mode"
  unset VERIFYD_EXTRA
  run_scenario "verifyd-create-$mode-provider" "verifyd+$mode-provider" create 0 "$VERIFYD_PID" \
    "$VERIFYD_BASE_URL" create.lua "$AUTH" "$VERIFICATION_SID" "$CREATE_LIMIT"
  SENT=$(curl -sS -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" \
    "$VERIFYD_BASE_URL/v2/Attempts/Summary" | sed -n 's/.*"total_attempts":\([0-9]*\).*/\1/p')
  stop_verifyd
  kill -TERM "$PROV_PID"
  reap "$PROV_PID" || true
  note "$mode provider: $(sed -n 's/^PROVIDER_RECEIVED=//p' "$WORK/provider-$mode.stdout") requests reached it for ${SENT:-?} attempts created"
  rm -rf "$WORK/data/verifyd-provider-$mode"
done

# --- verifyd on PostgreSQL (the several-nodes store), one node, same machine ------------------
# A throwaway cluster with fsync and synchronous_commit on (as durable as SQLite's FULL). Checks
# need the loader's pre-filled set, which writes SQLite only: create and flow are measured.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ]; then
  PG_DIR=$WORK/pg
  mkdir -p "$PG_DIR"
  PG_PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  as_pg() { if [ "$(id -u)" = 0 ]; then chown -R postgres "$PG_DIR"; runuser -u postgres -- "$@"; else "$@"; fi; }
  if as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$WORK/pg-initdb.log" 2>&1 &&
     as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -l "$PG_DIR/log" \
       -o "-p $PG_PORT -h 127.0.0.1 -k $PG_DIR -c fsync=on -c synchronous_commit=on -c max_connections=100" start \
       >>"$WORK/pg-initdb.log" 2>&1 &&
     as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres verifyd >>"$WORK/pg-initdb.log" 2>&1; then
    VERIFYD_EXTRA="--store postgres --postgres-url postgresql://postgres@127.0.0.1:$PG_PORT/verifyd"
    start_verifyd "$WORK/data/verifyd-pg"
    unset VERIFYD_EXTRA
    PG_SVC=$(create_service "$VERIFYD_BASE_URL" "$TWILIO_ACCOUNT_SID" "$TWILIO_AUTH_TOKEN")
    run_scenario "verifyd-pg-create" "verifyd-postgres" create 0 "$VERIFYD_PID" "$VERIFYD_BASE_URL" create.lua \
      "$AUTH" "$VERIFICATION_SID" "$CREATE_LIMIT"
    run_scenario "verifyd-pg-flow" "verifyd-postgres" flow 0 "$VERIFYD_PID" "$VERIFYD_BASE_URL" flow.lua \
      "$AUTH" "$PG_SVC" "$FLOW_FIRST" "$FLOW_STRIDE"
    stop_verifyd
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >>"$WORK/pg-initdb.log" 2>&1 || true
  else
    skip "verifyd on PostgreSQL: the throwaway cluster did not start (see ${WORK#"$ROOT"/}/pg-initdb.log)"
  fi
  rm -rf "$PG_DIR" "$WORK/data/verifyd-pg"
else
  skip "verifyd on PostgreSQL: no PostgreSQL server binaries (apt-get install postgresql)"
fi

# --- peer (Express + better-sqlite3) ---------------------------------------------------------
PEER_DATA=$WORK/data/peer
hex() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
PEER_AC=AC$(hex)
PEER_TOKEN=$(hex)
PEER_VA=VA$(hex)
# The check set goes straight into the peer's SQLite file through its own insert code (seed.js),
# like verifyd_bench_loader for verifyd: seeding through its API would take minutes.
log "peer: seeding $CHECK_COUNT pending verifications (direct SQL, seed.js)"
t0=$(now)
node "$PEER_DIR/seed.js" --data-dir "$PEER_DATA" --account "$PEER_AC" --service "$PEER_VA" \
  --count "$CHECK_COUNT" --first "$CHECK_FIRST" --code "$CODE" --ttl 86400 >"$WORK/peer-seed.log" 2>&1 ||
  die "peer seed failed: $(cat "$WORK/peer-seed.log")"
printf '{"label":"peer-checks","count":%s,"first":%s,"seconds":%s,"exit_code":0,"db_mb":%s}\n' \
  "$CHECK_COUNT" "$CHECK_FIRST" "$(minus "$(now)" "$t0")" "$(du -sm "$PEER_DATA" | cut -f1)" >>"$WORK/loads.jsonl"
PORT=0 DATA_DIR=$PEER_DATA ACCOUNT_SID=$PEER_AC AUTH_TOKEN=$PEER_TOKEN SERVICE_SID=$PEER_VA CODE_TTL=86400 \
  NODE_ENV=production node "$PEER_DIR/server.js" >"$WORK/peer.stdout" 2>"$WORK/peer.stderr" &
PEER_PID=$!
track "$PEER_PID"
wait_line "$WORK/peer.stdout" '^PEER_URL=' 60 "$PEER_PID" || die "the peer did not start: $(cat "$WORK/peer.stderr")"
PEER_URL=$(sed -n 's/^PEER_URL=//p' "$WORK/peer.stdout")
PEER_SVC=$(create_service "$PEER_URL" "$PEER_AC" "$PEER_TOKEN")
PEER_AUTH="Basic $(printf '%s' "$PEER_AC:$PEER_TOKEN" | base64 -w0)"
log "peer pid $PEER_PID at $PEER_URL"
run_scenario peer-create peer create 0 "$PEER_PID" "$PEER_URL" create.lua "$PEER_AUTH" "$PEER_VA" "$CREATE_LIMIT"
run_scenario peer-check peer check 0 "$PEER_PID" "$PEER_URL" check.lua \
  "$PEER_AUTH" "$PEER_VA" "$CHECK_FIRST" "$CHECK_COUNT" "$CODE" "$WRK_THREADS"
run_scenario peer-flow peer flow 0 "$PEER_PID" "$PEER_URL" flow.lua "$PEER_AUTH" "$PEER_SVC" "$FLOW_FIRST" "$FLOW_STRIDE"
stop_pid "$PEER_PID"

# --- verifyd at scale ------------------------------------------------------------------------
for size in $SCALE; do
  if [ "$HAVE_LOADER" != 1 ]; then
    skip "verifyd with $size stored verifications: no loader"
    continue
  fi
  rc=0
  prepare_verifyd_store "$WORK/data/verifyd-$size" "$size" || rc=$?
  if [ $rc = 2 ]; then
    rm -rf "$WORK/data/verifyd-$size"
    continue
  fi
  checks=1
  [ $rc = 0 ] || checks=0
  log "verifyd with $size stored verifications: pid $VERIFYD_PID at $VERIFYD_BASE_URL"
  verifyd_scenarios verifyd "$size" "$BENCH_SVC" "$BENCH_SVC" "$checks"
  stop_verifyd
  [ "${BENCH_KEEP_DATA:-0}" = 1 ] || rm -rf "$WORK/data/verifyd-$size"
done

# --- report ----------------------------------------------------------------------------------
cat >"$WORK/config.json" <<EOF
{"run_id":"$RUN_ID","duration_s":$DURATION,"connections":$CONNS,"wrk_threads":$WRK_THREADS,
 "check_count":$CHECK_COUNT,"check_first":$CHECK_FIRST,"create_per_thread_limit":$CREATE_LIMIT,
 "flow_first":$FLOW_FIRST,"flow_stride":$FLOW_STRIDE,"fill_first":$FILL_FIRST,
 "scale_sizes":[$(echo $SCALE | tr ' ' ',')],"floor_body_bytes":$BODY_BYTES,"floor_threads":2,
 "verifyd_flags":"--code-ttl 86400 --log-level warn --dev-outbox off --fraud-guard off --listen 127.0.0.1:0 --data-dir <fresh>",
 "peer_seed":"direct SQL through the peer's own insert statement and hash (bench/peers/node-express/seed.js)",
 "loader_service":"the bench service (FriendlyName=bench, CustomCodeEnabled=true) created through the API"}
EOF
cat >"$WORK/machine.json" <<EOF
{"nproc":$(nproc),"cpu_model":"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1 | sed 's/"/\\"/g')",
 "kernel":"$(uname -r)","os":"$(. /etc/os-release && echo "$PRETTY_NAME")",
 "busy_before_run_pct":$BUSY_BEFORE,"mem_total_kb":$(awk '/^MemTotal:/ {print $2}' /proc/meminfo),
 "data_fs":"$(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}')",
 "wrk":"$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')","node":"$(node -v)","gxx":"$(g++ -dumpfullversion)",
 "verifyd_commit":"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo -dirty)"}
EOF
node "$BENCH/lib/report.js" --work "$WORK" --results "$RESULTS"
gnuplot -e "datafile='$WORK/chart.dat'; outfile='$RESULTS/latest.png'; title='$(sed -n 1p "$WORK/chart.title")'" \
  "$BENCH/lib/chart.gp"
cp "$RESULTS/latest.png" "$RESULTS/runs/$RUN_ID.png"
log "wrote bench/results/latest.{json,md,png} and bench/results/runs/$RUN_ID.*"
cat "$RESULTS/latest.md"
