#pragma once

/// @file
/// The grammar of HTTP/1.1 that the request parser checks beyond what
/// Boost.Beast checks (RFC 9110, RFC 9112): character classes, list members,
/// line endings and request-target forms. Pure functions, no state.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace quiesce::http::syntax {

// -- character classes --------------------------------------------------------

enum char_class : uint8_t {
  /// RFC 9110 5.6.2 tchar: what methods, field names and codings are made of.
  tchar = 1,
  /// A byte of a request target: no control, no space, no DEL (obs-text
  /// allowed, as Beast does).
  target_char = 2,
  /// A byte of a field line other than its CR LF: HTAB, SP, VCHAR, obs-text.
  line_char = 4,
  /// A byte of a URI authority (RFC 3986 3.2: unreserved, pct-encoded,
  /// sub-delims, `:` and the brackets of an IP literal); no userinfo `@`.
  authority_char = 8,
};

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> result{};
  for (int c = 0; c < 256; ++c) {
    uint8_t x = 0;
    auto alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                 || (c >= '0' && c <= '9');
    auto in = [c](const char* set) {
      for (; *set != '\0'; ++set)
        if (static_cast<unsigned char>(*set) == c)
          return true;
      return false;
    };
    if (alnum || in("!#$%&'*+-.^_`|~"))
      x |= tchar;
    if ((c > 0x20 && c < 0x7f) || c >= 0x80)
      x |= target_char;
    if (c == '\t' || (c >= 0x20 && c < 0x7f) || c >= 0x80)
      x |= line_char;
    if (alnum || in("-._~%!$&'()*+,;=:[]"))
      x |= authority_char;
    result[static_cast<size_t>(c)] = x;
  }
  return result;
}

constexpr std::array<uint8_t, 256> classes = make_classes();

inline bool is(char c, char_class cls) {
  return (classes[static_cast<unsigned char>(c)] & cls) != 0;
}

inline bool all_of_class(std::string_view text, char_class cls) {
  return std::all_of(text.begin(), text.end(),
                     [cls](char c) { return is(c, cls); });
}

inline bool iequals(std::string_view x, std::string_view y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i) {
    auto a = static_cast<unsigned char>(x[i]);
    auto b = static_cast<unsigned char>(y[i]);
    if (a >= 'A' && a <= 'Z')
      a = static_cast<unsigned char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z')
      b = static_cast<unsigned char>(b - 'A' + 'a');
    if (a != b)
      return false;
  }
  return true;
}

/// Calls `fn` with each member of a comma-separated list (RFC 9110 5.6.1),
/// without the whitespace around it; empty members are skipped.
template <class F>
void for_each_member(std::string_view list, F fn) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto member = list.substr(0, comma);
    list.remove_prefix(comma == std::string_view::npos ? list.size()
                                                       : comma + 1);
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t'))
      member.remove_prefix(1);
    while (!member.empty() && (member.back() == ' ' || member.back() == '\t'))
      member.remove_suffix(1);
    if (!member.empty())
      fn(member);
  }
}

/// Whether `text` has an LF without a CR before it, or a CR followed by
/// anything but LF (a CR at the end may still get its LF). An LF at the
/// very start counts as bare only if `at_start` (else `text` continues
/// bytes looked at before, and its first byte is the one before the new
/// ones).
bool has_bare_line_break(std::string_view text, bool at_start);

/// The request-target forms of RFC 9112 3.2 this server accepts:
/// origin-form, absolute-form `scheme://authority[path][?query]` (no
/// userinfo), `*` for OPTIONS, anything for CONNECT (answered 501).
bool valid_target(std::string_view method, std::string_view target);

} // namespace quiesce::http::syntax
