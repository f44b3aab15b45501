// The signal table of the built binary while it serves: SIGQUIT stops it
// as SIGTERM and SIGINT do (a second signal of any of the three forces);
// SIGHUP and SIGUSR1 are logged and never stop or kill it. (During start-up:
// binary.startup.)

#define CAF_SUITE binary.signals

#include "caf/test/unit_test.hpp"

#include <csignal>
#include <cstring>
#include <string>

#include "support/binary_fixture.hpp"

namespace qt = quiesce::test;

namespace {

/// A GET request for `path` on a keep-alive connection.
std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: quiesce\r\n\r\n";
}

/// "SIGQUIT" for SIGQUIT, as the server names signals in its log.
std::string name_of(int sig) {
  return std::string{"SIG"} + ::sigabbrev_np(sig);
}

struct fixture : qt::binary_fixture {
  /// Starts an HTTP server with `extra` options and `--log-level=debug`,
  /// connects a client and sends `GET <path>`; returns the client once the
  /// server has the connection (its request was written before), or no
  /// socket after a failed check.
  qt::unique_fd request_in_flight(const std::string& path,
                                  const std::vector<std::string>& extra = {}) {
    auto args = extra;
    args.push_back("--log-level=debug");
    auto port = start_http(args);
    if (port == 0)
      return {};
    auto conn = connect_client(port);
    if (!conn)
      return {};
    if (!qt::send_all(conn.get(), get(path))) {
      CAF_ERROR("cannot send the request");
      return {};
    }
    if (!server().wait_stderr(" opened\n")) {
      CAF_ERROR("the server never opened the connection");
      return {};
    }
    return conn;
  }

  /// Waits until standard error contains `text`; false after a failed check.
  bool await_stderr(const std::string& text) {
    if (server().wait_stderr(text))
      return true;
    CAF_ERROR("no `" << text << "` on standard error");
    return false;
  }

  /// Checks that the server still serves: `GET /` on a new connection is
  /// answered 200 and the connection stays open (no stop began).
  void expect_serving(uint16_t port) {
    auto conn = connect_client(port);
    if (!conn)
      return;
    CAF_REQUIRE(qt::send_all(conn.get(), get("/")));
    auto head = qt::read_through(conn.get(), "\r\n\r\n");
    CAF_CHECK_EQUAL(head.ending(), "complete");
    CAF_CHECK_EQUAL(head.bytes.substr(0, 15), "HTTP/1.1 200 OK");
    CAF_CHECK_EQUAL(head.bytes.find("Connection: close"), std::string::npos);
  }

  /// Starts an HTTP server with a request in flight that outlasts the test,
  /// sends `first` (a stop), then `second`, and checks that the second
  /// forces the stop: exit 3, the request closed by force, unanswered.
  void second_signal_forces(int first, int second) {
    auto conn = request_in_flight("/delay/60000", {"--drain-timeout=120s"});
    if (!conn)
      return;
    CAF_REQUIRE(server().signal(first));
    if (!await_stderr(name_of(first) + " received: stopping"))
      return;
    CAF_REQUIRE(server().signal(second));
    expect_exit(3);
    CAF_CHECK_EQUAL(
      server().stderr_count(name_of(second) + " received again: forcing"), 1u);
    CAF_CHECK_EQUAL(server().stderr_count("stopped: drained=0 forced=1"), 1u);
    auto rest = qt::read_until_eof(conn.get());
    CAF_CHECK_NOT_EQUAL(rest.ending(), "timeout");
    CAF_CHECK_EQUAL(rest.bytes, "");
  }

  /// Starts an HTTP server, sends `sig` and checks that the server logs it
  /// and goes on serving, then that SIGTERM stops it with exit 0. `extra`
  /// options are passed to the server.
  void expect_logged_and_ignored(int sig, const std::string& line,
                                 const std::vector<std::string>& extra = {}) {
    auto port = start_http(extra);
    if (port == 0)
      return;
    CAF_REQUIRE(server().signal(sig));
    if (!await_stderr(line)) {
      CAF_MESSAGE("the server: " << qt::describe_exit(server().wait_exit()));
      return;
    }
    expect_serving(port);
    // Twice more, each after the last was taken (two pending at once would
    // be one): still nothing but a log line.
    for (size_t n = 2; n <= 3; ++n) {
      CAF_REQUIRE(server().signal(sig));
      if (!server().wait_stderr(line, n))
        CAF_ERROR("log line " << n << " `" << line << "` is missing");
    }
    expect_serving(port);
    CAF_CHECK_EQUAL(server().stderr_count("stopping"), 0u);
    CAF_REQUIRE(server().signal(SIGTERM));
    expect_exit(0);
    CAF_CHECK_EQUAL(server().stderr_count("SIGTERM received: stopping"), 1u);
    // The last client may still be open to the server (then it is drained):
    // nothing is forced.
    CAF_CHECK_EQUAL(server().stderr_count(" forced=0 duration="), 1u);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(signal_tests, fixture)

CAF_TEST(sigquit answers a request in flight with connection close) {
  auto conn = request_in_flight("/delay/300");
  if (!conn)
    return;
  CAF_REQUIRE(server().signal(SIGQUIT));
  // Connection: close, so the server closes after it: read to the end.
  auto resp = qt::read_until_eof(conn.get());
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  CAF_CHECK_EQUAL(resp.bytes.substr(0, 15), "HTTP/1.1 200 OK");
  CAF_CHECK_NOT_EQUAL(resp.bytes.find("\r\nConnection: close\r\n"),
                      std::string::npos);
  CAF_CHECK_NOT_EQUAL(resp.bytes.find("delayed 300 ms"), std::string::npos);
  conn.reset();
  expect_exit(0);
  CAF_CHECK_EQUAL(server().stderr_count("SIGQUIT received: stopping"), 1u);
  CAF_CHECK_EQUAL(server().stderr_count("stopped: drained=1 forced=0"), 1u);
}

CAF_TEST(sigquit then sigterm forces the stop with exit 3) {
  second_signal_forces(SIGQUIT, SIGTERM);
}

CAF_TEST(sigterm then sigquit forces the stop with exit 3) {
  second_signal_forces(SIGTERM, SIGQUIT);
}

CAF_TEST(sigint then sigquit forces the stop with exit 3) {
  second_signal_forces(SIGINT, SIGQUIT);
}

CAF_TEST(sighup is logged and the server goes on serving) {
  // One process: it has nothing to reload (with workers SIGHUP becomes a
  // reload, a new generation of workers; see the variant below).
  expect_logged_and_ignored(SIGHUP,
                            "SIGHUP received: this process has "
                            "nothing to reload; ignored",
                            {"--workers=1"});
}

CAF_TEST(sighup to a master of two workers never kills and it goes on serving) {
  // From outside only (a reload may start new workers): the master logs
  // the signal, the server keeps serving, and a SIGTERM then stops it with
  // exit 0 and one summary line.
  auto port = start_http({"--workers=2"});
  CAF_REQUIRE_NOT_EQUAL(port, 0);
  CAF_REQUIRE(server().signal(SIGHUP));
  if (!await_stderr("SIGHUP received"))
    return;
  expect_serving(port);
  CAF_REQUIRE(server().signal(SIGTERM));
  expect_exit(0);
  CAF_CHECK_EQUAL(server().stdout_text().find("listening on"),
                  server().stdout_text().rfind("listening on"));
  CAF_CHECK_EQUAL(server().stderr_count("stopped: drained="), 1u);
}

CAF_TEST(sigusr1 is logged and the server goes on serving) {
  expect_logged_and_ignored(SIGUSR1, "SIGUSR1 received: ignored");
}

CAF_TEST(sighup and sigusr1 during a stop neither force nor kill it) {
  // The request outlasts the two signals by far: they come while the stop
  // waits for it.
  auto conn = request_in_flight("/delay/3000", {"--drain-timeout=60s"});
  if (!conn)
    return;
  CAF_REQUIRE(server().signal(SIGTERM));
  if (!await_stderr("SIGTERM received: stopping"))
    return;
  CAF_REQUIRE(server().signal(SIGHUP));
  if (!await_stderr("SIGHUP received"))
    return;
  CAF_REQUIRE(server().signal(SIGUSR1));
  if (!await_stderr("SIGUSR1 received"))
    return;
  auto resp = qt::read_until_eof(conn.get());
  CAF_CHECK_EQUAL(resp.ending(), "clean EOF");
  CAF_CHECK_EQUAL(resp.bytes.substr(0, 15), "HTTP/1.1 200 OK");
  conn.reset();
  expect_exit(0);
  CAF_CHECK_EQUAL(server().stderr_count("SIGHUP received"), 1u);
  CAF_CHECK_EQUAL(server().stderr_count("SIGUSR1 received"), 1u);
  CAF_CHECK_EQUAL(server().stderr_count("stopped: drained=1 forced=0"), 1u);
}

CAF_TEST_FIXTURE_SCOPE_END()
