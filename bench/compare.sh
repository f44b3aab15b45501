#!/usr/bin/env bash
# compare.sh: quiesce side by side with its peers, the one command (issue 5).
#
#   bench/compare.sh [--rounds=3] [--duration=10] [--sustain=60]
#                    [--idle=1000,10000] [--out=build/bench-results]
#                    [--only=SERVERS,GROUPS,METRICS] [--server-cpus=0]
#                    [--load-cpus=1] ...        (bench/compare.py --help)
#
# Installs what is missing (as root, from Debian), builds quiesce and the
# bench tools (reusing build/ if it exists, as the README creates it; it must
# be a Release or RelWithDebInfo build without sanitizers), installs that
# quiesce into $BUILD_DIR/bench-install and builds examples/kv-server against
# it in $BUILD_DIR/bench-kv (as CI builds the example), builds the peers
# (bench/peers/build.sh), then runs bench/compare.py, which prints the table
# (with every stop next to the two floors of the same rounds: the kernel's,
# close_floor, and CAF's, caf_floor) and writes OUT/results.json, OUT/table.md
# and OUT/chart.png. Exits non-zero if any measurement failed. BUILD_DIR=dir
# uses another build directory.
# Groups: echo and http (quiesce against Go, Asio and nginx), and resp:
# examples/kv-server against Debian's redis-server --save '' --appendonly no,
# redis-benchmark -t set,get,incr,ping -n 200000 -c 50 at -P 1 and -P 16.
# multicore (--only=multicore; issue 13): nothing pinned, server and load on
# every CPU: quiesce --workers=2 and --workers=1, nginx (worker_processes 2)
# and go-http (GOMAXPROCS=2) under wrk -t1 -c50, their stop with idle
# connections, and five SIGHUP reloads of quiesce's master and nginx's during
# a keep-alive wrk load and a conn_rate load, with the clients' errors.
# --baseline=REV also builds quiesce at git revision REV (a worktree in
# $BUILD_DIR/baseline-src, built in $BUILD_DIR/baseline) and runs it as
# quiesce-echo@base and quiesce-http@base beside the rest: a before/after
# table (REV's own build dependencies must be installed). The baseline has
# no kv-server: the resp group has no @base server.
# docs/performance.md explains the metrics.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
started=$(date +%s)
build=${BUILD_DIR:-build}
peers=$build/bench-peers
baseline=
args=()
for arg in "$@"; do
  case $arg in
    --baseline=*) baseline=${arg#--baseline=} ;;
    *) args+=("$arg") ;;
  esac
done

say() { echo "compare.sh: $*" >&2; }

# ------------------------------------------------------------- packages
# /usr/bin/python3 (not a pyenv or venv one: compare.py needs only the
# standard library, and Debian's), gnuplot for the chart, wrk for HTTP, Go
# and Asio for the peers, nginx and redis-server as peers, redis-benchmark
# (redis-tools) for RESP.
wanted=(python3 gnuplot-nox wrk golang-go libasio-dev nginx-light redis-server
  redis-tools)
missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  if ((EUID != 0)); then
    say "missing Debian packages: ${missing[*]}; install them (as root):"
    say "  apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

# ------------------------------------------------------------- build
if [[ -f $build/CMakeCache.txt ]]; then
  type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
  sanitize=$(sed -n 's/^QUIESCE_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")
  case $type in
    Release | RelWithDebInfo) ;;
    *)
      say "$build is a '${type:-default}' build; benchmarks need Release or"
      say "RelWithDebInfo: cmake -S . -B $build -DCMAKE_BUILD_TYPE=RelWithDebInfo"
      exit 1
      ;;
  esac
  if [[ $sanitize == ON ]]; then
    say "$build has QUIESCE_SANITIZE=ON; benchmarks need a plain build"
    exit 1
  fi
  # Configure again first: a target added since (conn_rate) must be known
  # before make is asked for it.
  cmake -S . -B "$build" >/dev/null
else
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j"$(nproc)" --target quiesce echo_load stop_time conn_rate close_floor caf_floor

# The Redis-protocol example, built against the installed package as CI
# builds it (.ci/run). One that does not build shows as FAILED in the table.
install=$(readlink -f "$build")/bench-install
kv=$build/bench-kv
if cmake --install "$build" --prefix "$install" >/dev/null &&
  cmake -S examples/kv-server -B "$kv" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$install" >/dev/null &&
  cmake --build "$kv" -j"$(nproc)" --target kv-server; then
  args+=("--kv-bin=$kv/kv-server")
else
  say "warning: examples/kv-server did not build; it will show as FAILED"
  rm -f "$kv/kv-server" # not an older one in its place
  args+=("--kv-bin=$kv/kv-server")
fi

if [[ -n $baseline ]]; then
  rev=$(git rev-parse --verify "$baseline^{commit}")
  src=$build/baseline-src
  if [[ -d $src ]]; then
    git -C "$src" checkout -q --detach "$rev"
  else
    git worktree add -q --detach "$src" "$rev"
  fi
  say "baseline: quiesce at $(git rev-parse --short "$rev") in $build/baseline"
  cmake -S "$src" -B "$build/baseline" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DQUIESCE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build/baseline" -j"$(nproc)" --target quiesce
  args+=("--baseline-bin=$build/baseline/bin")
fi

# A peer that does not build shows as FAILED in the table.
if ! bench/peers/build.sh "$peers"; then
  say "warning: bench/peers/build.sh failed; the peers it did not build will"
  say "show as FAILED"
fi

# ------------------------------------------------------------- measure
rc=0
COMPARE_COMMAND="bench/compare.sh${*:+ $*}" \
  /usr/bin/python3 bench/compare.py --bin="$build/bin" --peers="$peers" \
  ${args[@]+"${args[@]}"} || rc=$?
elapsed=$(($(date +%s) - started))
say "done in $((elapsed / 60))m$((elapsed % 60))s (set-up and build included), exit $rc"
exit "$rc"
