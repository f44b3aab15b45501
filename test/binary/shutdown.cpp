// The graceful stop of the built binary over real loopback sockets: FIN
// (never a reset) to idle clients and to a client still sending, the drain
// timeout and the second signal (exit 3), and the listener refusing new
// clients at once.

#define CAF_SUITE binary.shutdown

#include "caf/test/unit_test.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <vector>

#include "support/binary_fixture.hpp"

namespace qt = quiesce::test;

using namespace std::chrono_literals;

namespace {

struct fixture : qt::binary_fixture {
  /// Connects a client that makes its connection unable to finish: after
  /// one round trip (so the server has accepted it), it sends without ever
  /// reading until the server stops reading. The server then holds more
  /// echo output than the kernel buffers take, so the connection cannot
  /// drain until the test closes it. Returns no socket after a failed check.
  qt::unique_fd stuck_client(uint16_t port) {
    // A small receive buffer: the echo fills it quickly.
    auto conn = connect_client(port, 4096);
    if (!conn)
      return {};
    auto fd = conn.get();
    if (!qt::send_all(fd, "x")
        || qt::read_exactly(fd, 1).ending() != "complete") {
      CAF_ERROR("the stuck client's first round trip failed");
      return {};
    }
    CAF_CHECK(qt::set_nonblocking(fd));
    auto sent = qt::flood(fd, 500ms);
    if (!sent) {
      CAF_ERROR("flooding the server failed: " << std::strerror(errno));
      return {};
    }
    CAF_MESSAGE("the stuck client sent " << *sent << " bytes");
    return conn;
  }

  /// Starts an echo server with `--drain-timeout=<drain_timeout>`, connects
  /// a `stuck_client` (kept until the test ends, so the drain cannot finish
  /// on its own) and sends SIGTERM. Returns the port, or 0 after a failed
  /// check.
  uint16_t sigterm_with_stuck_client(const std::string& drain_timeout) {
    auto port = start_echo({"--drain-timeout=" + drain_timeout});
    if (port == 0)
      return 0;
    stuck_ = stuck_client(port);
    if (!stuck_)
      return 0;
    CAF_CHECK(server().signal(SIGTERM));
    return port;
  }

  /// Waits until standard error contains `text`, which the server writes in
  /// response to a signal; false after a failed check.
  bool await_stderr(const std::string& text) {
    if (server().wait_stderr(text))
      return true;
    CAF_ERROR("no `" << text << "` after SIGTERM");
    return false;
  }

  /// Starts an echo server with `extra` options and connects a client that
  /// makes one round trip (so the server has accepted it) and is then idle.
  /// Sends `sig` and checks that the client reads a clean EOF and nothing
  /// else. Returns the client, still open, or none after a failed check.
  qt::unique_fd idle_client_then_signal(const std::vector<std::string>& extra,
                                        int sig) {
    auto port = start_echo(extra);
    if (port == 0)
      return {};
    auto conn = connect_client(port);
    if (!conn)
      return {};
    CAF_CHECK(qt::send_all(conn.get(), "ping"));
    CAF_CHECK_EQUAL(qt::read_exactly(conn.get(), 4).bytes, "ping");
    CAF_CHECK(server().signal(sig));
    auto rest = qt::read_until_eof(conn.get());
    CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
    CAF_CHECK_EQUAL(rest.bytes, "");
    return conn;
  }

  /// Checks that standard error contains `text`.
  void expect_stderr(const std::string& text) {
    if (server().stderr_count(text) == 0)
      CAF_ERROR("standard error lacks `" << text << "`");
  }

private:
  /// The client of `sigterm_with_stuck_client`: open until the test ends.
  qt::unique_fd stuck_;
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(shutdown_tests, fixture)

CAF_TEST(sigterm sends every idle connection a fin and exits 0) {
  constexpr size_t connections = 200;
  // The debug log has a line for every connection the server opened.
  auto port = start_echo({"--log-level=debug"});
  if (port == 0)
    return;
  auto conns = connect_clients(port, connections);
  if (conns.size() < connections)
    return;
  // Idle: the clients have sent nothing. Wait until all are accepted.
  if (!server().wait_stderr(" opened\n", connections)) {
    CAF_ERROR("the server opened only " << server().stderr_count(" opened\n")
                                        << " connections");
    return;
  }
  CAF_CHECK(server().signal(SIGTERM));
  size_t clean = 0;
  for (size_t i = 0; i < connections; ++i) {
    auto rest = qt::read_until_eof(conns[i].get());
    if (rest.status == qt::read_status::eof && rest.bytes.empty()) {
      ++clean;
      continue;
    }
    CAF_ERROR("client " << i << ": " << rest.bytes.size()
                        << " unexpected bytes, then " << rest.ending());
  }
  CAF_CHECK_EQUAL(clean, connections);
  conns.clear();
  expect_exit(0);
  expect_stderr("stopped: drained=" + std::to_string(connections)
                + " forced=0 ");
}

CAF_TEST(a client still sending gets its echo then a fin) {
  constexpr size_t chunk = 1024;
  // Echo owed to the client at most: it sends only while it is ahead of
  // the echo by less than this.
  constexpr size_t window = size_t{32} * 1024;
  // Echo the client reads before the stop: the stream is under way.
  constexpr size_t before_stop = size_t{64} * 1024;
  auto conn = start_echo_and_connect();
  if (!conn)
    return;
  auto fd = conn.get();
  CAF_CHECK(qt::set_nonblocking(fd));
  std::string received;
  size_t sent = 0;
  size_t sent_at_stop = 0;
  bool stopping = false;
  int send_error = 0;
  qt::read_result end; // status and error of the end of the stream
  char buf[16 * 1024];
  for (;;) {
    if (!stopping && received.size() >= before_stop) {
      stopping = true;
      sent_at_stop = sent;
      CAF_CHECK(server().signal(SIGTERM));
    }
    pollfd pfd{fd, POLLIN, 0};
    if (send_error == 0 && sent - received.size() < window)
      pfd.events |= POLLOUT;
    auto rc = ::poll(&pfd, 1, static_cast<int>(qt::default_timeout.count()));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0) {
      end.status = qt::read_status::timeout;
      break;
    }
    if ((pfd.revents & POLLOUT) != 0) {
      // The pattern is a function of the position: a short send just
      // continues from where it ended.
      auto bytes = qt::pattern(sent, chunk);
      auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0)
        sent += static_cast<size_t>(n);
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        send_error = errno; // reading on tells how the stream ended
    }
    if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        received.append(buf, static_cast<size_t>(n));
      } else if (n == 0) {
        end.status = qt::read_status::eof;
        break;
      } else if (errno != EAGAIN && errno != EINTR) {
        end.status = qt::read_status::error;
        end.error = errno;
        break;
      }
    }
  }
  CAF_MESSAGE("sent " << sent << " bytes (" << sent_at_stop
                      << " before the stop), received " << received.size());
  CAF_CHECK(stopping);
  CAF_CHECK_EQUAL(end.ending(), "clean EOF");
  CAF_CHECK_EQUAL(std::string{std::strerror(send_error)},
                  std::string{std::strerror(0)});
  CAF_CHECK_GREATER_OR_EQUAL(received.size(), before_stop);
  CAF_CHECK_LESS_OR_EQUAL(received.size(), sent);
  // Exactly a prefix of what was sent: nothing lost, doubled or reordered.
  CAF_CHECK_EQUAL(
    qt::first_difference(received, qt::pattern(0, received.size())),
    received.size());
  conn.reset();
  expect_exit(0);
  expect_stderr("stopped: drained=1 forced=0 ");
}

CAF_TEST(the drain timeout closes a stuck connection and exits 3) {
  if (sigterm_with_stuck_client("300ms") == 0)
    return;
  expect_exit(3);
  expect_stderr("drain timeout passed");
  expect_stderr("stopped: drained=0 forced=1 ");
}

CAF_TEST(a second signal forces the stop at once and exits 3) {
  if (sigterm_with_stuck_client("60s") == 0 || !await_stderr("stop requested"))
    return;
  auto second = std::chrono::steady_clock::now();
  CAF_CHECK(server().signal(SIGTERM));
  expect_exit(3);
  // The point: it did not wait for the 60 s drain timeout.
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - second);
  CAF_MESSAGE("exit " << took.count() << " ms after the second SIGTERM");
  CAF_CHECK_LESS(took.count(), 30'000);
  expect_stderr("SIGTERM received again");
  expect_stderr("stopped: drained=0 forced=1 ");
}

CAF_TEST(new connections are refused once the stop began) {
  // The stuck client keeps the server draining while the test connects.
  auto port = sigterm_with_stuck_client("60s");
  if (port == 0 || !await_stderr("listener closed"))
    return;
  auto late = qt::connect_loopback(port);
  CAF_CHECK_EQUAL(std::string{std::strerror(late.error)},
                  std::string{std::strerror(ECONNREFUSED)});
  CAF_CHECK(!server().exited());
  CAF_CHECK(server().signal(SIGINT));
  expect_exit(3);
  expect_stderr("SIGINT received again");
}

CAF_TEST(sigint stops like sigterm) {
  auto conn = idle_client_then_signal({}, SIGINT);
  if (!conn)
    return;
  conn.reset();
  expect_exit(0);
  expect_stderr("SIGINT received: stopping");
  expect_stderr("stopped: drained=1 forced=0 ");
}

CAF_TEST(a client that keeps its end open after eof does not force exit 3) {
  // The server owes this client nothing once its FIN is out; the client
  // reads EOF but never closes. The drain deadline (shorter than the 1 s
  // linger) closes the connection, which counts as drained: exit 0.
  auto conn = idle_client_then_signal({"--drain-timeout=300ms"}, SIGTERM);
  if (!conn)
    return;
  expect_exit(0);
  expect_stderr("drain timeout passed: closing 0 unfinished connections");
  expect_stderr("stopped: drained=1 forced=0 ");
  conn.reset();
}

CAF_TEST(a client that keeps its end open is closed after the linger) {
  // The real linger: FIN, then 1 s without input, then the server ends
  // reading locally and closes (no reset: nothing unread). Exit 0 well
  // before the 60 s drain timeout, and the client reads a clean EOF.
  auto conn = idle_client_then_signal({"--drain-timeout=60s"}, SIGTERM);
  if (!conn)
    return;
  // The client neither sends nor closes: only the linger can end this.
  expect_exit(0);
  expect_stderr("stopped: drained=1 forced=0 ");
  conn.reset();
}

CAF_TEST_FIXTURE_SCOPE_END()
