#!/bin/sh
# Run the Python suites (HTTP, SDK, durability) against $VERIFYD_BIN.
# Usage: VERIFYD_BIN=build/asan/verifyd test/harness/run_python_tests.sh [-v]
#
# Each suite is discovered with its own directory as the top level (-s DIR):
# `-t /work/main` cannot work because /work/main/test has no __init__.py and
# Python's stdlib `test` package would shadow it.
set -u
: "${VERIFYD_BIN:?set VERIFYD_BIN to the verifyd binary}"
here=$(cd "$(dirname "$0")/.." && pwd)
rc=0
for d in http sdk/python durability; do
  echo "== test/$d"
  /usr/bin/python3 -W ignore::ResourceWarning -m unittest discover -s "$here/$d" -p 'test_*.py' "$@" || rc=1
done
exit $rc
