#!/usr/bin/env bash
# The PostgreSQL instances of the store contract tests, against a throwaway PostgreSQL server
# (test/harness/postgres.py: initdb in a temp dir, a free loopback port, removed afterwards).
# Usage: test/storage/run_pg_contract.sh <verifyd_store_contract_tests> [gtest args...]
# Exits with the test binary's status.
set -euo pipefail
bin=${1:?usage: run_pg_contract.sh <verifyd_store_contract_tests> [gtest args...]}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$here/../harness/postgres.py" run -- "$bin" --gtest_filter='*Postgres*' "$@"
