// The command line of the built binary: --help, usage errors (exit 2) with
// the ranges of its options, the forms of --host, and a port that is taken
// (exit 1).

#define CAF_SUITE binary.cli

#include "caf/test/unit_test.hpp"

#include <chrono>
#include <csignal>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>

#include "support/binary_fixture.hpp"
#include "support/temp_dir.hpp"

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

/// Runs the binary with `args` and expects a usage error: exit 2 (within
/// `limit`) and a message on standard error that starts with `quiesce: `,
/// names `what` and points to --help.
void expect_usage_error(binary_fixture& fix, std::vector<std::string> args,
                        const std::string& what,
                        std::chrono::milliseconds limit
                        = quiesce::test::default_timeout) {
  auto& proc = fix.run(std::move(args));
  CAF_MESSAGE("`" << proc.command() << "`");
  auto code = proc.wait_exit(limit);
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
  CAF_CHECK(contains(line_with(out, "--http.body-timeout="), "(default: 60s)"));
}

CAF_TEST(long help and the config dump list each option once) {
  // --help adds the protocols' options (CAF leaves them to --long-help);
  // --long-help and --dump-config have them already.
  auto& help = run({"--long-help"});
  CAF_CHECK_EQUAL(describe_exit(help.wait_exit()), describe_exit(0));
  CAF_CHECK_EQUAL(
    quiesce::test::count_occurrences(help.stdout_text(), "--http.max-body="),
    1u);
  auto& dump = run({"--dump-config"});
  CAF_CHECK_EQUAL(describe_exit(dump.wait_exit()), describe_exit(0));
  CAF_CHECK(!contains(dump.stdout_text(), "protocol options"));
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

CAF_TEST(a negative or too long body timeout is a usage error) {
  expect_usage_error(*this, {"--port=0", "--http.body-timeout=-1s"},
                     "'--http.body-timeout=-1s' (must be a duration from 0s "
                     "to 24h; 0s: no limit)");
  expect_usage_error(*this, {"--port=0", "--http.body-timeout=25h"},
                     "'--http.body-timeout=25h'");
}

CAF_TEST(a header timeout that is no duration is a usage error) {
  expect_usage_error(*this, {"--port=0", "--http.header-timeout=soon"},
                     "http.header-timeout");
}

CAF_TEST(a port out of range is a usage error) {
  expect_usage_error(*this, {"--protocol=echo", "--port=70000"}, "port");
}

CAF_TEST(scheduler max threads zero is a usage error) {
  // CAF divides by it (SIGFPE, nothing on standard error).
  expect_usage_error(*this, {"--port=0", "--scheduler.max-threads=0"},
                     "'--scheduler.max-threads=0' (must be an integer from 1 "
                     "to 256)");
}

CAF_TEST(middleman max consecutive reads zero is a usage error) {
  // CAF would never read a socket: a server that never answers.
  expect_usage_error(*this, {"--port=0", "--middleman.max-consecutive-reads=0"},
                     "'--middleman.max-consecutive-reads=0' (must be an "
                     "integer from 1 to 1000)");
}

CAF_TEST(a duration that overflows is a usage error not a wrapped value) {
  // CAF's parser makes about 801h of 1000000000h, without a word.
  expect_usage_error(*this, {"--port=0", "--drain-timeout=1000000000h"},
                     "'--drain-timeout=1000000000h' (must be a duration "
                     "greater than 0s and at most 24h)");
  // Close to the largest timespan: adding it to the clock overflows.
  expect_usage_error(*this, {"--port=0", "--drain-timeout=2562047h"},
                     "'--drain-timeout=2562047h'");
  expect_usage_error(*this, {"--port=0", "--idle-timeout=100000h"},
                     "'--idle-timeout=100000h' (must be a duration from 0s to "
                     "24h; 0s: never)");
  expect_usage_error(*this, {"--port=0", "--http.header-timeout=25h"},
                     "'--http.header-timeout=25h'");
}

CAF_TEST(timeouts of a day are accepted) {
  auto port
    = start_http({"--drain-timeout=24h", "--idle-timeout=24h",
                  "--http.header-timeout=24h", "--http.body-timeout=24h"});
  if (port == 0)
    return;
  auto conn = connect_client(port);
  CAF_REQUIRE(conn);
  CAF_REQUIRE(
    quiesce::test::send_all(conn.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = quiesce::test::read_through(conn.get(), "\r\n\r\n");
  CAF_CHECK_EQUAL(head.bytes.substr(0, 15), "HTTP/1.1 200 OK");
  // An idle keep-alive connection closes at once at the stop.
  CAF_REQUIRE(server().signal(SIGTERM));
  CAF_CHECK_NOT_EQUAL(quiesce::test::read_until_eof(conn.get()).ending(),
                      "timeout");
  expect_exit(0);
}

CAF_TEST(a body limit over 1 GiB is a usage error) {
  expect_usage_error(*this, {"--port=0", "--http.max-body=1073741825"},
                     "'--http.max-body=1073741825' (must be an integer from 0 "
                     "to 1073741824)");
}

CAF_TEST(integers are plain decimal or a usage error) {
  // CAF 0.17 read 010 as octal (a server on port 8), 0x10 as hexadecimal,
  // took a sign and refused 08080 only as a "(trailing_character)". A usage
  // error comes at once: a server that runs instead fails at the limit.
  const std::string decimal
    = "(must be a decimal integer: digits only, no sign, no leading zero)";
  const std::vector<std::vector<std::string>> cases = {
    {"--port=010"},
    {"--port=0x10"},
    {"--port=08080"},
    {"--port=+80"},
    {"--port=0", "--http.max-body=010"},
    {"--port=0", "--max-connections=0x10"},
    {"--port=0", "--scheduler.max-threads=04"},
  };
  for (auto& args : cases)
    expect_usage_error(*this, args,
                       "bad value in '" + args.back() + "' " + decimal,
                       std::chrono::seconds(10));
  // The count of a duration too: CAF read 010ms as 8ms.
  expect_usage_error(*this, {"--port=0", "--drain-timeout=010ms"},
                     "bad value in '--drain-timeout=010ms' (must be a "
                     "duration whose count has no leading zero",
                     std::chrono::seconds(10));
}

CAF_TEST(an empty or malformed host is a usage error naming it) {
  for (auto host : {"[::1", "[127.0.0.1]", "[]", "::1]", "[::1]:80", ""})
    expect_usage_error(*this, {"--port=0", std::string{"--host="} + host},
                       std::string{"'--host="} + host + "'");
}

CAF_TEST(a host with a port
         or a colon that is no ipv6 address is a usage error) {
  // No host name has a colon: `--host=127.0.0.1:80` is a usage error
  // naming it, not a failed name lookup (exit 1) of "[127.0.0.1:80]".
  for (auto host : {"127.0.0.1:80", "localhost:8080", "http://x", "::1::2"})
    expect_usage_error(*this, {"--port=0", std::string{"--host="} + host},
                       std::string{"bad value in '--host="} + host + "'");
}

CAF_TEST(an ipv6 host in brackets is served over ipv6) {
  // The form the server prints in its `listening on` line.
  for (auto host : {"[::1]", "::1"}) {
    auto& srv
      = run({"--protocol=echo", std::string{"--host="} + host, "--port=0"});
    auto port = srv.wait_listening();
    CAF_REQUIRE(port);
    CAF_CHECK_EQUAL(srv.stdout_text().substr(0, 19), "listening on [::1]:");
    auto conn = quiesce::test::connect_loopback_v6(*port);
    CAF_REQUIRE(conn.fd);
    CAF_REQUIRE(quiesce::test::send_all(conn.fd.get(), "over ipv6"));
    CAF_CHECK_EQUAL(quiesce::test::read_exactly(conn.fd.get(), 9).bytes,
                    "over ipv6");
    CAF_REQUIRE(srv.signal(SIGTERM));
    CAF_CHECK_EQUAL(quiesce::test::read_until_eof(conn.fd.get()).ending(),
                    "clean EOF");
    CAF_CHECK_EQUAL(describe_exit(srv.wait_exit()), describe_exit(0));
  }
}

CAF_TEST(help works even with a broken config file) {
  quiesce::test::temp_dir dir;
  CAF_REQUIRE(dir.ok());
  CAF_REQUIRE(quiesce::test::write_file(dir.file("caf-application.ini"),
                                        "[global\nport=-1\n"));
  quiesce::test::process_options opts;
  opts.working_directory = dir.path();
  auto& proc = run({"--help"}, opts);
  CAF_CHECK_EQUAL(describe_exit(proc.wait_exit()), describe_exit(0));
  CAF_CHECK(
    contains(line_with(proc.stdout_text(), "--port="), "(default: 8080)"));
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
