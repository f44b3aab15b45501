#pragma once

/// @file
/// A strict JSON reader for the tests of `--log-format=json` (RFC 8259:
/// no trailing commas, no comments, no raw control characters in strings,
/// escapes and numbers exactly as the grammar has them, UTF-8 only). It
/// reads one object and keeps its members of scalar type; members that are
/// objects or arrays are checked and kept as `other`. Debian's Boost 1.74
/// ships no Boost.JSON, and the tests must not depend on python.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace quiesce::test {

/// One member's value.
struct json_value {
  enum class kind { string, number, boolean, null, other };
  kind type = kind::null;
  /// A string's text (escapes resolved, UTF-8) or a number's text as
  /// written.
  std::string text;
  double number = 0;
  bool boolean = false;
};

/// A JSON object's members.
using json_object = std::map<std::string, json_value>;

/// Parses `text` as exactly one JSON object (white space around it
/// allowed); nothing if it is not one, with the reason in `error` if given.
std::optional<json_object> parse_json_object(std::string_view text,
                                             std::string* error = nullptr);

} // namespace quiesce::test
