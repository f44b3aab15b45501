#define CAF_SUITE actors.options

// The table of option rules (actors/options.hpp) against the options the
// server declares, and the pieces of the config file check that need no
// process: duration parsing without CAF's wrap-around, and where the INI
// parser's entries and errors are.

#include "actors/options.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "caf/test/unit_test.hpp"

#include "actors/config_file.hpp"
#include "actors/server.hpp"

using namespace quiesce;
using namespace std::chrono_literals;

CAF_TEST(every option the server declares has a rule) {
  // A new option (of quiesce, of a protocol, of a newer CAF) fails here
  // until the table says what values it takes.
  auto names = server_option_names();
  CAF_REQUIRE_GREATER(names.size(), 50u);
  for (auto expected : {"port", "http.max-body", "scheduler.max-threads",
                        "middleman.max-consecutive-reads", "logger.verbosity"})
    CAF_CHECK(std::find(names.begin(), names.end(), expected) != names.end());
  for (auto& name : names)
    if (options::find_rule(name) == nullptr)
      CAF_ERROR("no rule for option " << name);
}

CAF_TEST(every rule is for an option the server declares) {
  auto names = server_option_names();
  for (auto& x : options::rules())
    if (std::find(names.begin(), names.end(), x.name) == names.end())
      CAF_ERROR("a rule for " << x.name << ", which is no option");
  // One rule each.
  for (auto& x : options::rules())
    CAF_CHECK_EQUAL(options::find_rule(x.name), &x);
}

CAF_TEST(every checked rule says what it allows) {
  for (auto& x : options::rules()) {
    CAF_CHECK(!x.text.empty());
    if (x.kind == options::rule_kind::check)
      CAF_CHECK(static_cast<bool>(x.accepts));
  }
}

CAF_TEST(durations are parsed without wrapping around) {
  caf::timespan d;
  CAF_CHECK(options::parse_duration("5s", d) && d == 5s);
  CAF_CHECK(options::parse_duration("250ms", d) && d == 250ms);
  CAF_CHECK(options::parse_duration("2min", d) && d == 2min);
  CAF_CHECK(options::parse_duration("-1s", d) && d == -1s);
  CAF_CHECK(options::parse_duration("+3us", d) && d == 3us);
  CAF_CHECK(options::parse_duration("7ns", d) && d == 7ns);
  CAF_CHECK(options::parse_duration("2562047h", d) && d == 2562047h);
  // One more hour does not fit in a timespan; CAF's parser wraps these.
  CAF_CHECK(!options::parse_duration("2562048h", d));
  CAF_CHECK(!options::parse_duration("1000000000h", d));
  CAF_CHECK(!options::parse_duration("99999999999999999999999ns", d));
  CAF_CHECK(!options::parse_duration("5", d));
  CAF_CHECK(!options::parse_duration("s", d));
  CAF_CHECK(!options::parse_duration("5d", d));
  CAF_CHECK(!options::parse_duration("", d));
}

CAF_TEST(config text entries carry their line and their text) {
  auto res = parse_config_text("\n; comment\n[global]\nport = 8080 ; x\n"
                               "drain-timeout=1000000000h\n"
                               "stream {\n  max-batch-delay = 5ms\n}\n"
                               "[scheduler]\n  max-threads = 4\n"
                               "[http]\nmax-body = {a = 1}\n");
  CAF_REQUIRE(res.ok);
  CAF_REQUIRE_EQUAL(res.entries.size(), 5u);
  auto& port = res.entries[0];
  CAF_CHECK_EQUAL(port.category, "global");
  CAF_CHECK_EQUAL(port.key, "port");
  CAF_CHECK_EQUAL(port.line, 4);
  CAF_CHECK_EQUAL(port.raw, "8080");
  CAF_CHECK_EQUAL(res.entries[1].raw, "1000000000h");
  CAF_CHECK_EQUAL(res.entries[1].line, 5);
  // A map in the global section is a section of its own...
  auto& delay = res.entries[2];
  CAF_CHECK_EQUAL(delay.category, "stream");
  CAF_CHECK_EQUAL(delay.key, "max-batch-delay");
  CAF_CHECK_EQUAL(delay.line, 7);
  CAF_CHECK_EQUAL(delay.raw, "5ms");
  CAF_CHECK_EQUAL(res.entries[3].category, "scheduler");
  CAF_CHECK_EQUAL(res.entries[3].line, 10);
  // ... elsewhere it is one entry, with the map as its value.
  auto& body = res.entries[4];
  CAF_CHECK_EQUAL(body.category, "http");
  CAF_CHECK_EQUAL(body.key, "max-body");
  CAF_CHECK(caf::holds_alternative<caf::config_value::dictionary>(body.value));
  CAF_CHECK_EQUAL(body.line, 12);
}

CAF_TEST(config text durations too large are parsed as zero and kept as text) {
  // CAF's parser would multiply 1000000000 by an hour in nanoseconds:
  // signed overflow. The parser gets zeros; the entry keeps what was
  // written, for the rules.
  auto res
    = parse_config_text("[global]\nhost = \"1000000000h\" ; 9999999999999h\n"
                        "drain-timeout = 1000000000h\n"
                        "[x]\ny = [5s, -99999999999h]\n");
  CAF_REQUIRE(res.ok);
  CAF_CHECK(res.overflow);
  CAF_CHECK_EQUAL(res.overflow_line, 3);
  CAF_CHECK_EQUAL(res.overflow_column, 17);
  CAF_REQUIRE_EQUAL(res.entries.size(), 3u);
  // Not in a string.
  CAF_CHECK_EQUAL(res.entries[0].raw, "\"1000000000h\"");
  auto& drain = res.entries[1];
  CAF_CHECK_EQUAL(drain.raw, "1000000000h");
  auto value = caf::get_if<caf::timespan>(&drain.value);
  CAF_REQUIRE(value);
  CAF_CHECK_EQUAL(value->count(), 0);
  CAF_CHECK(options::duration_overflows(drain.raw));
  CAF_CHECK(!options::duration_overflows("2562047h"));
  CAF_CHECK(!options::duration_overflows("5x"));
}

CAF_TEST(config text syntax errors carry their line and column) {
  auto res = parse_config_text("[global]\n\nport = \"x\n");
  CAF_CHECK(!res.ok);
  CAF_CHECK_EQUAL(res.line, 3);
  CAF_CHECK_EQUAL(res.column, 10);
  res = parse_config_text("[global]\nport = 1.5s\n");
  CAF_CHECK(!res.ok);
  CAF_CHECK_EQUAL(res.line, 2);
  CAF_CHECK_EQUAL(res.error, "fractional timespan");
}

CAF_TEST(config text syntax errors show an unexpected byte readably) {
  // A CR (a file with Windows line endings), a NUL, a byte of a UTF-8
  // character (a key may not have one, a BOM is three of them): never the
  // raw byte on standard error.
  auto res = parse_config_text("[global]\r\nport = 0\r\n");
  CAF_CHECK(!res.ok);
  CAF_CHECK_EQUAL(res.line, 1);
  CAF_CHECK_EQUAL(res.column, 9);
  CAF_CHECK_EQUAL(res.error, "unexpected carriage return (CR): lines must "
                             "end in LF alone");
  res = parse_config_text(std::string{"port=0\0\n", 8});
  CAF_CHECK_EQUAL(res.error, "unexpected byte 0x00");
  res = parse_config_text("p\xc3\xb6rt=1\n");
  CAF_CHECK_EQUAL(res.column, 2);
  CAF_CHECK_EQUAL(res.error, "unexpected byte 0xC3 (outside strings and "
                             "comments the file is ASCII)");
  res = parse_config_text("\xef\xbb\xbfport=0\n");
  CAF_CHECK_EQUAL(res.error, "unexpected byte 0xEF (outside strings and "
                             "comments the file is ASCII)");
}
