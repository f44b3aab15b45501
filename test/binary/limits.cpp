#define CAF_SUITE binary.limits

#include <csignal>
#include <string>
#include <sys/socket.h>

#include "caf/test/unit_test.hpp"

#include "support/binary_fixture.hpp"

using namespace quiesce::test;

namespace {

struct fixture : binary_fixture {};

/// A round trip proves the server has accepted the connection.
void round_trip(int fd, const std::string& text) {
  CAF_REQUIRE(send_all(fd, text));
  CAF_REQUIRE_EQUAL(read_exactly(fd, text.size()).bytes, text);
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(limits_tests, fixture)

CAF_TEST(at max connections clients wait in the backlog until one ends) {
  auto port = start_echo({"--max-connections=2", "--log-level=debug"});
  CAF_REQUIRE_NOT_EQUAL(port, 0);
  auto a = connect_loopback(port);
  auto b = connect_loopback(port);
  CAF_REQUIRE(a.fd && b.fd);
  round_trip(a.fd.get(), "a");
  round_trip(b.fd.get(), "b");
  CAF_REQUIRE(server().wait_stderr("paused accepting"));
  CAF_REQUIRE(server().wait_stderr("opened", 2));
  // The kernel completes the handshake (backlog); the server does not accept.
  auto c = connect_loopback(port);
  CAF_REQUIRE(c.fd);
  CAF_REQUIRE(send_all(c.fd.get(), "c"));
  // Another round trip on b: the I/O thread has run since c arrived.
  round_trip(b.fd.get(), "b2");
  char byte;
  CAF_CHECK_LESS(::recv(c.fd.get(), &byte, 1, MSG_DONTWAIT), 0);
  CAF_CHECK_EQUAL(server().stderr_count("opened"), 2u);
  // One ends: accepting resumes and c is served, its early byte included.
  a.fd.reset();
  CAF_REQUIRE(server().wait_stderr("accepting again"));
  CAF_CHECK_EQUAL(read_exactly(c.fd.get(), 1).bytes, "c");
  CAF_CHECK(server().wait_stderr("opened", 3));
  CAF_REQUIRE(server().signal(SIGTERM));
  CAF_CHECK_EQUAL(read_until_eof(b.fd.get()).ending(), "clean EOF");
  CAF_CHECK_EQUAL(read_until_eof(c.fd.get()).ending(), "clean EOF");
  b.fd.reset();
  c.fd.reset();
  CAF_CHECK_EQUAL(server().wait_exit(), 0);
}

CAF_TEST(max connections above the open file limit is capped) {
  auto port = start_echo({"--max-connections=1000000000"});
  CAF_REQUIRE_NOT_EQUAL(port, 0);
  CAF_CHECK(server().wait_stderr("exceeds what the open-file limit allows"));
  CAF_REQUIRE(server().signal(SIGTERM));
  CAF_CHECK_EQUAL(server().wait_exit(), 0);
}

CAF_TEST_FIXTURE_SCOPE_END()
