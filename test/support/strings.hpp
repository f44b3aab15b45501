#pragma once

/// @file
/// Case-insensitive text for the tests: HTTP field names (and the values
/// that are tokens, such as `close` or `100-continue`) compare without
/// regard to ASCII case. The one place the tests fold case; the server
/// has its own (the tests must not borrow it).

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace quiesce::test {

/// `c` in lower case (ASCII; other bytes unchanged).
inline char to_lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

/// `x` in lower case (ASCII; other bytes unchanged).
inline std::string lower(std::string_view x) {
  std::string result{x};
  std::transform(result.begin(), result.end(), result.begin(), to_lower);
  return result;
}

/// Whether `x` and `y` are equal but for ASCII case.
inline bool iequals(std::string_view x, std::string_view y) {
  return x.size() == y.size()
         && std::equal(x.begin(), x.end(), y.begin(), [](char a, char b) {
              return to_lower(a) == to_lower(b);
            });
}

} // namespace quiesce::test
