#include "actors/behaviours/http_syntax.hpp"

namespace quiesce::http::syntax {

bool has_bare_line_break(std::string_view text, bool at_start) {
  for (auto i = text.find_first_of("\r\n"); i != std::string_view::npos;
       i = text.find_first_of("\r\n", i + 1)) {
    auto bare = text[i] == '\n' ? (i == 0 ? at_start : text[i - 1] != '\r')
                                : i + 1 < text.size() && text[i + 1] != '\n';
    if (bare)
      return true;
  }
  return false;
}

bool valid_target(std::string_view method, std::string_view target) {
  if (method == "CONNECT")
    return true; // authority-form; answered 501 and closed anyway
  if (target == "*")
    return method == "OPTIONS"; // asterisk-form
  if (target.front() == '/')
    return true; // origin-form
  // absolute-form, as `scheme://authority[path][?query]`.
  auto colon = target.find("://");
  if (colon == 0 || colon == std::string_view::npos)
    return false;
  auto scheme = target.substr(0, colon);
  auto alpha
    = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(scheme.front()))
    return false;
  for (auto c : scheme)
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-'
        && c != '.')
      return false;
  auto rest = target.substr(colon + 3);
  auto authority = rest.substr(0, rest.find_first_of("/?"));
  return !authority.empty() && all_of_class(authority, authority_char);
}

} // namespace quiesce::http::syntax
