#!/usr/bin/env bash
# Installs every Debian and npm package verifyd needs to build, run and test.
# Idempotent: it only calls apt-get when a package is missing, and npm ci only
# when node_modules does not match package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"   # "build" (make run) or "all" (make test)

build_pkgs=(g++ cmake ninja-build pkg-config
  libboost-dev nlohmann-json3-dev libsqlite3-dev libssl-dev libphonenumber-dev
  libexpected-dev libspdlog-dev libcli11-dev libjemalloc-dev
  libcurl4-openssl-dev libtomlplusplus-dev libpq-dev libhiredis-dev)
test_pkgs=(libgtest-dev libgmock-dev python3-twilio nodejs npm clang-format
  kannel kannel-extras python3-aiosmtpd openssl curl postgresql redis-server haproxy
  python3-psycopg2 python3-h2 oathtool)
# "bench" (make bench): the build packages and the load generator, chart, peer and script tools.
bench_pkgs=(wrk gnuplot-nox nodejs npm curl time procps postgresql)

pkgs=("${build_pkgs[@]}")
[ "$what" = all ] && pkgs+=("${test_pkgs[@]}")
[ "$what" = bench ] && pkgs+=("${bench_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  # node may come from the machine image rather than Debian's package.
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$what" = all ]; then
  stamp=node_modules/.verifyd-lock
  if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
  fi
fi
