#!/usr/bin/env bash
# nginx-run.sh: runs nginx (one process, no daemon) as a peer for quiesce's
# HTTP benchmarks, with quiesce's command line and stop contract.
#
#   nginx-run.sh --port=N [--host=127.0.0.1] [--drain-timeout=10s]
#                [--workers=1]
#
# Writes a config from nginx.conf.in (next to this script, symlinks followed)
# into a temporary directory, starts nginx, waits until the port accepts a
# connection, prints "listening on HOST:PORT". SIGTERM/SIGINT -> SIGQUIT to
# nginx (graceful: listener closed, idle keep-alive connections closed,
# requests in flight answered); a second signal, or --drain-timeout after the
# first, -> SIGTERM (nginx's fast stop) and exit 3. Exit 0 on a clean stop,
# 1 if nginx could not start, 2 on a bad option. SIGHUP -> SIGHUP to nginx's
# master (what `nginx -s reload` sends: new workers start on the same
# listening socket, the old ones finish their requests and exit).
# --workers=N sets worker_processes (default 1). --port=0 picks a random free
# port in 20000-32767 (retried if the bind fails); --protocol=http and
# --log-level=... are accepted for bench/stop_time. NGINX=/path overrides
# the binary (default /usr/sbin/nginx).
set -euo pipefail

prog=nginx-run
host=127.0.0.1
port=8080
drain=10s
workers=1
nginx_bin=${NGINX:-/usr/sbin/nginx}

usage() {
  echo "usage: $prog --port=N [--host=127.0.0.1] [--drain-timeout=10s] [--workers=1]" >&2
}
bad() {
  echo "$prog: $*" >&2
  usage
  exit 2
}

for arg in "$@"; do
  case $arg in
    --host=*) host=${arg#*=} ;;
    --port=*) port=${arg#*=} ;;
    --drain-timeout=*) drain=${arg#*=} ;;
    --workers=*) workers=${arg#*=} ;;
    --protocol=http) ;;
    --protocol=*) bad "bad $arg: only http" ;;
    --log-level=*) ;;
    --help|-h) usage; exit 0 ;;
    *) bad "unknown option '$arg'" ;;
  esac
done
[[ $port =~ ^[0-9]+$ ]] && ((port <= 65535)) || bad "bad --port=$port"
[[ $workers =~ ^[1-9][0-9]*$ ]] || bad "bad --workers=$workers (a count ≥ 1)"
[[ $host =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "bad --host=$host (numeric IPv4)"
# Duration in milliseconds: 10s, 500ms, 2m, 1.5s; a bare number is seconds.
if [[ $drain =~ ^([0-9]+)(\.([0-9]{1,3}))?(ms|s|m)?$ ]]; then
  whole=${BASH_REMATCH[1]} frac=${BASH_REMATCH[3]} unit=${BASH_REMATCH[4]:-s}
  frac3=${frac}000
  frac_ms=$((10#${frac3:0:3}))
  case $unit in
    ms) drain_ms=$((10#$whole)) ;;
    s) drain_ms=$((10#$whole * 1000 + frac_ms)) ;;
    m) drain_ms=$(((10#$whole * 1000 + frac_ms) * 60)) ;;
  esac
else
  bad "bad --drain-timeout=$drain (e.g. 10s, 500ms)"
fi
[[ -x $nginx_bin ]] || { echo "$prog: $nginx_bin not found (apt-get install nginx-light)" >&2; exit 1; }

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
template=$here/nginx.conf.in
[[ -r $template ]] || { echo "$prog: $template not found" >&2; exit 1; }

# ------------------------------------------------------------- signals
nginx_pid=
timer_pid=
signals=0
forced=0
tmp=
on_signal() {
  signals=$((signals + 1))
  [[ -n $nginx_pid ]] || return 0 # not started: the start-up loop sees it
  if ((signals == 1)); then
    kill -QUIT "$nginx_pid" 2>/dev/null || true
    sleep "$((drain_ms / 1000)).$(printf '%03d' $((drain_ms % 1000)))" &
    timer_pid=$!
  else
    forced=1
    kill -TERM "$nginx_pid" 2>/dev/null || true
  fi
}
trap on_signal TERM INT
# A reload, as `nginx -s reload` does it; before nginx runs (or once it is
# stopping) there is nothing to reload.
on_reload() {
  [[ -n $nginx_pid ]] && ((signals == 0)) || return 0
  kill -HUP "$nginx_pid" 2>/dev/null || true
}
trap on_reload HUP
cleanup() {
  if [[ -n $timer_pid ]]; then
    kill "$timer_pid" 2>/dev/null || true
    wait "$timer_pid" 2>/dev/null || true
  fi
  [[ -n $tmp ]] && rm -rf "$tmp"
}
trap cleanup EXIT

# ------------------------------------------------------------- config
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[[ $nofile == unlimited ]] && nofile=1048576
# Room for 20,000 connections where the descriptors allow it.
conns=$((nofile - 32 < 20000 ? nofile - 32 : 20000))
temp_paths=
built=$("$nginx_bin" -V 2>&1)
for m in client_body proxy fastcgi uwsgi scgi; do
  [[ $m != client_body && $built == *"--without-http_${m}_module"* ]] && continue
  temp_paths+="    ${m}_temp_path temp/$m;"$'\n'
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nginx-run.XXXXXX")
mkdir "$tmp/temp"

port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

start_nginx() { # $1: port
  : > "$tmp/error.log"
  sed -e "s|@HOST@|$host|g" -e "s|@PORT@|$1|g" \
      -e "s|@RLIMIT_NOFILE@|$nofile|g" -e "s|@WORKER_CONNECTIONS@|$conns|g" \
      -e "s|@WORKERS@|$workers|g" \
      "$template" | awk -v tp="$temp_paths" '{ if ($0 == "@TEMP_PATHS@") printf "%s", tp; else print }' \
      > "$tmp/nginx.conf"
  # Own session: a terminal's ^C reaches this script only, which forwards it.
  setsid "$nginx_bin" -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/error.log" </dev/null &
  nginx_pid=$!
}

attempts=1
[[ $port == 0 ]] && attempts=20
for ((try = 1; ; try++)); do
  p=$port
  if [[ $port == 0 ]]; then
    p=$((20000 + RANDOM % 12768))
    port_open "$p" && continue
  elif port_open "$p"; then
    # Someone listens there already; nginx would retry its bind for 2.5 s
    # while the probe below saw the other server.
    echo "$prog: cannot listen on $host:$p: address already in use" >&2
    exit 1
  fi
  start_nginx "$p"
  # Until the port accepts a connection: 10 s at most, 10 ms per try.
  ready=0
  for ((i = 0; i < 1000; i++)); do
    ((signals == 0)) || break
    kill -0 "$nginx_pid" 2>/dev/null || break
    if port_open "$p"; then ready=1; break; fi
    sleep 0.01
  done
  if ((ready)); then
    port=$p
    break
  fi
  if ((signals > 0)); then # stopped during the start-up: end quietly
    kill -TERM "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    exit 0
  fi
  if kill -0 "$nginx_pid" 2>/dev/null; then
    echo "$prog: nginx did not accept connections on $host:$p within 10 s" >&2
    kill -TERM "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    exit 1
  fi
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=
  if ((try < attempts)) && grep -q "Address already in use" "$tmp/error.log"; then
    continue
  fi
  echo "$prog: cannot listen on $host:$p (nginx's error above)" >&2
  exit 1
done

echo "listening on $host:$port"

# ------------------------------------------------------------- run, stop
status=
while [[ -z $status ]]; do
  finished=
  set +e
  if [[ -n $timer_pid ]]; then
    wait -n -p finished "$nginx_pid" "$timer_pid"
  else
    wait -n -p finished "$nginx_pid"
  fi
  rc=$?
  set -e
  if [[ -z ${finished:-} ]]; then
    continue # a signal interrupted the wait
  elif [[ $finished == "$nginx_pid" ]]; then
    status=$rc
  else # the drain timeout
    timer_pid=
    forced=1
    kill -TERM "$nginx_pid" 2>/dev/null || true
  fi
done
nginx_pid=
if [[ -s $tmp/error.log ]]; then
  # warnings only (nothing is logged per connection at this level)
  grep -v "signal process started" "$tmp/error.log" >&2 || true
fi
if ((forced && status == 0)); then
  exit 3
fi
exit "$status"
