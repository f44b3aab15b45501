#!/usr/bin/env bash
# Smoke test of the out-of-tree server: starts it with --protocol=line on a
# free port, sends a line, checks the answer, sends SIGTERM, expects exit 0.
# Every wait is bounded; only the server this script started is signalled.
set -euo pipefail
bin=$1
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
"$bin" --protocol=line --port=0 >"$out" 2>"$err" &
pid=$!
for _ in $(seq 300); do
  grep -q '^listening on ' "$out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$err"; echo "smoke: server exited early"; exit 1; }
  sleep 0.1
done
port=$(sed -nE 's/^listening on [^ ]*:([0-9]+).*/\1/p' "$out")
[ -n "$port" ] || { echo "smoke: no listening line"; kill "$pid"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello\n' >&3
IFS= read -r -t 10 answer <&3
exec 3<&-
[ "$answer" = "> hello" ] || { echo "smoke: got '$answer'"; kill "$pid"; exit 1; }
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
[ "$code" -eq 0 ] || { cat "$err"; echo "smoke: exit code $code"; exit 1; }
grep -q 'stopped: drained=' "$err" || { cat "$err"; echo "smoke: no summary line"; exit 1; }
echo "smoke: line-server answered and stopped cleanly"
