#!/usr/bin/env bash
# The long stop storm: hundreds of start -> clients -> signal cycles of the
# built binary (the binary.storm suite with more cycles than CTest runs).
#
#   test/stress/stop_storm.sh [BUILD_DIR]      (default: build)
#
# Environment: CYCLES (default 500), SEED (default: random, printed),
# FIRST (first cycle, to replay one failing cycle of a seed). For a
# sanitizer build (-DQUIESCE_SANITIZE=ON) the same ASAN_OPTIONS and
# UBSAN_OPTIONS as CI apply unless set.
#
# Every cycle must exit 0 (or 3 when the stop had to be forced) within
# drain-timeout + 1 s of the first signal, never by a signal or a hang, and
# every client whose request was complete before the stop must get its
# whole answer and a clean EOF. Prints the seed, then one summary line:
# cycles, failures, exit-code counts, worst and mean exit time.
set -euo pipefail
build=${1:-build}
tests="$build/bin/binary_tests"
if [[ ! -x "$tests" ]]; then
  echo "stop_storm.sh: no $tests: build first (cmake --build $build)" >&2
  exit 2
fi
cycles=${CYCLES:-500}
export QUIESCE_STORM_CYCLES="$cycles"
[[ -n "${SEED:-}" ]] && export QUIESCE_STORM_SEED="$SEED"
[[ -n "${FIRST:-}" ]] && export QUIESCE_STORM_FIRST="$FIRST"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# CAF's watchdog: a generous bound (a cycle takes well under a second; a
# hang fails its cycle after drain-timeout + 1 s anyway).
watchdog=$((cycles * 5 + 120))
log=$(mktemp /tmp/stop-storm.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
"$tests" -r "$watchdog" -n -v 4 -s '^binary.storm$' >"$log" 2>&1 || status=$?
grep -E '^stop storm: ' "$log" || true
if [[ $status -ne 0 ]]; then
  echo "--- failing cycles ---"
  grep -v -E '^\*\* |^stop storm: ' "$log" | tail -n 200
  echo "stop_storm.sh: FAILED (exit $status)"
  exit 1
fi
echo "stop_storm.sh: passed"
