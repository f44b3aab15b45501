#!/usr/bin/env bash
# valgrind memcheck gate: start -> real traffic -> SIGTERM -> exit, for the
# http and the echo protocol, each a server of its own under memcheck.
#
#   test/valgrind/run.sh [BINARY]      (default: build/bin/quiesce)
#
# Passes only if every server exits 0 and memcheck reports no error and no
# definitely or indirectly lost block (`--error-exitcode` turns either into
# exit code 99, which is not 0). "Still reachable" and "possibly lost" blocks
# are not errors here: a thread that is still running at exit (the log
# writer, detached by design) leaves its thread-local storage "possibly
# lost". The log of each run is printed when it fails, its summary always.
#
# QUIESCE_VALGRIND_KEEP=1 keeps the logs (the path is printed).
#
# Needs valgrind, curl and bash's /dev/tcp (Debian's bash has it). Talks to
# loopback only, on ports the servers pick (--port=0). Every wait is bounded
# and ends at an event (a line, a response, an EOF, an exit); only processes
# this script started are signalled, by pid.
set -euo pipefail
export LC_ALL=C # `read -N` counts bytes, not characters

cd "$(dirname "$0")/../.."
bin=${1:-build/bin/quiesce}
[[ -x $bin ]] || { echo "valgrind: no server binary at $bin" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind: valgrind is not installed" >&2; exit 1; }
supp=test/valgrind/quiesce.supp

# Under memcheck the server runs 20-50 times slower: generous bounds. They
# only matter when something hangs; every wait ends at its event.
io_timeout=120
exit_timeout=300

work=$(mktemp -d)
server_pid=
helpers=()
cleanup() {
  local p
  for p in "${helpers[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [[ -n ${QUIESCE_VALGRIND_KEEP:-} ]]; then
    echo "valgrind: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

fail() {
  echo "valgrind: FAIL: $*" >&2
  for f in "$work"/*.err "$work"/*.vg; do
    # CAF's template names run to kilobytes per frame: cut them short.
    [[ -f $f ]] && { echo "--- $f" >&2; cut -c1-240 "$f" >&2; }
  done
  exit 1
}

# -- the server ----------------------------------------------------------------

# start_server NAME PROTOCOL: starts the binary under memcheck with its
# standard output on a FIFO and waits for the `listening on` line. Sets
# server_pid, server_out (the FIFO's read end, kept open until the exit) and
# port.
start_server() {
  local name=$1 protocol=$2 line
  local vg=(valgrind --tool=memcheck --leak-check=full
            --errors-for-leak-kinds=definite,indirect
            --show-leak-kinds=definite,indirect,possible
            --error-exitcode=99 --num-callers=40
            --log-file="$work/$name.vg")
  [[ -f $supp ]] && vg+=(--suppressions="$supp")
  mkfifo "$work/$name.out"
  # --drain-timeout: the server under memcheck must not hit the deadline.
  # --workers=1: the whole server in the one process under memcheck (a
  # worker is exec'd from /proc/self/exe, which under valgrind is valgrind's
  # own tool; the worker paths run under ASan in the test suites instead).
  "${vg[@]}" "$bin" --protocol="$protocol" --host=127.0.0.1 --port=0 \
    --drain-timeout=60s --log-level=debug --workers=1 \
    >"$work/$name.out" 2>"$work/$name.err" &
  server_pid=$!
  exec {server_out}<"$work/$name.out"
  IFS= read -r -t "$io_timeout" line <&"$server_out" \
    || fail "$name: no \`listening on\` line within ${io_timeout}s"
  port=$(sed -nE 's/^listening on [^ ]*:([0-9]+)( .*)?$/\1/p' <<<"$line")
  [[ -n $port ]] || fail "$name: bad first line: $line"
  echo "valgrind: $name server (pid $server_pid) $line"
}

# stop_server NAME: waits for the exit (the FIFO's EOF), checks exit code 0
# and memcheck's verdict, prints the summary.
stop_server() {
  local name=$1 code=0
  timeout "$exit_timeout" cat <&"$server_out" >/dev/null \
    || fail "$name: no exit within ${exit_timeout}s of SIGTERM"
  wait "$server_pid" || code=$?
  server_pid=
  exec {server_out}<&-
  echo "valgrind: $name: $(grep -h 'stopped: drained=' "$work/$name.err" || echo 'no summary line')"
  grep -hE 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|suppressed:' \
    "$work/$name.vg" | sed "s/^==[0-9]*==/valgrind: $name:/"
  case $code in
    0) ;;
    99) fail "$name: memcheck found errors or leaks (see $name.vg)" ;;
    *) fail "$name: exit code $code, expected 0" ;;
  esac
  grep -q 'ERROR SUMMARY: 0 errors' "$work/$name.vg" \
    || fail "$name: memcheck reported errors"
  grep -q 'stopped: drained=[0-9]* forced=0 ' "$work/$name.err" \
    || fail "$name: not a clean stop"
}

# -- clients -------------------------------------------------------------------

# connect: opens a loopback connection to $port; sets `fd`.
connect() {
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connect to port $port"
}

# read_response FD [head]: reads one HTTP response; sets resp_status,
# resp_conn and resp_body. Bash reads sockets a byte at a time, so the next
# pipelined response stays unread.
read_response() {
  local fd=$1 line len=0
  resp_status= resp_conn= resp_body=
  IFS= read -r -t "$io_timeout" line <&"$fd" || return 1
  line=${line%$'\r'}
  resp_status=${line#* }
  resp_status=${resp_status%% *}
  for (( ; ; )); do
    IFS= read -r -t "$io_timeout" line <&"$fd" || return 1
    line=${line%$'\r'}
    [[ -z $line ]] && break
    case ${line,,} in
      content-length:*) len=${line#*: } ;;
      connection:*) resp_conn=${line#*: } ;;
    esac
  done
  if [[ ${2:-} != head ]] && (( len > 0 )); then
    IFS= read -r -d '' -N "$len" -t "$io_timeout" resp_body <&"$fd" || return 1
  fi
}

# expect_response FD STATUS BODY CONNECTION [head]
expect_response() {
  read_response "$1" "${5:-}" || fail "fd $1: no complete response"
  [[ $resp_status == "$2" && $resp_body == "$3" && $resp_conn == "$4" ]] \
    || fail "fd $1: got $resp_status '$resp_body' Connection: $resp_conn;" \
            "expected $2 '$3' Connection: $4"
}

# expect_eof FD: the stream ends cleanly (no reset) with no further bytes.
expect_eof() {
  local rest
  rest=$(timeout "$io_timeout" cat <&"$1") || fail "fd $1: no clean EOF"
  [[ -z $rest ]] || fail "fd $1: unexpected bytes before the EOF: $rest"
  local f=$1
  exec {f}<&-
}

# send_file FD FILE: the file's bytes in one write (cat writes up to 128 KiB
# at once), e.g. pipelined requests that arrive together.
send_file() { cat "$2" >&"$1"; }

request() { # METHOD TARGET [EXTRA-HEADER-LINES]
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n' "$1" "$2" "${3:-}"
}

echo_request() { # BODY
  printf 'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s' \
    "${#1}" "$1"
}

curl_q() { curl --silent --show-error --noproxy '*' --max-time "$io_timeout" "$@"; }

# -- http ----------------------------------------------------------------------

start_server http http
url=http://127.0.0.1:$port
hello=$'quiesce: hello\n'

# A connection that sends nothing: idle at the stop. Opened first, so that
# every later answered connection proves it was accepted (one acceptor,
# backlog order).
connect; fresh=$fd

[[ $(curl_q "$url/") == "${hello%$'\n'}" ]] || fail "curl GET /"
[[ $(curl_q --head --write-out '%{http_code}' --output /dev/null "$url/") == 200 ]] \
  || fail "curl HEAD /"
[[ $(curl_q --write-out '%{http_code}' --output /dev/null "$url/nowhere") == 404 ]] \
  || fail "curl GET /nowhere"
head -c 300000 /dev/urandom >"$work/body"
curl_q --data-binary "@$work/body" --output "$work/body.echo" "$url/echo"
cmp -s "$work/body" "$work/body.echo" || fail "curl POST /echo: body differs"
curl_q --header 'Expect: 100-continue' --data-binary "@$work/body" \
  --output "$work/body.echo" "$url/echo"
cmp -s "$work/body" "$work/body.echo" || fail "curl POST /echo with 100-continue"
head -c 1100000 /dev/zero >"$work/large"
[[ $(curl_q --data-binary "@$work/large" --write-out '%{http_code}' \
       --output /dev/null "$url/echo") == 413 ]] || fail "curl: body over the limit"

# Pipelined requests in one write, answered in order; the last asks to close.
connect
{ request GET /delay/50; echo_request pipelined; request HEAD /
  request GET / $'Connection: close\r\n'; } >"$work/pipelined"
send_file "$fd" "$work/pipelined"
expect_response "$fd" 200 $'delayed 50 ms\n' keep-alive
expect_response "$fd" 200 pipelined keep-alive
expect_response "$fd" 200 '' keep-alive head
expect_response "$fd" 200 "$hello" close
expect_eof "$fd"

# A malformed request: 400, then the server closes.
connect
printf 'NOT A REQUEST\r\n\r\n' >&"$fd"
read_response "$fd" || fail "malformed request: no complete response"
[[ $resp_status == 400 && $resp_conn == close ]] \
  || fail "malformed request: got $resp_status, Connection: $resp_conn"
expect_eof "$fd"

# Idle keep-alive connections: one request each, then nothing.
idle=()
for _ in 1 2 3; do
  connect
  request GET / >&"$fd"
  expect_response "$fd" 200 "$hello" keep-alive
  idle+=("$fd")
done

# A /delay in flight at the stop: sent in the same write as a quick request
# whose answer proves that the server has both.
connect; delayed=$fd
{ request GET /delay/0; request GET /delay/3000; } >"$work/delayed"
send_file "$delayed" "$work/delayed"
expect_response "$delayed" 200 $'delayed 0 ms\n' keep-alive

kill -TERM "$server_pid"
expect_response "$delayed" 200 $'delayed 3000 ms\n' close
expect_eof "$delayed"
for fd in "${idle[@]}" "$fresh"; do expect_eof "$fd"; done
stop_server http

# -- echo ----------------------------------------------------------------------

start_server echo echo

# Short round trips on a few connections, kept open (idle at the stop).
idle=()
for i in 1 2 3; do
  connect
  printf 'hello %d\n' "$i" >&"$fd"
  IFS= read -r -t "$io_timeout" line <&"$fd" || fail "echo: no line back"
  [[ $line == "hello $i" ]] || fail "echo: got '$line'"
  idle+=("$fd")
done

# A mebibyte of random bytes, written and read at the same time.
head -c 1048576 /dev/urandom >"$work/blob"
connect
cat "$work/blob" >&"$fd" &
writer=$!; helpers+=("$writer")
timeout "$io_timeout" head -c 1048576 <&"$fd" >"$work/blob.echo" \
  || fail "echo: the mebibyte did not come back"
wait "$writer" || fail "echo: writing the mebibyte failed"
cmp -s "$work/blob" "$work/blob.echo" || fail "echo: the mebibyte differs"
exec {fd}<&-

# A client still streaming at the stop: the server echoes what it read, sends
# FIN, then reads and discards until the client's FIN (the linger).
connect; streaming=$fd
yes a | head -c 4000000 >&"$streaming" &
writer=$!; helpers+=("$writer")
# The first echoed byte shows the stream is under way at the stop.
IFS= read -r -N 1 -t "$io_timeout" first <&"$streaming" && [[ $first == a ]] \
  || fail "echo: the stream did not start"
timeout "$io_timeout" cat <&"$streaming" >"$work/stream.echo" &
reader=$!; helpers+=("$reader")

kill -TERM "$server_pid"
wait "$reader" || fail "echo: the streaming client got no clean EOF"
# The writer may still be sending: the server reads and discards until it
# ends (its FIN comes with the close below).
wait "$writer" || fail "echo: the streaming client's writes failed"
exec {streaming}<&-
got=$(( $(stat -c %s "$work/stream.echo") + 1 ))
cmp -s <(printf a; cat "$work/stream.echo") <(yes a | head -c "$got") \
  || fail "echo: the streamed echo is not a prefix of what was sent"
echo "valgrind: echo: the streaming client got $got bytes back, then EOF"
for fd in "${idle[@]}"; do expect_eof "$fd"; done
stop_server echo

echo "valgrind: PASS: both servers exited 0 with no memcheck errors or leaks"
