#pragma once

/// @file
/// Incremental HTTP/1.x request parsing on top of Debian's http-parser
/// (libhttp-parser-dev, the parser of Node.js up to v12): bytes in, complete
/// requests out, in any split. Pure: no actor, no socket, so that it can be
/// tested byte by byte and fuzzed.
///
/// Limits, as a production server needs them:
/// - a header section (request line and headers) over `max_header_bytes`
///   fails with 431;
/// - a body over `max_body_bytes` fails with 413 (a `Content-Length` above it
///   fails at once, a chunked body as soon as it grows past it);
/// - anything malformed fails with 400.
/// After a failure the parser takes no more input: the connection answers
/// and closes.
///
/// Between the end of a request's header section and the first byte of its
/// body, `awaiting_body` shows the request's head: a server answers
/// `Expect: 100-continue` there.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace quiesce::http {

struct request {
  std::string method;
  /// The request target as sent, e.g. `/delay/100?x=1`.
  std::string target;
  unsigned version_major = 1;
  unsigned version_minor = 1;
  /// Whether the client wants the connection kept open afterwards
  /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
  /// `Connection: keep-alive`).
  bool keep_alive = true;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

class request_parser {
public:
  /// Default limits: 8 KiB of header section, 1 MiB of body.
  static constexpr size_t default_max_header_bytes = 8 * 1024;
  static constexpr size_t default_max_body_bytes = 1024 * 1024;

  explicit request_parser(size_t max_header_bytes = default_max_header_bytes,
                          size_t max_body_bytes = default_max_body_bytes);

  request_parser(const request_parser&) = delete;

  request_parser& operator=(const request_parser&) = delete;

  ~request_parser();

  /// Parses `bytes`; every request completed by them is appended to `out`.
  /// Returns 0, or the status code of the failure (400, 413, 431) once the
  /// input cannot be served.
  int feed(std::string_view bytes, std::vector<request>& out);

  /// Some bytes of a request that is not complete yet have arrived.
  bool mid_request() const noexcept;

  /// Bytes of a header section that is not complete yet have arrived: of a
  /// request line and its fields, or only blank lines before a request
  /// (then `mid_request` is false). False after a failure. What a header
  /// read timeout watches.
  bool in_header_section() const noexcept;

  /// The request being received when its header section is complete, it
  /// has a body, and no byte of that body has arrived yet: its method,
  /// target, version, `keep_alive` and header fields (the body is empty).
  /// Null at any other time, and after a failure.
  const request* awaiting_body() const noexcept;

  /// The status code of the failure, 0 while the input is fine.
  int failure() const noexcept {
    return failure_;
  }

private:
  struct impl;

  std::unique_ptr<impl> impl_;
  int failure_ = 0;
};

} // namespace quiesce::http
