#!/usr/bin/python3
"""compare.py: quiesce side by side with its peers (issue 5).

Runs every server of a group in turn, alternating rounds, the server pinned
to one CPU and the load to another, and prints one table of medians per
group with ratios quiesce/peer. Writes OUT/results.json (every raw run),
OUT/table.md and OUT/chart.png (gnuplot). Run through bench/compare.sh,
which builds everything first; docs/performance.md explains each metric.

Groups: echo (quiesce --protocol=echo, go-echo, asio-echo), http (quiesce
--protocol=http, go-http, nginx) and resp (issue 12): examples/kv-server, a
Redis-protocol server built on the installed quiesce (--kv-bin), against
Debian's redis-server --save '' --appendonly no, measured with
redis-benchmark -t set,get,incr,ping at -P 1 and -P 16 (its throughput runs;
the resp group has no stop, accept or sustained runs). And multicore (issue
13): nothing pinned, server and load share every CPU; quiesce --workers=2
and --workers=1, nginx with worker_processes 2 and go-http with GOMAXPROCS=2,
in throughput and stop runs, and reload runs: five SIGHUPs to quiesce's
master and to nginx's during a keep-alive wrk load and during a conn_rate
load of fresh connections, with the errors the clients saw.

Standard library only: it runs under Debian's /usr/bin/python3.
"""

import argparse
import datetime
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> group, protocol, binary (peer None: quiesce, or with kv the
# kv-server of --kv-bin; with system a command on PATH), whether the caller
# must choose the port (the nginx wrapper, redis-server)
SERVERS = {
    "quiesce-echo": dict(group="echo", protocol="echo", peer=None),
    "go-echo": dict(group="echo", protocol="echo", peer="go-echo"),
    "asio-echo": dict(group="echo", protocol="echo", peer="asio-echo"),
    "quiesce-http": dict(group="http", protocol="http", peer=None),
    "go-http": dict(group="http", protocol="http", peer="go-http"),
    "nginx": dict(group="http", protocol="http", peer="nginx", fixed_port=True),
    # quiesce built from another revision (--baseline-bin): the before of a
    # before/after comparison, run in the same rotated rounds as the rest.
    "quiesce-echo@base": dict(group="echo", protocol="echo", peer=None,
                              baseline=True),
    "quiesce-http@base": dict(group="http", protocol="http", peer=None,
                              baseline=True),
    # The Redis-protocol example (examples/kv-server), quiesce's side of the
    # resp group, and Debian's redis-server. The baseline has no kv-server.
    "kv-server": dict(group="resp", protocol="resp", peer=None, kv=True),
    "redis": dict(group="resp", protocol="resp", peer="redis-server",
                  fixed_port=True, system=True),
    # The multi-core group (issue 13): nothing pinned, the server and the
    # load share every CPU, as on a real box. workers: quiesce's --workers,
    # nginx-run.sh's --workers (worker_processes); env: added to the
    # server's environment; reload: SIGHUP reloads it (the reload runs).
    "quiesce-w2": dict(group="multicore", protocol="http", peer=None,
                       workers=2, unpinned=True, reload=True),
    "quiesce-w1": dict(group="multicore", protocol="http", peer=None,
                       workers=1, unpinned=True),
    "nginx-w2": dict(group="multicore", protocol="http", peer="nginx",
                     fixed_port=True, workers=2, unpinned=True, reload=True),
    "go-http-p2": dict(group="multicore", protocol="http", peer="go-http",
                       env={"GOMAXPROCS": "2"}, unpinned=True),
}
GROUPS = {
    "echo": ["quiesce-echo", "quiesce-echo@base", "go-echo", "asio-echo"],
    "http": ["quiesce-http", "quiesce-http@base", "go-http", "nginx"],
    "resp": ["kv-server", "redis"],
    "multicore": ["quiesce-w2", "quiesce-w1", "nginx-w2", "go-http-p2"],
}
METRICS = ["throughput", "stop", "accept", "sustain", "reload"]
# The metrics a group is measured in: the resp group's throughput runs are
# redis-benchmark's; stop_time and conn_rate speak echo and http only; only
# the multicore group has reload runs (and only its servers with reload).
GROUP_METRICS = {"resp": {"throughput"},
                 "multicore": {"throughput", "stop", "reload"}}
DEFAULT_METRICS = {"throughput", "stop", "accept", "sustain"}
# --only aliases: a metric name selects its runs.
METRIC_ALIASES = {
    "throughput": "throughput",
    "latency": "throughput",
    "p99": "throughput",
    "stop": "stop",
    "rss": "rss",
    "accept": "accept",
    "sustain": "sustain",
    "growth": "sustain",
    "reload": "reload",
}

LISTEN_LIMIT = 10.0  # s until the listening line
STOP_LIMIT = 30.0  # s from SIGTERM until the exit, then SIGKILL
GROWTH_BASE_S = 5  # the growth is measured from this second of the run
NOISE_KB = 1024  # growth within max(NOISE_KB, NOISE_PCT) counts as noise
NOISE_PCT = 5.0
TARGETS = {
    # group -> {peer: minimum ratio quiesce/peer of the throughput}
    "echo": {"go-echo": 1.2, "asio-echo": 0.95},
    "http": {"go-http": 1.3, "nginx": 0.8},
    # resp (issue 12): (redis-benchmark test, pipeline depth) ->
    # {peer: minimum ratio kv-server/peer of its requests per second}
    "resp": {("SET", 1): {"redis": 0.95}, ("GET", 1): {"redis": 0.95},
             ("SET", 16): {"redis": 0.9}, ("GET", 16): {"redis": 0.9}},
}
# The resp group's runs: redis-benchmark -t RESP_TESTS -n --resp-requests
# -c --connections -P DEPTH --csv, one run per pipeline depth, after a
# warm-up of a tenth of the requests; the tests its CSV must report.
RESP_DEPTHS = (1, 16)
RESP_TESTS = "set,get,incr,ping"
RESP_RESULTS = ["SET", "GET", "INCR", "PING_INLINE", "PING_MBULK"]
REDIS_READY = r"Ready to accept connections"  # redis-server's log line
STOP_TARGET = (10000, 100.0)  # idle connections, ms
# idle connections, at most this multiple of the kernel's graceful floor
# (close_floor, same run) for quiesce's stop (issue 11)
FLOOR_TARGET = (10000, 1.15)
FLOOR = "close_floor"  # the runs of the floor, beside the servers' stop runs
# The runs of the CAF floor (bench/caf_floor.cpp): the same stop made by an
# echo server of plain CAF 0.17.6 brokers, one per connection, with none of
# quiesce's guarantees; what quiesce's design costs at the least.
CAF_FLOOR = "caf_floor"
RSS_TARGET = (10000, 4096.0)  # idle connections, bytes per connection
# The multicore group (issue 13). wrk's threads there: 1, as in the http
# group. Checked on the 2-core box: wrk -t1 used about half a core against
# nginx with two workers (80k req/s); it is not what limits the servers, and
# -t2 gave the same rate within the noise (docs/performance.md).
MULTICORE_WRK_THREADS = 1
# throughput: {peer: minimum ratio quiesce-w2/peer}
TARGETS["multicore"] = {"nginx-w2": 1.0, "go-http-p2": 1.3}
# stop with this many idle connections: quiesce-w2 at most this multiple of
# quiesce-w1's stop
MULTICORE_STOP_TARGET = (10000, "quiesce-w1", 0.7)
# The reload runs: RELOADS SIGHUPs, evenly spread over a --duration load of
# each kind; a SIGHUP counts as a reload when a new process appears in the
# server's tree before the next one (or within RELOAD_SEEN_S after the last).
RELOADS = 5
RELOAD_LOADS = ("keepalive", "fresh")
RELOAD_SEEN_S = 3.0


class Failure(Exception):
    """A measurement that failed; its text goes into the table."""


def shown(path):
    """`path` relative to the repository if it is inside it."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def kv(line):
    """The key=value pairs of a tool's output line, as a dict of strings."""
    return dict(re.findall(r"(\w+)=(\S+)", line))


def last_line(path, pattern=None):
    """The last non-empty line of a file (matching `pattern` if given)."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return ""
    if pattern:
        lines = [l for l in lines if re.search(pattern, l)]
    return lines[-1] if lines else ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ memory


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (the state is
    [0], the parent [1], utime [11], stime [12]); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def tree_pids(root):
    """`root` and its descendants, `root` first."""
    parents = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        rest = proc_stat(name)
        if rest and len(rest) > 1:
            parents.append((int(name), int(rest[1])))
    tree = [root]
    for pid in tree:
        tree.extend(child for child, ppid in parents if ppid == pid)
    return tree


def tree_cpu_s(root):
    """{pid: user + system CPU seconds} over `root` and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for pid in tree_pids(root):
        rest = proc_stat(pid)
        if rest and len(rest) > 12:
            cpu[pid] = (int(rest[11]) + int(rest[12])) / tick
    return cpu


def tree_rss_kb(root):
    """VmRSS summed over `root` and its descendants (KiB), None if gone."""
    tree = tree_pids(root)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as f:
                m = re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M)
        except OSError:
            m = None
        if m:
            total += int(m.group(1))
        elif pid == root:
            return None
    return total


# ------------------------------------------------------------------ servers


class Server:
    """One server process, started fresh for one measurement."""

    def __init__(self, name, cfg, tag):
        self.name = name
        self.spec = SERVERS[name]
        self.cfg = cfg
        self.tag = tag
        self.proc = None
        self.port = None
        self.out_path = os.path.join(cfg.logs, f"{tag}.server.out")
        self.err_path = os.path.join(cfg.logs, f"{tag}.server.err")

    def binary(self):
        if self.spec.get("baseline"):
            return os.path.join(self.cfg.baseline_bin, "quiesce")
        if self.spec.get("kv"):
            return self.cfg.kv_bin
        if self.spec["peer"] is None:
            return os.path.join(self.cfg.bin, "quiesce")
        if self.spec.get("system"):
            return (shutil.which(self.spec["peer"])
                    or os.path.join("/usr/bin", self.spec["peer"]))
        return os.path.join(self.cfg.peers, self.spec["peer"])

    def args(self, port):
        """The server's arguments (without the binary)."""
        if self.name == "redis":
            # No snapshots, no append-only file: an in-memory server, as
            # kv-server is.
            return ["--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no"]
        args = []
        # kv-server has one protocol, resp, its default.
        if self.spec["peer"] is None and not self.spec.get("kv"):
            args += [f"--protocol={self.spec['protocol']}"]
        args += ["--host=127.0.0.1", f"--port={port}", "--drain-timeout=10s"]
        if self.spec["peer"] is None:
            args += ["--log-level=warning"]
        if self.spec.get("workers"):
            args += [f"--workers={self.spec['workers']}"]
        return args

    def choose_port(self):
        return free_port() if self.spec.get("fixed_port") else 0

    def check_binary(self):
        path = self.binary()
        if not os.access(path, os.X_OK):
            if self.spec.get("kv"):
                hint = " (did examples/kv-server build? --kv-bin)"
            elif self.spec.get("system"):
                hint = f" (apt-get install {self.spec['peer']})"
            elif self.spec["peer"] is None:
                hint = ""
            else:
                hint = " (bench/peers/build.sh failed?)"
            raise Failure(f"{path} missing{hint}")

    def start(self):
        self.check_binary()
        argv = pinned(self.cfg.server_cpus, self.spec, [self.binary()])
        port = self.choose_port()
        argv += self.args(port)
        self.command = env_text(self.spec) + shlex.join(argv)
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=ROOT, env=server_env(self.spec))
        deadline = time.monotonic() + LISTEN_LIMIT
        while time.monotonic() < deadline:
            with open(self.out_path, errors="replace") as f:
                text = f.read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                return self.port
            # redis-server logs to stdout that it listens, without the port.
            if self.name == "redis" and re.search(REDIS_READY, text):
                self.port = port
                return self.port
            if self.proc.poll() is not None:
                raise Failure(f"exited ({self.proc.returncode}) before listening: "
                              + (last_line(self.err_path)
                                 or last_line(self.out_path))[:100])
            time.sleep(0.02)
        self.kill()
        raise Failure("no listening line within 10s")

    def rss_kb(self):
        return tree_rss_kb(self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then the exit code and the time to exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self.proc = None
            return dict(exit_code=code, stop_ms=None, note="exited by itself")
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_LIMIT)
            result = dict(exit_code=code, stop_ms=(time.monotonic() - t0) * 1000)
        except subprocess.TimeoutExpired:
            self.kill()
            result = dict(exit_code="killed", stop_ms=None,
                          note="SIGKILLed 30s after SIGTERM")
        self.proc = None
        return result

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def pinned(cpus, spec, argv):
    """`argv` under `taskset -c cpus`, unless `spec` (a server's) is of the
    multicore group, where nothing is pinned."""
    if spec is not None and spec.get("unpinned"):
        return list(argv)
    return ["taskset", "-c", cpus] + list(argv)


def server_env(spec):
    """The environment of a server (and of a tool that starts it): ours with
    the server's `env` added; None (inherit) if it has none."""
    if not spec.get("env"):
        return None
    return dict(os.environ, **spec["env"])


def env_text(spec):
    """`KEY=value ` for the server's own environment, as a shell would
    show it in front of the command."""
    return "".join(f"{k}={shlex.quote(v)} "
                   for k, v in sorted(spec.get("env", {}).items()))


def exit_text(code):
    if isinstance(code, int) and code < 0:
        return f"sig{-code}"
    return str(code)


# ------------------------------------------------------------------ the loads


def run_tool(cfg, tag, argv, timeout, spec=None, env=None):
    """Runs a load tool pinned to the load CPUs (not pinned for a server
    `spec` of the multicore group), with `env` if given; (rc, stdout,
    stderr path, command)."""
    argv = pinned(cfg.load_cpus, spec, argv)
    out_path = os.path.join(cfg.logs, f"{tag}.out")
    err_path = os.path.join(cfg.logs, f"{tag}.err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        try:
            proc = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout,
                                  stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    with open(out_path, errors="replace") as f:
        text = f.read()
    return rc, text, err_path, shlex.join(argv)


def start_tool(cfg, tag, argv, spec=None):
    argv = pinned(cfg.load_cpus, spec, argv)
    out = open(os.path.join(cfg.logs, f"{tag}.out"), "w")
    err = open(os.path.join(cfg.logs, f"{tag}.err"), "w")
    proc = subprocess.Popen(argv, stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL, cwd=ROOT)
    out.close()
    err.close()
    return proc, shlex.join(argv)


def tool_output(cfg, tag):
    with open(os.path.join(cfg.logs, f"{tag}.out"), errors="replace") as f:
        return f.read()


def end_tools(procs):
    """Kills the tools of `procs` that still run (after a failure)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def echo_load_argv(cfg, port, duration, warmup):
    return [os.path.join(cfg.bin, "echo_load"), f"--port={port}",
            f"--connections={cfg.connections}", "--size=64", "--depth=1",
            f"--duration={duration}s", f"--warmup={warmup}s"]


def wrk_threads(spec):
    """wrk's threads: 1, as the http group has always had; the multicore
    group's MULTICORE_WRK_THREADS."""
    return MULTICORE_WRK_THREADS if spec and spec.get("unpinned") else 1


def wrk_argv(cfg, port, duration, spec=None):
    return ["wrk", f"-t{wrk_threads(spec)}", f"-c{cfg.connections}",
            f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}/"]


def conn_rate_argv(cfg, port, protocol, connections, duration, warmup):
    return [os.path.join(cfg.bin, "conn_rate"), f"--port={port}",
            f"--protocol={protocol}", f"--connections={connections}",
            f"--duration={duration}s", f"--warmup={warmup}s"]


def redis_benchmark_argv(cfg, port, depth, requests):
    return ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
            "-t", RESP_TESTS, "-n", str(requests), "-c", str(cfg.connections),
            "-P", str(depth), "--csv"]


def redis_benchmark_limit(requests):
    """s until a redis-benchmark run counts as hung: 10,000 requests a
    second at the least (it spins for good if it cannot connect)."""
    return 60 + len(RESP_RESULTS) * requests / 10000


def parse_redis_benchmark(rc, text, err_path):
    """redis-benchmark --csv: requests per second (and the latencies) of each
    test. It exits 1 at the first error reply ("Error from server: ERR ...")
    or a lost connection; any such line fails the run too, as does a test
    missing from its output."""
    try:
        with open(err_path, errors="replace") as f:
            err_text = f.read()
    except OSError:
        err_text = ""
    errors = [l.strip() for l in (text + "\n" + err_text).splitlines()
              if re.search(r"\berror\b|\bERR\b|could not connect", l, re.I)]
    if rc != 0 or errors:
        raise Failure(f"redis-benchmark rc={rc}: "
                      + (errors[0] if errors else last_line(err_path)
                         or "no output")[:100])
    values = {}
    for line in text.splitlines():
        cells = [c.strip('"') for c in line.strip().split('","')]
        if len(cells) < 7 or cells[0] not in RESP_RESULTS:
            continue
        try:
            values[cells[0]] = float(cells[1])
            values[f"{cells[0]}_p50_ms"] = float(cells[4])
            values[f"{cells[0]}_p99_ms"] = float(cells[6])
        except ValueError:
            raise Failure(f"redis-benchmark: cannot read '{line[:80]}'")
    missing = [t for t in RESP_RESULTS if t not in values]
    if missing:
        raise Failure("redis-benchmark: no result for " + ", ".join(missing))
    return values


def parse_echo_load(rc, text, err_path):
    line = last_line_of(text, r"^echo_load:")
    values = kv(line)
    if rc != 0 or values.get("errors") != "0" or "msgs_per_s" not in values:
        raise Failure(f"echo_load rc={rc}: "
                      + (last_line(err_path) or line or "no output")[:100])
    return dict(rate=float(values["msgs_per_s"]),
                p99_ms=float(values["p99_us"]) / 1000,
                p50_ms=float(values["p50_us"]) / 1000)


def wrk_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(rc, text, err_path):
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    if rc != 0 or not rate or not p99:
        raise Failure(f"wrk rc={rc}: "
                      + (last_line(err_path) or "no Requests/sec")[:100])
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non2xx and int(non2xx.group(1)) > 0:
        raise Failure(f"wrk: {non2xx.group(1)} non-2xx responses")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                     r"timeout (\d+)", text)
    if sock and any(int(x) for x in sock.groups()):
        raise Failure("wrk: " + sock.group(0))
    return dict(rate=float(rate.group(1)), p99_ms=wrk_ms(p99.group(1)),
                p50_ms=wrk_ms(p50.group(1)) if p50 else None)


def parse_wrk_errors(rc, text, err_path):
    """A wrk run that may see errors (the reload runs): its rate and every
    error it counts, as numbers. Fails only when wrk did not run."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in ", text, re.M)
    if rc != 0 or not rate or not total:
        raise Failure(f"wrk rc={rc}: "
                      + (last_line(err_path) or "no Requests/sec")[:100])
    values = dict(rate=float(rate.group(1)), requests=int(total.group(1)))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                     r"timeout (\d+)", text)
    for i, kind in enumerate(("connect", "read", "write", "timeout")):
        values[f"errors_{kind}"] = int(sock.group(i + 1)) if sock else 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    values["errors_non2xx"] = int(non2xx.group(1)) if non2xx else 0
    values["errors"] = sum(values[f"errors_{k}"] for k in
                           ("connect", "read", "write", "timeout", "non2xx"))
    kinds = [f"{k} {values['errors_' + k]}"
             for k in ("connect", "read", "write", "timeout", "non2xx")
             if values["errors_" + k]]
    values["error_kinds"] = ", ".join(kinds)
    return values


def parse_conn_rate_errors(rc, text, err_path):
    """A conn_rate run that may see errors (the reload runs): its rate, its
    error count and the kinds it names on stderr. Fails only when conn_rate
    did not run (exit 1 with errors is a run that saw errors)."""
    values = kv(last_line_of(text, r"^conn_rate:"))
    if (rc not in (0, 1) or "errors" not in values
            or "conns_per_s" not in values):
        raise Failure(f"conn_rate rc={rc}: "
                      + (last_line(err_path) or "no output")[:100])
    try:
        with open(err_path, errors="replace") as f:
            kinds = [m.group(1) for m in
                     re.finditer(r"^conn_rate: error: (.+)$", f.read(), re.M)]
    except OSError:
        kinds = []
    return dict(rate=float(values["conns_per_s"]),
                errors=int(values["errors"]), error_kinds="; ".join(kinds))


def parse_conn_rate(rc, text, err_path):
    values = kv(last_line_of(text, r"^conn_rate:"))
    if rc != 0 or values.get("errors") != "0" or "conns_per_s" not in values:
        raise Failure(f"conn_rate rc={rc} errors={values.get('errors', '?')}: "
                      + (last_line(err_path) or "no output")[:100])
    return dict(rate=float(values["conns_per_s"]),
                p50_ms=float(values["p50_us"]) / 1000,
                p99_ms=float(values["p99_us"]) / 1000)


def last_line_of(text, pattern):
    lines = [l for l in text.splitlines() if re.search(pattern, l)]
    return lines[-1] if lines else ""


# ------------------------------------------------------------------ measurements


def with_server(name, cfg, tag, body):
    """Starts the server, runs body(server, run), stops it, checks the exit."""
    run = dict(commands=[])
    server = Server(name, cfg, tag)
    error = None
    try:
        server.start()
        run["commands"].append(server.command)
        body(server, run)
    except Failure as e:
        error = e.args[0]
    finally:
        stopped = server.stop() if server.proc is not None else None
        if stopped is not None:
            run["server_exit"] = exit_text(stopped["exit_code"])
            run["server_stop_ms"] = stopped["stop_ms"]
            if stopped.get("note"):
                run["server_note"] = stopped["note"]
    if run.get("server_exit") not in (None, "0"):
        exit_error = (f"server exit code {run['server_exit']} "
                      f"{run.get('server_note', '')}").strip()
        error = f"{error}; {exit_error}" if error else exit_error
    if error:
        raise Failure(error, run)
    return run


def measure_throughput(name, cfg, tag):
    protocol = SERVERS[name]["protocol"]

    def body(server, run):
        if protocol == "echo":
            rc, text, err, cmd = run_tool(
                cfg, f"{tag}.load",
                echo_load_argv(cfg, server.port, cfg.duration, 1),
                cfg.duration + 60)
            run["commands"].append(cmd)
            run["values"] = parse_echo_load(rc, text, err)
        else:
            # One second of warm-up, as echo_load has, then the measurement.
            spec = SERVERS[name]
            rc, text, err, cmd = run_tool(
                cfg, f"{tag}.warmup", wrk_argv(cfg, server.port, 1, spec), 60,
                spec)
            before = tree_cpu_s(server.proc.pid)
            rc, text, err, cmd = run_tool(
                cfg, f"{tag}.load",
                wrk_argv(cfg, server.port, cfg.duration, spec),
                cfg.duration + 60, spec)
            after = tree_cpu_s(server.proc.pid)
            run["commands"].append(cmd)
            run["values"] = parse_wrk(rc, text, err)
            # Where the server's CPU went in the run, per process of its
            # tree (the multicore group: did every worker work?).
            run["cpu_s"] = {str(pid): round(t - before.get(pid, 0.0), 2)
                            for pid, t in after.items()}

    return with_server(name, cfg, tag, body)


def resp_depth(key):
    """The pipeline depth of a resp group's run, `resp-P16` -> 16."""
    return int(key[len("resp-P"):])


def measure_resp(name, cfg, tag, depth):
    """redis-benchmark at pipeline depth `depth`: a warm-up of a tenth of the
    requests, then the measured run, against a fresh server."""

    def body(server, run):
        warmup = max(1, cfg.resp_requests // 10)
        run_tool(cfg, f"{tag}.warmup",
                 redis_benchmark_argv(cfg, server.port, depth, warmup),
                 redis_benchmark_limit(warmup))
        rc, text, err, cmd = run_tool(
            cfg, f"{tag}.load",
            redis_benchmark_argv(cfg, server.port, depth, cfg.resp_requests),
            redis_benchmark_limit(cfg.resp_requests))
        run["commands"].append(cmd)
        run["values"] = parse_redis_benchmark(rc, text, err)

    return with_server(name, cfg, tag, body)


def measure_accept(name, cfg, tag):
    protocol = SERVERS[name]["protocol"]

    def body(server, run):
        rc, text, err, cmd = run_tool(
            cfg, f"{tag}.load",
            conn_rate_argv(cfg, server.port, protocol, cfg.connections,
                           cfg.duration, 1),
            cfg.duration + 60)
        run["commands"].append(cmd)
        run["values"] = parse_conn_rate(rc, text, err)

    return with_server(name, cfg, tag, body)


def measure_sustain(name, cfg, tag):
    protocol = SERVERS[name]["protocol"]
    s = cfg.sustain

    def body(server, run):
        if protocol == "echo":
            argv = echo_load_argv(cfg, server.port, s, 0)
        else:
            argv = wrk_argv(cfg, server.port, s)
        loads = [("load", *start_tool(cfg, f"{tag}.load", argv))]
        if cfg.churn > 0:
            loads.append(("churn", *start_tool(
                cfg, f"{tag}.churn",
                conn_rate_argv(cfg, server.port, protocol, cfg.churn, s, 0))))
        run["commands"] += [cmd for _, _, cmd in loads]
        t0 = time.monotonic()
        samples = []
        try:
            for second in range(1, s):
                time.sleep(max(0.0, t0 + second - time.monotonic()))
                if any(p.poll() is not None for _, p, _ in loads):
                    break
                samples.append((second, server.rss_kb()))
            for _, p, _ in loads:
                p.wait(timeout=s + 60)
        finally:
            end_tools([p for _, p, _ in loads])
        run["rss_samples_kb"] = samples
        text = tool_output(cfg, f"{tag}.load")
        err = os.path.join(cfg.logs, f"{tag}.load.err")
        load_values = (parse_echo_load if protocol == "echo" else parse_wrk)(
            loads[0][1].returncode, text, err)
        if cfg.churn > 0:
            run["churn"] = parse_conn_rate(
                loads[1][1].returncode, tool_output(cfg, f"{tag}.churn"),
                os.path.join(cfg.logs, f"{tag}.churn.err"))
        base_at = min(GROWTH_BASE_S, max(1, s // 2))
        base = [kb for t, kb in samples if t >= base_at and kb is not None]
        if len(base) < 2:
            raise Failure(f"too few RSS samples ({len(samples)})")
        growth = base[-1] - base[0]
        run["values"] = dict(growth_kb=growth,
                             growth_pct=100.0 * growth / base[0],
                             rss_start_kb=base[0], rss_end_kb=base[-1],
                             base_at_s=base_at, end_at_s=samples[-1][0],
                             load_rate=load_values["rate"])

    return with_server(name, cfg, tag, body)


def reload_key(load):
    return f"reload-{load}"


def measure_reload(name, cfg, tag, load):
    """RELOADS SIGHUPs to the server (quiesce's master; nginx-run.sh, which
    passes it to nginx's master as `nginx -s reload` would) evenly spread
    over a --duration load: wrk's keep-alive connections (`keepalive`) or
    conn_rate's fresh connection per request (`fresh`). Counts the errors
    the load saw. A SIGHUP after which no new process appears in the
    server's tree (no new workers: no reload) fails the run, as does a
    server that is gone after one."""
    spec = SERVERS[name]

    def body(server, run):
        if load == "keepalive":
            argv = wrk_argv(cfg, server.port, cfg.duration, spec)
        else:
            argv = conn_rate_argv(cfg, server.port, "http", cfg.connections,
                                  cfg.duration, 0)
        proc, cmd = start_tool(cfg, f"{tag}.load", argv, spec)
        run["commands"].append(cmd)
        t0 = time.monotonic()
        root = server.proc.pid
        seen = set(tree_pids(root))
        reloads = []  # per SIGHUP: s after the load started, new processes

        def watch(more):
            """Counts the new processes of the tree for the last SIGHUP
            every 50 ms while more() holds."""
            nonlocal seen
            while more():
                new = set(tree_pids(root)) - seen
                if reloads:
                    reloads[-1]["new"] += len(new)
                seen |= new
                time.sleep(0.05)

        def alive(hups):
            if not server.alive():
                code = exit_text(server.proc.returncode)
                raise Failure(f"server exited ({code}) after SIGHUP "
                              f"{hups}/{RELOADS}")

        try:
            for k in range(RELOADS):
                at = t0 + cfg.duration * (k + 1) / (RELOADS + 1)
                watch(lambda: time.monotonic() < at)
                alive(k)
                os.kill(root, signal.SIGHUP)
                reloads.append(dict(at_s=round(time.monotonic() - t0, 2),
                                    new=0))
            # The last one: while the load runs, and after it until a new
            # process showed or RELOAD_SEEN_S passed since the SIGHUP.
            seen_by = time.monotonic() + RELOAD_SEEN_S
            limit = t0 + cfg.duration + 60
            watch(lambda: time.monotonic() < limit and (
                proc.poll() is None or (not reloads[-1]["new"]
                                        and time.monotonic() < seen_by)))
            try:
                proc.wait(timeout=max(1.0, limit - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise Failure(f"the load ran {cfg.duration + 60}s and was "
                              "killed")
        finally:
            end_tools([proc])
            run["reloads"] = reloads
        parse = (parse_wrk_errors if load == "keepalive"
                 else parse_conn_rate_errors)
        values = parse(proc.returncode, tool_output(cfg, f"{tag}.load"),
                       os.path.join(cfg.logs, f"{tag}.load.err"))
        values["reloads"] = sum(1 for r in reloads if r["new"] > 0)
        run["values"] = values
        alive(len(reloads))
        if values["reloads"] < RELOADS:
            missed = [str(i + 1) for i, r in enumerate(reloads)
                      if not r["new"]]
            said = last_line(server.err_path, r"SIGHUP|HUP|reload")
            raise Failure(f"no reload: no new process after SIGHUP "
                          f"{', '.join(missed)} of {RELOADS}"
                          + (f" (server: {said[-80:]})" if said else ""))

    return with_server(name, cfg, tag, body)


def measure_stop(name, cfg, tag, idle):
    """stop_time --raw: one server start, `idle` connections, SIGTERM."""
    server = Server(name, cfg, tag)
    server.check_binary()
    return stop_time_run(cfg, tag, server.binary(),
                         server.args(server.choose_port()),
                         SERVERS[name]["protocol"], idle, SERVERS[name])


def measure_caf_floor(cfg, tag, idle):
    """stop_time --raw on bench/caf_floor: CAF's own floor for the stop."""
    binary = os.path.join(cfg.bin, CAF_FLOOR)
    if not os.access(binary, os.X_OK):
        raise Failure(f"{binary} missing")
    return stop_time_run(cfg, tag, binary, ["--port=0"], "echo", idle)


def stop_time_run(cfg, tag, binary, args, protocol, idle, spec=None):
    """stop_time --raw on `binary` `args`; a server `spec` of the multicore
    group: neither stop_time nor the server pinned, the server's `env`."""
    argv = [os.path.join(cfg.bin, "stop_time"), "--raw",
            f"--server={binary}", "--rounds=1",
            f"--connections={idle}", f"--protocol={protocol}"]
    if spec is None or not spec.get("unpinned"):
        argv += [f"--server-cpus={cfg.server_cpus}"]
    argv += ["--"] + args
    rc, text, err, cmd = run_tool(
        cfg, f"{tag}.stop_time", argv, 180, spec,
        server_env(spec) if spec is not None else None)
    run = dict(commands=[(env_text(spec) if spec else "") + cmd])
    round_line = last_line_of(text, r"^round 1/1:")
    values = kv(round_line)
    if values.get("exit_code") is not None:
        run["server_exit"] = values["exit_code"]
    if rc != 0 or not round_line:
        why = (last_line_of(text, r"failed|KILLED")
               or last_line(err, r"stop_time") or round_line
               or f"stop_time rc={rc}")
        why = why.replace("stop_time: round 1/1: ", "")
        if round_line:
            why = (f"exit_code={values.get('exit_code')} "
                   f"clean_eof={values.get('clean_eof')} "
                   f"resets={values.get('resets')} "
                   f"no_eof_or_error={values.get('no_eof_or_error')}")
        raise Failure(why[:120], run)
    run["values"] = dict(
        stop_ms=float(values["stop_ms"]),
        rss_base_kb=int(values["rss_base_kb"]),
        rss_idle_kb=int(values["rss_idle_kb"]),
        rss_per_conn_bytes=float(values["rss_per_conn_bytes"]),
        last_eof_ms=float(values["last_eof_ms"]),
        setup_ms=float(values["setup_ms"]))
    return run


def first_cpu(cpus):
    """The first CPU of a taskset list such as `0` or `2-3,5`."""
    m = re.match(r"\s*(\d+)", cpus)
    if not m:
        raise Failure(f"cannot read a CPU number from '{cpus}'")
    return m.group(1)


def measure_floor(cfg, tag, idle):
    """close_floor --rounds=1: the kernel's own cost of closing `idle` idle
    connections, in the same round as the servers' stop runs."""
    argv = [os.path.join(cfg.bin, "close_floor"), f"--connections={idle}",
            "--rounds=1", f"--server-cpu={first_cpu(cfg.server_cpus)}",
            f"--client-cpu={first_cpu(cfg.load_cpus)}"]
    rc, text, err, cmd = run_tool(cfg, f"{tag}.close_floor", argv, 180)
    run = dict(commands=[cmd])
    values = kv(last_line_of(text, r"^close_floor:"))
    if rc != 0 or "graceful_ms" not in values:
        raise Failure(f"close_floor rc={rc}: "
                      + (last_line(err) or "no output")[:100], run)
    run["values"] = dict(graceful_ms=float(values["graceful_ms"]),
                         close_ms=float(values["close_ms"]))
    return run


# ------------------------------------------------------------------ the plan


def group_metrics(group):
    """The metrics (of METRICS) that `group` is measured in."""
    return GROUP_METRICS.get(group, DEFAULT_METRICS)


def measures(server, metric):
    """Whether `server` has runs of `metric` (of its group's metrics): the
    reload runs are for the servers that reload on SIGHUP."""
    if metric == "reload":
        return bool(SERVERS[server].get("reload"))
    return metric in group_metrics(SERVERS[server]["group"])


def stop_servers(cfg):
    """The selected servers of the groups with stop runs, beside the floors:
    not the multicore group's (the floors are pinned, its servers not)."""
    return [s for group in GROUPS for s in GROUPS[group]
            if s in cfg.servers and "stop" in group_metrics(group)
            and group != "multicore"]


def plan_runs(cfg):
    """Every (round, group, metric key, server) in the order they run."""
    plan = []
    for r in range(cfg.rounds):
        # The floor under every stop of this round, measured in the round.
        if "stop" in cfg.metrics and stop_servers(cfg):
            for n in cfg.idle:
                plan.append((r + 1, "floor", f"floor@{n}", FLOOR))
                plan.append((r + 1, "floor", f"caffloor@{n}", CAF_FLOOR))
        for group, members in GROUPS.items():
            servers = [s for s in members if s in cfg.servers]
            if not servers:
                continue
            k = r % len(servers)
            order = servers[k:] + servers[:k]  # rotated each round
            for metric in METRICS:
                if metric not in group_metrics(group):
                    keys = []
                elif group == "resp":
                    # redis-benchmark, a run per pipeline depth.
                    keys = ([f"resp-P{d}" for d in RESP_DEPTHS]
                            if metric in cfg.metrics else [])
                elif metric == "reload":
                    keys = ([reload_key(l) for l in RELOAD_LOADS]
                            if metric in cfg.metrics else [])
                elif metric == "stop":
                    counts = [n for n in cfg.idle
                              if "stop" in cfg.metrics
                              or ("rss" in cfg.metrics and n == max(cfg.idle))]
                    keys = [f"stop@{n}" for n in counts]
                elif metric in cfg.metrics:
                    keys = [metric]
                else:
                    keys = []
                for key in keys:
                    for server in order:
                        if measures(server, metric):
                            plan.append((r + 1, group, key, server))
    return plan


def estimate_s(cfg, key):
    if key.startswith("resp-P"):
        # The five tests at about 100,000 requests a second, the warm-up.
        return 1.5 + 1.1 * len(RESP_RESULTS) * cfg.resp_requests / 100000
    if key in ("throughput", "accept"):
        return cfg.duration + 2.5
    if key.startswith("reload-"):
        return cfg.duration + 1.5
    if key == "sustain":
        return cfg.sustain + 2
    if key.startswith("floor@"):
        return 0.5 + int(key.split("@")[1]) / 2500
    if key.startswith("caffloor@"):
        return 1.5 + int(key.split("@")[1]) / 2500
    return 1.5 + int(key.split("@")[1]) / 2500


def run_one(cfg, rnd, key, name):
    tag = f"r{rnd}.{name}.{key.replace('@', '')}"
    t0 = time.monotonic()
    try:
        if key == "throughput":
            run = measure_throughput(name, cfg, tag)
        elif key == "accept":
            run = measure_accept(name, cfg, tag)
        elif key == "sustain":
            run = measure_sustain(name, cfg, tag)
        elif key.startswith("resp-P"):
            run = measure_resp(name, cfg, tag, resp_depth(key))
        elif key.startswith("reload-"):
            run = measure_reload(name, cfg, tag, key[len("reload-"):])
        elif key.startswith("floor@"):
            run = measure_floor(cfg, tag, int(key.split("@")[1]))
        elif key.startswith("caffloor@"):
            run = measure_caf_floor(cfg, tag, int(key.split("@")[1]))
        else:
            run = measure_stop(name, cfg, tag, int(key.split("@")[1]))
        run["ok"] = True
    except Failure as e:
        run = e.args[1] if len(e.args) > 1 else {}
        run["ok"] = False
        run["error"] = e.args[0]
    except Exception as e:  # a bug here must not lose the other runs
        run = dict(ok=False, error=f"{type(e).__name__}: {e}")
    group = "floor" if name in (FLOOR, CAF_FLOOR) else SERVERS[name]["group"]
    run.update(round=rnd, server=name, metric=key, group=group,
               logs=shown(os.path.join(cfg.logs, tag)),
               seconds=round(time.monotonic() - t0, 1))
    return run


def describe(run):
    if not run["ok"]:
        return "FAILED (" + run["error"] + ")"
    v = run["values"]
    key = run["metric"]
    if key == "throughput":
        cpu = (", CPU s per process " + "/".join(
            f"{t:.1f}" for t in run["cpu_s"].values())
            if len(run.get("cpu_s", {})) > 1 else "")
        return f"{v['rate']:,.0f}/s p99={v['p99_ms']:.3f}ms{cpu}"
    if key.startswith("resp-P"):
        return ", ".join(f"{t} {v[t]:,.0f}/s" for t in RESP_RESULTS)
    if key.startswith("reload-"):
        unit = "req/s" if key == "reload-keepalive" else "conns/s"
        return (f"{v['errors']} errors"
                + (f" ({v['error_kinds']})" if v.get("error_kinds") else "")
                + f", {v['rate']:,.0f} {unit}, {v['reloads']}/{RELOADS} "
                  "reloads seen")
    if key == "accept":
        return f"{v['rate']:,.0f} conns/s"
    if key == "sustain":
        return f"growth {v['growth_kb']:+,} KB ({v['growth_pct']:+.1f}%)"
    if key.startswith("floor@"):
        return (f"graceful {v['graceful_ms']:.1f} ms, close "
                f"{v['close_ms']:.1f} ms")
    return (f"{v['stop_ms']:.1f} ms, {v['rss_per_conn_bytes']:,.0f} B/conn")


# ------------------------------------------------------------------ the table


def fmt_num(v, unit=""):
    if v is None:
        return "?"
    if v == 0:
        return "0" + unit
    a = abs(v)
    if a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    return s + unit


def row_specs(cfg, group):
    """The table's rows for `group`: dicts with label (the table's), short
    (the chart's), key (the runs' metric), field (in the runs' values),
    higher (is better), target (text or None), need ({peer: minimum ratio}
    or None), need_le ({peer: maximum ratio} or None), zero (the target is
    0 in every round), ratios (whether the ratio columns mean anything) and
    chart (whether the chart has a panel for it)."""
    unit = "msgs/s" if group == "echo" else "req/s"
    threads = MULTICORE_WRK_THREADS if group == "multicore" else 1
    load = (f"echo_load {cfg.connections} conns × 64 B" if group == "echo"
            else f"wrk -t{threads} -c{cfg.connections} GET /")
    rows = []

    def row(label, short, key, field, higher, target=None, need=None,
            chart=True, need_le=None, zero=False, ratios=True):
        better = "higher is better" if higher else "lower is better"
        rows.append(dict(label=f"{label}, {better}", short=f"{short}\\n({better})",
                         key=key, field=field, higher=higher, target=target,
                         need=need, chart=chart, need_le=need_le, zero=zero,
                         ratios=ratios))

    if group == "resp":
        # A row per test and pipeline depth; the chart leaves out the PINGs.
        if "throughput" in cfg.metrics:
            for depth in RESP_DEPTHS:
                for test in RESP_RESULTS:
                    need = TARGETS["resp"].get((test, depth))
                    row(f"{test} req/s (redis-benchmark -c{cfg.connections} "
                        f"-P {depth})", f"{test} req/s, -P {depth}",
                        f"resp-P{depth}", test, True,
                        need and ", ".join(f"≥{v}× {k}"
                                           for k, v in need.items()),
                        need, chart=not test.startswith("PING"))
        return rows
    if "throughput" in cfg.metrics:
        row(f"{unit} ({load})", unit, "throughput", "rate", True,
            ", ".join(f"≥{v}× {k}" for k, v in TARGETS[group].items()),
            TARGETS[group])
        row("p99 latency ms (same run)", "p99 latency, ms", "throughput",
            "p99_ms", False)
    if "stop" in cfg.metrics and group == "multicore":
        # Issue 13: --workers=2 against --workers=1, not an absolute time.
        idle, base, most = MULTICORE_STOP_TARGET
        for n in cfg.idle:
            row(f"stop ms, SIGTERM→exit, {n:,} idle conns",
                f"stop with {n:,} idle, ms", f"stop@{n}", "stop_ms", False,
                f"≤{most}× {base}" if n == idle else None,
                need_le={base: most} if n == idle else None)
    elif "stop" in cfg.metrics:
        for n in cfg.idle:
            row(f"stop ms, SIGTERM→exit, {n:,} idle conns",
                f"stop with {n:,} idle, ms", f"stop@{n}", "stop_ms", False,
                f"≤{STOP_TARGET[1]:.0f} ms" if n == STOP_TARGET[0] else None)
    n = max(cfg.idle)
    if "stop" in cfg.metrics or "rss" in cfg.metrics:
        row(f"RSS per idle conn at {n:,}, bytes",
            f"RSS per idle conn at {n:,}, B", f"stop@{n}",
            "rss_per_conn_bytes", False,
            f"≤{RSS_TARGET[1]:.0f} B"
            if n == RSS_TARGET[0] and group != "multicore" else None)
    if "reload" in cfg.metrics and "reload" in group_metrics(group):
        for load in RELOAD_LOADS:
            key = reload_key(load)
            what = (f"wrk -t{threads} -c{cfg.connections} keep-alive"
                    if load == "keepalive"
                    else f"conn_rate {cfg.connections} connectors, a fresh "
                         "connection per request")
            short = "keep-alive" if load == "keepalive" else "fresh conns"
            row(f"errors during {RELOADS} SIGHUP reloads in {cfg.duration}s, "
                f"{what}", f"reload errors, {short}", key, "errors", False,
                "0 in every round", zero=True, ratios=False)
            row(f"{'req/s' if load == 'keepalive' else 'new conns/s'} "
                "through the reloads (same run)",
                f"{'req/s' if load == 'keepalive' else 'conns/s'} through "
                f"reloads, {short}", key, "rate", True, chart=False)
    if "accept" in cfg.metrics and "accept" in group_metrics(group):
        row(f"accept rate, new conns/s (conn_rate, {cfg.connections} "
            "connectors)", "new conns/s", "accept", "rate", True)
        row("connect→answer p99 ms (same run)", "connect→answer p99, ms",
            "accept", "p99_ms", False)
    if "sustain" in cfg.metrics and "sustain" in group_metrics(group):
        row(f"RSS growth over {cfg.sustain}s sustained load, KB "
            f"(s{GROWTH_BASE_S}→end)", f"RSS growth in {cfg.sustain}s, KB",
            "sustain", "growth_kb", False,
            f"within noise (≤ max({NOISE_KB} KB, {NOISE_PCT:.0f}%))")
    return rows


def cell_stats(runs, name, key, field):
    """(median or None, error text or None) over the rounds of one cell."""
    mine = [r for r in runs if r["server"] == name and r["metric"] == key]
    if not mine:
        return None, "not run"
    ok = [r["values"][field] for r in mine
          if r["ok"] and r["values"].get(field) is not None]
    bad = [r for r in mine if not r["ok"]]
    med = statistics.median(ok) if ok else None
    if bad:
        first = bad[0]
        why = f"r{first['round']}: {first['error']}"
        if len(bad) > 1:
            why += f"; {len(bad)}/{len(mine)} rounds failed"
        return med, why
    return med, None


def md_escape(text):
    return text.replace("|", "\\|")


def group_table(cfg, runs, group):
    servers = [s for s in GROUPS[group] if s in cfg.servers]
    quiesce = (servers[0] if servers and SERVERS[servers[0]]["peer"] is None
               else None)
    peers = [s for s in servers if s != quiesce]
    header = ["metric"] + servers
    if quiesce:
        # The resp group's quiesce side is the example built on it.
        # The multicore group's has two quiesce servers: named.
        side = ("kv-server" if SERVERS[quiesce].get("kv")
                else quiesce if group == "multicore" else "quiesce")
        header += [f"{side}/{p}" for p in peers] + [f"target ({side})"]
    rows = []
    summary = {}
    for spec in row_specs(cfg, group):
        key, field, target = spec["key"], spec["field"], spec["target"]
        fmt = fmt_num
        cells = [spec["label"]]
        medians = {}
        errors = {}
        metric = key.split("-")[0] if key.startswith("reload-") else None
        for s in servers:
            if metric and not measures(s, metric):
                medians[s], errors[s] = None, "not measured"
                cells.append("–")
                continue
            med, err = cell_stats(runs, s, key, field)
            medians[s], errors[s] = med, err
            if err is None:
                text = fmt(med)
                if field == "growth_kb":
                    pct = cell_stats(runs, s, key, "growth_pct")[0]
                    text = f"{med:+,.0f} ({pct:+.1f}%)"
                cells.append(text)
            elif med is not None:
                cells.append(f"FAILED ({err}; median of the rest: {fmt(med)})")
            else:
                cells.append(f"FAILED ({err})")
        ratios = {}
        if quiesce:
            for p in peers:
                q, v = medians[quiesce], medians[p]
                if not spec["ratios"] or "not measured" in (errors[quiesce],
                                                           errors[p]):
                    cells.append("–")
                elif errors[quiesce] or errors[p]:
                    cells.append("n/a (a run failed)")
                elif not q or not v or q <= 0 or v <= 0:
                    cells.append("n/a (≤ 0)")
                else:
                    ratios[p] = q / v
                    cells.append(ratio_text(q / v, spec["higher"]))
            cells.append(target_status(cfg, group, key, field, target,
                                       medians[quiesce], errors[quiesce],
                                       ratios, runs, quiesce, spec["need"],
                                       spec["need_le"], spec["zero"]))
        rows.append(cells)
        summary[f"{key}.{field}"] = dict(
            medians=medians, errors=errors, ratios=ratios,
            higher_is_better=spec["higher"], target=target)
    exits = ["server exit 0 (all runs)"]
    for s in servers:
        mine = [r for r in runs if r["server"] == s and "server_exit" in r]
        zero = sum(1 for r in mine if r["server_exit"] == "0")
        other = sorted({r["server_exit"] for r in mine} - {"0"})
        exits.append(f"{zero}/{len(mine)}"
                     + (f" (also {', '.join(other)})" if other else ""))
    if quiesce:
        mine = [r for r in runs if r["server"] == quiesce and "server_exit" in r]
        all_zero = all(r["server_exit"] == "0" for r in mine)
        exits += ["–"] * len(peers) + [
            f"every run 0: {'met' if all_zero else 'MISSED'}"]
    rows.append(exits)
    return header, rows, summary


def floor_table(cfg, runs):
    """Each server's stop next to the two floors of the same rounds: the
    kernel's (close_floor, graceful) and CAF's (caf_floor, plain brokers),
    with the ratios; (markdown lines, summary)."""
    header = ["idle conns", "server", "stop ms", "close_floor graceful ms",
              "stop ÷ floor", "caf_floor stop ms", "stop ÷ caf_floor",
              "target (quiesce)"]
    rows, summary = [], {}
    for n in cfg.idle:
        key = f"floor@{n}"
        floor, floor_err = cell_stats(runs, FLOOR, key, "graceful_ms")
        close, _ = cell_stats(runs, FLOOR, key, "close_ms")
        caf, caf_err = cell_stats(runs, CAF_FLOOR, f"caffloor@{n}", "stop_ms")
        summary[key] = dict(graceful_ms=floor, close_ms=close,
                            error=floor_err, ratios={}, caf_floor_ms=caf,
                            caf_floor_error=caf_err, caf_ratios={})
        floor_text = fmt_num(floor) if floor_err is None else (
            f"FAILED ({floor_err})")
        caf_text = fmt_num(caf) if caf_err is None else f"FAILED ({caf_err})"
        names = ([CAF_FLOOR] if caf_err is None else []) + stop_servers(cfg)
        for s in names:
            if s == CAF_FLOOR:
                stop, err = caf, caf_err
            else:
                stop, err = cell_stats(runs, s, f"stop@{n}", "stop_ms")
            ratio = caf_ratio = None
            if err is None and floor_err is None and stop and floor:
                ratio = stop / floor
                summary[key]["ratios"][s] = ratio
            if err is None and caf_err is None and stop and caf:
                caf_ratio = stop / caf
                summary[key]["caf_ratios"][s] = caf_ratio
            target = "–"
            if (n == FLOOR_TARGET[0] and s.startswith("quiesce")
                    and not SERVERS[s].get("baseline")):
                goal = f"≤{FLOOR_TARGET[1]:.2f}×"
                if ratio is None:
                    target = f"{goal}: not measured"
                else:
                    met = ratio <= FLOOR_TARGET[1]
                    target = f"{goal}: {'met' if met else 'MISSED'}"
            rows.append([f"{n:,}", s,
                         fmt_num(stop) if err is None else f"FAILED ({err})",
                         floor_text,
                         "n/a" if ratio is None else f"{ratio:.2f}×",
                         caf_text,
                         "n/a" if caf_ratio is None else f"{caf_ratio:.2f}×",
                         target])
    lines = ["## stop vs the floors", "",
             "close_floor: the same connections closed by a process that "
             "makes only the system calls a graceful stop needs (shutdown, "
             "the client's FIN, close), in the same rounds; medians. "
             "Its plain-close time: "
             + ", ".join(f"{fmt_num(v['close_ms'])} ms at {int(k[6:]):,}"
                         for k, v in summary.items()) + ". "
             "caf_floor: an echo server of plain CAF 0.17.6 brokers, one per "
             "connection, that at SIGTERM only sends each FIN and quits on "
             "the client's (bench/caf_floor.cpp): the least a stop costs with "
             "quiesce's design, in the same rounds.", "",
             render_md(header, rows), ""]
    return lines, summary


def ratio_text(ratio, higher):
    """`ratio` quiesce/peer, and what it means for quiesce."""
    if 0.98 <= ratio <= 1.02:
        verdict = "on par"
    elif (ratio > 1) == higher:
        verdict = "better"
    else:
        verdict = "worse"
    return f"{ratio:.2f}× {verdict}"


def target_status(cfg, group, key, field, target, med, err, ratios, runs,
                  quiesce, need=None, need_le=None, zero=False):
    if target is None:
        return "–"
    if err is not None or med is None:
        return f"{target}: not measured"
    if need is not None:
        if not all(p in ratios for p in need):
            return f"{target}: n/a"
        met = all(ratios[p] >= v for p, v in need.items())
    elif need_le is not None:
        if not all(p in ratios for p in need_le):
            return f"{target}: n/a"
        met = all(ratios[p] <= v for p, v in need_le.items())
    elif zero:
        # Every round, not the median: one round with errors misses it.
        counts = [r["values"][field] for r in runs
                  if r["server"] == quiesce and r["metric"] == key]
        met = bool(counts) and not any(counts)
        if not met:
            return (f"{target}: MISSED (rounds: "
                    + ", ".join(str(c) for c in counts) + ")")
    elif field == "stop_ms":
        met = med <= STOP_TARGET[1]
    elif field == "rss_per_conn_bytes":
        met = med <= RSS_TARGET[1]
    else:
        pct = cell_stats(runs, quiesce, key, "growth_pct")[0]
        start = med * 100.0 / pct if pct else 0
        met = med <= max(NOISE_KB, start * NOISE_PCT / 100.0)
    return f"{target}: {'met' if met else 'MISSED'}"


def render_md(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(md_escape(c).ljust(w)
                                 for c, w in zip(cells, widths)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------ the chart


def write_chart(cfg, runs, path, date):
    """One panel per metric (a row per group), a bar per server, medians;
    dashed red lines mark absolute targets. Returns an error text or None."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not found (apt-get install gnuplot-nox)"
    groups = [g for g in GROUPS if any(s in cfg.servers for s in GROUPS[g])]
    panels = {g: [] for g in groups}  # group -> [(title, bars, target line)]
    for group in groups:
        servers = [s for s in GROUPS[group] if s in cfg.servers]
        for spec in row_specs(cfg, group):
            if not spec["chart"]:
                continue
            key, field = spec["key"], spec["field"]
            metric = key.split("-")[0] if key.startswith("reload-") else None
            bars = []
            for s in servers:
                if metric and not measures(s, metric):
                    continue
                med, err = cell_stats(runs, s, key, field)
                # The colour follows the server's place in its group.
                bars.append((s, med if err is None else None,
                             GROUPS[group].index(s) + 1))
            title = spec["short"]
            line = None
            # The absolute targets; the multicore group's are ratios.
            if group == "multicore":
                pass
            elif field == "stop_ms" and key == f"stop@{STOP_TARGET[0]}":
                line = STOP_TARGET[1]
            elif (field == "rss_per_conn_bytes"
                  and key == f"stop@{RSS_TARGET[0]}"):
                line = RSS_TARGET[1]
            panels[group].append((title, bars, line))
    cols = max(len(p) for p in panels.values())
    if cols == 0:
        return "nothing to draw"
    base = path[:-4]
    terminals = subprocess.run([gnuplot, "-e", "set terminal"],
                               capture_output=True, text=True)
    term = ("pngcairo" if "pngcairo" in terminals.stdout + terminals.stderr
            else "png")
    heading = (f"quiesce vs peers: medians of {cfg.rounds} round(s); server "
               f"on CPU {cfg.server_cpus}, load on CPU {cfg.load_cpus}"
               + ("; multicore: nothing pinned" if "multicore" in groups
                  else "") + f"; {date}")
    script = [
        "set encoding utf8",
        "set termoption noenhanced",
        f"set terminal {term} size {max(cols * 330, 900)},"
        f"{len(groups) * 420 + 60} font 'sans,9'",
        f"set output '{path}'",
        f"set multiplot layout {len(groups)},{cols} title \"{heading}\" "
        "font ',12'",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.6",
        "unset key",
        "set grid ytics",
        "set xtics nomirror scale 0",
        "set ytics nomirror",
        "set format y '%g'",
        "set linetype 1 lc rgb '#1f5fa8'",
        "set linetype 2 lc rgb '#e08a2c'",
        "set linetype 3 lc rgb '#5d9e4a'",
        "set linetype 4 lc rgb '#8e5ea2'",
    ]
    index = 0
    with open(base + ".dat", "w") as dat:
        for group in groups:
            for title, bars, line in panels[group]:
                for s, v, colour in bars:
                    label = "FAILED" if v is None else fmt_num(v)
                    dat.write(f'"{s}" {0 if v is None else v} {colour} '
                              f'"{label}"\n')
                dat.write("\n\n")
                values = [v for _, v, _ in bars if v is not None]
                values += [line] if line is not None else []
                low = min([0.0] + values)
                high = max([0.0] + values)
                span = (high - low) or 1.0
                script += [
                    f"set title \"{group}: {title}\" noenhanced",
                    f"set xrange [-0.6:{len(bars) - 0.4}]",
                    f"set yrange [{low - (0.12 * span if low < 0 else 0)}:"
                    f"{high + 0.15 * span}]",
                ]
                plot = (f"plot '{base}.dat' index {index} using 0:2:3:xtic(1) "
                        f"with boxes lc variable, '' index {index} using 0:2:4 "
                        "with labels offset 0,0.8 font ',8'")
                if line is not None:
                    plot += f", {line} with lines dt 2 lc rgb 'red' lw 1.5"
                script.append(plot)
                index += 1
            # Every group starts a new row.
            script += ["set multiplot next"] * (cols - len(panels[group]))
    script.append("unset multiplot")
    with open(base + ".gp", "w") as f:
        f.write("\n".join(script) + "\n")
    proc = subprocess.run([gnuplot, base + ".gp"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        return "gnuplot failed: " + proc.stderr.strip()[-200:]
    return None


# ------------------------------------------------------------------ machine


def load_average():
    """/proc/loadavg's 1, 5 and 15 minute averages, as text."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info():
    def cmd(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                               cwd=ROOT)
            return (p.stdout + p.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            cpu = m.group(1) if m else "?"
    except OSError:
        pass
    head = cmd(["git", "rev-parse", "--short", "HEAD"])
    dirty = cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    return dict(
        cpu=cpu, cores=os.cpu_count(), kernel=os.uname().release,
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"),
        git=head + (" (with uncommitted changes)" if dirty else ""),
        load_before=load_average(),
        go=cmd(["go", "version"]).splitlines()[0] if shutil.which("go") else "?",
        nginx=cmd(["nginx", "-v"]) if shutil.which("nginx") else "?",
        asio=cmd(["dpkg-query", "-W", "-f", "${Version}", "libasio-dev"]),
        wrk=cmd(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else "?",
        # "Redis server v=7.0.15 sha=... malloc=..." -> "redis-server 7.0.15"
        redis=re.sub(r"^Redis server v=(\S+).*", r"redis-server \1",
                     cmd(["redis-server", "--version"]))
        if shutil.which("redis-server") else "?",
        redis_benchmark=cmd(["redis-benchmark", "--version"])
        if shutil.which("redis-benchmark") else "?",
    )


# ------------------------------------------------------------------ main


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/compare.sh",
        description="quiesce side by side with go-echo, asio-echo, go-http "
                    "and nginx, and its example kv-server with redis-server; "
                    "quiesce --workers=2 with nginx and Go on every CPU "
                    "(docs/performance.md)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10,
                   help="seconds of each throughput, accept-rate and reload "
                        "run")
    p.add_argument("--sustain", type=int, default=60,
                   help="seconds of the sustained run (memory growth)")
    p.add_argument("--idle", default="1000,10000",
                   help="idle connection counts for the stop time; RSS per "
                        "idle connection comes from the largest")
    p.add_argument("--out", default="build/bench-results")
    p.add_argument("--only", default="",
                   help="comma list of servers (" + ",".join(SERVERS)
                        + "), groups (" + ",".join(GROUPS) + ") and/or "
                          "metrics (throughput,stop,rss,accept,sustain,"
                          "reload; the resp group has throughput only, the "
                          "multicore group throughput, stop, rss and reload, "
                          "the others all but reload)")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--load-cpus", default="1")
    p.add_argument("--connections", type=int, default=50,
                   help="connections of the throughput and accept-rate loads "
                        "(and redis-benchmark's -c)")
    p.add_argument("--resp-requests", type=int, default=200000,
                   help="redis-benchmark's -n: requests of each test of the "
                        "resp group's runs")
    p.add_argument("--churn", type=int, default=5,
                   help="conn_rate connectors beside the sustained load "
                        "(0: none)")
    p.add_argument("--bin", default="build/bin",
                   help="quiesce and the bench tools")
    p.add_argument("--peers", default="build/bench-peers")
    p.add_argument("--kv-bin", default="build/bench-kv/kv-server",
                   help="examples/kv-server built against the installed "
                        "quiesce (compare.sh builds it)")
    p.add_argument("--baseline-bin", metavar="DIR",
                   help="a quiesce of another revision (DIR/quiesce) as the "
                        "servers quiesce-echo@base and quiesce-http@base, "
                        "beside the others (compare.sh --baseline=REV "
                        "builds one)")
    p.add_argument("--from", dest="from_", metavar="RESULTS_JSON",
                   help="run nothing: redraw the table and chart of an "
                        "earlier results.json into --out")
    cfg = p.parse_args(argv)
    if cfg.rounds < 1 or cfg.duration < 1 or cfg.sustain < 2:
        p.error("--rounds and --duration must be ≥ 1, --sustain ≥ 2")
    if cfg.resp_requests < 1:
        p.error("--resp-requests must be ≥ 1")
    try:
        cfg.idle = sorted({int(x) for x in cfg.idle.split(",") if x})
    except ValueError:
        p.error(f"--idle={cfg.idle}: expected counts such as 1000,10000")
    if not cfg.idle or min(cfg.idle) < 1:
        p.error("--idle needs at least one positive count")
    servers, named, metrics = set(), set(), set()
    for token in [t for t in cfg.only.split(",") if t]:
        if token in SERVERS:
            servers.add(token)
            named.add(token)
        elif token in GROUPS:
            servers.update(GROUPS[token])
        elif token in METRIC_ALIASES:
            metrics.add(METRIC_ALIASES[token])
        else:
            p.error(f"--only: unknown '{token}'")
    based = {s for s in SERVERS if SERVERS[s].get("baseline")}
    if cfg.baseline_bin is None:
        # A group stands for its servers that there are: without a
        # baseline, not its @base one.
        if named & based:
            p.error("--only: the @base servers need --baseline-bin")
        cfg.servers = (servers or set(SERVERS)) - based
    else:
        cfg.servers = servers or set(SERVERS)
    cfg.metrics = metrics or set(METRICS)
    for attr in ("out", "bin", "peers", "kv_bin", "baseline_bin"):
        if getattr(cfg, attr) is not None:
            setattr(cfg, attr, os.path.join(ROOT, getattr(cfg, attr)))
    return cfg


def main(argv):
    cfg = parse_args(argv)
    if cfg.from_:
        with open(cfg.from_) as f:
            saved = json.load(f)
        for k in ("rounds", "duration", "sustain", "idle", "server_cpus",
                  "load_cpus", "connections", "churn"):
            setattr(cfg, k, saved["config"][k])
        # Results from before the resp group have no resp runs.
        cfg.resp_requests = saved["config"].get("resp_requests",
                                                cfg.resp_requests)
        cfg.servers = set(saved["config"]["servers"])
        cfg.metrics = set(saved["config"]["metrics"])
        os.makedirs(cfg.out, exist_ok=True)
        return report(cfg, saved["machine"], saved["command"], saved["runs"],
                      saved["elapsed_s"])
    started = time.monotonic()
    # compare.sh passes what the user typed (it adds --bin and --peers).
    command = os.environ.get("COMPARE_COMMAND") or (
        "bench/compare.py " + shlex.join(argv))
    # The servers and tools inherit the raised limit (10,000 connections).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < max(cfg.idle) + 200:
        log(f"warning: the open-file hard limit {hard} is too low for "
            f"{max(cfg.idle)} connections")
    cfg.logs = os.path.join(cfg.out, "logs")
    os.makedirs(cfg.logs, exist_ok=True)
    machine = machine_info()
    plan = plan_runs(cfg)
    eta = sum(estimate_s(cfg, key) for _, _, key, _ in plan)
    log(f"compare: {len(plan)} runs, about {eta / 60:.0f} min; logs in "
        f"{shown(cfg.logs)}")
    runs = []
    try:
        for i, (rnd, group, key, name) in enumerate(plan, 1):
            run = run_one(cfg, rnd, key, name)
            runs.append(run)
            log(f"[{i}/{len(plan)}] round {rnd} {key} {name}: "
                f"{describe(run)} ({run['seconds']:.1f}s)")
    except KeyboardInterrupt:
        # The server of the interrupted run was stopped on the way out;
        # report what there is, marked as failed.
        log("compare: interrupted; reporting the runs so far")
        runs.append(dict(ok=False, error="interrupted", round=0,
                         server="-", metric="-", group="-", seconds=0))
    machine["load_after"] = load_average()
    return report(cfg, machine, command, runs, time.monotonic() - started)


def report(cfg, machine, command, runs, elapsed):
    """Prints the table, writes table.md, chart.png and results.json; the
    exit code: 1 if any run (or the chart) failed."""
    lines = ["# quiesce vs peers", "",
             f"- machine: {machine['cpu']}, {machine['cores']} cores, "
             f"Linux {machine['kernel']}",
             f"- date: {machine['date']}; quiesce at git {machine['git']}",
             f"- peers: {machine['go']}; {machine['nginx']}; asio "
             f"{machine['asio']}; {machine['wrk']}; "
             f"{machine.get('redis', '?')}; "
             f"{machine.get('redis_benchmark', '?')}",
             f"- command: `{command}`",
             f"- rounds: {cfg.rounds} (medians; servers in a rotated order "
             f"each round), server on CPU {cfg.server_cpus}, load on CPU "
             f"{cfg.load_cpus}; throughput/accept runs {cfg.duration}s, "
             f"sustained run {cfg.sustain}s"
             + (f", redis-benchmark -n {cfg.resp_requests}"
                if any(s in cfg.servers for s in GROUPS["resp"]) else ""),
             f"- run time: {elapsed / 60:.1f} min; load average (1, 5, 15 "
             f"min) before {machine.get('load_before', '?')}, after "
             f"{machine.get('load_after', '?')}"]
    if any(s in cfg.servers for s in GROUPS["multicore"]):
        lines.append(
            f"- multicore group: nothing pinned, servers and load share the "
            f"{machine['cores']} CPUs; quiesce --workers=2 and --workers=1, "
            f"nginx worker_processes 2, go-http GOMAXPROCS=2; wrk "
            f"-t{MULTICORE_WRK_THREADS}; reload runs: {RELOADS} SIGHUPs to "
            f"the master evenly spread over {cfg.duration}s")
    lines.append("")
    summary = {}
    for group in GROUPS:
        if not any(s in cfg.servers for s in GROUPS[group]):
            continue
        header, rows, summary[group] = group_table(cfg, runs, group)
        lines += [f"## {group}", "", render_md(header, rows), ""]
    if any(r["server"] == FLOOR for r in runs):
        floor_lines, summary["floor"] = floor_table(cfg, runs)
        lines += floor_lines
    failed = [r for r in runs if not r["ok"]]
    chart = os.path.join(cfg.out, "chart.png")
    chart_error = write_chart(cfg, runs, chart, machine["date"])
    if chart_error:
        lines.append(f"Chart: FAILED ({chart_error})")
    else:
        lines.append(f"Chart: {shown(chart)}")
    if failed:
        lines.append(f"{len(failed)} of {len(runs)} runs FAILED; see "
                     "results.json and the logs.")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(cfg.out, "table.md"), "w") as f:
        f.write(table)
    with open(os.path.join(cfg.out, "results.json"), "w") as f:
        json.dump(dict(machine=machine, command=command,
                       config={k: v for k, v in vars(cfg).items()
                               if k not in ("servers", "metrics")}
                       | dict(servers=sorted(cfg.servers),
                              metrics=sorted(cfg.metrics)),
                       elapsed_s=round(elapsed, 1), runs=runs,
                       summary=summary), f, indent=1, default=str)
    print(table, end="")
    print(f"wrote {shown(cfg.out)}/results.json, table.md, "
          f"chart.png in {elapsed / 60:.1f} min")
    return 1 if failed or chart_error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
