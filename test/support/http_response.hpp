#pragma once

/// @file
/// HTTP responses as a test client reads them: the server's output split
/// into status line, fields and body. The one response parser of the
/// tests: the behaviour tests (bytes from the fake multiplexer or a fake
/// connection_io), the binary suites (bytes from a socket or curl) and the
/// fuzz oracle of the HTTP behaviour.
///
/// The server frames every final response by `Content-Length` (it never
/// sends a chunked or a close-delimited body), so a final response without
/// a valid one is malformed here; an interim response (1xx) has no body.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quiesce::test {

/// One response as the client reads it.
struct response {
  /// The status line, e.g. `HTTP/1.1 200 OK`.
  std::string status_line;
  /// The status code; 0 if the status line does not parse.
  int status = 0;
  /// The fields in order: names as sent, values without the spaces and
  /// tabs around them.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The value of the header `name` (case-insensitive); `<missing>` when
  /// absent, `<repeated>` when present more than once.
  std::string header(std::string_view name) const;

  /// `Content-Length` as a number: nothing if absent, repeated or not a
  /// run of at most 18 decimal digits.
  std::optional<size_t> content_length() const;
};

/// The status line at the start of `bytes`: up to the first CR LF (all of
/// `bytes` if there is none).
std::string status_line_of(std::string_view bytes);

/// Parses a header section (the status line, then field lines; the blank
/// line that ends it may be there or not) into `r`. False when a field
/// line has no colon; `r` then has the fields before it.
bool parse_head(std::string_view head, response& r);

/// How `parse_response` ended.
enum class parse_status {
  /// A whole response: `size` bytes.
  complete,
  /// The bytes end before the response does.
  incomplete,
  /// Not a response this server could send: `error` says why.
  malformed,
};

/// Result of `parse_response`.
struct parsed_response {
  parse_status status = parse_status::incomplete;
  /// The response; with `malformed`, what parsed before the fault.
  response value;
  /// Bytes of the complete response, header section and body.
  size_t size = 0;
  std::string error;
};

/// Reads the response at the start of `bytes`. `head_request`: it answers
/// a HEAD request, so it has no body whatever its `Content-Length` says.
parsed_response parse_response(std::string_view bytes,
                               bool head_request = false);

/// Splits `bytes` into responses. `head[i]` says that response `i` answers
/// a HEAD request; an interim response (1xx) counts as a response. Bytes
/// that do not form a complete response (or a malformed one and all after
/// it) end up in `rest`.
std::vector<response> parse_responses(std::string_view bytes,
                                      const std::vector<bool>& head,
                                      std::string& rest);

} // namespace quiesce::test
