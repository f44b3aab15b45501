#!/usr/bin/env bash
# Builds the peer servers of issue 5's benchmarks (bench/peers/README.md):
#
#   bench/peers/build.sh [OUTDIR]     (default: <repo>/build/bench-peers)
#
# OUTDIR/go-echo, OUTDIR/go-http, OUTDIR/asio-echo, OUTDIR/nginx (a symlink to
# nginx-run.sh). Needs go, /usr/include/asio.hpp and /usr/sbin/nginx: as root
# it installs the missing ones with apt-get (golang-go libasio-dev
# nginx-light); otherwise it names them and fails. No network is needed for
# the build itself (stdlib-only Go, GOCACHE/GOPATH inside OUTDIR).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
out=${1:-$repo/build/bench-peers}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)

# ------------------------------------------------------------ dependencies
missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[[ -r /usr/include/asio.hpp ]] || missing+=(libasio-dev)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) != 0 ]]; then
    echo "build.sh: missing packages: ${missing[*]}" >&2
    echo "build.sh: install them as root: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get install -y --no-install-recommends "${missing[@]}"; }
  if ! apt_install; then
    apt-get update
    apt_install
  fi
fi
command -v go >/dev/null 2>&1 || { echo "build.sh: go not found" >&2; exit 1; }

# ------------------------------------------------------------ Go peers
export GOCACHE=$out/.go/cache GOPATH=$out/.go/path
export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0
for prog in go-echo go-http; do
  # go build is incremental (GOCACHE): fast when nothing changed.
  (cd "$here/$prog" && go build -trimpath -o "$out/$prog.tmp" .)
  mv -f "$out/$prog.tmp" "$out/$prog"
done

# ------------------------------------------------------------ Asio peer
src=$here/asio-echo/main.cpp
bin=$out/asio-echo
if [[ ! -x $bin || $src -nt $bin || $0 -nt $bin ]]; then
  ${CXX:-g++} -std=c++17 -O2 -DASIO_STANDALONE -pthread -Wall -Wextra \
    -o "$bin.tmp" "$src"
  mv -f "$bin.tmp" "$bin"
fi

# ------------------------------------------------------------ nginx
ln -sfn "$here/nginx-run.sh" "$out/nginx"

echo "build.sh: peers in $out: go-echo go-http asio-echo nginx"
