// The RESP parser on its own: input split at every byte, malformed input
// and the limits, checked on the length fields before any allocation.

#define CAF_SUITE resp.parser
#include "caf/test/unit_test_impl.hpp"

#include <string>
#include <string_view>
#include <vector>

#include "resp.hpp"

namespace {

using commands = std::vector<std::vector<std::string>>;

/// What the parser makes of `pieces`, fed one after the other; the error
/// text, if any, is the last "command".
commands parse(const std::vector<std::string_view>& pieces,
               resp_limits limits = {}) {
  resp_parser parser{limits};
  commands result;
  std::vector<std::string> args;
  for (auto piece : pieces) {
    for (;;) {
      auto r = parser.next(piece, args);
      if (r == resp_parser::result::command) {
        result.push_back(args);
        continue;
      }
      if (r == resp_parser::result::error)
        result.push_back({parser.error()});
      break;
    }
    if (!result.empty() && result.back().size() == 1
        && result.back()[0].rfind("Protocol error", 0) == 0)
      break;
  }
  return result;
}

commands parse(std::string_view whole, resp_limits limits = {}) {
  return parse(std::vector<std::string_view>{whole}, limits);
}

/// The error of `input`, or "" if it has none.
std::string error_of(std::string_view input, resp_limits limits = {}) {
  resp_parser parser{limits};
  std::vector<std::string> args;
  while (parser.next(input, args) == resp_parser::result::command)
    ;
  return parser.error();
}

const std::string pipeline = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n"
                             "*0\r\n"
                             "*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n"
                             "\r\n"
                             "PING  hello\tworld\r\n"
                             "*1\r\n$4\r\nPING\r\n";

const commands pipeline_commands = {
  {"SET", "key", ""},
  {"ECHO", "a\r\nb"},
  {"PING", "hello", "world"},
  {"PING"},
};

} // namespace

CAF_TEST(a pipeline sent whole) {
  CAF_CHECK_EQUAL(parse(pipeline), pipeline_commands);
}

CAF_TEST(a pipeline split at every byte) {
  for (size_t i = 0; i <= pipeline.size(); ++i) {
    std::string_view all{pipeline};
    CAF_CHECK_EQUAL(parse({all.substr(0, i), all.substr(i)}),
                    pipeline_commands);
  }
}

CAF_TEST(a pipeline sent one byte at a time) {
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < pipeline.size(); ++i)
    bytes.push_back(std::string_view{pipeline}.substr(i, 1));
  CAF_CHECK_EQUAL(parse(bytes), pipeline_commands);
}

CAF_TEST(partial while a command is half received) {
  resp_parser parser;
  std::vector<std::string> args;
  CAF_CHECK(!parser.partial());
  for (size_t i = 0; i < pipeline.size(); ++i) {
    std::string_view byte{pipeline.data() + i, 1};
    while (parser.next(byte, args) == resp_parser::result::command)
      ;
  }
  CAF_CHECK(!parser.partial());
  std::string_view half{"*2\r\n$4\r\nEC"};
  CAF_CHECK(parser.next(half, args) == resp_parser::result::need_more);
  CAF_CHECK(parser.partial());
  std::string_view inline_half{"PIN"};
  resp_parser other;
  CAF_CHECK(other.next(inline_half, args) == resp_parser::result::need_more);
  CAF_CHECK(other.partial());
}

CAF_TEST(malformed input) {
  CAF_CHECK_EQUAL(error_of("*x\r\n"),
                  "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*\r\n"),
                  "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n+PING\r\n"),
                  "Protocol error: expected '$', got '+'");
  CAF_CHECK_EQUAL(error_of("*1\r\n\r\n"),
                  "Protocol error: expected '$', got ' '");
  CAF_CHECK_EQUAL(error_of("*1\r\n$-1\r\n"),
                  "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n$4x\r\n"),
                  "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n$4\r\nPINGxx"),
                  "Protocol error: expected CRLF after bulk data");
  CAF_CHECK_EQUAL(error_of("*1\r\n$4\r\nPING\rx"),
                  "Protocol error: expected CRLF after bulk data");
  // The commands before the error are parsed; the parser then stays failed.
  CAF_CHECK_EQUAL(
    parse("PING\r\n*1\r\n$x\r\nPING\r\n"),
    (commands{{"PING"}, {"Protocol error: invalid bulk length"}}));
  resp_parser parser;
  std::vector<std::string> args;
  std::string_view bad{"*-\r\n"};
  CAF_CHECK(parser.next(bad, args) == resp_parser::result::error);
  std::string_view good{"PING\r\n"};
  CAF_CHECK(parser.next(good, args) == resp_parser::result::error);
  CAF_CHECK(!parser.partial());
}

CAF_TEST(limits are checked on the length fields) {
  // The default limits: 64 MiB per bulk string, 1 Mi elements per array.
  CAF_CHECK_EQUAL(error_of("*1\r\n$67108865\r\n"),
                  "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n$67108864\r\n"), "");
  CAF_CHECK_EQUAL(error_of("*1\r\n$9223372036854775807\r\n"),
                  "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n$99999999999999999999\r\n"),
                  "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1048577\r\n"),
                  "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*1048576\r\n"), "");
  CAF_CHECK_EQUAL(error_of("*9223372036854775807\r\n"),
                  "Protocol error: invalid multibulk length");
  // Smaller limits, to see both sides of each with whole commands.
  resp_limits small;
  small.max_bulk = 4;
  small.max_args = 2;
  small.max_line = 8;
  CAF_CHECK_EQUAL(parse("*2\r\n$4\r\nECHO\r\n$4\r\nabcd\r\n", small),
                  (commands{{"ECHO", "abcd"}}));
  CAF_CHECK_EQUAL(error_of("*2\r\n$4\r\nECHO\r\n$5\r\n", small),
                  "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*3\r\n", small),
                  "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(parse("PING abc\r\n", small), (commands{{"PING", "abc"}}));
  CAF_CHECK_EQUAL(error_of("PING abcd", small),
                  "Protocol error: too big inline request");
  CAF_CHECK_EQUAL(error_of("*0000000001\r\n", small),
                  "Protocol error: too big mbulk count string");
  CAF_CHECK_EQUAL(error_of("*1\r\n$000000004", small),
                  "Protocol error: too big bulk count string");
}

CAF_TEST(a bulk string is refused before its data arrives) {
  // The length alone is refused: nothing of the 64 MiB + 1 is awaited.
  resp_parser parser;
  std::vector<std::string> args;
  std::string_view head{"*1\r\n$67108865\r\n"};
  CAF_CHECK(parser.next(head, args) == resp_parser::result::error);
  // One within the limit is awaited, and not reserved ahead: the parser
  // holds only what has arrived.
  resp_parser ok;
  std::string_view start{"*1\r\n$67108864\r\nabc"};
  CAF_CHECK(ok.next(start, args) == resp_parser::result::need_more);
  CAF_CHECK(ok.partial());
}

CAF_TEST(replies are encoded as redis does) {
  CAF_CHECK_EQUAL(resp::simple("PONG"), "+PONG\r\n");
  CAF_CHECK_EQUAL(resp::error("ERR a\r\nb"), "-ERR a  b\r\n");
  CAF_CHECK_EQUAL(resp::integer(-3), ":-3\r\n");
  CAF_CHECK_EQUAL(resp::bulk(""), "$0\r\n\r\n");
  CAF_CHECK_EQUAL(resp::bulk("a\r\nb"), "$4\r\na\r\nb\r\n");
  CAF_CHECK_EQUAL(resp::nil, "$-1\r\n");
}
