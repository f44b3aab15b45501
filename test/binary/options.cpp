// Every option the binary declares (its own and CAF's, as `--long-help`
// lists them) at its boundaries: a value is either refused with exit 2 and
// a message naming the option, or the server starts, answers and stops
// cleanly. Never a crash (SIGFPE with `--scheduler.max-threads=0`), a
// server that never answers (`--middleman.max-consecutive-reads=0`) or a
// hang. Each run is bounded: a server that is not listening within 10 s,
// or does not answer or exit within 10 s, fails its case.

#define CAF_SUITE binary.options

#include "caf/test/unit_test.hpp"

#include <chrono>
#include <csignal>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "support/binary_fixture.hpp"

namespace qt = quiesce::test;

using namespace std::chrono_literals;

namespace {

/// The bound of each step of a case.
constexpr auto case_limit = std::chrono::milliseconds{10'000};

/// An option as `--long-help` lists it.
struct declared_option {
  std::string name;
  /// `uint64`, `timespan`, `atom`, `string`, `list of ...`; empty for a flag.
  std::string type;
};

/// The options of `--long-help` output, each once (the protocol options are
/// listed twice).
std::vector<declared_option> parse_long_help(const std::string& text) {
  std::vector<declared_option> result;
  std::set<std::string> seen;
  size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string::npos)
      eol = text.size();
    auto line = text.substr(pos, eol - pos);
    pos = eol + 1;
    auto start = line.find_first_not_of(' ');
    if (start == std::string::npos || line.compare(start, 2, "--") != 0)
      continue;
    auto end = line.find_first_of("= ", start);
    declared_option opt;
    opt.name = line.substr(start + 2, end - start - 2);
    if (end != std::string::npos && line[end] == '=') {
      auto open = line.find('<', end);
      auto close = line.find('>', open);
      if (open != std::string::npos && close != std::string::npos)
        opt.type = line.substr(open + 1, close - open - 1);
    }
    if (seen.insert(opt.name).second)
      result.push_back(opt);
  }
  return result;
}

bool is_integer_type(const std::string& type) {
  return type.rfind("uint", 0) == 0 || type.rfind("int", 0) == 0;
}

struct fixture : qt::binary_fixture {
  /// Runs an HTTP server with `--NAME=VALUE` and checks the outcome: exit 2
  /// naming the option, or listening, answering `GET /` and exit 0 on
  /// SIGTERM, each within `case_limit`. Returns what happened, for the log.
  std::string check_case(const std::string& name, const std::string& value) {
    auto arg = "--" + name + "=" + value;
    auto& srv = run({"--protocol=http", "--host=127.0.0.1", "--port=0",
                     "--log-level=debug", arg});
    auto port = srv.wait_listening(case_limit);
    if (!port) {
      auto code = srv.wait_exit(case_limit);
      if (code == qt::exit_timeout) {
        CAF_ERROR(arg << ": neither listening nor exited within 10 s");
        return "hang";
      }
      // A ready timeout shorter than a worker's start (50-90 ms) is a
      // valid value that a master cannot meet: exit 1, naming it.
      if (code == 1 && name == "workers-ready-timeout"
          && srv.stderr_text().find("(--workers-ready-timeout)")
               != std::string::npos)
        return "workers not ready in time";
      if (code != 2)
        CAF_ERROR(arg << ": " << qt::describe_exit(code));
      else if (srv.stderr_text().find("'" + arg + "'") == std::string::npos)
        CAF_ERROR(arg << ": exit 2 without naming it: " << srv.stderr_text());
      return "refused";
    }
    auto conn = qt::connect_loopback(*port);
    if (!conn.fd) {
      CAF_ERROR(arg << ": cannot connect");
      return "no connect";
    }
    auto ok = qt::send_all(conn.fd.get(),
                           "GET / HTTP/1.1\r\nHost: quiesce\r\n"
                           "Connection: close\r\n\r\n",
                           case_limit);
    auto resp = qt::read_until_eof(conn.fd.get(), case_limit);
    if (!ok || resp.bytes.rfind("HTTP/1.1 200 OK", 0) != 0)
      CAF_ERROR(arg << ": no answer (" << resp.ending() << ")");
    conn.fd.reset();
    // Once the connection is gone, so that the stop finds none (a drain
    // timeout of 1ns would rightly force one still open: exit 3).
    if (!srv.wait_stderr(" actor ended", 1, case_limit))
      CAF_ERROR(arg << ": the connection never ended");
    srv.signal(SIGTERM);
    auto code = srv.wait_exit(case_limit);
    if (code != 0)
      CAF_ERROR(arg << ": after SIGTERM: " << qt::describe_exit(code));
    return "served";
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(options_tests, fixture)

CAF_TEST(every numeric and duration option at its boundaries) {
  auto& help = run({"--long-help"});
  CAF_REQUIRE_EQUAL(help.wait_exit(), 0);
  auto declared = parse_long_help(help.stdout_text());
  // Not an empty sweep: CAF's options are there.
  CAF_REQUIRE_GREATER(declared.size(), 50u);
  size_t cases = 0;
  for (auto& opt : declared) {
    std::vector<std::string> values;
    if (opt.name == "port")
      continue; // every case sets --port=0 (binary.cli tests its range)
    if (is_integer_type(opt.type))
      values = {"0", "1", "9223372036854775807"};
    else if (opt.type == "timespan")
      values = {"0s", "1ns", "-1s", "2562047h", "1000000000h"};
    else
      continue;
    for (auto& value : values) {
      auto outcome = check_case(opt.name, value);
      CAF_MESSAGE("--" << opt.name << "=" << value << ": " << outcome);
      ++cases;
    }
  }
  CAF_MESSAGE(cases << " cases");
  CAF_CHECK_GREATER(cases, 60u);
}

CAF_TEST(the largest value each bound allows serves and one more is refused) {
  // The upper bounds of the rules (README: the option table), each taken
  // at its largest and just past it.
  const std::vector<std::tuple<std::string, std::string, std::string>> cases{
    {"scheduler.max-threads", "256", "257"},
    {"middleman.max-consecutive-reads", "1000", "1001"},
    {"work-stealing.aggressive-poll-attempts", "10000", "10001"},
    {"work-stealing.moderate-poll-attempts", "10000", "10001"},
    {"work-stealing.moderate-sleep-duration", "10ms", "10001us"},
    {"work-stealing.relaxed-sleep-duration", "10s", "10001ms"},
    {"http.max-body", "1073741824", "1073741825"},
    {"drain-timeout", "24h", "1441min"},
    {"idle-timeout", "24h", "86401s"},
    {"workers-ready-timeout", "24h", "1441min"},
    {"http.header-timeout", "24h", "86400000000001ns"},
    {"http.body-timeout", "24h", "86400001ms"},
  };
  for (auto& [name, largest, over] : cases) {
    CAF_CHECK_EQUAL(check_case(name, largest), "served");
    CAF_CHECK_EQUAL(check_case(name, over), "refused");
  }
  // And the lower bound of the one rule whose least value is not 0 or 1.
  CAF_CHECK_EQUAL(check_case("work-stealing.relaxed-sleep-duration", "1ms"),
                  "served");
  CAF_CHECK_EQUAL(check_case("work-stealing.relaxed-sleep-duration", "999us"),
                  "refused");
}

CAF_TEST(every integer option takes plain decimal only) {
  // CAF reads 010 as octal 8, 0x1 as 1 and takes a sign; each is refused,
  // naming the option, for every integer option (port included: refused
  // before anything listens).
  auto& help = run({"--long-help"});
  CAF_REQUIRE_EQUAL(help.wait_exit(), 0);
  size_t cases = 0;
  for (auto& opt : parse_long_help(help.stdout_text())) {
    if (!is_integer_type(opt.type))
      continue;
    for (auto value : {"010", "0x1", "+1"}) {
      CAF_CHECK_EQUAL(check_case(opt.name, value), "refused");
      ++cases;
    }
  }
  CAF_CHECK_GREATER(cases, 30u);
}

CAF_TEST(atom options take only the values that work) {
  CAF_CHECK_EQUAL(check_case("scheduler.policy", "stealing"), "served");
  CAF_CHECK_EQUAL(check_case("scheduler.policy", "sharing"), "served");
  // CAF's test coordinator runs nothing by itself: a server that hangs.
  CAF_CHECK_EQUAL(check_case("scheduler.policy", "testing"), "refused");
  CAF_CHECK_EQUAL(check_case("scheduler.policy", "nonsense"), "refused");
  CAF_CHECK_EQUAL(check_case("middleman.network-backend", "default"), "served");
  // CAF's fake multiplexer (abort), and asio (not built in).
  CAF_CHECK_EQUAL(check_case("middleman.network-backend", "testing"),
                  "refused");
  CAF_CHECK_EQUAL(check_case("middleman.network-backend", "asio"), "refused");
}

CAF_TEST(options quiesce does not support are refused with the reason) {
  const std::vector<std::pair<std::string, std::string>> cases{
    {"--middleman.manual-multiplexing", "stops CAF's I/O thread"},
    {"--middleman.enable-automatic-connections", "second listening port"},
    {"--logger.verbosity=trace", "logger is compiled out"},
    {"--logger.file-name=x.log", "logger is compiled out"},
    {"--openssl.certificate=cert.pem", "plain TCP"},
    {"--stream.max-batch-delay=1ms", "no CAF streams"},
    {"--scheduler.enable-profiling", "profiler"},
  };
  for (auto& [arg, reason] : cases) {
    auto& srv = run({"--port=0", arg});
    CAF_CHECK_EQUAL(qt::describe_exit(srv.wait_exit()), qt::describe_exit(2));
    auto err = srv.stderr_text();
    CAF_CHECK_NOT_EQUAL(err.find("unsupported option in '" + arg + "'"),
                        std::string::npos);
    CAF_CHECK_NOT_EQUAL(err.find(reason), std::string::npos);
  }
}

CAF_TEST_FIXTURE_SCOPE_END()
