#pragma once

/// @file
/// HTTP responses as a test client reads them: the server's output split
/// into status line, fields and body. Used by the behaviour tests (bytes
/// from the fake multiplexer or a fake connection_io) and the binary suites
/// (bytes from a socket).

#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quiesce::test {

/// One response as the client reads it.
struct response {
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The value of the header `name` (case-insensitive); `<missing>` when
  /// absent, `<repeated>` when present more than once.
  std::string header(std::string_view name) const {
    std::optional<std::string> result;
    for (auto& [field, value] : headers) {
      if (field.size() != name.size())
        continue;
      auto equal = true;
      for (size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(field[i]))
            != std::tolower(static_cast<unsigned char>(name[i])))
          equal = false;
      if (!equal)
        continue;
      if (result)
        return "<repeated>";
      result = value;
    }
    return result ? *result : "<missing>";
  }
};

/// Splits `bytes` into responses. `head[i]` says that response `i` answers a
/// HEAD request (headers only, whatever its Content-Length says); an interim
/// response (1xx) has no body and counts as a response. Bytes that do not
/// form a complete response end up in `rest`.
inline std::vector<response> parse_responses(std::string_view bytes,
                                             const std::vector<bool>& head,
                                             std::string& rest) {
  std::vector<response> result;
  for (;;) {
    auto end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos)
      break;
    response r;
    auto section = bytes.substr(0, end + 2);
    auto eol = section.find("\r\n");
    r.status_line = std::string{section.substr(0, eol)};
    section.remove_prefix(eol + 2);
    while (!section.empty()) {
      eol = section.find("\r\n");
      auto line = section.substr(0, eol);
      section.remove_prefix(eol + 2);
      auto colon = line.find(':');
      if (colon == std::string_view::npos) {
        rest = std::string{bytes};
        return result;
      }
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
      r.headers.emplace_back(std::string{line.substr(0, colon)},
                             std::string{value});
    }
    if (r.status_line.rfind("HTTP/1.1 1", 0) == 0) {
      bytes.remove_prefix(end + 4);
      result.push_back(std::move(r));
      continue;
    }
    auto length = r.header("Content-Length");
    if (length.empty()
        || length.find_first_not_of("0123456789") != std::string::npos)
      break; // every response must have one: leave it all in `rest`
    size_t body_size = 0;
    if (result.size() >= head.size() || !head[result.size()])
      body_size = std::stoul(length);
    if (bytes.size() < end + 4 + body_size)
      break;
    r.body = std::string{bytes.substr(end + 4, body_size)};
    bytes.remove_prefix(end + 4 + body_size);
    result.push_back(std::move(r));
  }
  rest = std::string{bytes};
  return result;
}

} // namespace quiesce::test
