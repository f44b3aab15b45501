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
// A request body that stalls is cut off after --http.body-timeout (408),
// also during a stop; one that trickles faster is not. A client that never
// reads is reset after --write-timeout (logged as a warning), a slow one
// that does read is not; an upload that goes on after its answer (a 413) is
// cut off after the discard limit. (During a stop, a
// client that never reads is forced at the drain deadline, exit 3:
// binary.shutdown's "the drain timeout closes a stuck connection and exits
// 3" covers it.)

#define CAF_SUITE binary.hostile

#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <string_view>
#include <optional>
#include <thread>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"

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

/// A `POST /echo` whose body is `size` bytes of the pattern, asking for
/// `Connection: close` if `close`.
std::string post_echo(size_t size, bool close) {
  return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
         + std::to_string(size) + (close ? "\r\nConnection: close" : "")
         + "\r\n\r\n" + qt::pattern(0, size);
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::chrono::milliseconds since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now()
                                                               - t0);
}

/// The pattern from `offset` on, 64 KiB at a time.
auto pattern_from(size_t& offset) {
  return [&offset] {
    auto chunk = qt::pattern(offset, 64 * 1024);
    offset += chunk.size();
    return chunk;
  };
}

/// Junk, 64 KiB at a time, up to `limit` bytes in all (`made` counts them).
auto junk_up_to(size_t& made, size_t limit) {
  return [&made, limit]() -> std::string {
    if (made >= limit)
      return {};
    made += 64 * 1024;
    return std::string(64 * 1024, 'j');
  };
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
    // One process unless a test asks for workers: the leak checks count
    // the descriptors of the server's process and its actors' log lines.
    if (std::none_of(extra.begin(), extra.end(), [](const std::string& x) {
          return x.rfind("--workers=", 0) == 0;
        }))
      extra.push_back("--workers=1");
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
      CAF_CHECK_EQUAL(qt::status_line_of(head.bytes), "HTTP/1.1 200 OK");
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

  /// Starts the server with `--write-timeout=1s` and connects a
  /// non-blocking client with a small receive buffer (the server's output
  /// fills it at once) that has made one round trip. Returns no socket
  /// after a failed check.
  qt::unique_fd start_small_reader(const std::string& protocol,
                                   std::vector<std::string> extra = {}) {
    extra.push_back("--write-timeout=1s");
    if (!start(protocol, std::move(extra)))
      return {};
    auto conn = connect_client(port, 4096);
    if (!conn || !round_trip(conn.get()) || !qt::set_nonblocking(conn.get()))
      return {};
    return conn;
  }

  /// Connects a client with small segments (`qt::connect_small_segments`).
  qt::unique_fd connect_small_segments() {
    auto conn = qt::connect_small_segments(port);
    if (!conn.fd)
      CAF_ERROR(
        "connecting with small segments failed: " << std::strerror(conn.error));
    return std::move(conn.fd);
  }

  /// Waits for the server's write-timeout warning (20 s at most: without a
  /// write timeout the connection would stay for as long as the client
  /// likes), then checks that the client `fd` reads a reset: what it was
  /// sent, then ECONNRESET, never a clean end. Returns what it read, or
  /// nothing after a failed check.
  std::optional<qt::read_result> expect_write_timeout_reset(int fd) {
    if (!server().wait_stderr("write timeout: no output taken for", 1, 20s)) {
      CAF_ERROR("no write timeout within 20 s");
      return std::nullopt;
    }
    auto rest = qt::read_until_eof(fd);
    CAF_MESSAGE("read " << rest.bytes.size() << " bytes, then "
                        << rest.ending());
    CAF_CHECK_EQUAL(rest.ending(), "error: Connection reset by peer");
    return rest;
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
    if (qt::wait_readable(fd, 100ms)) {
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
  CAF_CHECK_EQUAL(qt::status_line_of(resp.bytes),
                  "HTTP/1.1 408 Request Timeout");
  CAF_CHECK(contains(resp.bytes, "\r\nConnection: close\r\n"));
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(a stalled request body is cut off by the body timeout with 408) {
  if (!start("http", {"--http.body-timeout=1s"}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  // Half the body, then nothing: only the server's timeout ends it (the
  // idle timeout does not apply to a request in flight).
  auto t0 = steady::now();
  CAF_REQUIRE(qt::send_all(conn.get(), "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: 10\r\n\r\nABCDE"));
  auto resp = qt::read_until_eof(conn.get());
  auto took = since(t0);
  CAF_MESSAGE("answered after " << took.count() << " ms");
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  CAF_CHECK_EQUAL(qt::status_line_of(resp.bytes),
                  "HTTP/1.1 408 Request Timeout");
  CAF_CHECK(contains(resp.bytes, "\r\nConnection: close\r\n"));
  CAF_CHECK_GREATER_OR_EQUAL(took.count(), 1000);
  CAF_CHECK_LESS(took.count(), 15'000);
  CAF_CHECK(server().wait_stderr("body timeout: no byte of a request body"));
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(a request body trickled within the body timeout is served) {
  // The timeout is between two reads, not for the whole body: 8 bytes, one
  // every 400 ms, take 2.8 s against a timeout of 2 s.
  if (!start("http", {"--http.body-timeout=2s"}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  auto fd = conn.get();
  CAF_REQUIRE(qt::send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 8\r\n\r\n"));
  auto t0 = steady::now();
  const std::string body = "trickled";
  for (size_t i = 0; i < body.size(); ++i) {
    // Paced by the client; an answer before the body is complete is a
    // failure (a 408), seen at once.
    CAF_REQUIRE(!qt::wait_readable(fd, i == 0 ? 0ms : 400ms));
    CAF_REQUIRE(qt::send_all(fd, body.substr(i, 1)));
  }
  CAF_CHECK_GREATER(since(t0).count(), 2000);
  auto head = qt::read_through(fd, "\r\n\r\n");
  CAF_CHECK_EQUAL(qt::status_line_of(head.bytes), "HTTP/1.1 200 OK");
  CAF_CHECK_EQUAL(qt::read_exactly(fd, 8).bytes, body);
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(a stop with a stalled request body ends with its 408 and exit 0) {
  // The drain deadline (20 s, see start) is longer than the body timeout:
  // the stalled upload ends with its 408, a clean stop, not the deadline's
  // forced close and exit 3.
  if (!start("http", {"--http.body-timeout=1s"}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  // Bytes in the server's kernel before the stop are read before it takes
  // effect on the connection: the request is half received at the stop.
  CAF_REQUIRE(qt::send_all(conn.get(), "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: 10\r\n\r\nABCDE"));
  auto t0 = steady::now();
  CAF_REQUIRE(server().signal(SIGTERM));
  auto resp = qt::read_until_eof(conn.get());
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  CAF_CHECK_EQUAL(qt::status_line_of(resp.bytes),
                  "HTTP/1.1 408 Request Timeout");
  CAF_CHECK(contains(resp.bytes, "\r\nConnection: close\r\n"));
  conn.reset();
  expect_exit(0);
  auto took = since(t0);
  CAF_MESSAGE("stopped after " << took.count() << " ms");
  CAF_CHECK_LESS(took.count(), 15'000);
  auto err = server().stderr_text();
  CAF_CHECK(contains(err, "stopped: drained=1 forced=0 "));
  CAF_CHECK(!contains(err, "drain timeout passed"));
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
  CAF_CHECK_EQUAL(qt::status_line_of(resp.bytes), "HTTP/1.1 200 OK");
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
  CAF_CHECK_EQUAL(qt::status_line_of(resp.bytes), "HTTP/1.1 200 OK");
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
  CAF_CHECK_EQUAL(qt::status_line_of(head.bytes), "HTTP/1.1 200 OK");
  auto part = qt::read_exactly(conn.get(), 64 * 1024);
  CAF_CHECK_EQUAL(part.ending(), "complete");
  CAF_CHECK_EQUAL(part.bytes, body.substr(0, part.bytes.size()));
  reset_close(conn);
  expect_nothing_leaked(2);
}

CAF_TEST(an echo client that never reads is reset after the write timeout) {
  auto conn = start_small_reader("echo");
  if (!conn)
    return;
  size_t offset = 0;
  auto sent = qt::send_until_stuck(conn.get(), pattern_from(offset), 500ms);
  CAF_REQUIRE(sent.has_value());
  CAF_MESSAGE("sent " << *sent << " bytes without reading");
  // The echo in its buffer, then the reset.
  auto rest = expect_write_timeout_reset(conn.get());
  if (!rest)
    return;
  CAF_CHECK_EQUAL(qt::first_difference(rest->bytes, qt::pattern(0, *sent)),
                  rest->bytes.size());
  // The log says which connection, how much was waiting and the timeout.
  auto err = server().stderr_text();
  CAF_CHECK(contains(err, " warning connection: connection "));
  CAF_CHECK(contains(err, " bytes waiting (write timeout 1000ms); aborting"));
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(
  with two workers a client that never reads is reset after the timeout) {
  // From outside: the echo in its buffer, then a reset (the worker's log
  // line names it); the others are served and the stop is clean.
  auto conn = start_small_reader("echo", {"--workers=2"});
  if (!conn)
    return;
  size_t offset = 0;
  auto sent = qt::send_until_stuck(conn.get(), pattern_from(offset), 500ms);
  CAF_REQUIRE(sent.has_value());
  auto rest = expect_write_timeout_reset(conn.get());
  if (!rest)
    return;
  CAF_CHECK_EQUAL(qt::first_difference(rest->bytes, qt::pattern(0, *sent)),
                  rest->bytes.size());
  conn.reset();
  auto probe = connect_client(port);
  CAF_REQUIRE(probe);
  CAF_CHECK(round_trip(probe.get()));
  CAF_CHECK(server().signal(SIGTERM));
  CAF_CHECK_EQUAL(qt::read_until_eof(probe.get()).ending(), "clean EOF");
  probe.reset();
  expect_exit(0);
  CAF_CHECK_EQUAL(server().stderr_count("stopped: drained="), 1u);
}

CAF_TEST(an http client that pipelines uploads but never reads is reset) {
  // Large POST /echo requests pipelined without reading their responses:
  // each holds up to a response of memory in the server.
  constexpr size_t body_size = 512 * 1024;
  auto conn = start_small_reader("http");
  if (!conn)
    return;
  size_t requests = 0;
  auto next_request = [&]() -> std::string {
    if (requests == 64)
      return {}; // 32 MiB: the server stopped reading long before
    auto body = qt::pattern(requests++ * body_size, body_size);
    return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
           + std::to_string(body_size) + "\r\n\r\n" + body;
  };
  auto sent = qt::send_until_stuck(conn.get(), next_request, 500ms);
  CAF_REQUIRE(sent.has_value());
  CAF_MESSAGE("sent " << *sent << " bytes (" << requests
                      << " requests started) without reading");
  CAF_CHECK_LESS(requests, 64u);
  auto rest = expect_write_timeout_reset(conn.get());
  if (!rest)
    return;
  CAF_CHECK(rest->bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(a client that half closes and never reads is reset after the timeout) {
  // A 100 KiB POST /echo and FIN in one go, never reading. The server has
  // the whole request before it answers; the kernels take part of the
  // answer, the server holds the rest (less than the 64 KiB at which it
  // would stop reading), so it reads the FIN while output waits, and stays
  // to let CAF write it ("flushing"). The write timeout must end that wait
  // too. Small segments (MSS 536) keep the server's send buffer small:
  // Linux sizes it from the segment size (on loopback 64 KiB otherwise,
  // which makes it megabytes).
  constexpr size_t body_size = 100 * 1024;
  if (!start("http", {"--write-timeout=1s"}))
    return;
  auto conn = connect_small_segments();
  if (!conn)
    return;
  CAF_REQUIRE(qt::send_all(conn.get(), post_echo(body_size, false)));
  CAF_REQUIRE_EQUAL(::shutdown(conn.get(), SHUT_WR), 0);
  if (!server().wait_stderr(" bytes still to send\n")) {
    CAF_ERROR("the server did not read the FIN while its output waited");
    return;
  }
  auto rest = expect_write_timeout_reset(conn.get());
  if (!rest)
    return;
  CAF_CHECK(rest->bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(a slow reader that keeps reading is not cut off by the write timeout) {
  auto conn = start_small_reader("echo");
  if (!conn)
    return;
  auto fd = conn.get();
  size_t offset = 0;
  auto sent = qt::send_until_stuck(fd, pattern_from(offset), 500ms);
  CAF_REQUIRE(sent.has_value());
  // Output waits in the server now. For 4 s (four write timeouts) the
  // client reads only 4 KiB every 250 ms: each read within the timeout,
  // and each frees enough of its receive buffer for the kernel to take
  // more (a single byte would not: TCP opens a window only once a good
  // part of the buffer is free).
  std::string received;
  auto t0 = steady::now();
  char buf[4096];
  while (since(t0) < 4s) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 250) < 0 && errno != EINTR)
      break;
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
      CAF_ERROR("the slow reader's connection ended after "
                << since(t0).count()
                << " ms: " << (n == 0 ? "EOF" : std::strerror(errno)));
      return;
    }
    if (n > 0)
      received.append(buf, static_cast<size_t>(n));
    // The client's pace (what makes it slow), not a wait for an event.
    std::this_thread::sleep_for(250ms);
  }
  CAF_MESSAGE("read " << received.size() << " bytes slowly in "
                      << since(t0).count() << " ms");
  CAF_CHECK_EQUAL(server().stderr_count("write timeout"), 0u);
  // It reads the rest at full speed: every byte comes back, in order.
  CAF_REQUIRE_EQUAL(::shutdown(fd, SHUT_WR), 0);
  auto rest = qt::read_until_eof(fd);
  CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
  received += rest.bytes;
  auto want = qt::pattern(0, *sent);
  CAF_CHECK_EQUAL(received.size(), want.size());
  CAF_CHECK_EQUAL(qt::first_difference(received, want), want.size());
  CAF_CHECK_EQUAL(server().stderr_count("write timeout"), 0u);
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(input discarded while the last answer waits stops at the limit) {
  // `Connection: close` on a 100 KiB POST /echo: the server answers, part
  // of the answer waits in it (the client reads nothing, see
  // connect_small_segments), and the connection is closing: input after
  // the request is read and discarded. Past 1 MiB it reads no more, and
  // the client's sends stall. Upper bound: 64 MiB.
  if (!start("http", {}))
    return;
  auto conn = connect_small_segments();
  if (!conn)
    return;
  CAF_REQUIRE(qt::send_all(conn.get(), post_echo(100 * 1024, true)));
  CAF_REQUIRE(qt::set_nonblocking(conn.get()));
  size_t junk = 0;
  auto sent = qt::send_until_stuck(conn.get(),
                                   junk_up_to(junk, size_t{64} << 20), 500ms);
  CAF_REQUIRE(sent.has_value());
  CAF_MESSAGE("the server stopped reading after " << *sent << " bytes");
  // 1 MiB discarded, plus what the kernels buffer on both sides.
  CAF_CHECK_LESS(*sent, size_t{32} << 20);
  CAF_CHECK(server().wait_stderr("bytes of unwanted input (the limit is "
                                 "1048576): reading no more",
                                 1, 5s));
  // The answer still waits (no FIN yet: this was the discard of a stop in
  // progress, not of the linger after it); only the write timeout (60 s)
  // or the client ends it. The client resets.
  CAF_CHECK_EQUAL(server().stderr_count(" sent FIN\n"), 0u);
  reset_close(conn);
  expect_nothing_leaked(2);
}

CAF_TEST(an upload refused behind a pending answer is not read without bound) {
  // The 413 of the upload waits behind the answer to a delayed request:
  // the connection is still serving, so the input goes to the behaviour,
  // which answers none of it. Past 1 MiB it must stop reading (upper bound
  // of the client's flood: 256 MiB), and once both answers are out, the
  // connection's own discard limit ends it.
  if (!start("http", {}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  auto fd = conn.get();
  CAF_REQUIRE(qt::send_all(fd, get("/delay/1500")
                                 + "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 100000000\r\n\r\n"));
  CAF_REQUIRE(qt::set_nonblocking(fd));
  size_t junk = 0;
  auto sent
    = qt::send_until_stuck(fd, junk_up_to(junk, size_t{256} << 20), 500ms);
  CAF_REQUIRE(sent.has_value());
  CAF_MESSAGE("the server stopped reading after " << *sent << " bytes");
  // 1 MiB dropped, plus what the kernels buffer on both sides.
  CAF_CHECK_LESS(*sent, size_t{32} << 20);
  // Both answers, in order, then the end (a reset once the discard limit
  // has cut the input off).
  auto rest = qt::read_until_eof(fd);
  CAF_CHECK_EQUAL(qt::status_line_of(rest.bytes), "HTTP/1.1 200 OK");
  CAF_CHECK(contains(rest.bytes, "\r\n\r\ndelayed 1500 ms\nHTTP/1.1 413 "));
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST(an upload refused with 413 is cut off after the discard limit) {
  if (!start("http", {}))
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  auto fd = conn.get();
  // 100 MB announced: the server answers 413 at once and closes (FIN); the
  // client uploads on without reading. The server discards 1 MiB, then
  // reads no more and resets the connection a linger (1 s) later: the
  // client's send fails after about the limit plus what the kernels buffer.
  constexpr size_t announced = 100'000'000;
  CAF_REQUIRE(qt::send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: "
                                 + std::to_string(announced) + "\r\n\r\n"));
  auto chunk = std::string(64 * 1024, 'u');
  size_t sent = 0;
  int error = 0;
  auto t0 = steady::now();
  // Upper bound: the whole body, or 20 s.
  while (sent < announced && since(t0) < 20s) {
    if (!qt::send_all(fd, chunk, 20s)) {
      error = errno;
      break;
    }
    sent += chunk.size();
  }
  CAF_MESSAGE("sent " << sent << " bytes of the body in " << since(t0).count()
                      << " ms, then "
                      << (error != 0 ? std::strerror(error) : "no error"));
  CAF_CHECK(error == EPIPE || error == ECONNRESET);
  // 1 MiB discarded, plus the kernels' buffers on both sides of loopback.
  CAF_CHECK_LESS(sent, size_t{32} << 20);
  CAF_CHECK(server().wait_stderr("bytes of unwanted input (the limit is "
                                 "1048576): reading no more",
                                 1, 5s));
  CAF_CHECK(server().wait_stderr("closed after the discard limit", 1, 5s));
  conn.reset();
  expect_nothing_leaked(2);
}

CAF_TEST_FIXTURE_SCOPE_END()
