#!/usr/bin/env bash
# A rolling restart behind a real load balancer (issue 14): two quiesce
# instances behind Debian's haproxy, clients through haproxy the whole time
# (keep-alive and fresh connections), each instance restarted in turn:
# SIGTERM, its exit, the same binary again on the same ports, haproxy
# seeing it up, then the next one. Four runs (the end of the file):
#
#   - with --stop-delay: must lose no request (the script fails otherwise);
#   - without it: the count of failed requests is reported, not judged;
#
# each with haproxy's `retries` at 0 and at its default, 3.
#
#   test/deploy/rolling_restart.sh [BINARY]     (default: build/bin/quiesce)
#
# A request counts as failed when wrk (one keep-alive client, one sending
# `Connection: close` so that every request is a fresh connection to
# haproxy) reports it as a non-2xx/3xx response (haproxy's own 502/503/504
# included), a connect, read or write error on its socket (a connection cut
# with a request outstanding), or a timeout (no answer within wrk's
# --timeout). The counts come from wrk's Lua `done` hook, per client.
#
# haproxy cannot bind port 0 ("invalid port '0'"), so its port is picked
# the way the tests pick one: a quiesce started with --port=0 names a free
# port and is stopped, then haproxy binds that port. Another process may
# take the port in between: haproxy then fails to bind and the script picks
# again (at most 5 times). The same small race exists when an instance is
# restarted on its old ports. Everything else waits on events: the
# `listening on` line, an exit (end of the server's standard output), a
# line of haproxy's log (its health checks, logged to its standard output).
# The only fixed pauses are the load phases before, between and after the
# restarts: they are part of the experiment, not waits for something.
#
# Needs haproxy (Debian's, /usr/sbin/haproxy), wrk and curl. Loopback only;
# only processes this script started are signalled, by pid.
# QUIESCE_DEPLOY_KEEP=1 keeps the logs (the path is printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/bin/quiesce}
[[ -x $bin ]] || { echo "rolling_restart: no server binary at $bin" >&2; exit 1; }
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
for tool in "$haproxy" wrk curl; do
  command -v "$tool" >/dev/null || { echo "rolling_restart: $tool is not installed" >&2; exit 1; }
done

# -- the numbers ---------------------------------------------------------------
#
# haproxy checks each instance's /readyz every `inter` ms and marks it DOWN
# at the first failure (fall 1: a 503 from /readyz means "stopping", not a
# fluke worth confirming) and UP at the first success (rise 1: /readyz is
# 200 while the instance accepts). A check gets `timeout check` to
# answer, else it fails too. So haproxy stops sending new requests to an
# instance at most fall*inter + check_timeout after its SIGTERM (700 ms
# here) on a machine that keeps up; the stop delay adds a margin of 1.3 s
# for one that does not (at a load average of 15 on 2 cores haproxy took up
# to 722 ms; each run prints how long it took).
inter_ms=200
fall=1
rise=1
check_timeout_ms=500
# QUIESCE_DEPLOY_STOP_DELAY_MS overrides it (to see a delay too short fail).
margin_ms=1300
stop_delay_ms=${QUIESCE_DEPLOY_STOP_DELAY_MS:-$((fall * inter_ms + check_timeout_ms + margin_ms))}
workers=2
# Load phases: before the first restart, between the two, after the last.
load_s=1
# Bounds on waits that end at events; they matter only when something hangs.
event_timeout=30

work=$(mktemp -d)
declare -a q_pid   # the instances' pids while they run (below)
wrk_pids=()
haproxy_pid=
pick_pid=
cleanup() {
  local p
  for p in "${wrk_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  if [[ -n $haproxy_pid ]]; then kill -TERM "$haproxy_pid" 2>/dev/null || true; fi
  for p in "${q_pid[@]}" $pick_pid; do
    # A second SIGTERM forces the stop; the process never needs SIGKILL.
    if kill -TERM "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  # Bounded: a process still there (not even a zombie) after 10 s is killed.
  local deadline=$((SECONDS + 10))
  for p in "${q_pid[@]}" $pick_pid "${wrk_pids[@]}" $haproxy_pid; do
    while [[ -r /proc/$p/stat && $(cut -d' ' -f3 "/proc/$p/stat") != Z ]] \
      && ((SECONDS < deadline)); do
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ -n ${QUIESCE_DEPLOY_KEEP:-} ]]; then
    echo "rolling_restart: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
# A signal to the script alone ends it too (through the cleanup above).
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "rolling_restart: FAIL: $*" >&2
  for f in "$work"/*.log "$work"/*.err; do
    [[ -f $f ]] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

help=$("$bin" --help)
for option in --admin --stop-delay; do
  grep -q -- "$option" <<<"$help" \
    || { echo "rolling_restart: $bin has no $option" >&2; exit 1; }
done

# -- the instances -------------------------------------------------------------
#
# Instance i (1 or 2): q_pid[i], q_out[i] (the read end of its standard
# output, open until it exits), q_port[i], q_admin[i] (its admin port),
# q_gen[i] (how many times started).
declare -a q_out q_port q_admin q_gen

# start_instance I PORT ADMIN_PORT EXTRA...: starts it (ports 0: any) and
# waits for its `listening on` line.
start_instance() {
  local i=$1 port=$2 admin=$3 line fifo fd
  shift 3
  q_gen[i]=$((${q_gen[i]:-0} + 1))
  fifo=$work/q$i.${q_gen[i]}.out
  mkfifo "$fifo"
  "$bin" --host=127.0.0.1 --port="$port" --workers="$workers" \
    --admin=127.0.0.1:"$admin" "$@" >"$fifo" 2>>"$work/q$i.err" &
  q_pid[i]=$!
  exec {fd}<"$fifo"
  q_out[i]=$fd
  IFS= read -r -t "$event_timeout" line <&"${q_out[i]}" \
    || fail "q$i: no \`listening on\` line within ${event_timeout}s"
  q_port[i]=$(sed -nE 's/^listening on [^ ]*:([0-9]+)( .*)?$/\1/p' <<<"$line")
  [[ -n ${q_port[i]} ]] || fail "q$i: bad first line: $line"
  q_admin[i]=$(sed -nE 's/^.* admin=[^ ]*:([0-9]+)( .*)?$/\1/p' <<<"$line")
  [[ -n ${q_admin[i]} ]] || fail "q$i: no admin= word in: $line"
}

# wait_exit I: waits for instance I's exit (the end of its standard output)
# and sets `code` to its exit code.
wait_exit() {
  local i=$1 fd=${q_out[$1]}
  timeout "$event_timeout" cat <&"$fd" >/dev/null \
    || fail "q$i: no exit within ${event_timeout}s of SIGTERM"
  code=0
  wait "${q_pid[i]}" || code=$?
  unset 'q_pid[i]'
  exec {fd}<&-
}

# pick_port: sets `port` to a free loopback port (see the top comment).
pick_port() {
  local line p
  exec {p}< <(exec "$bin" --host=127.0.0.1 --port=0 --workers=1 2>>"$work/pick.err")
  pick_pid=$!
  IFS= read -r -t "$event_timeout" line <&"$p" || fail "pick_port: no \`listening on\` line"
  port=$(sed -nE 's/^listening on [^ ]*:([0-9]+)( .*)?$/\1/p' <<<"$line")
  kill -TERM "$pick_pid"
  timeout "$event_timeout" cat <&"$p" >/dev/null || fail "pick_port: no exit"
  pick_pid=
  exec {p}<&-
  [[ -n $port ]] || fail "pick_port: bad first line: $line"
}

# -- haproxy -------------------------------------------------------------------

# write_config PORT: haproxy's configuration, in front of instances 1 and 2,
# with `retries` connection retries.
write_config() {
  cat >"$work/haproxy.cfg" <<EOF
global
  # State changes and health checks only: the backend logs, the frontend
  # (traffic) does not.
  log stdout format raw local0

defaults
  mode http
  # Retried connections wait min(timeout connect, 1s) first (haproxy's
  # turn-around timer): a retry shows as a request at least 1 s late.
  timeout connect 1s
  retries $retries
  timeout client 30s
  timeout server 30s
  timeout check ${check_timeout_ms}ms

frontend fe
  bind 127.0.0.1:$1
  default_backend be

backend be
  log global
  option log-health-checks
  option httpchk GET /readyz
  http-check expect status 200
  default-server check inter ${inter_ms}ms fall $fall rise $rise
  server q1 127.0.0.1:${q_port[1]} port ${q_admin[1]}
  server q2 127.0.0.1:${q_port[2]} port ${q_admin[2]}

listen stats
  bind unix@$work/stats.sock
  stats enable
  stats uri /
EOF
}

# read_log REGEX: reads haproxy's log lines until one matches; every line
# is copied to haproxy.log. A backend with no server left fails the run.
read_log() {
  local line end=$((SECONDS + event_timeout))
  while IFS= read -r -t $((end - SECONDS > 0 ? end - SECONDS : 1)) line <&"$haproxy_out"; do
    printf '%s %s\n' "$(now_ms)" "$line" >>"$work/haproxy.log"
    [[ $line == *"has no server available"* ]] && fail "haproxy: no server left"
    [[ $line =~ $1 ]] && return 0
    ((SECONDS < end)) || break
  done
  return 1
}

# start_haproxy: on a picked port (again if another process took it), then
# waits until both instances have passed a check.
start_haproxy() {
  local attempt
  for attempt in 1 2 3 4 5; do
    pick_port
    haproxy_port=$port
    write_config "$haproxy_port"
    "$haproxy" -c -q -f "$work/haproxy.cfg" || fail "haproxy rejects its configuration"
    rm -f "$work/haproxy.out" && mkfifo "$work/haproxy.out"
    "$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>"$work/haproxy.err" </dev/null &
    haproxy_pid=$!
    exec {haproxy_out}<"$work/haproxy.out"
    if read_log 'Health check for server be/q[12] succeeded' \
      && read_log 'Health check for server be/q[12] succeeded'; then
      return 0
    fi
    wait "$haproxy_pid" || true
    haproxy_pid=
    exec {haproxy_out}<&-
    grep -q 'cannot bind' "$work/haproxy.err" || fail "haproxy did not start"
    echo "rolling_restart: port $haproxy_port taken before haproxy bound it (attempt $attempt)"
  done
  fail "haproxy: no free port in 5 attempts"
}

stop_haproxy() {
  kill -TERM "$haproxy_pid"
  # The rest of its log, to its end (haproxy's exit).
  timeout "$event_timeout" cat <&"$haproxy_out" >>"$work/haproxy.log" || true
  wait "$haproxy_pid" || true
  haproxy_pid=
  exec {haproxy_out}<&-
}

# haproxy_stat PROXY SERVER FIELD: one field of haproxy's CSV statistics.
haproxy_stat() {
  curl --silent --show-error --max-time 10 --unix-socket "$work/stats.sock" \
    'http://haproxy/;csv' \
    | awk -F, -v px="$1" -v sv="$2" -v f="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == f || $i == "# " f) col = i; next }
        $1 == px && $2 == sv { print $col }'
}

# -- clients -------------------------------------------------------------------

cat >"$work/count.lua" <<'EOF'
-- One line with wrk's own counts, for the script to read.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("counts: requests=%d connect=%d read=%d write=%d status=%d timeout=%d max_ms=%d\n",
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout, latency.max / 1000))
end
EOF

# start_clients: a keep-alive client (8 connections) and a fresh-connection
# client (4 connections, each request on a new one), both on /delay/5 so
# that requests are in flight at every stop (and the load leaves the two
# cores room for the checks).
start_clients() {
  local url=http://127.0.0.1:$haproxy_port/delay/5
  wrk -t1 -c8 -d150s --timeout 5s -s "$work/count.lua" "$url" \
    >"$work/wrk-keepalive.out" 2>&1 &
  wrk_pids=($!)
  wrk -t1 -c4 -d150s --timeout 5s -s "$work/count.lua" -H 'Connection: close' "$url" \
    >"$work/wrk-close.out" 2>&1 &
  wrk_pids+=($!)
}

# stop_clients: SIGINT makes wrk print its counts; sets `requests` and
# `failed` (summed over both clients) and prints each client's line.
stop_clients() {
  local p f line n
  for p in "${wrk_pids[@]}"; do kill -INT "$p"; done
  for p in "${wrk_pids[@]}"; do wait "$p" || fail "wrk exited with an error"; done
  wrk_pids=()
  requests=0 failed=0
  for f in keepalive close; do
    line=$(grep '^counts: ' "$work/wrk-$f.out") || fail "wrk ($f): no counts"
    echo "rolling_restart:   wrk $f: ${line#counts: }"
    n=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    requests=$((requests + n))
    for k in connect read write status timeout; do
      n=$(sed -E "s/.* $k=([0-9]+).*/\\1/" <<<"$line")
      failed=$((failed + n))
    done
  done
}

# -- one run -------------------------------------------------------------------

# run LABEL RETRIES EXTRA...: the whole rolling restart with haproxy's
# `retries` at RETRIES and EXTRA server options; sets `requests`, `failed`,
# `retried` and `codes` (the exit codes at the restarts).
run() {
  local label=$1 i t0 t_term t_down start=$SECONDS
  retries=$2
  shift 2
  echo "rolling_restart: run '$label'"
  start_instance 1 0 0 "$@"
  start_instance 2 0 0 "$@"
  start_haproxy
  echo "rolling_restart:   haproxy on 127.0.0.1:$haproxy_port (retries $retries)," \
    "q1 on ${q_port[1]} (checked on ${q_admin[1]}), q2 on ${q_port[2]} (checked on ${q_admin[2]})"
  start_clients
  sleep "$load_s"
  codes=
  for i in 1 2; do
    t_term=$(now_ms)
    kill -TERM "${q_pid[i]}"
    read_log "Server be/q$i is DOWN" || fail "haproxy did not mark q$i DOWN"
    t_down=$(now_ms)
    wait_exit "$i"
    codes+=" $code"
    t0=$(now_ms)
    start_instance "$i" "${q_port[i]}" "${q_admin[i]}" "$@"
    read_log "Server be/q$i is UP" || fail "haproxy did not mark q$i UP again"
    echo "rolling_restart:   q$i: DOWN in haproxy $((t_down - t_term)) ms after SIGTERM," \
      "exit code $code $((t0 - t_term)) ms after it, UP again $(($(now_ms) - t0)) ms after the restart"
    sleep "$load_s"
  done
  stop_clients
  retried=$(haproxy_stat be BACKEND wretr)
  echo "rolling_restart:   haproxy: 5xx sent to clients $(haproxy_stat fe FRONTEND hrsp_5xx)," \
    "connection errors $(haproxy_stat be BACKEND econ), response errors $(haproxy_stat be BACKEND eresp)," \
    "retries $retried, redispatches $(haproxy_stat be BACKEND wredis)"
  stop_haproxy
  for i in 1 2; do
    kill -TERM "${q_pid[i]}"
    wait_exit "$i"
    [[ $code == 0 ]] || fail "q$i: exit code $code at the end, expected 0"
  done
  echo "rolling_restart:   $label: $failed failed of $requests requests, $retried retried by haproxy;" \
    "$((SECONDS - start)) s (exit codes at the restarts:$codes)"
}

# Four runs. With the stop delay, no request may fail: with `retries 0`,
# where a connection refused by a stopping instance would fail a request at
# once (the strict run), and with haproxy's default `retries 3`. Without
# it, the same two are measured: haproxy's retries hide most refused
# connections (the instance is back on its port before the retry, a second
# later); a balancer that does not retry (an L4 one, kube-proxy) shows them.
summary=()
# with_delay RETRIES: a run with the stop delay that must lose nothing.
with_delay() {
  local label="with --stop-delay=${stop_delay_ms}ms, retries $1"
  run "$label" "$1" --stop-delay="${stop_delay_ms}ms"
  ((failed == 0)) || fail "$label: $failed failed requests of $requests"
  ((requests > 0)) || fail "$label: no request made"
  [[ $codes == " 0 0" ]] || fail "$label: exit codes$codes at the restarts, expected 0 0"
  summary+=("$label: $failed failed of $requests ($retried retried)")
}
without_delay() {
  run "without --stop-delay, retries $1" "$1"
  summary+=("without, retries $1: $failed failed of $requests ($retried retried)")
}
with_delay 0
with_delay 3
without_delay 0
without_delay 3
printf -v joined '%s; ' "${summary[@]}"
echo "rolling_restart: PASS: ${joined%; }"
