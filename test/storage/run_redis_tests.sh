#!/usr/bin/env bash
# Runs a test binary against a throwaway redis-server on a free loopback port:
#   test/storage/run_redis_tests.sh <binary> [args for the binary...]
# Exports VERIFYD_TEST_REDIS_URL=redis://127.0.0.1:<port>/0 (and VERIFYD_TEST_REDIS_PORT,
# VERIFYD_TEST_REDIS_SERVER: the redis-server binary, for tests that start their own), runs the
# binary, stops Redis, removes its directory and exits with the binary's status.
# REDIS_SERVER overrides the redis-server binary; REDIS_KEEP=1 keeps the directory (log).
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 <test binary> [args...]" >&2
  exit 2
fi
bin=$1
shift

server=${REDIS_SERVER:-redis-server}
if ! server=$(command -v "$server"); then
  echo "run_redis_tests: redis-server not found (apt-get install redis-server)" >&2
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/verifyd-redis.XXXXXX") || exit 1
pid=

stop_redis() {
  if [ -n "$pid" ]; then
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
  fi
}
cleanup() {
  stop_redis
  if [ "${REDIS_KEEP:-0}" = 1 ]; then
    echo "run_redis_tests: kept $dir" >&2
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
  else
    echo $((20000 + (RANDOM * 32768 + RANDOM) % 40000))
  fi
}

# PING through a bash /dev/tcp socket: no redis-cli needed. Prints the server's process id.
server_pid() {
  local port=$1 reply
  exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
  printf 'INFO server\r\nQUIT\r\n' >&3
  reply=$(timeout 2 head -c 4096 <&3 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
  exec 3<&- 3>&-
  [ -n "$reply" ] && echo "$reply"
}

port=
for _ in 1 2 3 4 5; do
  try=$(free_port)
  "$server" --port "$try" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize no &
  pid=$!
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break  # could not start (the port was taken meanwhile)
    if [ "$(server_pid "$try")" = "$pid" ]; then
      port=$try
      break
    fi
    sleep 0.05
  done
  [ -n "$port" ] && break
  stop_redis
done
if [ -z "$port" ]; then
  echo "run_redis_tests: redis-server did not start; its log:" >&2
  cat "$dir/redis.log" >&2 2>/dev/null
  exit 1
fi

export VERIFYD_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
export VERIFYD_TEST_REDIS_PORT=$port
export VERIFYD_TEST_REDIS_SERVER=$server
"$bin" "$@"
status=$?
stop_redis
exit $status
