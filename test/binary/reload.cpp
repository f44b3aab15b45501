// SIGHUP with `--workers=2`: a reload by generations (issue 13). The
// master starts a new generation of workers, waits until they are ready,
// then retires the old one: no connection refused or reset, no request
// lost, old workers gone; a bad configuration keeps the old workers
// serving. (Spawn, stop, kill -9 and restarts of workers: binary.workers.)

#define CAF_SUITE binary.reload

#include "caf/test/unit_test.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"
#include "support/strings.hpp"
#include "support/temp_dir.hpp"

namespace qt = quiesce::test;

namespace {

/// A GET request for `path` on a keep-alive connection.
std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: quiesce\r\n\r\n";
}

/// The pids of the processes whose parent is `parent` (from /proc).
std::set<pid_t> children_of(pid_t parent) {
  std::set<pid_t> result;
  auto* dir = ::opendir("/proc");
  if (dir == nullptr)
    return result;
  while (auto* entry = ::readdir(dir)) {
    auto pid = std::atoi(entry->d_name);
    if (pid <= 0)
      continue;
    std::ifstream in{"/proc/" + std::string{entry->d_name} + "/stat"};
    std::string text;
    if (!std::getline(in, text))
      continue;
    // pid (comm) state ppid ...: comm may hold spaces, so from the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream rest{text.substr(close + 1)};
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent)
      result.insert(pid);
  }
  ::closedir(dir);
  return result;
}

/// Whether a process with `pid` exists (a zombie counts).
bool exists(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno != ESRCH;
}

/// The pids of the workers of `generation` that the master's log says it
/// started (`worker N started: pid P, generation G`); every generation's if
/// `generation` is 0.
std::set<pid_t> started_pids(const std::string& log, uint32_t generation = 0) {
  std::set<pid_t> result;
  const std::string marker = " started: pid ";
  for (auto pos = log.find(marker); pos != std::string::npos;
       pos = log.find(marker, pos + 1)) {
    auto start = pos + marker.size();
    auto comma = log.find(", generation ", start);
    auto eol = log.find('\n', start);
    if (comma == std::string::npos || comma > eol)
      continue;
    auto pid = std::atoi(log.substr(start, comma - start).c_str());
    auto gen = static_cast<uint32_t>(
      std::atoi(log.substr(comma + 13, eol - comma - 13).c_str()));
    if (generation == 0 || gen == generation)
      result.insert(pid);
  }
  return result;
}

/// One response read from a keep-alive connection.
struct exchange_result {
  /// The response, when a whole one came.
  bool complete = false;
  qt::response value;
  /// How reading ended when it did not complete.
  qt::read_result failure;
};

/// Sends `GET <path>` on `fd` and reads one whole response.
exchange_result request(int fd, const std::string& path) {
  exchange_result result;
  if (!qt::send_all(fd, get(path))) {
    result.failure.status = qt::read_status::error;
    result.failure.error = errno;
    return result;
  }
  auto head = qt::read_through(fd, "\r\n\r\n");
  if (head.status != qt::read_status::complete) {
    result.failure = head;
    return result;
  }
  if (!qt::parse_head(head.bytes, result.value)) {
    result.failure.status = qt::read_status::error;
    return result;
  }
  auto len = result.value.content_length();
  if (!len) {
    result.failure.status = qt::read_status::error;
    return result;
  }
  if (*len > 0) {
    auto body = qt::read_exactly(fd, *len);
    if (body.status != qt::read_status::complete) {
      result.failure = body;
      return result;
    }
    result.value.body = body.bytes;
  }
  result.complete = result.value.status == 200;
  return result;
}

bool says_close(const qt::response& r) {
  return qt::iequals(r.header("Connection"), "close");
}

/// What the load clients saw.
struct load_counts {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> responses{0};
  std::atomic<uint64_t> closes{0};
  std::atomic<uint64_t> connects{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> reset{0};
  std::atomic<uint64_t> failed{0};
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> errors;

  void error(std::atomic<uint64_t>& counter, const std::string& what) {
    ++counter;
    std::lock_guard<std::mutex> guard{mtx};
    if (errors.size() < 20)
      errors.push_back(what);
  }

  void answered() {
    ++responses;
    cv.notify_all();
  }

  /// Waits until `n` responses have come in all; false after the watchdog.
  bool await_responses(uint64_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, qt::default_timeout,
                       [&] { return responses.load() >= n; });
  }
};

/// Classifies a failed read or send of a client.
void count_failure(load_counts& counts, const qt::read_result& r,
                   const std::string& who) {
  if (r.status == qt::read_status::error
      && (r.error == ECONNRESET || r.error == EPIPE))
    counts.error(counts.reset, who + ": " + r.ending());
  else
    counts.error(counts.failed, who + ": unanswered (" + r.ending() + ")");
}

/// Connects to `port`; counts the attempt and a refusal or other error.
qt::unique_fd connect_counted(load_counts& counts, uint16_t port,
                              const std::string& who) {
  ++counts.connects;
  auto conn = qt::connect_loopback(port);
  if (conn.error == ECONNREFUSED)
    counts.error(counts.refused, who + ": connect refused");
  else if (conn.error != 0)
    counts.error(counts.failed,
                 who + ": connect failed: " + std::strerror(conn.error));
  return std::move(conn.fd);
}

/// A client looping requests on keep-alive connections until `done`; a
/// response with `Connection: close` is followed by the server's clean EOF
/// and a new connection.
void keep_alive_client(load_counts& counts, uint16_t port,
                       const std::atomic<bool>& done, const std::string& who) {
  qt::unique_fd fd;
  while (!done) {
    if (!fd) {
      fd = connect_counted(counts, port, who);
      if (!fd)
        continue;
    }
    ++counts.requests;
    auto res = request(fd.get(), "/");
    if (!res.complete) {
      count_failure(counts, res.failure, who);
      fd.reset();
      continue;
    }
    counts.answered();
    if (says_close(res.value)) {
      ++counts.closes;
      auto rest = qt::read_until_eof(fd.get());
      if (rest.status != qt::read_status::eof || !rest.bytes.empty())
        count_failure(counts, rest, who + " after Connection: close");
      fd.reset();
    }
  }
}

/// A client opening a fresh connection for each request until `done`.
void fresh_client(load_counts& counts, uint16_t port,
                  const std::atomic<bool>& done) {
  while (!done) {
    auto fd = connect_counted(counts, port, "fresh client");
    if (!fd)
      continue;
    ++counts.requests;
    auto res = request(fd.get(), "/");
    if (!res.complete)
      count_failure(counts, res.failure, "fresh client");
    else
      counts.answered();
  }
}

struct fixture : qt::binary_fixture {
  /// The master under test: the one `start_http` started, or `proc`.
  qt::process& master() {
    return proc != nullptr ? *proc : server();
  }

  /// Waits until the master's standard error (the workers' too) contains
  /// `text` `n` times; false after a failed check.
  bool await_stderr(const std::string& text, size_t n = 1) {
    if (master().wait_stderr(text, n))
      return true;
    CAF_ERROR("`" << text << "` is on standard error "
                  << master().stderr_count(text) << " times, not " << n);
    return false;
  }

  /// Checks that `GET /` on a new connection is answered 200, keep-alive.
  void expect_serving(uint16_t port) {
    auto conn = connect_client(port);
    if (!conn)
      return;
    auto res = request(conn.get(), "/");
    CAF_CHECK(res.complete);
    CAF_CHECK(!says_close(res.value));
  }

  /// Sends SIGTERM and checks for exit 0 and that none of the processes
  /// ever started (the master's workers) is left.
  void expect_clean_stop() {
    auto all = started_pids(master().stderr_text());
    CAF_REQUIRE(master().signal(SIGTERM));
    auto code = master().wait_exit();
    CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(0));
    for (auto pid : all)
      if (exists(pid))
        CAF_ERROR("worker pid " << pid << " still exists after the exit");
  }

  /// Starts a master of 2 workers in `dir` whose `caf-application.ini`
  /// (its path in `file`) holds `config`; its port, or 0 after a failed
  /// check. `proc` is the master; its first workers' pids in `first`.
  uint16_t start_with_config(qt::temp_dir& dir, std::string& file,
                             const std::string& config,
                             std::set<pid_t>& first) {
    if (!dir.ok()) {
      CAF_ERROR("no temporary directory");
      return 0;
    }
    file = dir.file("caf-application.ini");
    if (!qt::write_file(file, config)) {
      CAF_ERROR("cannot write " << file);
      return 0;
    }
    qt::process_options opts;
    opts.working_directory = dir.path();
    proc = &run(
      {"--protocol=http", "--host=127.0.0.1", "--port=0", "--workers=2"}, opts);
    auto listening = proc->wait_listening();
    if (!listening) {
      CAF_ERROR("no `listening on` line");
      return 0;
    }
    first = started_pids(proc->stderr_text());
    CAF_CHECK_EQUAL(first.size(), 2u);
    return *listening;
  }

  qt::process* proc = nullptr;
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(reload_tests, fixture)

CAF_TEST(five reloads under load lose no connection and no request) {
  auto port = start_http({"--workers=2"});
  if (port == 0)
    return;
  load_counts counts;
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  constexpr size_t keep_alive_clients = 4;
  for (size_t i = 0; i < keep_alive_clients; ++i)
    clients.emplace_back([&, i] {
      keep_alive_client(counts, port, done,
                        "keep-alive client " + std::to_string(i));
    });
  clients.emplace_back([&] { fresh_client(counts, port, done); });
  // Each reload begins with the load running: some responses since the
  // last one.
  constexpr uint64_t between = 200;
  bool ok = true;
  for (uint32_t g = 2; g <= 6 && ok; ++g) {
    ok = counts.await_responses(counts.responses + between);
    if (!ok) {
      CAF_ERROR("the load stalled before reload " << g - 1);
      break;
    }
    CAF_REQUIRE(server().signal(SIGHUP));
    ok = await_stderr("reload: generation " + std::to_string(g) + " ready")
         && await_stderr(") exited with code 0", 2 * (g - 1));
  }
  // The last generation serves the load too.
  if (ok)
    ok = counts.await_responses(counts.responses + between);
  done = true;
  for (auto& t : clients)
    t.join();
  CAF_MESSAGE("requests " << counts.requests << ", responses "
                          << counts.responses << ", Connection: close "
                          << counts.closes << ", connects " << counts.connects
                          << "; refused " << counts.refused << ", reset "
                          << counts.reset << ", failed " << counts.failed);
  for (auto& e : counts.errors)
    CAF_MESSAGE("client error: " << e);
  CAF_CHECK_EQUAL(counts.refused.load(), 0u);
  CAF_CHECK_EQUAL(counts.reset.load(), 0u);
  CAF_CHECK_EQUAL(counts.failed.load(), 0u);
  CAF_CHECK_EQUAL(counts.requests.load(), counts.responses.load());
  CAF_CHECK_EQUAL(server().stderr_count("SIGHUP received: reloading"), 5u);
  auto log = server().stderr_text();
  auto last = started_pids(log, 6);
  CAF_CHECK_EQUAL(last.size(), 2u);
  for (uint32_t g = 1; g <= 5; ++g)
    for (auto pid : started_pids(log, g))
      if (exists(pid))
        CAF_ERROR("worker pid " << pid << " of generation " << g
                                << " still exists");
  CAF_CHECK_EQUAL(children_of(server().pid()), last);
  expect_clean_stop();
}

CAF_TEST(an idle keep alive connection gets one more response then close) {
  auto port = start_http({"--workers=2"});
  if (port == 0)
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  auto first = request(conn.get(), "/");
  CAF_REQUIRE(first.complete);
  CAF_CHECK(!says_close(first.value));
  CAF_REQUIRE(server().signal(SIGHUP));
  // Both old workers have begun their retire (the connections are told
  // right after that line).
  if (!await_stderr("reload: generation 2 ready")
      || !await_stderr("retire requested: stopping", 2))
    return;
  // Within the grace (1 s): the next request. Should the worker's message
  // to the connection come after it (on a loaded machine, the old worker's
  // retire reaches its connections some milliseconds after its log line,
  // time for many round trips), the response is a plain one and the first
  // one after it is the last. A client looping requests sees exactly that.
  exchange_result res;
  size_t before = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    res = request(conn.get(), "/");
    if (!res.complete || says_close(res.value))
      break;
    ++before;
  }
  CAF_MESSAGE(before << " responses before the connection's retire");
  CAF_REQUIRE(res.complete);
  CAF_CHECK_EQUAL(res.value.status, 200);
  CAF_CHECK(says_close(res.value));
  auto rest = qt::read_until_eof(conn.get());
  CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
  CAF_CHECK_EQUAL(rest.bytes, "");
  conn.reset();
  await_stderr(") exited with code 0", 2);
  expect_serving(port);
  expect_clean_stop();
}

CAF_TEST(a request in flight at the reload is answered by the old worker) {
  auto port = start_http({"--workers=2", "--log-level=debug"});
  if (port == 0)
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  // Longer than a reload takes on a loaded machine: in flight at the
  // retire.
  CAF_REQUIRE(qt::send_all(conn.get(), get("/delay/3000")));
  if (!await_stderr(" opened\n"))
    return;
  auto old = started_pids(server().stderr_text(), 1);
  CAF_REQUIRE(server().signal(SIGHUP));
  if (!await_stderr("reload: generation 2 ready"))
    return;
  auto resp = qt::read_until_eof(conn.get());
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  qt::response r;
  CAF_REQUIRE(
    qt::parse_head(resp.bytes.substr(0, resp.bytes.find("\r\n\r\n")), r));
  CAF_CHECK_EQUAL(r.status, 200);
  CAF_CHECK(says_close(r));
  CAF_CHECK_NOT_EQUAL(resp.bytes.find("delayed 3000 ms"), std::string::npos);
  conn.reset();
  // The old workers drained it: one of them retired with 1 drained.
  if (!await_stderr(") exited with code 0", 2))
    return;
  // The master's control plane logs the retire's answer on its own, maybe
  // after the exit line.
  if (!await_stderr(" retired: 1 drained, 0 forced"))
    return;
  CAF_CHECK_EQUAL(server().stderr_count(" retired: 1 drained, 0 forced"), 1u);
  for (auto pid : old)
    CAF_CHECK(!exists(pid));
  expect_serving(port);
  expect_clean_stop();
}

CAF_TEST(a reload with a bad configuration keeps the old workers serving) {
  qt::temp_dir dir;
  std::string file;
  std::set<pid_t> first;
  auto port
    = start_with_config(dir, file, "[global]\ndrain-timeout=4s\n", first);
  if (port == 0)
    return;
  auto& srv = *proc;
  CAF_REQUIRE(qt::write_file(file, "[global]\ndrain-timeout=\"x\"\n"));
  CAF_REQUIRE(srv.signal(SIGHUP));
  if (!await_stderr("reload failed: the configuration is not valid (see "
                    "above); the workers go on serving"))
    return;
  expect_serving(port);
  expect_serving(port);
  CAF_CHECK_EQUAL(srv.stderr_count("reload: starting generation"), 0u);
  CAF_CHECK_EQUAL(started_pids(srv.stderr_text()), first);
  CAF_CHECK_EQUAL(children_of(srv.pid()), first);
  // A valid change: the reload goes through, the new workers have it.
  CAF_REQUIRE(qt::write_file(file, "[global]\ndrain-timeout=7s\n"));
  CAF_REQUIRE(srv.signal(SIGHUP));
  if (!await_stderr("reload: generation 2 ready")
      || !await_stderr(") exited with code 0", 2))
    return;
  // The old workers retire with the drain timeout they started with.
  CAF_CHECK_EQUAL(srv.stderr_count("drain timeout 4000.0ms"), 2u);
  auto second = started_pids(srv.stderr_text(), 2);
  CAF_CHECK_EQUAL(second.size(), 2u);
  CAF_CHECK_EQUAL(children_of(srv.pid()), second);
  expect_serving(port);
  expect_clean_stop();
  // The new workers stop with the new one.
  CAF_CHECK_EQUAL(srv.stderr_count("drain timeout 7000.0ms"), 2u);
}

CAF_TEST(a reload whose workers miss the ready timeout keeps the old ones) {
  qt::temp_dir dir;
  std::string file;
  std::set<pid_t> first;
  auto port = start_with_config(dir, file,
                                "[global]\nworkers-ready-timeout=30s\n", first);
  if (port == 0)
    return;
  auto& srv = *proc;
  expect_serving(port);
  // The reload's own configuration decides its timer. A new worker's fork,
  // exec, CAF start and BASP registration take 50-90 ms: 1 ms cannot be
  // met, so the reload fails every time.
  CAF_REQUIRE(qt::write_file(file, "[global]\nworkers-ready-timeout=1ms\n"));
  CAF_REQUIRE(srv.signal(SIGHUP));
  if (!await_stderr("reload failed: its workers did not register within 1ms "
                    "(--workers-ready-timeout); generation 2 is retired, the "
                    "workers before it go on serving"))
    return;
  // The new generation was started, and is retired as each registers late:
  // both of its processes exit.
  auto second = started_pids(srv.stderr_text(), 2);
  CAF_CHECK_EQUAL(second.size(), 2u);
  if (!await_stderr(") exited with code 0", 2))
    return;
  for (auto pid : second)
    if (exists(pid))
      CAF_ERROR("worker pid " << pid << " of the failed reload still exists");
  CAF_CHECK_EQUAL(srv.stderr_count("reload: generation 2 ready"), 0u);
  // The old workers serve on, the same processes.
  expect_serving(port);
  expect_serving(port);
  CAF_CHECK_EQUAL(started_pids(srv.stderr_text(), 1), first);
  CAF_CHECK_EQUAL(children_of(srv.pid()), first);
  expect_clean_stop();
}

CAF_TEST(sigterm during a reload stops everything with exit 0) {
  auto port = start_http({"--workers=2"});
  if (port == 0)
    return;
  expect_serving(port);
  CAF_REQUIRE(server().signal(SIGHUP));
  if (!await_stderr("reload: starting generation 2"))
    return;
  expect_clean_stop();
  // A new worker that starts after the old ones stopped listening cannot
  // serve: it says so and exits 1 (racy; the stop is clean all the same).
  auto failed = server().stderr_count("cannot serve on the inherited");
  if (failed > 0)
    CAF_MESSAGE(failed << " new worker(s) could not serve: "
                       << server().stderr_text());
}

CAF_TEST_FIXTURE_SCOPE_END()
