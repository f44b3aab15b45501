#define CAF_SUITE binary.startup

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "caf/test/unit_test.hpp"

#include "support/binary_fixture.hpp"
#include "support/temp_dir.hpp"

using namespace quiesce::test;

namespace {

/// The names in directory `path` (without "." and "..").
std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> result;
  if (auto* dir = ::opendir(path.c_str())) {
    while (auto* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..")
        result.push_back(name);
    }
    ::closedir(dir);
  }
  return result;
}

/// The signals process `pid` blocks now (the `SigBlk` mask of
/// /proc/<pid>/status), a bit per signal as `signal_bit` makes them; 0 if it
/// cannot be read.
uint64_t blocked_signals(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("SigBlk:", 0) == 0)
      return std::strtoull(line.c_str() + 7, nullptr, 16);
  return 0;
}

uint64_t signal_bit(int sig) {
  return uint64_t{1} << (sig - 1);
}

/// Whether process `pid` blocks SIGINT and SIGTERM now: the binary blocks
/// its signals before any code of its own runs, right after the dynamic
/// loader, all in one call. False if it cannot be read.
bool blocks_stop_signals(pid_t pid) {
  auto mask = blocked_signals(pid);
  return (mask & signal_bit(SIGINT)) != 0 && (mask & signal_bit(SIGTERM)) != 0;
}

/// Waits until `srv` blocks its signals (or has exited); false if it did
/// not within the watchdog.
bool await_blocked(process& srv) {
  auto deadline = std::chrono::steady_clock::now() + default_timeout;
  while (!blocks_stop_signals(srv.pid()) && !srv.exited()
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  return blocks_stop_signals(srv.pid());
}

/// "SIGHUP" for SIGHUP, as the server names signals in its log.
std::string signal_name(int sig) {
  return std::string{"SIG"} + ::sigabbrev_np(sig);
}

/// The pids of the workers the master started, from its `worker N
/// started: pid P` lines.
std::vector<pid_t> worker_pids(const std::string& log) {
  std::vector<pid_t> pids;
  const std::string marker = " started: pid ";
  for (auto at = log.find(marker); at != std::string::npos;
       at = log.find(marker, at + 1))
    pids.push_back(
      static_cast<pid_t>(std::atoi(log.c_str() + at + marker.size())));
  return pids;
}

/// Checks the scheduling policies of the threads of process `pid`: only
/// the I/O thread has the normal one, at least three have SCHED_BATCH.
void check_policies(pid_t pid) {
  // Field 41 of /proc/PID/task/TID/stat is the policy: 0 SCHED_OTHER,
  // 3 SCHED_BATCH. The fields after the name (in parentheses) start at 3.
  size_t normal = 0;
  size_t batch = 0;
  size_t other = 0;
  auto task_dir = "/proc/" + std::to_string(pid) + "/task";
  for (auto& entry : list_dir(task_dir)) {
    std::ifstream in{task_dir + "/" + entry + "/stat"};
    std::string stat{std::istreambuf_iterator<char>{in},
                     std::istreambuf_iterator<char>{}};
    auto rest = stat.substr(stat.rfind(')') + 2);
    std::istringstream fields{rest};
    std::string field;
    for (int n = 3; n <= 41 && (fields >> field); ++n)
      ;
    if (field == "0")
      ++normal;
    else if (field == "3")
      ++batch;
    else
      ++other;
  }
  CAF_CHECK_EQUAL(normal, 1u);
  CAF_CHECK_GREATER_OR_EQUAL(batch, 3u); // main, a worker, the clock, ...
  CAF_CHECK_EQUAL(other, 0u);
}

struct fixture : binary_fixture {
  /// Starts the server with a FIFO as its config file: it waits there,
  /// during start-up with its signal mask in place, until `release` writes
  /// the file. Returns the server, or null after a failed check.
  process* start_held(temp_dir& dir) {
    auto fifo = dir.file("held.ini");
    if (::mkfifo(fifo.c_str(), 0600) != 0) {
      CAF_ERROR("mkfifo failed");
      return nullptr;
    }
    // With workers (the default), the master reads the FIFO once and hands
    // its text to the workers.
    auto& srv = run({"--config-file=" + fifo, "--protocol=echo", "--port=0"});
    if (!srv.started()) {
      CAF_ERROR("the server did not start");
      return nullptr;
    }
    // Blocks until the server has opened the FIFO for reading.
    writer_.reset(::open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
    if (!writer_) {
      CAF_ERROR("cannot open the FIFO");
      return nullptr;
    }
    return &srv;
  }

  /// Lets the server held by `start_held` go on with its start-up.
  bool release() {
    std::string text = "[global]\nlog-level=\"info\"\n";
    auto ok = ::write(writer_.get(), text.data(), text.size())
              == static_cast<ssize_t>(text.size());
    writer_.reset();
    return ok;
  }

  /// Checks what the echo server `srv` that got `sig` during its start-up
  /// does with it: SIGQUIT stops it cleanly (exit 0); SIGHUP and SIGUSR1
  /// are logged, and it serves until a SIGTERM. False after a failed check.
  bool check_taken_at_start(process& srv, int sig) {
    auto name = signal_name(sig);
    if (sig == SIGQUIT) {
      auto code = srv.wait_exit();
      CAF_CHECK_EQUAL(describe_exit(code), describe_exit(0));
      CAF_CHECK_EQUAL(srv.stderr_count("SIGQUIT received: stopping"), 1u);
      CAF_CHECK_EQUAL(srv.stderr_count("stopped: drained=0 forced=0"), 1u);
      return code == 0;
    }
    auto port = srv.wait_listening();
    if (!port || !srv.wait_stderr(name + " received")) {
      CAF_ERROR(name << " during start-up: " << describe_exit(srv.wait_exit()));
      return false;
    }
    if (!expect_echo_then_clean_stop(srv, *port, "still here"))
      return false;
    CAF_CHECK_EQUAL(srv.stderr_count(name + " received"), 1u);
    CAF_CHECK_EQUAL(srv.stderr_count("SIGTERM received: stopping"), 1u);
    return true;
  }

private:
  unique_fd writer_;
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(startup_tests, fixture)

CAF_TEST(a signal during start up ends the process cleanly) {
  // The server reads its config file during start-up. A FIFO as that file
  // holds it there, with its signal mask in place, until the test writes:
  // the SIGTERM then lands before the `listening on` line, deterministically.
  temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto fifo = dir.file("config.ini");
  CAF_REQUIRE_EQUAL(::mkfifo(fifo.c_str(), 0600), 0);
  auto& srv = run({"--config-file=" + fifo, "--protocol=echo", "--port=0"});
  CAF_REQUIRE(srv.started());
  // Blocks until the server has opened the FIFO for reading.
  unique_fd writer{::open(fifo.c_str(), O_WRONLY | O_CLOEXEC)};
  CAF_REQUIRE(writer);
  CAF_REQUIRE(srv.signal(SIGTERM));
  std::string text = "[global]\nlog-level=\"info\"\n";
  CAF_REQUIRE(::write(writer.get(), text.data(), text.size())
              == static_cast<ssize_t>(text.size()));
  writer.reset();
  CAF_CHECK_EQUAL(srv.wait_exit(), 0);
  CAF_CHECK(srv.stderr_text().find("SIGTERM received") != std::string::npos);
  CAF_CHECK(srv.stderr_text().find("stopped: drained=0 forced=0")
            != std::string::npos);
}

CAF_TEST(sigint then sigterm during start up stop and then force cleanly) {
  // Two different signals both stay pending during start-up: the first
  // becomes the stop, the second the forced stop, before the acceptor has
  // ever run. With no connection nothing is forced: exit 0.
  temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto* srv = start_held(dir);
  CAF_REQUIRE(srv != nullptr);
  CAF_REQUIRE(srv->signal(SIGINT));
  CAF_REQUIRE(srv->signal(SIGTERM));
  CAF_REQUIRE(release());
  CAF_CHECK_EQUAL(describe_exit(srv->wait_exit()), describe_exit(0));
  CAF_CHECK_EQUAL(srv->stderr_count("SIGINT received: stopping"), 1u);
  CAF_CHECK_EQUAL(srv->stderr_count("SIGTERM received again"), 1u);
  CAF_CHECK_EQUAL(srv->stderr_count("stopped: drained=0 forced=0"), 1u);
}

CAF_TEST(sigterm twice during start up ends the process cleanly) {
  // The same signal twice while blocked is one pending signal: one stop.
  temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto* srv = start_held(dir);
  CAF_REQUIRE(srv != nullptr);
  CAF_REQUIRE(srv->signal(SIGTERM));
  CAF_REQUIRE(srv->signal(SIGTERM));
  CAF_REQUIRE(release());
  CAF_CHECK_EQUAL(describe_exit(srv->wait_exit()), describe_exit(0));
  CAF_CHECK_EQUAL(srv->stderr_count("stopped: drained=0 forced=0"), 1u);
}

CAF_TEST(sigterm as early as possible after exec ends the process cleanly) {
  // Right after the dynamic loader (the binary blocks the stop signals in
  // its .preinit_array, before any static constructor), many times: the
  // signal lands anywhere in start-up, from static constructors to the
  // actor system's start to just after the `listening on` line. Every run
  // must exit 0, never die by the signal. The wait for the blocked mask is
  // on an observable event (/proc/<pid>/status), not a sleep.
  constexpr int runs = 40;
  for (int i = 0; i < runs; ++i) {
    auto& srv = run({"--protocol=echo", "--port=0",
                     i % 2 == 0 ? "--log-level=info" : "--log-level=debug"});
    CAF_REQUIRE(srv.started());
    await_blocked(srv);
    CAF_REQUIRE(srv.signal(i % 3 == 2 ? SIGINT : SIGTERM));
    auto code = srv.wait_exit();
    if (code != 0) {
      CAF_ERROR("run " << i << ": " << describe_exit(code));
      break;
    }
    CAF_CHECK_EQUAL(srv.stderr_count("stopped: drained=0 forced=0"), 1u);
  }
}

CAF_TEST(sigquit sighup and sigusr1 during start up are taken cleanly) {
  // Held at its config file (see start_held), each signal lands before the
  // `listening on` line: SIGQUIT stops the server cleanly, SIGHUP and
  // SIGUSR1 are logged and it serves. None takes its default action (which
  // for all three is to kill the process).
  for (int sig : {SIGQUIT, SIGHUP, SIGUSR1}) {
    temp_dir dir;
    CAF_REQUIRE(dir.ok());
    auto* srv = start_held(dir);
    CAF_REQUIRE(srv != nullptr);
    CAF_REQUIRE(srv->signal(sig));
    CAF_REQUIRE(release());
    if (!check_taken_at_start(*srv, sig))
      break;
  }
}

CAF_TEST(sigquit sighup and sigusr1 as early as possible after exec) {
  // As the SIGTERM test above: right after the dynamic loader, many times,
  // so that each signal lands anywhere in start-up. The binary blocks all
  // its signals in one call, so the mask shows them all once it shows
  // SIGTERM.
  constexpr int runs = 30;
  const int sigs[] = {SIGQUIT, SIGHUP, SIGUSR1};
  for (int i = 0; i < runs; ++i) {
    auto sig = sigs[i % 3];
    auto& srv = run({"--protocol=echo", "--port=0"});
    CAF_REQUIRE(srv.started());
    await_blocked(srv);
    if ((blocked_signals(srv.pid()) & signal_bit(sig)) == 0) {
      CAF_ERROR("run " << i << ": " << signal_name(sig) << " is not blocked");
      break;
    }
    CAF_REQUIRE(srv.signal(sig));
    if (!check_taken_at_start(srv, sig)) {
      CAF_ERROR("run " << i << " failed");
      break;
    }
  }
}

CAF_TEST(two signals right after the listening line exit 0) {
  // A double stop with no connections: the second signal finds nothing to
  // force. Both in a row, before the server could act on the first.
  constexpr int runs = 10;
  for (int i = 0; i < runs; ++i) {
    auto& srv = run({"--protocol=http", "--port=0"});
    CAF_REQUIRE(srv.wait_listening());
    CAF_REQUIRE(srv.signal(i % 2 == 0 ? SIGTERM : SIGINT));
    srv.signal(SIGTERM); // may come after the exit already
    auto code = srv.wait_exit();
    if (code != 0) {
      CAF_ERROR("run " << i << ": " << describe_exit(code));
      break;
    }
    CAF_CHECK_EQUAL(srv.stderr_count("stopped: drained=0 forced=0"), 1u);
  }
}

CAF_TEST(the config file sets options and the command line wins) {
  temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto ini = dir.file("quiesce.ini");
  // If the file's host won over the command line, the bind would fail.
  CAF_REQUIRE(write_file(ini, "[global]\n"
                              "protocol=\"echo\"\n"
                              "host=\"no-such-host.invalid\"\n"
                              "drain-timeout=250ms\n"));
  auto& srv = run({"--config-file=" + ini, "--host=127.0.0.1", "--port=0"});
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  CAF_CHECK(srv.stdout_text().find("protocol=echo") != std::string::npos);
  expect_echo_then_clean_stop(srv, *port, "ini");
  CAF_CHECK(srv.stderr_text().find("drain timeout 250.0ms")
            != std::string::npos);
}

CAF_TEST(a missing config file is a usage error) {
  auto& srv = run(
    {"--config-file=/nonexistent/quiesce.ini", "--protocol=echo", "--port=0"});
  CAF_CHECK_EQUAL(srv.wait_exit(), 2);
  CAF_CHECK(srv.stderr_text().find("/nonexistent/quiesce.ini")
            != std::string::npos);
}

CAF_TEST(only the io thread keeps the normal scheduling policy) {
  // The threads of one process: with workers the master's threads are not
  // the serving ones (the variant below checks each worker).
  auto& srv = run({"--protocol=echo", "--port=0", "--workers=1"});
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  // An echo round trip: the I/O thread has run (and set its policy).
  auto conn = connect_loopback(*port);
  CAF_REQUIRE(conn.fd);
  CAF_REQUIRE(send_all(conn.fd.get(), "policy"));
  CAF_CHECK_EQUAL(read_exactly(conn.fd.get(), 6).bytes, "policy");
  check_policies(srv.pid());
  CAF_REQUIRE(srv.signal(SIGTERM));
  CAF_CHECK_EQUAL(read_until_eof(conn.fd.get()).ending(), "clean EOF");
  conn.fd.reset();
  CAF_CHECK_EQUAL(srv.wait_exit(), 0);
}

CAF_TEST(in each of two workers only the io thread keeps the normal policy) {
  auto& srv = run({"--protocol=echo", "--port=0", "--workers=2"});
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  // The listening line comes once both workers registered with the master,
  // over their I/O threads: each has run (and set its policy).
  auto pids = worker_pids(srv.stderr_text());
  CAF_REQUIRE_EQUAL(pids.size(), 2u);
  for (auto pid : pids) {
    CAF_MESSAGE("worker pid " << pid);
    check_policies(pid);
  }
  CAF_REQUIRE(srv.signal(SIGTERM));
  CAF_CHECK_EQUAL(srv.wait_exit(), 0);
}

CAF_TEST(caf settings get the defaults of quiesce unless set) {
  auto& defaults = run({"--dump-config"});
  CAF_CHECK_EQUAL(defaults.wait_exit(), 0);
  CAF_CHECK(defaults.stdout_text().find("max-consecutive-reads = 1")
            != std::string::npos);
  auto& set = run({"--dump-config", "--middleman.max-consecutive-reads=7"});
  CAF_CHECK_EQUAL(set.wait_exit(), 0);
  CAF_CHECK(set.stdout_text().find("max-consecutive-reads = 7")
            != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
