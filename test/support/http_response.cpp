#include "http_response.hpp"

#include <cstdlib>

#include "strings.hpp"

namespace quiesce::test {

namespace {

constexpr std::string_view crlf = "\r\n";

constexpr std::string_view end_of_head = "\r\n\r\n";

std::string_view trim(std::string_view x) {
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!x.empty() && blank(x.front()))
    x.remove_prefix(1);
  while (!x.empty() && blank(x.back()))
    x.remove_suffix(1);
  return x;
}

bool all_digits(std::string_view x) {
  return !x.empty() && x.find_first_not_of("0123456789") == std::string::npos;
}

/// The code of a status line such as `HTTP/1.1 200 OK`: the three digits
/// after the first space; 0 if they are not there.
int status_code(std::string_view line) {
  auto sp = line.find(' ');
  if (sp == std::string_view::npos)
    return 0;
  auto code = line.substr(sp + 1, 3);
  if (code.size() != 3 || !all_digits(code)
      || (line.size() > sp + 4 && line[sp + 4] != ' '))
    return 0;
  return std::atoi(std::string{code}.c_str());
}

} // namespace

std::string response::header(std::string_view name) const {
  std::optional<std::string> result;
  for (auto& [field, value] : headers) {
    if (!iequals(field, name))
      continue;
    if (result)
      return "<repeated>";
    result = value;
  }
  return result ? *result : "<missing>";
}

std::optional<size_t> response::content_length() const {
  auto text = header("Content-Length");
  if (!all_digits(text) || text.size() > 18)
    return std::nullopt;
  return static_cast<size_t>(std::strtoull(text.c_str(), nullptr, 10));
}

std::string status_line_of(std::string_view bytes) {
  return std::string{bytes.substr(0, bytes.find(crlf))};
}

bool parse_head(std::string_view head, response& r) {
  auto next_line = [&head] {
    auto eol = head.find(crlf);
    auto line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size()
                                                     : eol + crlf.size());
    return line;
  };
  r.status_line = std::string{next_line()};
  r.status = status_code(r.status_line);
  while (!head.empty()) {
    auto line = next_line();
    if (line.empty())
      break;
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return false;
    r.headers.emplace_back(std::string{line.substr(0, colon)},
                           std::string{trim(line.substr(colon + 1))});
  }
  return true;
}

parsed_response parse_response(std::string_view bytes, bool head_request) {
  parsed_response result;
  auto end = bytes.find(end_of_head);
  if (end == std::string_view::npos)
    return result;
  auto& r = result.value;
  auto body_start = end + end_of_head.size();
  if (!parse_head(bytes.substr(0, end + crlf.size()), r)) {
    result.status = parse_status::malformed;
    result.error = "a field line without a colon";
    return result;
  }
  size_t body_size = 0;
  if (r.status < 100 || r.status >= 200) {
    auto length = r.content_length();
    if (!length) {
      result.status = parse_status::malformed;
      result.error = "bad Content-Length `" + r.header("Content-Length") + "`";
      return result;
    }
    if (!head_request)
      body_size = *length;
  }
  if (bytes.size() - body_start < body_size)
    return result;
  r.body = std::string{bytes.substr(body_start, body_size)};
  result.status = parse_status::complete;
  result.size = body_start + body_size;
  return result;
}

std::vector<response> parse_responses(std::string_view bytes,
                                      const std::vector<bool>& head,
                                      std::string& rest) {
  std::vector<response> result;
  for (;;) {
    auto i = result.size();
    auto parsed = parse_response(bytes, i < head.size() && head[i]);
    if (parsed.status != parse_status::complete)
      break;
    bytes.remove_prefix(parsed.size);
    result.push_back(std::move(parsed.value));
  }
  rest = std::string{bytes};
  return result;
}

} // namespace quiesce::test
