#!/usr/bin/env bash
# Line coverage of the connection's lifecycle core (actors/
# connection_lifecycle.{hpp,cpp}, connection_lifecycle_steps.cpp) by its own
# unit tests alone (the actors.lifecycle suite, test/actors/
# connection_lifecycle.cpp): no other test, no actor, no socket. Builds just
# those files with gcc --coverage in their own directory, runs the suite,
# prints each file's line coverage (gcov) and the total, and exits 1 if the
# total is below the minimum.
#
#   COVERAGE_MIN=95            the minimum, in percent of lines
#   COVERAGE_BUILD_DIR=...     the build directory (default: build-coverage),
#                              emptied first
#
# Needs g++, gcov (same version) and Debian's libcaf-dev (the test runner).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

min="${COVERAGE_MIN:-95}"
build="${COVERAGE_BUILD_DIR:-build-coverage}"
cxx="${CXX:-g++}"
gcov="${GCOV:-gcov}"
core=(actors/connection_lifecycle.cpp actors/connection_lifecycle_steps.cpp)
tests=(test/actors/connection_lifecycle.cpp)

rm -rf "$build"
mkdir -p "$build"
flags=(-std=c++17 -O0 -g -I. -Wall -Wextra -Wpedantic -Wshadow
  -Wold-style-cast -Werror)
objects=()
# The core and its tests with coverage (the tests' object counts the
# header's inline functions they call); CAF's test runner without.
for src in "${core[@]}" "${tests[@]}"; do
  obj="$build/$(echo "$src" | tr / _).o"
  "$cxx" "${flags[@]}" --coverage -c "$src" -o "$obj"
  objects+=("$obj")
done
# See test/CMakeLists.txt: GCC's warning in CAF's runner is not ours.
"$cxx" "${flags[@]}" -Wno-maybe-uninitialized -c test/main.cpp \
  -o "$build/main.o"
"$cxx" --coverage "${objects[@]}" "$build/main.o" -lcaf_core \
  -o "$build/lifecycle_tests"

"$build/lifecycle_tests" -r 120 -n -v 4 -s '^actors.lifecycle$'

# gcov, all objects at once (a header's lines merge across them), no .gcov
# files; keep the core's three files.
report="$("$gcov" -n "${objects[@]/%.o/.gcda}" 2>/dev/null)"
printf '\n----- line coverage of the lifecycle core by actors.lifecycle\n'
echo "$report" | awk -v min="$min" '
  /^File / {
    file = $2; gsub(/\047/, "", file)
    want = (file == "actors/connection_lifecycle.cpp" \
            || file == "actors/connection_lifecycle_steps.cpp" \
            || file == "actors/connection_lifecycle.hpp")
    next
  }
  want && /^Lines executed:/ {
    split($2, a, ":"); pct = a[2]; sub(/%/, "", pct); n = $4
    hit = int(pct * n / 100 + 0.5)
    printf "%-42s %4d of %4d lines  %6.2f%%\n", file, hit, n, pct
    total += n; covered += hit; want = 0; files++
  }
  END {
    if (files != 3 || total == 0) {
      print "expected the three files of the core in gcov'"'"'s report"
      exit 1
    }
    pct = 100 * covered / total
    printf "%-42s %4d of %4d lines  %6.2f%% (minimum %s%%)\n", "total",
      covered, total, pct, min
    if (pct < min) { print "BELOW THE MINIMUM"; exit 1 }
  }'
