// systemd integration (issue 14): the notify protocol (READY, STATUS,
// STOPPING, RELOADING, WATCHDOG) received on a unix datagram socket the test
// binds, each datagram's sender checked through SCM_CREDENTIALS; socket
// activation with a listening socket the test makes and passes as
// descriptor 3 (LISTEN_FDS/LISTEN_PID), the handover from one server to the
// next on it, and the same with Debian's `systemd-socket-activate`.

#define CAF_SUITE binary.systemd

#include "caf/test/unit_test.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"
#include "support/strings.hpp"
#include "support/temp_dir.hpp"

#ifndef QUIESCE_SERVICE_SERVER
#error "QUIESCE_SERVICE_SERVER must name the test server binary (CMake)"
#endif

namespace qt = quiesce::test;

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

/// One notification as received.
struct datagram {
  pid_t pid = 0;
  std::string text;
  /// When the kernel queued it (SO_TIMESTAMP): the test reads datagrams
  /// only while it waits for one, and a batch read later must not look as
  /// if it was sent then.
  std::chrono::system_clock::time_point at;
};

/// Whether one line of `text` starts with `prefix`.
bool has_line(const std::string& text, const std::string& prefix) {
  size_t start = 0;
  while (start <= text.size()) {
    auto eol = text.find('\n', start);
    auto line = text.substr(start, eol == std::string::npos ? std::string::npos
                                                            : eol - start);
    if (line.compare(0, prefix.size(), prefix) == 0)
      return true;
    if (eol == std::string::npos)
      break;
    start = eol + 1;
  }
  return false;
}

/// systemd's side of the notify protocol: an abstract unix datagram socket
/// with SO_PASSCRED (every datagram carries its sender's pid).
class notify_socket {
public:
  notify_socket() {
    static std::atomic<int> counter{0};
    name_ = "quiesce-test-notify-" + std::to_string(::getpid()) + "-"
            + std::to_string(counter++);
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // Abstract: a leading NUL, no file to remove.
    std::memcpy(addr.sun_path + 1, name_.data(), name_.size());
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1
                                      + name_.size());
    int on = 1;
    ok_ = fd_ && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0
          && ::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on))
               == 0
          && ::setsockopt(fd_.get(), SOL_SOCKET, SO_TIMESTAMP, &on, sizeof(on))
               == 0;
  }

  bool ok() const {
    return ok_;
  }

  /// The variable for the server's environment.
  std::string env() const {
    return "NOTIFY_SOCKET=@" + name_;
  }

  /// Waits for a datagram at index `from` or later with a line starting
  /// with `prefix`; its index, or nothing after `timeout`.
  std::optional<size_t> wait_for(const std::string& prefix, size_t from = 0,
                                 std::chrono::milliseconds timeout
                                 = qt::default_timeout) {
    auto deadline = clock_type::now() + timeout;
    for (size_t i = from;; ++i) {
      while (i >= all_.size()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - clock_type::now());
        if (left.count() <= 0 || !read_one(left))
          return std::nullopt;
      }
      if (has_line(all_[i].text, prefix))
        return i;
    }
  }

  /// Reads what has come in within `quiet` of the last datagram.
  void drain(std::chrono::milliseconds quiet) {
    while (read_one(quiet)) {
      // again
    }
  }

  /// Reads every datagram that comes in for `window`.
  void collect(std::chrono::milliseconds window) {
    auto end = clock_type::now() + window;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - clock_type::now());
      if (left.count() <= 0 || !read_one(left))
        return;
    }
  }

  const std::vector<datagram>& all() const {
    return all_;
  }

  /// Every datagram so far, for messages.
  std::string dump() const {
    std::string result;
    for (auto& d : all_)
      result += "[pid " + std::to_string(d.pid) + "] " + d.text + "\n";
    return result;
  }

  /// Datagrams whose sender is not `pid`.
  size_t from_others(pid_t pid) const {
    size_t n = 0;
    for (auto& d : all_)
      if (d.pid != pid)
        ++n;
    return n;
  }

private:
  bool read_one(std::chrono::milliseconds timeout) {
    if (!qt::wait_readable(fd_.get(), timeout))
      return false;
    char buf[4096];
    alignas(cmsghdr) char
      control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(timeval))];
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    auto n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0)
      return false;
    datagram d;
    d.at = std::chrono::system_clock::now();
    d.text.assign(buf, static_cast<size_t>(n));
    for (auto* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        d.pid = cred.pid;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
        timeval tv{};
        std::memcpy(&tv, CMSG_DATA(c), sizeof(tv));
        d.at = std::chrono::system_clock::time_point{
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds{tv.tv_sec}
            + std::chrono::microseconds{tv.tv_usec})};
      }
    all_.push_back(std::move(d));
    return true;
  }

  std::string name_;
  qt::unique_fd fd_;
  bool ok_ = false;
  std::vector<datagram> all_;
};

/// A listening TCP socket on 127.0.0.1, port chosen by the kernel, as
/// systemd makes one for a socket unit.
struct test_listener {
  qt::unique_fd fd;
  uint16_t port = 0;

  test_listener() {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0
        || ::listen(fd.get(), 4096) != 0
        || ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len)
             != 0)
      return;
    port = ntohs(addr.sin_port);
  }

  /// Whether the socket still listens (nobody `shutdown()` it).
  bool listening() const {
    int on = 0;
    socklen_t size = sizeof(on);
    return ::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &on, &size) == 0
           && on != 0;
  }
};

/// `GET /` on a fresh connection to `port`; `keep`: keep-alive.
std::string get(bool keep = true) {
  return std::string{"GET / HTTP/1.1\r\nHost: quiesce\r\n"}
         + (keep ? "" : "Connection: close\r\n") + "\r\n";
}

/// Reads one response head and its body from `fd`.
std::optional<qt::response> read_response(int fd) {
  auto head = qt::read_through(fd, "\r\n\r\n");
  qt::response r;
  if (head.status != qt::read_status::complete
      || !qt::parse_head(head.bytes, r))
    return std::nullopt;
  auto len = r.content_length();
  if (!len)
    return std::nullopt;
  if (*len > 0) {
    auto body = qt::read_exactly(fd, *len);
    if (body.status != qt::read_status::complete)
      return std::nullopt;
    r.body = body.bytes;
  }
  return r;
}

/// The HOST:PORT of the `listening on` line.
std::string listening_address(const std::string& out) {
  const std::string prefix = "listening on ";
  auto pos = out.find(prefix);
  if (pos == std::string::npos)
    return {};
  auto start = pos + prefix.size();
  auto end = out.find_first_of(" \n", start);
  return out.substr(start, end - start);
}

struct fixture : qt::binary_fixture {
  /// Options with the notify socket (and `extra` variables).
  qt::process_options notified(const notify_socket& ns,
                               std::vector<std::string> extra = {}) {
    qt::process_options opts;
    opts.environment = std::move(extra);
    opts.environment.push_back(ns.env());
    return opts;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(systemd_tests, fixture)

// -- notify -------------------------------------------------------------------

CAF_TEST(one process - READY after listening then STATUS then STOPPING) {
  notify_socket ns;
  CAF_REQUIRE(ns.ok());
  auto& srv = run({"--protocol=http", "--port=0", "--workers=1"}, notified(ns));
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  auto ready = ns.wait_for("READY=1");
  CAF_REQUIRE(ready);
  CAF_CHECK(has_line(ns.all()[*ready].text,
                     "STATUS=serving on 127.0.0.1:" + std::to_string(*port)));
  // A connection shows in the STATUS line.
  auto conn = connect_client(*port);
  CAF_REQUIRE(conn);
  CAF_REQUIRE(qt::send_all(conn.get(), get()));
  CAF_REQUIRE(read_response(conn.get()));
  auto one = ns.wait_for("STATUS=serving on 127.0.0.1:" + std::to_string(*port)
                           + ": 1 connection open",
                         *ready + 1);
  CAF_CHECK(one);
  CAF_REQUIRE(srv.signal(SIGTERM));
  auto stopping = ns.wait_for("STOPPING=1", *ready + 1);
  CAF_REQUIRE(stopping);
  CAF_CHECK(
    has_line(ns.all()[*stopping].text, "STATUS=stopping (SIGTERM received)"));
  auto code = srv.wait_exit();
  CAF_CHECK_EQUAL(code, 0);
  auto summary = ns.wait_for("STATUS=stopped: 1 drained, 0 forced", *stopping);
  CAF_CHECK(summary);
  ns.drain(100ms);
  auto others = ns.from_others(srv.pid());
  CAF_CHECK_EQUAL(others, 0u);
  // READY=1 exactly once, STOPPING=1 exactly once.
  size_t readies = 0;
  size_t stops = 0;
  for (auto& d : ns.all()) {
    readies += has_line(d.text, "READY=1") ? 1 : 0;
    stops += has_line(d.text, "STOPPING=1") ? 1 : 0;
  }
  CAF_CHECK_EQUAL(readies, 1u);
  CAF_CHECK_EQUAL(stops, 1u);
  CAF_MESSAGE("notifications:\n" << ns.dump());
}

CAF_TEST(stop delay - STOPPING when the delay begins while still serving) {
  for (int workers : {1, 2}) {
    CAF_MESSAGE("--workers=" << workers);
    notify_socket ns;
    CAF_REQUIRE(ns.ok());
    auto& srv = run({"--protocol=http", "--port=0", "--stop-delay=60s",
                     "--workers=" + std::to_string(workers)},
                    notified(ns));
    auto port = srv.wait_listening();
    CAF_REQUIRE(port);
    auto ready = ns.wait_for("READY=1");
    CAF_REQUIRE(ready);
    CAF_REQUIRE(srv.signal(SIGTERM));
    auto stopping = ns.wait_for("STOPPING=1", *ready + 1);
    CAF_REQUIRE(stopping);
    CAF_CHECK(
      has_line(ns.all()[*stopping].text, "STATUS=stopping (SIGTERM received)"));
    // Told STOPPING=1, the server still accepts and serves, with close
    // (once each serving process has taken the closing mode: it gets it a
    // moment after the notification, a worker from the master).
    CAF_REQUIRE(srv.wait_stderr("new connections in the closing mode",
                                static_cast<size_t>(workers)));
    auto conn = connect_client(*port);
    CAF_REQUIRE(conn);
    CAF_REQUIRE(qt::send_all(conn.get(), get()));
    auto r = read_response(conn.get());
    CAF_REQUIRE(r);
    auto connection = r->header("Connection");
    CAF_CHECK_EQUAL(connection, "close");
    conn.reset();
    // The second signal ends the delay: no second STOPPING=1.
    CAF_REQUIRE(srv.signal(SIGTERM));
    auto code = srv.wait_exit();
    CAF_CHECK_EQUAL(code, 0);
    ns.drain(100ms);
    size_t stops = 0;
    for (auto& d : ns.all())
      stops += has_line(d.text, "STOPPING=1") ? 1 : 0;
    CAF_CHECK_EQUAL(stops, 1u);
  }
}

CAF_TEST(workers - only the master notifies; reload and failed reload) {
  notify_socket ns;
  CAF_REQUIRE(ns.ok());
  qt::temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto ini = dir.file("caf-application.ini");
  {
    std::ofstream out{ini};
    out << "[global]\ndrain-timeout=2s\n";
  }
  auto opts = notified(ns);
  opts.working_directory = dir.path();
  auto& srv = run({"--protocol=http", "--port=0", "--workers=2"}, opts);
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  auto ready = ns.wait_for("READY=1");
  CAF_REQUIRE(ready);
  CAF_CHECK(has_line(ns.all()[*ready].text, "STATUS=serving on 127.0.0.1:"));
  CAF_CHECK(ns.all()[*ready].text.find("(2 workers)") != std::string::npos);
  // The master's sum of its workers' connections.
  auto conn = connect_client(*port);
  CAF_REQUIRE(conn);
  CAF_REQUIRE(qt::send_all(conn.get(), get()));
  CAF_REQUIRE(read_response(conn.get()));
  CAF_CHECK(ns.wait_for("STATUS=serving on 127.0.0.1:" + std::to_string(*port)
                          + ": 1 connection open (2 workers)",
                        *ready + 1));
  conn.reset();
  // SIGHUP: RELOADING=1, then READY=1 once the new workers are ready.
  CAF_REQUIRE(srv.signal(SIGHUP));
  auto reloading = ns.wait_for("RELOADING=1", *ready + 1);
  CAF_REQUIRE(reloading);
  CAF_CHECK(has_line(ns.all()[*reloading].text, "MONOTONIC_USEC="));
  auto reloaded = ns.wait_for("READY=1", *reloading + 1);
  CAF_REQUIRE(reloaded);
  CAF_CHECK(has_line(ns.all()[*reloaded].text,
                     "STATUS=reloaded: generation 2 serves on"));
  CAF_REQUIRE(srv.wait_stderr("reload: generation 2 ready"));
  // A bad configuration: RELOADING=1, then READY=1 saying it failed.
  {
    std::ofstream out{ini, std::ios::trunc};
    out << "[global]\ndrain-timeout=\"x\"\n";
  }
  CAF_REQUIRE(srv.signal(SIGHUP));
  auto again = ns.wait_for("RELOADING=1", *reloaded + 1);
  CAF_REQUIRE(again);
  auto failed = ns.wait_for("READY=1", *again + 1);
  CAF_REQUIRE(failed);
  CAF_CHECK(has_line(ns.all()[*failed].text, "STATUS=reload failed: the "
                                             "configuration is not valid"));
  CAF_REQUIRE(srv.signal(SIGTERM));
  auto stopping = ns.wait_for("STOPPING=1", *failed + 1);
  CAF_CHECK(stopping);
  auto code = srv.wait_exit();
  CAF_CHECK_EQUAL(code, 0);
  ns.drain(100ms);
  // Every datagram from the master; the workers (other pids) sent none.
  auto others = ns.from_others(srv.pid());
  CAF_CHECK_EQUAL(others, 0u);
  CAF_CHECK_GREATER_OR_EQUAL(
    qt::count_occurrences(srv.stderr_text(), " started: pid "), 4u);
}

CAF_TEST(watchdog pings stop while the event loop is wedged) {
  notify_socket ns;
  CAF_REQUIRE(ns.ok());
  auto& srv = run_program(QUIESCE_SERVICE_SERVER,
                          {"--protocol=svc", "--port=0", "--workers=1"},
                          notified(ns, {"WATCHDOG_USEC=200000"}));
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  // Pings every 100 ms (half of WATCHDOG_USEC).
  auto first = ns.wait_for("WATCHDOG=1");
  CAF_REQUIRE(first);
  auto third = ns.wait_for(
    "WATCHDOG=1", ns.wait_for("WATCHDOG=1", *first + 1).value_or(0) + 1);
  CAF_REQUIRE(third);
  auto before_block = ns.all().size();
  // A behaviour holds the event loop's thread for 1.5 s.
  auto conn = connect_client(*port);
  CAF_REQUIRE(conn);
  CAF_REQUIRE(qt::send_all(conn.get(), "block 1500\n"));
  auto answer = qt::read_through(conn.get(), "unblocked\n");
  CAF_REQUIRE_EQUAL(answer.status, qt::read_status::complete);
  // Pings again once it turns.
  auto after = ns.wait_for("WATCHDOG=1", ns.all().size());
  CAF_REQUIRE(after);
  auto after2 = ns.wait_for("WATCHDOG=1", *after + 1);
  CAF_REQUIRE(after2);
  // The longest silence between pings covers the block; with pings sent by
  // a timer thread alone it would be ~100 ms.
  std::chrono::system_clock::duration longest{0};
  std::chrono::system_clock::time_point last{};
  for (size_t i = before_block > 0 ? before_block - 1 : 0; i < ns.all().size();
       ++i) {
    auto& d = ns.all()[i];
    if (!has_line(d.text, "WATCHDOG=1"))
      continue;
    if (last != std::chrono::system_clock::time_point{})
      longest = std::max(longest, d.at - last);
    last = d.at;
  }
  auto longest_ms
    = std::chrono::duration_cast<std::chrono::milliseconds>(longest).count();
  CAF_MESSAGE("longest gap between WATCHDOG=1: " << longest_ms << " ms");
  CAF_CHECK_GREATER_OR_EQUAL(longest_ms, 1000);
  conn.reset();
  CAF_REQUIRE(srv.signal(SIGTERM));
  CAF_CHECK_EQUAL(srv.wait_exit(), 0);
  auto others = ns.from_others(srv.pid());
  CAF_CHECK_EQUAL(others, 0u);
}

CAF_TEST(workers - a worker that stops answering stops the master pings) {
  notify_socket ns;
  CAF_REQUIRE(ns.ok());
  auto& srv = run({"--protocol=http", "--port=0", "--workers=2"},
                  notified(ns, {"WATCHDOG_USEC=200000"}));
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  auto first = ns.wait_for("WATCHDOG=1");
  CAF_REQUIRE(first);
  CAF_REQUIRE(ns.wait_for("WATCHDOG=1", *first + 1));
  // Stop one worker: it answers no poll (as a worker whose event loop is
  // wedged cannot).
  auto log = srv.stderr_text();
  auto pos = log.find("worker 1 started: pid ");
  CAF_REQUIRE_NOT_EQUAL(pos, std::string::npos);
  auto worker = static_cast<pid_t>(std::atoi(log.c_str() + pos + 22));
  CAF_REQUIRE_GREATER(worker, 0);
  CAF_REQUIRE_EQUAL(::kill(worker, SIGSTOP), 0);
  auto stopped_at = clock_type::now();
  // After `unresponsive_after` (2 s) no more pings: wait until a silence of
  // 1.5 s (ten intervals) follows, within 10 s.
  bool silent = false;
  auto deadline = clock_type::now() + 10s;
  while (!silent && clock_type::now() < deadline) {
    auto n = ns.all().size();
    ns.collect(1500ms);
    bool pinged = false;
    for (auto i = n; i < ns.all().size(); ++i)
      pinged = pinged || has_line(ns.all()[i].text, "WATCHDOG=1");
    silent = !pinged;
  }
  CAF_CHECK(silent);
  CAF_CHECK(clock_type::now() - stopped_at >= 2s);
  // Going on: pings again.
  CAF_REQUIRE_EQUAL(::kill(worker, SIGCONT), 0);
  CAF_CHECK(ns.wait_for("WATCHDOG=1", ns.all().size()));
  CAF_REQUIRE(srv.signal(SIGTERM));
  CAF_CHECK_EQUAL(srv.wait_exit(), 0);
}

// -- socket activation --------------------------------------------------------

CAF_TEST(activation - serves on the passed socket and never shuts it down) {
  test_listener lst;
  CAF_REQUIRE_NOT_EQUAL(lst.port, 0);
  auto expected = "127.0.0.1:" + std::to_string(lst.port);
  for (std::string workers : {"1", "2"}) {
    CAF_MESSAGE("--workers=" << workers);
    qt::process_options opts;
    opts.listen_fds = {lst.fd.get()};
    // An address this machine does not have: ignored, or the bind fails.
    auto& srv = run({"--protocol=http", "--host=192.0.2.1", "--port=1",
                     "--workers=" + workers},
                    opts);
    auto port = srv.wait_listening();
    CAF_REQUIRE(port);
    CAF_CHECK_EQUAL(*port, lst.port);
    auto named = listening_address(srv.stdout_text());
    CAF_CHECK_EQUAL(named, expected);
    CAF_CHECK(srv.wait_stderr("--host and --port are ignored"));
    for (int i = 0; i < 4; ++i) {
      auto conn = connect_client(*port);
      CAF_REQUIRE(conn);
      CAF_REQUIRE(qt::send_all(conn.get(), get()));
      auto r = read_response(conn.get());
      CAF_REQUIRE(r);
      CAF_CHECK_EQUAL(r->status, 200);
    }
    CAF_REQUIRE(srv.signal(SIGTERM));
    auto code = srv.wait_exit();
    CAF_CHECK_EQUAL(code, 0);
    // Still listening: the next server (the next round) takes it over.
    CAF_CHECK(lst.listening());
  }
}

CAF_TEST(activation - anything but one listening TCP socket is exit 1) {
  test_listener a;
  test_listener b;
  CAF_REQUIRE(a.port != 0 && b.port != 0);
  {
    qt::process_options opts;
    opts.listen_fds = {a.fd.get(), b.fd.get()};
    auto& srv = run({"--protocol=http", "--port=0"}, opts);
    auto code = srv.wait_exit();
    CAF_CHECK_EQUAL(code, 1);
    CAF_CHECK(srv.stderr_text().find("systemd passed 2 sockets")
              != std::string::npos);
  }
  {
    // A TCP socket that does not listen.
    qt::unique_fd plain{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    qt::process_options opts;
    opts.listen_fds = {plain.get()};
    auto& srv = run({"--protocol=http", "--port=0"}, opts);
    auto code = srv.wait_exit();
    CAF_CHECK_EQUAL(code, 1);
    CAF_CHECK(srv.stderr_text().find("is not a listening TCP socket")
              != std::string::npos);
  }
  // Both sockets were left alone.
  CAF_CHECK(a.listening());
  CAF_CHECK(b.listening());
}

CAF_TEST(activation - a fresh connection gets its first request answered) {
  test_listener lst;
  CAF_REQUIRE_NOT_EQUAL(lst.port, 0);
  for (std::string workers : {"1", "2"}) {
    CAF_MESSAGE("--workers=" << workers);
    notify_socket ns;
    CAF_REQUIRE(ns.ok());
    auto opts = notified(ns);
    opts.listen_fds = {lst.fd.get()};
    auto& srv = run({"--protocol=http", "--workers=" + workers,
                     "--drain-timeout=5s", "--log-level=debug"},
                    opts);
    auto port = srv.wait_listening();
    CAF_REQUIRE(port);
    auto ready = ns.wait_for("READY=1");
    CAF_REQUIRE(ready);
    // Accepted (the server counts it), nothing sent yet.
    auto conn = connect_client(*port);
    CAF_REQUIRE(conn);
    // (With workers the master's sum: "... 1 connection open (2 workers)".)
    CAF_REQUIRE(ns.wait_for("STATUS=serving on 127.0.0.1:"
                              + std::to_string(*port) + ": 1 connection open",
                            *ready));
    CAF_REQUIRE(srv.signal(SIGTERM));
    CAF_REQUIRE(ns.wait_for("STOPPING=1", *ready));
    // The connection has its stop, and waits (up to 300 ms) for a request.
    CAF_REQUIRE(srv.wait_stderr("has sent nothing yet: waiting 300.0ms"));
    // The request after the stop reached it: answered, with Connection:
    // close, then the server's clean close.
    CAF_REQUIRE(qt::send_all(conn.get(), get()));
    auto r = read_response(conn.get());
    CAF_REQUIRE(r);
    CAF_CHECK_EQUAL(r->status, 200);
    CAF_CHECK(qt::iequals(r->header("Connection"), "close"));
    auto rest = qt::read_until_eof(conn.get());
    CAF_CHECK_EQUAL(rest.status, qt::read_status::eof);
    CAF_CHECK_EQUAL(srv.wait_exit(), 0);
    CAF_CHECK(lst.listening());
  }
}

CAF_TEST(activation - an idle stop ends within a second) {
  test_listener lst;
  CAF_REQUIRE_NOT_EQUAL(lst.port, 0);
  qt::process_options opts;
  opts.listen_fds = {lst.fd.get()};
  // No connection at all, then one that never sends (its grace passes).
  for (bool silent_client : {false, true}) {
    auto& srv
      = run({"--protocol=http", "--workers=1", "--drain-timeout=5s"}, opts);
    auto port = srv.wait_listening();
    CAF_REQUIRE(port);
    qt::unique_fd conn;
    if (silent_client) {
      conn = connect_client(*port);
      CAF_REQUIRE(conn);
      // Served (accepted) before the stop: one request on another
      // connection proves the loop has turned past it.
      auto probe = connect_client(*port);
      CAF_REQUIRE(qt::send_all(probe.get(), get(false)));
      CAF_REQUIRE(read_response(probe.get()));
    }
    auto t0 = clock_type::now();
    CAF_REQUIRE(srv.signal(SIGTERM));
    if (silent_client) {
      // Closed cleanly once its grace has passed; the client then closes
      // too, as a real one does at end-of-stream.
      auto rest = qt::read_until_eof(conn.get());
      CAF_CHECK_EQUAL(rest.status, qt::read_status::eof);
      conn.reset();
    }
    auto code = srv.wait_exit();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                  clock_type::now() - t0)
                  .count();
    CAF_MESSAGE("stop took " << took << " ms"
                             << (silent_client ? " (a silent client)" : ""));
    CAF_CHECK_EQUAL(code, 0);
    CAF_CHECK_LESS(took, 1000);
    // With the silent client: not before its grace.
    if (silent_client)
      CAF_CHECK_GREATER_OR_EQUAL(took, 300);
  }
}

namespace {

/// What the clients of a handover saw.
struct handover_counts {
  std::atomic<uint64_t> responses{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> reset{0};
  std::atomic<uint64_t> failed{0};
  std::mutex mtx;
  std::vector<std::string> errors;

  void error(std::atomic<uint64_t>& counter, const std::string& what) {
    ++counter;
    std::lock_guard<std::mutex> guard{mtx};
    if (errors.size() < 20)
      errors.push_back(what);
  }

  std::condition_variable cv;

  void answered() {
    ++responses;
    cv.notify_all();
  }

  /// Waits until `n` responses have come; false after the watchdog.
  bool await(uint64_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, qt::default_timeout,
                       [&] { return responses.load() >= n; });
  }
};

/// Fresh connections, one request each, until `done`. `think`: the time
/// between the connect and the request (a client's TLS handshake or a slow
/// network): a connection accepted just before a stop then has its first
/// request still on its way.
void fresh_client(uint16_t port, std::atomic<bool>& done,
                  handover_counts& counts,
                  std::chrono::milliseconds think = 0ms) {
  while (!done) {
    auto conn = qt::connect_loopback(port);
    if (conn.error == ECONNREFUSED) {
      counts.error(counts.refused, "connect refused");
      continue;
    }
    if (conn.error != 0) {
      counts.error(counts.failed,
                   std::string{"connect: "} + std::strerror(conn.error));
      continue;
    }
    if (think.count() > 0) {
      // The client's own pace, not a wait for the server; the server's
      // close during it shows as input (EOF) on the socket.
      if (qt::wait_readable(conn.fd.get(), think)) {
        counts.error(counts.failed, "closed before the request was sent");
        continue;
      }
    }
    if (!qt::send_all(conn.fd.get(), get())) {
      if (errno == ECONNRESET || errno == EPIPE)
        counts.error(counts.reset, "send reset");
      else
        counts.error(counts.failed, "send failed");
      continue;
    }
    auto head = qt::read_through(conn.fd.get(), "\r\n\r\n");
    qt::response r;
    if (head.status == qt::read_status::error
        && (head.error == ECONNRESET || head.error == EPIPE)) {
      counts.error(counts.reset, "reset: " + head.ending());
      continue;
    }
    if (head.status != qt::read_status::complete
        || !qt::parse_head(head.bytes, r) || r.status != 200) {
      counts.error(counts.failed, "unanswered: " + head.ending());
      continue;
    }
    auto len = r.content_length().value_or(0);
    auto body = qt::read_exactly(conn.fd.get(), len);
    if (body.status != qt::read_status::complete) {
      counts.error(counts.failed, "body: " + body.ending());
      continue;
    }
    counts.answered();
  }
}

} // namespace

CAF_TEST(activation - handover to the next server loses no connection) {
  test_listener lst;
  CAF_REQUIRE_NOT_EQUAL(lst.port, 0);
  for (std::string workers : {"1", "2"}) {
    CAF_MESSAGE("--workers=" << workers);
    qt::process_options opts;
    opts.listen_fds = {lst.fd.get()};
    std::vector<std::string> args{"--protocol=http", "--workers=" + workers,
                                  "--drain-timeout=5s"};
    auto& a = run(args, opts);
    CAF_REQUIRE(a.wait_listening());
    handover_counts counts;
    std::atomic<bool> done{false};
    std::vector<std::thread> clients;
    for (int i = 0; i < 2; ++i)
      clients.emplace_back([&] { fresh_client(lst.port, done, counts); });
    // Slow first requests: some are on their way at A's stop.
    for (int i = 0; i < 4; ++i)
      clients.emplace_back(
        [&] { fresh_client(lst.port, done, counts, 100ms); });
    bool ok = counts.await(300);
    if (ok) {
      // A stops; B starts on the same socket while A drains (systemctl
      // restart of a socket-activated service).
      CAF_CHECK(a.signal(SIGTERM));
      auto& b = run(args, opts);
      ok = b.wait_listening().has_value();
      CAF_CHECK(ok);
      auto code = a.wait_exit();
      CAF_CHECK_EQUAL(code, 0);
      if (ok)
        ok = counts.await(counts.responses.load() + 300);
      done = true;
      for (auto& t : clients)
        t.join();
      CAF_CHECK(b.signal(SIGTERM));
      auto b_code = b.wait_exit();
      CAF_CHECK_EQUAL(b_code, 0);
    } else {
      done = true;
      for (auto& t : clients)
        t.join();
    }
    CAF_CHECK(ok);
    CAF_MESSAGE("responses " << counts.responses.load() << ", refused "
                             << counts.refused.load() << ", reset "
                             << counts.reset.load() << ", failed "
                             << counts.failed.load());
    for (auto& e : counts.errors)
      CAF_MESSAGE("client: " << e);
    CAF_CHECK_EQUAL(counts.refused.load(), 0u);
    CAF_CHECK_EQUAL(counts.reset.load(), 0u);
    CAF_CHECK_EQUAL(counts.failed.load(), 0u);
    CAF_CHECK(lst.listening());
  }
}

CAF_TEST(activation by the systemd socket activate tool) {
  const std::string tool = "/usr/bin/systemd-socket-activate";
  CAF_REQUIRE_EQUAL(::access(tool.c_str(), X_OK), 0);
  // It refuses port 0: a free port is picked by binding port 0 and closing
  // the socket, then handed to the tool; should another process take it in
  // between, the tool fails to bind and another port is tried.
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint16_t port = 0;
    {
      test_listener probe;
      port = probe.port;
    }
    CAF_REQUIRE_NOT_EQUAL(port, 0);
    auto& act
      = run_program(tool, {"-l", "127.0.0.1:" + std::to_string(port),
                           "--fdname=http", qt::server_binary(),
                           "--protocol=http", "--port=1", "--workers=1"});
    if (!act.wait_stderr("Listening on 127.0.0.1:" + std::to_string(port))) {
      CAF_MESSAGE("systemd-socket-activate could not listen on "
                  << port << ": " << act.stderr_text());
      continue;
    }
    // It starts the server at the first connection, which the server then
    // serves from the backlog.
    auto conn = connect_client(port);
    CAF_REQUIRE(conn);
    CAF_REQUIRE(qt::send_all(conn.get(), get()));
    auto r = read_response(conn.get());
    CAF_REQUIRE(r);
    CAF_CHECK_EQUAL(r->status, 200);
    auto listening = act.wait_listening();
    CAF_REQUIRE(listening);
    CAF_CHECK_EQUAL(*listening, port);
    CAF_CHECK(act.wait_stderr("--host and --port are ignored"));
    conn.reset();
    // The tool exec'd the server: the same pid.
    CAF_REQUIRE(act.signal(SIGTERM));
    CAF_CHECK_EQUAL(act.wait_exit(), 0);
    return;
  }
  CAF_FAIL("systemd-socket-activate found no free port in 5 attempts");
}

CAF_TEST_FIXTURE_SCOPE_END()
