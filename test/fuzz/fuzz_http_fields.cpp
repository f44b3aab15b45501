// libFuzzer target: the request field parsers of the HTTP behaviour
// (actors/behaviours/http_fields.hpp), each against a reference written
// another way.
// - parse_delay (`/delay/<ms>`): true exactly for a non-empty run of decimal
//   digits; the value is the number, or limit + 1 when it is larger (any
//   number of digits, no overflow).
// - path_of (the path of a request target): against a reference that cuts
//   the target with std::string operations.
// - expectations_of (`Expect`): HTTP/1.1 and later only; wants_continue iff
//   some comma-separated member of some `Expect` field (name in any case) is
//   `100-continue` in any case once spaces and tabs around it are trimmed;
//   unmet iff some other non-empty member is there.
//
// Input: the first byte picks the limit and the version; the rest is the
// delay text, and again a header list `name:value` separated by '\n'.

#include "actors/behaviours/http_fields.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "test/fuzz/check.hpp"
#include "test/support/strings.hpp"

using quiesce::fuzz::fail;
using quiesce::test::iequals;

namespace {

/// The reference: the decimal value with unbounded precision, compared as a
/// string against the limit's digits.
bool reference_delay(std::string_view text, uint64_t limit, uint64_t& ms) {
  if (text.empty())
    return false;
  for (auto c : text)
    if (c < '0' || c > '9')
      return false;
  auto first = text.find_first_not_of('0');
  auto digits = first == std::string_view::npos ? std::string_view{"0"}
                                                : text.substr(first);
  auto limit_digits = std::to_string(limit);
  auto over = digits.size() != limit_digits.size()
                ? digits.size() > limit_digits.size()
                : digits > std::string_view{limit_digits};
  ms = over ? limit + 1 : std::stoull(std::string{digits});
  return true;
}

void check_delay(std::string_view text, uint64_t limit) {
  uint64_t got = 12345;
  uint64_t want = 54321;
  auto ok = quiesce::http::parse_delay(text, limit, got);
  auto ref = reference_delay(text, limit, want);
  FUZZ_CHECK_MSG(ok == ref, std::string{text});
  if (ok) {
    FUZZ_CHECK_MSG(got == want,
                   std::to_string(got) + " vs " + std::to_string(want));
    FUZZ_CHECK(got <= limit + 1);
  }
}

/// The reference for path_of: a target is cut into scheme, authority, path
/// and query with std::string operations, the way RFC 3986 appendix B's
/// regular expression does.
std::string reference_path(const std::string& target) {
  if (!target.empty() && target[0] == '/')
    return target.substr(0, target.find('?'));
  auto query = target.find('?');
  auto scheme = target.find("://");
  if (scheme == std::string::npos || scheme > query)
    return target;
  auto after = target.substr(scheme + 3, query == std::string::npos
                                           ? std::string::npos
                                           : query - scheme - 3);
  auto slash = after.find('/');
  return slash == std::string::npos ? "/" : after.substr(slash);
}

quiesce::http::expectations
reference_expectations(const quiesce::http::request& req) {
  quiesce::http::expectations result;
  if (req.version_major * 1000 + req.version_minor < 1001)
    return result;
  for (auto& [field, value] : req.headers) {
    if (!iequals(field, "expect"))
      continue;
    size_t start = 0;
    for (;;) {
      auto comma = value.find(',', start);
      auto member = value.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
      auto b = member.find_first_not_of(" \t");
      auto e = member.find_last_not_of(" \t");
      member = b == std::string::npos ? "" : member.substr(b, e - b + 1);
      if (iequals(member, "100-continue"))
        result.wants_continue = true;
      else if (!member.empty())
        result.unmet = true;
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
  }
  return result;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto ctl = data[0];
  std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  // The behaviour's limit, small ones, and the largest for which the
  // parser's precondition holds ((limit + 1) * 10 + 9 fits in 64 bits).
  constexpr uint64_t limits[]
    = {1000000000000ull, 0, 9, 10, 99, 1000, 123456789, UINT64_MAX / 10 - 2};
  check_delay(rest, limits[ctl % 8]);
  check_delay(rest, 1000000000000ull);
  // The text after "/delay/" in a target, as route() passes it.
  check_delay(rest.substr(0, rest.find('?')), 1000000000000ull);

  // The path the routes look at.
  FUZZ_CHECK_MSG(std::string{quiesce::http::path_of(rest)}
                   == reference_path(std::string{rest}),
                 std::string{rest});

  quiesce::http::request req;
  req.version_major = (ctl >> 3) % 3;
  req.version_minor = (ctl >> 5) % 3;
  size_t pos = 0;
  while (pos <= rest.size()) {
    auto nl = rest.find('\n', pos);
    auto line = rest.substr(
      pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    auto colon = line.find(':');
    if (colon != std::string_view::npos)
      req.headers.emplace_back(std::string{line.substr(0, colon)},
                               std::string{line.substr(colon + 1)});
    if (nl == std::string_view::npos)
      break;
    pos = nl + 1;
  }
  auto got = quiesce::http::expectations_of(req);
  auto want = reference_expectations(req);
  FUZZ_CHECK(got.wants_continue == want.wants_continue);
  FUZZ_CHECK(got.unmet == want.unmet);
  return 0;
}
