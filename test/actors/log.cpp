// The log line formatter (quiesce/log.hpp): the text format as it always
// was, and `--log-format=json`: one JSON object per line whose strings are
// escaped (quotes, backslashes, control characters, invalid UTF-8) and
// whose fields are JSON numbers. Every JSON line is read back with a strict
// reader (support/json.hpp).

#define CAF_SUITE actors.log

#include "caf/test/unit_test.hpp"

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "quiesce/log.hpp"

#include "support/json.hpp"

namespace ql = quiesce::log;
namespace qt = quiesce::test;

namespace {

/// 2026-11-27T22:04:06.123Z.
std::chrono::system_clock::time_point sample_time() {
  using namespace std::chrono;
  return system_clock::time_point{seconds{1795817046} + milliseconds{123}};
}

ql::record sample(std::string_view message) {
  ql::record x;
  x.time = sample_time();
  x.lvl = ql::level::info;
  x.component = "supervisor";
  x.message = message;
  return x;
}

/// The JSON line for `x`, read back; fails the test if it is no object on
/// one line.
qt::json_object json_of(const ql::record& x) {
  auto line = ql::format_line(ql::format::json, x);
  CAF_CHECK_EQUAL(line.back(), '\n');
  CAF_CHECK_EQUAL(line.find('\n'), line.size() - 1);
  std::string error;
  auto obj = qt::parse_json_object(line, &error);
  if (!obj) {
    CAF_FAIL("not a JSON object (" << error << "): " << line);
  }
  return *obj;
}

/// The `message` member of the JSON line for a message `text`.
std::string message_back(std::string_view text) {
  auto obj = json_of(sample(text));
  return obj["message"].text;
}

/// The JSON line's text for a message `text`, as written.
std::string written(std::string_view text) {
  return ql::format_line(ql::format::json, sample(text));
}

} // namespace

CAF_TEST(the text format is unchanged) {
  auto x = sample("stopped: drained=3 forced=0 duration=3.8ms");
  x.fields = {{"drained", 3}, {"forced", 0}, {"duration_ms", 3.812}};
  auto line = ql::format_line(ql::format::text, x);
  CAF_CHECK_EQUAL(line, "2026-11-27T22:04:06.123Z info supervisor: stopped: "
                        "drained=3 forced=0 duration=3.8ms\n");
  x.worker = 2;
  x.lvl = ql::level::warning;
  line = ql::format_line(ql::format::text, x);
  CAF_CHECK_EQUAL(line, "2026-11-27T22:04:06.123Z warning worker 2 supervisor: "
                        "stopped: drained=3 forced=0 duration=3.8ms\n");
}

CAF_TEST(a json line has time level component and message) {
  auto line = ql::format_line(ql::format::json, sample("hello"));
  CAF_CHECK_EQUAL(line, "{\"time\":\"2026-11-27T22:04:06.123Z\",\"level\":"
                        "\"info\",\"component\":\"supervisor\",\"message\":"
                        "\"hello\"}\n");
  auto obj = json_of(sample("hello"));
  CAF_CHECK_EQUAL(obj.size(), 4u);
  CAF_CHECK_EQUAL(obj["time"].text, "2026-11-27T22:04:06.123Z");
  CAF_CHECK_EQUAL(obj["level"].text, "info");
  CAF_CHECK_EQUAL(obj["component"].text, "supervisor");
  CAF_CHECK_EQUAL(obj["message"].text, "hello");
  CAF_CHECK_EQUAL(obj.count("worker"), 0u);
}

CAF_TEST(a worker process line names the worker as a number) {
  auto x = sample("serving");
  x.worker = 7;
  x.lvl = ql::level::error;
  auto obj = json_of(x);
  CAF_CHECK(obj["worker"].type == qt::json_value::kind::number);
  CAF_CHECK_EQUAL(obj["worker"].text, "7");
  CAF_CHECK_EQUAL(obj["level"].text, "error");
}

CAF_TEST(fields are json numbers) {
  auto x = sample("stopped: drained=12 forced=1 duration=234.5ms");
  x.fields = {{"drained", uint32_t{12}}, {"forced", 1},
              {"duration_ms", 234.5},    {"open_at_stop", size_t{13}},
              {"negative", int64_t{-5}}, {"not_a_number", std::nan("")},
              {"infinite", HUGE_VAL}};
  auto obj = json_of(x);
  using kind = qt::json_value::kind;
  CAF_CHECK(obj["drained"].type == kind::number);
  CAF_CHECK_EQUAL(obj["drained"].text, "12");
  CAF_CHECK_EQUAL(obj["forced"].text, "1");
  CAF_CHECK(obj["duration_ms"].type == kind::number);
  CAF_CHECK_EQUAL(obj["duration_ms"].text, "234.500");
  CAF_CHECK_EQUAL(obj["open_at_stop"].text, "13");
  CAF_CHECK_EQUAL(obj["negative"].text, "-5");
  // JSON has no NaN or infinity: null.
  CAF_CHECK(obj["not_a_number"].type == kind::null);
  CAF_CHECK(obj["infinite"].type == kind::null);
  // The message says the same in words.
  CAF_CHECK_EQUAL(obj["message"].text,
                  "stopped: drained=12 forced=1 duration=234.5ms");
}

CAF_TEST(quotes backslashes and control characters are escaped) {
  CAF_CHECK_EQUAL(written("a\"b\\c"),
                  "{\"time\":\"2026-11-27T22:04:06.123Z\",\"level\":\"info\","
                  "\"component\":\"supervisor\",\"message\":\"a\\\"b\\\\c\"}"
                  "\n");
  CAF_CHECK_NOT_EQUAL(written("x\ny\r\tz\b\f").find("\"x\\ny\\r\\tz\\b\\f\""),
                      std::string::npos);
  std::string controls;
  for (int c = 0; c < 0x20; ++c)
    controls += static_cast<char>(c);
  controls += '\x7f';
  CAF_CHECK_EQUAL(message_back(controls), controls);
  CAF_CHECK_NOT_EQUAL(
    written(std::string{"\x01\x1f\x7f"}).find("\\u0001\\u001f\\u007f"),
    std::string::npos);
  // A NUL inside the message is kept, escaped.
  std::string with_nul{"a\0b", 3};
  CAF_CHECK_EQUAL(message_back(with_nul), with_nul);
  // The component is escaped too.
  auto x = sample("m");
  x.component = "a\"b";
  // (A local: CAF_CHECK_EQUAL keeps a reference into the parsed object,
  // which must outlive the comparison.)
  auto component = json_of(x)["component"].text;
  CAF_CHECK_EQUAL(component, "a\"b");
}

CAF_TEST(valid utf8 passes through unchanged) {
  // 2, 3 and 4 byte sequences, the highest code point, U+2028.
  std::string text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
                     "\xf4\x8f\xbf\xbf \xe2\x80\xa8";
  CAF_CHECK_NOT_EQUAL(written(text).find(text), std::string::npos);
  CAF_CHECK_EQUAL(message_back(text), text);
}

CAF_TEST(each byte of invalid utf8 becomes a replacement character) {
  const std::string fffd = "\xef\xbf\xbd";
  const std::vector<std::pair<std::string, std::string>> cases{
    // a lone continuation byte, a byte never used in UTF-8
    {"a\x80z", "a" + fffd + "z"},
    {"a\xffz", "a" + fffd + "z"},
    // a truncated sequence: its lead and its continuation, each
    {"a\xe2\x82z", "a" + fffd + fffd + "z"},
    // overlong forms of '/' and of U+0000
    {"\xc0\xaf", fffd + fffd},
    {"\xe0\x80\x80", fffd + fffd + fffd},
    // a surrogate (U+D800) and a code point past U+10FFFF
    {"\xed\xa0\x80", fffd + fffd + fffd},
    {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},
    // cut off at the end of the text
    {"end\xf0\x9f\x98", "end" + fffd + fffd + fffd},
  };
  for (auto& [raw, expected] : cases) {
    CAF_CHECK_EQUAL(message_back(raw), expected);
    auto line = written(raw);
    CAF_CHECK_EQUAL(line.find('\x80'), std::string::npos);
  }
}

CAF_TEST(parse format takes text and json only) {
  ql::format fmt = ql::format::text;
  CAF_CHECK(ql::parse_format("json", fmt));
  CAF_CHECK(fmt == ql::format::json);
  CAF_CHECK(ql::parse_format("text", fmt));
  CAF_CHECK(fmt == ql::format::text);
  for (auto bad : {"", "JSON", "xml", "json ", "txt"})
    CAF_CHECK(!ql::parse_format(bad, fmt));
}

CAF_TEST(the json reader refuses what is not json) {
  // The reader the binary tests rely on must be able to say no.
  for (std::string bad :
       {"", "{", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":\"x\ny\"}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\xff\"}", "{'a':1}", "{\"a\":1} x",
        "{\"a\":NaN}", "{\"a\":1,\"a\":2}", "[1]", "{\"a\":\"\\ud800\"}"})
    CAF_CHECK(!qt::parse_json_object(bad));
  auto ok = qt::parse_json_object(
    " {\"a\":-1.5e3,\"b\":[1,{\"c\":null}],\"d\":\"\\u00e9\\ud83d\\ude00\","
    "\"e\":true} ");
  CAF_REQUIRE(ok);
  CAF_CHECK_EQUAL((*ok)["a"].number, -1500.0);
  CAF_CHECK_EQUAL((*ok)["d"].text, "\xc3\xa9\xf0\x9f\x98\x80");
  CAF_CHECK((*ok)["b"].type == qt::json_value::kind::other);
}
