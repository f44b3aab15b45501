// Slow and hostile clients against the built binary over real loopback
// sockets: slowloris (cut off by --http.header-timeout), idle connections
// (closed after --idle-timeout), a half-closed peer, peers that reset the
// connection while the server works on their request or writes their
// response. After each, nothing may leak: the server's socket descriptors
// (/proc/<pid>/fd) are back to what they were, every connection actor that
// opened has ended (debug lines "opened" and "actor ended"), and a stop
// finds only the probe connection of the check (the supervisor's own count)
// and ends at once, exit 0.
//
// (A client that never reads while the server writes is forced at the drain
// deadline, exit 3: binary.shutdown's "the drain timeout closes a stuck
// connection and exits 3" covers it.)

#define CAF_SUITE binary.hostile

#include "caf/test/unit_test.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "support/binary_fixture.hpp"

namespace qt = quiesce::test;

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// Open socket descriptors of process `pid` (the listener and the
/// connections, duplicates included), or -1 if /proc cannot say. Only
/// sockets: the other descriptors are fixed (pipes, epoll), except one that
/// glibc opens for a moment to read the time zone when a log line gets its
/// date.
int count_fds(pid_t pid) {
  auto path = "/proc/" + std::to_string(pid) + "/fd";
  auto dir = ::opendir(path.c_str());
  if (dir == nullptr)
    return -1;
  int n = 0;
  while (auto entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.')
      continue;
    char target[64] = {};
    auto len = ::readlink((path + "/" + entry->d_name).c_str(), target,
                          sizeof(target) - 1);
    if (len > 0
        && std::string_view{target, static_cast<size_t>(len)}.substr(0, 7)
             == "socket:")
      ++n;
  }
  ::closedir(dir);
  return n;
}

/// Closes `fd` with a reset: SO_LINGER 0, then close.
void reset_close(qt::unique_fd& fd) {
  linger lin{};
  lin.l_onoff = 1;
  lin.l_linger = 0;
  CAF_CHECK_EQUAL(
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)), 0);
  fd.reset();
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

/// The status line of an HTTP response: its bytes up to the first CRLF.
std::string status_line(const std::string& bytes) {
  return bytes.substr(0, bytes.find("\r\n"));
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::chrono::milliseconds since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now()
                                                               - t0);
}

constexpr std::string_view opened = " opened\n";
constexpr std::string_view ended = " actor ended\n";

struct fixture : qt::binary_fixture {
  uint16_t port = 0;
  bool http = true;
  /// The server's descriptors with one idle connection open.
  int baseline = -1;

  /// Starts the server with the debug log (a line per connection opened
  /// and per actor ended) and `extra`, and takes the descriptor baseline.
  bool start(const std::string& protocol, std::vector<std::string> extra) {
    http = protocol == "http";
    extra.push_back("--log-level=debug");
    // A leaked actor that reported done would keep the stop waiting this
    // long: longer than any wait of a test, shorter than the watchdog.
    extra.push_back("--drain-timeout=20s");
    port = start_server(protocol, extra);
    if (port == 0)
      return false;
    // Counted with one connection open, after its round trip: whatever the
    // server opens on first use is in, and no close is under way.
    auto warm = connect_client(port);
    if (!warm || !round_trip(warm.get()))
      return false;
    baseline = count_fds(server().pid());
    CAF_MESSAGE("server sockets with one connection: " << baseline);
    warm.reset();
    return baseline > 0 && connections_ended(1);
  }

  /// One request and its complete answer on `fd`: GET / (http) or 4 bytes
  /// of echo.
  bool round_trip(int fd) {
    if (http) {
      auto req = get("/");
      if (!qt::send_all(fd, req))
        return false;
      auto head = qt::read_through(fd, "\r\n\r\n");
      auto body = qt::read_exactly(fd, 15); // "quiesce: hello\n"
      CAF_CHECK_EQUAL(status_line(head.bytes), "HTTP/1.1 200 OK");
      CAF_CHECK_EQUAL(body.bytes, "quiesce: hello\n");
      return body.status == qt::read_status::complete;
    }
    if (!qt::send_all(fd, "ping"))
      return false;
    auto echo = qt::read_exactly(fd, 4);
    CAF_CHECK_EQUAL(echo.bytes, "ping");
    return echo.status == qt::read_status::complete;
  }

  /// Waits until `n` connection actors in all have ended, and checks that
  /// as many opened.
  bool connections_ended(size_t n) {
    if (!server().wait_stderr(ended, n)) {
      CAF_ERROR("only " << server().stderr_count(ended) << " of "
                        << server().stderr_count(opened)
                        << " connection actors ended; want " << n);
      return false;
    }
    CAF_CHECK_EQUAL(server().stderr_count(opened), n);
    return true;
  }

  /// The leak check, once `n` connections (the warm-up one included) have
  /// come and gone: every actor ended; with one probe connection open (its
  /// round trip also lets the event loop finish closing what the ended
  /// actors left), the server holds as many descriptors as at the start;
  /// a stop then finds only the probe, gives it a FIN and ends at once
  /// with exit 0, without waiting for the drain deadline (a leaked actor
  /// would hold it).
  void expect_nothing_leaked(size_t n) {
    if (!connections_ended(n))
      return;
    auto probe = connect_client(port);
    if (!probe || !round_trip(probe.get()))
      return;
    CAF_CHECK_EQUAL(count_fds(server().pid()), baseline);
    auto t0 = steady::now();
    CAF_CHECK(server().signal(SIGTERM));
    auto rest = qt::read_until_eof(probe.get());
    CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
    probe.reset();
    expect_exit(0);
    CAF_CHECK_LESS(since(t0).count(), 10'000);
    auto err = server().stderr_text();
    CAF_CHECK(contains(err, "stopping; 1 connections open"));
    CAF_CHECK(contains(err, "stopped: drained=1 forced=0 "));
    CAF_CHECK(!contains(err, "drain timeout passed"));
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(hostile_tests, fixture)

CAF_TEST(slowloris is cut off by the header timeout with 408) {
  if (!start("http", {"--http.header-timeout=1s"}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  auto fd = conn.get();
  // A header trickled a byte every 100 ms, forever: only the server's
  // timeout ends it. Waits on the server's answer (poll) between bytes.
  const std::string start_of_request = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  auto t0 = steady::now();
  size_t sent = 0;
  bool answered = false;
  while (since(t0) < 20s) {
    pollfd pfd{fd, POLLIN, 0};
    auto rc = ::poll(&pfd, 1, 100);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc > 0) {
      answered = true;
      break;
    }
    auto byte = sent < start_of_request.size() ? start_of_request[sent] : 'a';
    if (!qt::send_all(fd, std::string(1, byte)))
      break;
    ++sent;
  }
  auto took = since(t0);
  CAF_MESSAGE("trickled " << sent << " bytes in " << took.count() << " ms");
  CAF_REQUIRE(answered);
  // Cut off by the timeout, not by a limit: well under 8 KiB, after 1 s.
  CAF_CHECK_GREATER_OR_EQUAL(took.count(), 1000);
  auto resp = qt::read_until_eof(fd);
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  CAF_CHECK_EQUAL(status_line(resp.bytes), "HTTP/1.1 408 Request Timeout");
  CAF_CHECK(contains(resp.bytes, "\r\nConnection: close\r\n"));
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(idle connections are closed after the idle timeout busy ones not ) {
  if (!start("http", {"--idle-timeout=1s"}))
    return;
  // Sent nothing; made one request and waits with the connection kept
  // alive; a request answered after 2.5 s, longer than the idle timeout.
  auto silent = connect_client(port);
  auto kept = connect_client(port);
  auto busy = connect_client(port);
  if (!silent || !kept || !busy)
    return;
  auto t0 = steady::now();
  CAF_REQUIRE(round_trip(kept.get()));
  CAF_REQUIRE(qt::send_all(busy.get(), get("/delay/2500")));
  for (auto* conn : {&silent, &kept}) {
    auto rest = qt::read_until_eof(conn->get());
    CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
    CAF_CHECK_EQUAL(rest.bytes, "");
  }
  CAF_CHECK_GREATER_OR_EQUAL(since(t0).count(), 1000);
  // The busy one gets its whole answer, then the idle close.
  auto resp = qt::read_until_eof(busy.get());
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  CAF_CHECK_EQUAL(status_line(resp.bytes), "HTTP/1.1 200 OK");
  CAF_CHECK(contains(resp.bytes, "\r\n\r\ndelayed 2500 ms\n"));
  CAF_CHECK(contains(resp.bytes, "Connection: keep-alive"));
  CAF_CHECK_GREATER_OR_EQUAL(since(t0).count(), 3500);
  silent.reset();
  kept.reset();
  busy.reset();
  // The server's own account: three idle closes (its log line may come
  // just after the FIN).
  CAF_CHECK(server().wait_stderr("ms: closing\n", 3));
  expect_nothing_leaked(4);
}

CAF_TEST(an idle echo connection is closed after the idle timeout) {
  if (!start("echo", {"--idle-timeout=500ms"}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  auto t0 = steady::now();
  CAF_REQUIRE(round_trip(conn.get()));
  auto rest = qt::read_until_eof(conn.get());
  CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
  CAF_CHECK_GREATER_OR_EQUAL(since(t0).count(), 500);
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(a half closed peer gets its answer and nothing leaks) {
  if (!start("http", {}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  CAF_REQUIRE(qt::send_all(conn.get(), get("/delay/300")));
  CAF_REQUIRE_EQUAL(::shutdown(conn.get(), SHUT_WR), 0);
  auto resp = qt::read_until_eof(conn.get());
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  CAF_CHECK_EQUAL(status_line(resp.bytes), "HTTP/1.1 200 OK");
  CAF_CHECK(contains(resp.bytes, "\r\n\r\ndelayed 300 ms\n"));
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(a peer that resets while its request is in flight frees it at once) {
  if (!start("http", {}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  // A minute of work for the server, then a reset: nobody is left to
  // answer, so neither the descriptor nor the actor may wait for the timer.
  CAF_REQUIRE(qt::send_all(conn.get(), get("/delay/60000")));
  // The request has arrived once the timer runs: the connection is busy.
  // (The debug log has no line for that; a second request on another
  // connection, answered, orders it after the first's arrival.)
  auto other = connect_client(port);
  if (!other || !round_trip(other.get()))
    return;
  other.reset();
  reset_close(conn);
  if (!server().wait_stderr("reset by the peer; dropping the work in flight"))
    CAF_ERROR("the server did not see the reset as one");
  expect_nothing_leaked(3);
}

CAF_TEST(a peer that sends a request and resets at once leaks nothing) {
  if (!start("http", {}))
    return;
  for (int i = 0; i < 20; ++i) {
    auto conn = connect_client(port);
    if (!conn)
      return;
    CAF_REQUIRE(
      qt::send_all(conn.get(), i % 2 == 0 ? get("/") : get("/delay/50")));
    reset_close(conn);
  }
  expect_nothing_leaked(21);
}

CAF_TEST(a peer that resets in the middle of a large response leaks nothing) {
  // A 4 MiB echo: more than the kernel's buffers on both sides hold, so
  // the server still has most of it when the client resets.
  constexpr size_t body_size = size_t{4} << 20;
  if (!start("http", {"--http.max-body=" + std::to_string(body_size)}))
    return;
  auto conn = connect_client(port, 4096);
  if (!conn)
    return;
  auto body = qt::pattern(0, body_size);
  auto req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
             + std::to_string(body_size) + "\r\n\r\n" + body;
  CAF_REQUIRE(qt::send_all(conn.get(), req));
  auto head = qt::read_through(conn.get(), "\r\n\r\n");
  CAF_CHECK_EQUAL(status_line(head.bytes), "HTTP/1.1 200 OK");
  auto part = qt::read_exactly(conn.get(), 64 * 1024);
  CAF_CHECK_EQUAL(part.ending(), "complete");
  CAF_CHECK_EQUAL(part.bytes, body.substr(0, part.bytes.size()));
  reset_close(conn);
  expect_nothing_leaked(2);
}

CAF_TEST_FIXTURE_SCOPE_END()
