#pragma once

/// @file
/// Small parsers of request fields used by the HTTP behaviour (http.cpp),
/// in a header of their own so that they can be tested and fuzzed
/// (test/fuzz/fuzz_http_fields.cpp): the path of a request target, the `<ms>`
/// of `/delay/<ms>` and the `Expect` list.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string_view>

#include "actors/behaviours/http_request_parser.hpp"

namespace quiesce::http {

/// The path of a request target, what the routes look at: the target up to
/// its query (`?`) in origin-form (`/a/b?x` gives `/a/b`); in absolute-form
/// (`http://host:port/a/b?x`, RFC 9112 3.2.2: a server must accept it) the
/// path after the authority, `/` when there is none (`http://host?x`). Any
/// other form (`*`, a CONNECT's `host:port`) comes back whole.
inline std::string_view path_of(std::string_view target) {
  auto path = target.substr(0, target.find('?'));
  if (!path.empty() && path.front() == '/')
    return path;
  auto scheme_end = path.find("://");
  if (scheme_end == std::string_view::npos)
    return target;
  auto slash = path.find('/', scheme_end + 3);
  return slash == std::string_view::npos ? std::string_view{"/"}
                                         : path.substr(slash);
}

/// Milliseconds of `/delay/<ms>`: decimal digits, nothing else. A value
/// over `limit` comes out as `limit + 1` (so that any number of digits
/// parses without overflow).
inline bool parse_delay(std::string_view text, uint64_t limit, uint64_t& ms) {
  if (text.empty())
    return false;
  ms = 0;
  for (auto c : text) {
    if (c < '0' || c > '9')
      return false;
    ms = std::min(ms * 10 + static_cast<uint64_t>(c - '0'), limit + 1);
  }
  return true;
}

inline bool iequals(std::string_view x, std::string_view y) {
  return x.size() == y.size()
         && std::equal(x.begin(), x.end(), y.begin(), [](char a, char b) {
              return std::tolower(static_cast<unsigned char>(a))
                     == std::tolower(static_cast<unsigned char>(b));
            });
}

/// What a request's `Expect` fields ask for.
struct expectations {
  /// `100-continue` is among them.
  bool wants_continue = false;
  /// Some other expectation is among them: none of those can be met.
  bool unmet = false;
};

/// Reads the `Expect` fields of an HTTP/1.1 request (RFC 9110 10.1.1): a
/// comma-separated list, `100-continue` in any case. HTTP/1.0 has no
/// expectations: a server must ignore them there.
inline expectations expectations_of(const request& req) {
  expectations result;
  if (req.version_major < 1
      || (req.version_major == 1 && req.version_minor < 1))
    return result;
  for (auto& [field, value] : req.headers) {
    if (!iequals(field, "Expect"))
      continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto member = rest.substr(0, comma);
      rest.remove_prefix(comma == std::string_view::npos ? rest.size()
                                                         : comma + 1);
      while (!member.empty()
             && (member.front() == ' ' || member.front() == '\t'))
        member.remove_prefix(1);
      while (!member.empty() && (member.back() == ' ' || member.back() == '\t'))
        member.remove_suffix(1);
      if (member.empty())
        continue; // `#` lists allow empty members
      if (iequals(member, "100-continue"))
        result.wants_continue = true;
      else
        result.unmet = true;
    }
  }
  return result;
}

} // namespace quiesce::http
