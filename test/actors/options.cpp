#define CAF_SUITE actors.options

// The table of option rules (quiesce/options.hpp) against the options the
// server declares, and the pieces of the config file check that need no
// process: duration parsing without CAF's wrap-around, and where the INI
// parser's entries and errors are.

#include "quiesce/options.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "caf/config_option_adder.hpp"
#include "caf/config_option_set.hpp"
#include "caf/test/unit_test.hpp"

#include "quiesce/server.hpp"

#include "actors/config_file.hpp"
#include "app/protocols.hpp"

using namespace quiesce;
using namespace std::chrono_literals;

namespace {

/// The binary's protocols (echo, http): the server under test declares
/// their options, and their rules join the table.
const bool protocols_added = (app::add_protocols(), true);

/// Options of each kind of number, under the names of the table's rules
/// where there is one (`test.offset` has none).
caf::config_option_set number_options() {
  caf::config_option_set opts;
  caf::config_option_adder{opts, "global"}
    .add<uint16_t>("port", "")
    .add<caf::timespan>("drain-timeout", "")
    .add<std::string>("host", "");
  caf::config_option_adder{opts, "http"}.add<size_t>("max-body", "");
  caf::config_option_adder{opts, "middleman"}.add<size_t>("workers", "");
  caf::config_option_adder{opts, "test"}.add<int32_t>("offset", "");
  return opts;
}

/// What `judge` says of option `name` of `opts` given `raw` on the command
/// line (the value as CAF would parse it does not matter to the text).
std::string judged(const caf::config_option_set& opts, const char* name,
                   std::string_view raw, caf::config_value value) {
  auto* opt = opts.qualified_name_lookup(name);
  CAF_REQUIRE(opt != nullptr);
  return options::judge(*opt, value, raw, options::origin::command_line).text;
}

} // namespace

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

CAF_TEST(integers are plain decimal) {
  CAF_CHECK(options::plain_decimal("0", false));
  CAF_CHECK(options::plain_decimal("8080", false));
  CAF_CHECK(options::plain_decimal("18446744073709551616", false));
  CAF_CHECK(options::plain_decimal("-5", true));
  CAF_CHECK(options::plain_decimal("-0", true));
  // CAF 0.17 reads these as octal, hexadecimal or binary.
  for (auto text : {"010", "00", "0x10", "0X1f", "0b1", "08080"})
    CAF_CHECK(!options::plain_decimal(text, true));
  // A sign (but a minus where allowed), whitespace, anything else.
  for (auto text : {"+8", "-5", " 8", "8 ", "", "-", "1e3", "1.0", "8a"})
    CAF_CHECK(!options::plain_decimal(text, false));
  CAF_CHECK(!options::plain_decimal("--5", true));
  CAF_CHECK(!options::plain_decimal("-05", true));
}

CAF_TEST(an integer option judges the text of its value first) {
  auto opts = number_options();
  const std::string decimal
    = "must be a decimal integer: digits only, no sign, no leading zero";
  // CAF's parse of each: 8, 16, a failure, 80, 80.
  for (auto raw : {"010", "0x10", "08080", "+80", " 80", "-1"})
    CAF_CHECK_EQUAL(judged(opts, "global.port", raw, caf::config_value{80}),
                    decimal);
  CAF_CHECK_EQUAL(judged(opts, "global.port", "80", caf::config_value{80}), "");
  CAF_CHECK_EQUAL(judged(opts, "global.port", "0", caf::config_value{0}), "");
  // The text before the range: 010 is not judged as 8 or as 10.
  CAF_CHECK_EQUAL(judged(opts, "http.max-body", "010", caf::config_value{8}),
                  decimal);
  CAF_CHECK_EQUAL(
    judged(opts, "http.max-body", "2000000000", caf::config_value{2000000000}),
    "must be an integer from 0 to 1073741824");
  // No rule: the text alone. A signed type takes a minus.
  CAF_CHECK_EQUAL(judged(opts, "test.offset", "-5", caf::config_value{-5}), "");
  CAF_CHECK_EQUAL(judged(opts, "test.offset", "-05", caf::config_value{-5}),
                  "must be a decimal integer: digits and a '-' if negative, "
                  "no leading zero");
  // An option refused whatever its value says so, not how it is written.
  CAF_CHECK_EQUAL(
    judged(opts, "middleman.workers", "010", caf::config_value{8}),
    "quiesce's only CAF network (BASP) connections are its own control "
    "plane between master and workers, set up by quiesce on loopback");
  // Unknown text (a value from elsewhere) and other types pass the text.
  CAF_CHECK_EQUAL(judged(opts, "global.port", "", caf::config_value{80}), "");
  CAF_CHECK_EQUAL(
    judged(opts, "global.host", "010", caf::config_value{std::string{"010"}}),
    "");
}

CAF_TEST(a duration with a leading zero is refused) {
  // CAF reads the count of 010ms as octal: 8ms.
  auto opts = number_options();
  const std::string leading_zero
    = "must be a duration whose count has no leading zero (10ms, not 010ms)";
  for (auto raw : {"010ms", "08ms", "00s", "-010s", "+010s"})
    CAF_CHECK_EQUAL(judged(opts, "global.drain-timeout", raw,
                           caf::config_value{caf::timespan{8ms}}),
                    leading_zero);
  CAF_CHECK_EQUAL(judged(opts, "global.drain-timeout", "10ms",
                         caf::config_value{caf::timespan{10ms}}),
                  "");
  CAF_CHECK_EQUAL(judged(opts, "global.drain-timeout", "0s",
                         caf::config_value{caf::timespan{0}}),
                  "must be a duration greater than 0s and at most 24h");
}

CAF_TEST(the command line numbers are checked before CAF parses them) {
  auto opts = number_options();
  using args = std::vector<std::string>;
  CAF_CHECK_EQUAL(options::check_numbers(opts, args{"--port=010"}),
                  "bad value in '--port=010' (must be a decimal integer: "
                  "digits only, no sign, no leading zero)");
  CAF_CHECK_EQUAL(
    options::check_numbers(opts, args{"--port=80", "--http.max-body=0x10"}),
    "bad value in '--http.max-body=0x10' (must be a decimal integer: digits "
    "only, no sign, no leading zero)");
  CAF_CHECK_EQUAL(options::check_numbers(opts, args{"--drain-timeout=010ms"}),
                  "bad value in '--drain-timeout=010ms' (must be a duration "
                  "whose count has no leading zero (10ms, not 010ms))");
  CAF_CHECK_EQUAL(
    options::check_numbers(opts, args{"--drain-timeout=1000000000h"}),
    "bad value in '--drain-timeout=1000000000h' (must be a duration greater "
    "than 0s and at most 24h)");
  // Ranges are judged once CAF has the values; refused options too; the
  // remainder (after a word without dashes) is not an option.
  CAF_CHECK_EQUAL(options::check_numbers(
                    opts, args{"--port=80", "--http.max-body=2000000000",
                               "--middleman.workers=010", "x", "--port=010"}),
                  "");
}

CAF_TEST(config text numbers with a leading zero are parsed as zero) {
  // CAF's parser reads 010 as octal and fails on 08080 with an error about
  // the next character: the parser gets zeros, the entry keeps its text.
  auto res = parse_config_text("[global]\nport = 08080\nhost = \"010\"\n"
                               "drain-timeout = 010ms ; 010\n"
                               "[x]\ny = [1, 09]\nz = 0x10\n");
  CAF_REQUIRE(res.ok);
  CAF_CHECK(res.leading_zero);
  CAF_CHECK_EQUAL(res.leading_zero_line, 2);
  CAF_CHECK_EQUAL(res.leading_zero_column, 8);
  CAF_CHECK(!res.overflow);
  CAF_REQUIRE_EQUAL(res.entries.size(), 5u);
  CAF_CHECK_EQUAL(res.entries[0].raw, "08080");
  CAF_CHECK(res.entries[0].value == caf::config_value{0});
  // Not in a string.
  CAF_CHECK(res.entries[1].value == caf::config_value{std::string{"010"}});
  CAF_CHECK_EQUAL(res.entries[2].raw, "010ms");
  CAF_CHECK(res.entries[2].value == caf::config_value{caf::timespan{0}});
  CAF_CHECK(res.entries[3].value
            == caf::config_value{caf::config_value::list{
              caf::config_value{1}, caf::config_value{0}}});
  // Hexadecimal parses as CAF reads it: the rules refuse its text.
  CAF_CHECK(res.entries[4].value == caf::config_value{16});
  CAF_CHECK_EQUAL(res.entries[4].raw, "0x10");
  res = parse_config_text("[global]\nport = 0\ndrain-timeout = 0s\n");
  CAF_REQUIRE(res.ok);
  CAF_CHECK(!res.leading_zero);
}

CAF_TEST(config text checks refuse integers that are not plain decimal) {
  auto opts = number_options();
  CAF_CHECK_EQUAL(check_config_file(opts, "f.ini", "[global]\nport=010\n"),
                  "bad value in f.ini line 2: port = 010 (must be a decimal "
                  "integer: digits only, no sign, no leading zero)");
  CAF_CHECK_EQUAL(check_config_file(opts, "f.ini", "[http]\nmax-body=0x10\n"),
                  "bad value in f.ini line 2: http.max-body = 0x10 (must be a "
                  "decimal integer: digits only, no sign, no leading zero)");
  CAF_CHECK_EQUAL(check_config_file(opts, "f.ini", "[global]\nport=80\n"), "");
  // In a list, where no rule sees the text: the place of the number.
  caf::config_option_adder{opts, "test"}.add<std::vector<size_t>>("ids", "");
  CAF_CHECK_EQUAL(check_config_file(opts, "f.ini", "[test]\nids=[1, 010]\n"),
                  "bad value in f.ini line 2 column 9 (a number with a leading "
                  "zero: numbers are decimal, without one)");
}
