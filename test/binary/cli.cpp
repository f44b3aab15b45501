// The command line of the built binary: --help, usage errors (exit 2) and a
// port that is taken (exit 1).

#define CAF_SUITE binary.cli

#include "caf/test/unit_test.hpp"

#include <netinet/in.h>
#include <string>
#include <sys/socket.h>

#include "support/binary_fixture.hpp"

using quiesce::test::binary_fixture;
using quiesce::test::describe_exit;
using quiesce::test::unique_fd;

namespace {

/// The line of `text` that contains `needle`, or an empty string.
std::string line_with(const std::string& text, const std::string& needle) {
  auto pos = text.find(needle);
  if (pos == std::string::npos)
    return {};
  auto begin = text.rfind('\n', pos);
  begin = begin == std::string::npos ? 0 : begin + 1;
  auto end = text.find('\n', pos);
  return text.substr(begin, end == std::string::npos ? end : end - begin);
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

/// Runs the binary with `args` and expects a usage error: exit 2 and a
/// message on standard error that starts with `quiesce: `, names `what` and
/// points to --help.
void expect_usage_error(binary_fixture& fix, std::vector<std::string> args,
                        const std::string& what) {
  auto& proc = fix.run(std::move(args));
  CAF_MESSAGE("`" << proc.command() << "`");
  auto code = proc.wait_exit();
  CAF_CHECK_EQUAL(describe_exit(code), describe_exit(2));
  auto err = proc.stderr_text();
  CAF_CHECK_EQUAL(err.substr(0, 9), "quiesce: ");
  CAF_CHECK(contains(err, what));
  CAF_CHECK(contains(err, "(see --help)"));
  CAF_CHECK_EQUAL(proc.stdout_text(), "");
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(cli_tests, binary_fixture)

CAF_TEST(help lists every option with its default) {
  auto& proc = run({"--help"});
  CAF_CHECK_EQUAL(describe_exit(proc.wait_exit()), describe_exit(0));
  auto out = proc.stdout_text();
  CAF_CHECK(contains(line_with(out, "--host="), "(default: 127.0.0.1)"));
  CAF_CHECK(contains(line_with(out, "--port="), "(default: 8080)"));
  CAF_CHECK(contains(line_with(out, "--protocol="), "(default: http)"));
  CAF_CHECK(contains(line_with(out, "--drain-timeout="), "(default: 5s)"));
  CAF_CHECK(contains(line_with(out, "--protocol="), "echo"));
  CAF_CHECK(contains(line_with(out, "--max-connections="), "(default: 0)"));
  CAF_CHECK(contains(line_with(out, "--log-level="), "(default: info)"));
  CAF_CHECK(contains(line_with(out, "--idle-timeout="), "(default: 60s)"));
  CAF_CHECK(
    contains(line_with(out, "--http.header-timeout="), "(default: 10s)"));
}

CAF_TEST(an unknown option is a usage error) {
  expect_usage_error(*this, {"--protocol=echo", "--port=0", "--bogus=1"},
                     "--bogus");
}

CAF_TEST(an unknown protocol is a usage error) {
  expect_usage_error(*this, {"--protocol=nope", "--port=0"}, "nope");
}

CAF_TEST(a negative drain timeout is a usage error) {
  expect_usage_error(*this,
                     {"--protocol=echo", "--port=0", "--drain-timeout=-1s"},
                     "drain-timeout");
}

CAF_TEST(a zero drain timeout is a usage error) {
  expect_usage_error(*this,
                     {"--protocol=echo", "--port=0", "--drain-timeout=0s"},
                     "drain-timeout");
}

CAF_TEST(a drain timeout that is no duration is a usage error) {
  expect_usage_error(*this,
                     {"--protocol=echo", "--port=0", "--drain-timeout=banana"},
                     "drain-timeout");
}

CAF_TEST(a negative idle timeout is a usage error) {
  expect_usage_error(*this,
                     {"--protocol=echo", "--port=0", "--idle-timeout=-1s"},
                     "idle-timeout");
}

CAF_TEST(a negative header timeout is a usage error) {
  expect_usage_error(*this, {"--port=0", "--http.header-timeout=-1s"},
                     "http.header-timeout");
}

CAF_TEST(a header timeout that is no duration is a usage error) {
  expect_usage_error(*this, {"--port=0", "--http.header-timeout=soon"},
                     "http.header-timeout");
}

CAF_TEST(a port out of range is a usage error) {
  expect_usage_error(*this, {"--protocol=echo", "--port=70000"}, "port");
}

CAF_TEST(a port in use means the server cannot run) {
  // A listening socket of our own holds the port.
  unique_fd holder{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  CAF_REQUIRE(holder);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  socklen_t len = sizeof(addr);
  CAF_REQUIRE_EQUAL(::bind(holder.get(), sa, len), 0);
  CAF_REQUIRE_EQUAL(::listen(holder.get(), 1), 0);
  CAF_REQUIRE_EQUAL(::getsockname(holder.get(), sa, &len), 0);
  auto port = std::to_string(ntohs(addr.sin_port));
  auto& proc = run({"--protocol=echo", "--host=127.0.0.1", "--port=" + port});
  CAF_CHECK_EQUAL(describe_exit(proc.wait_exit()), describe_exit(1));
  auto err = proc.stderr_text();
  CAF_CHECK(contains(err, "127.0.0.1:" + port));
  CAF_CHECK(contains(err, "Address already in use"));
  CAF_CHECK_EQUAL(proc.stdout_text(), "");
}

CAF_TEST_FIXTURE_SCOPE_END()
