#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (QUIESCE_FUZZ=ON) and runs each for
# a bounded time on a copy of its seed corpus (test/fuzz/corpus/<target>/).
# Exits non-zero if any target crashes, trips a sanitizer or an invariant,
# and prints the executions of each target.
#
#   FUZZ_TIME=60          seconds per target (libFuzzer -max_total_time)
#   FUZZ_TARGETS="..."    which targets (default: all five)
#   FUZZ_BUILD_DIR=...    the clang build directory (default: build-fuzz)
#   FUZZ_WORK_DIR=...     where corpora and crash inputs go (default: a
#                         fresh temporary directory, kept on failure)
#   FUZZ_ARGS="..."       extra libFuzzer arguments for every target
#
# Needs clang and Debian's libclang-rt-14-dev (libFuzzer's runtime).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

time_per_target="${FUZZ_TIME:-60}"
targets="${FUZZ_TARGETS:-fuzz_http_parser fuzz_http_behaviour fuzz_http_fields fuzz_line fuzz_connection}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
work="${FUZZ_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/quiesce-fuzz.XXXXXX")}"

CC=clang CXX=clang++ cmake -S . -B "$build" -DQUIESCE_FUZZ=ON \
  -DQUIESCE_BUILD_TESTS=OFF -DQUIESCE_WERROR=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $targets

mkdir -p "$work"
status=0
summary=""
for target in $targets; do
  corpus="$work/corpus/$target"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$work/artifacts"
  cp test/fuzz/corpus/"$target"/* "$corpus"/
  dict=()
  case "$target" in
    fuzz_http_parser | fuzz_http_behaviour) dict=(-dict=test/fuzz/http.dict) ;;
  esac
  log="$work/$target.log"
  printf '\n----- %s: %ss from %s seeds\n' "$target" "$time_per_target" \
    "$(ls "$corpus" | wc -l)"
  rc=0
  # shellcheck disable=SC2086
  "$build/bin/$target" "${dict[@]}" -max_total_time="$time_per_target" \
    -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/$target-" ${FUZZ_ARGS:-} \
    "$corpus" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  grep -E '^#[0-9]+ +DONE|^Done [0-9]+ runs' "$log" | tail -1 || true
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "FAILED: $target exited $rc; the end of its log ($log):"
    tail -n 60 "$log"
    for input in "$work/artifacts/$target-"*; do
      [ -e "$input" ] || continue
      echo "crashing input $input (base64):"
      base64 -w 76 "$input" | head -n 40
      echo "reproduce: $build/bin/$target $input"
    done
    summary+="$(printf '%-22s FAILED  executions=%s' "$target" "${execs:-?}")"$'\n'
  else
    summary+="$(printf '%-22s ok      executions=%s' "$target" "${execs:-?}")"$'\n'
  fi
done

printf '\n----- fuzz summary (%ss per target)\n%s' "$time_per_target" "$summary"
if [ "$status" -eq 0 ] && [ -z "${FUZZ_WORK_DIR:-}" ]; then
  rm -rf "$work"
else
  echo "work directory (corpora, logs, crash inputs): $work"
fi
exit "$status"
