#!/usr/bin/env bash
# Runs the README's quick-start examples against a fresh verifyd, as a new user would:
# start it, paste its .env lines, run the Node and the Python example.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$(mktemp -d)"
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
"$VERIFYD_BIN" --listen 127.0.0.1:0 --data-dir "$dir/data" --log-level warn > "$dir/env" &
pid=$!
for _ in $(seq 300); do grep -q '^VERIFYD_BASE_URL=' "$dir/env" && break; sleep 0.1; done
set -a; . "$dir/env"; set +a
out_node="$(cd "$root" && node examples/quickstart.js +15017122661)"
echo "$out_node"
grep -q '^checked: approved$' <<<"$out_node"
out_py="$(/usr/bin/python3 "$root/examples/quickstart.py" +447911123456)"
echo "$out_py"
grep -q '^checked: approved$' <<<"$out_py"
echo "examples: 2 passed, 0 failed"
