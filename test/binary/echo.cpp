// The echo protocol over real loopback sockets: every byte comes back, in
// order, on one connection and on many at once; SIGTERM then stops the
// server cleanly.

#define CAF_SUITE binary.echo

#include "caf/test/unit_test.hpp"

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "support/binary_fixture.hpp"

namespace qt = quiesce::test;

namespace {

struct fixture : qt::binary_fixture {
  /// Stops the server with SIGTERM once every client has closed and
  /// expects a clean stop: exit code 0, nothing forced, and exactly the one
  /// `listening on` line on standard output.
  void stop_cleanly() {
    CAF_CHECK(server().signal(SIGTERM));
    expect_exit(0);
    CAF_CHECK(server().stderr_count("stopped: drained=") == 1);
    CAF_CHECK(server().stderr_count(" forced=0 ") == 1);
    auto out = server().stdout_text();
    CAF_CHECK_EQUAL(qt::count_occurrences(out, "\n"), 1u);
    CAF_CHECK_EQUAL(out.substr(0, 13), "listening on ");
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(echo_tests, fixture)

CAF_TEST(a short message comes back) {
  auto conn = start_echo_and_connect();
  if (!conn)
    return;
  // Two round trips on one connection; the second holds a NUL byte.
  const std::string messages[]
    = {"hello, quiesce\r\n", std::string{"line\0two\n", 9}};
  for (auto& msg : messages) {
    CAF_CHECK(qt::send_all(conn.get(), msg));
    auto echo = qt::read_exactly(conn.get(), msg.size());
    CAF_CHECK_EQUAL(echo.ending(), "complete");
    CAF_CHECK_EQUAL(echo.bytes, msg);
  }
  conn.reset();
  stop_cleanly();
}

CAF_TEST(a mebibyte comes back byte for byte) {
  auto conn = start_echo_and_connect();
  if (!conn)
    return;
  CAF_CHECK(qt::set_nonblocking(conn.get()));
  auto data = qt::pattern(0, size_t{1024} * 1024);
  // Sends and reads interleaved: the server pauses reading while its
  // output waits, so a client that only sent would stall.
  auto echo = qt::exchange(conn.get(), data);
  CAF_CHECK_EQUAL(echo.ending(), "complete");
  CAF_CHECK_EQUAL(echo.bytes.size(), data.size());
  CAF_CHECK_EQUAL(qt::first_difference(echo.bytes, data), data.size());
  conn.reset();
  stop_cleanly();
}

CAF_TEST(fifty connections echo at the same time) {
  constexpr size_t connections = 50;
  constexpr size_t rounds = 10;
  auto port = start_echo();
  if (port == 0)
    return;
  auto conns = connect_clients(port, connections);
  if (conns.size() < connections)
    return;
  // Each round puts a distinct message in flight on every connection
  // before reading any echo back.
  auto message = [](size_t conn, size_t round) {
    return "connection " + std::to_string(conn) + " round "
           + std::to_string(round) + ": "
           + qt::pattern(conn * 7919 + round * 104729, 100 + conn * 13);
  };
  size_t good = 0;
  for (size_t round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < connections; ++i) {
      if (!qt::send_all(conns[i].get(), message(i, round))) {
        CAF_ERROR("connection " << i << " round " << round
                                << ": send failed: " << std::strerror(errno));
        return;
      }
    }
    for (size_t i = 0; i < connections; ++i) {
      auto expected = message(i, round);
      auto echo = qt::read_exactly(conns[i].get(), expected.size());
      if (echo.bytes == expected) {
        ++good;
        continue;
      }
      CAF_ERROR("connection " << i << " round " << round << ": "
                              << echo.ending() << " after " << echo.bytes.size()
                              << " of " << expected.size() << " bytes, first "
                              << "difference at "
                              << qt::first_difference(echo.bytes, expected));
    }
  }
  CAF_CHECK_EQUAL(good, connections * rounds);
  conns.clear();
  stop_cleanly();
}

CAF_TEST_FIXTURE_SCOPE_END()
