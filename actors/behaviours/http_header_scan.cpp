// The HTTP request parser's scan of a header section, byte by byte as it
// arrives (http_request_parser_impl.hpp): line structure, request line and
// limits, before Beast sees the section whole.

#include "actors/behaviours/http_request_parser_impl.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

#include "actors/behaviours/http_syntax.hpp"

namespace quiesce::http {

namespace {

using namespace syntax; // the grammar of RFC 9110/9112 (http_syntax.hpp)

} // namespace

size_t request_parser::impl::scan_header(const char* q, size_t n) {
  // The section, empty lines before it included, fits the limit: only its
  // first `limit` bytes are looked at.
  auto limit = max_header_bytes - blank_bytes;
  auto end = std::min(n, limit);
  auto i = scanned;
  auto bad = [this] {
    fail(bad_request);
    return size_t{0};
  };
  while (i < end) {
    auto c = q[i];
    switch (ls) {
      case line_state::start:
        return bad(); // parse() moves past it
      case line_state::method:
        while (i < end && is(q[i], tchar))
          ++i;
        if (i == end)
          continue;
        if (q[i] != ' ' || i == 0)
          return bad();
        head = i == 4 && std::memcmp(q, "HEAD", 4) == 0;
        ls = line_state::target_begin;
        break;
      case line_state::target_begin:
        if (!is(c, target_char))
          return bad(); // an empty target, or a second space
        ls = line_state::target;
        break;
      case line_state::target:
        while (i < end && is(q[i], target_char))
          ++i;
        if (i == end)
          continue;
        if (q[i] != ' ')
          return bad();
        version_at = i + 1;
        ls = line_state::version;
        break;
      case line_state::version: {
        // `HTTP/` DIGIT `.` DIGIT, then CR.
        auto k = i - version_at;
        auto ok = k < 5    ? c == "HTTP/"[k]
                  : k == 6 ? c == '.'
                  : k < 8  ? c >= '0' && c <= '9'
                           : c == '\r';
        if (!ok)
          return bad();
        if (k == 8)
          ls = line_state::line_lf;
        break;
      }
      case line_state::line_lf: {
        if (c != '\n')
          return bad();
        auto major = q[version_at + 5];
        auto minor = q[version_at + 7];
        if (major != '1' || (minor != '0' && minor != '1')) {
          // Well-formed, but not a version this server speaks.
          fail(version_not_supported);
          return 0;
        }
        ls = line_state::line_start;
        break;
      }
      case line_state::line_start:
        if (c == '\r') {
          ls = line_state::end_lf;
        } else if (c == ' ' || c == '\t' || !is(c, line_char)) {
          // Whitespace here is obsolete line folding (or whitespace before
          // the first field): 400 (RFC 9112 5.2, 2.2).
          return bad();
        } else {
          ls = line_state::field;
        }
        break;
      case line_state::field:
        while (i < end && is(q[i], line_char))
          ++i;
        if (i == end)
          continue;
        if (q[i] != '\r')
          return bad(); // a bare LF, or a control character
        ls = line_state::field_lf;
        break;
      case line_state::field_lf:
        if (c != '\n')
          return bad();
        ls = line_state::line_start;
        break;
      case line_state::end_lf:
        if (c != '\n')
          return bad();
        return i + 1;
    }
    ++i;
  }
  scanned = end;
  if (end == limit) {
    // The limit is reached and the section has not ended. The request line
    // is too long (414) only if it alone has reached the limit: empty lines
    // before it use up the same budget, and with them a short request line
    // leaves the section, not the line, over the limit (431).
    auto in_request_line
      = ls == line_state::method || ls == line_state::target_begin
        || ls == line_state::target || ls == line_state::version
        || ls == line_state::line_lf;
    fail(in_request_line && blank_bytes == 0 ? uri_too_long
                                             : header_fields_too_large);
  }
  return 0;
}

} // namespace quiesce::http
