#pragma once

/// @file
/// Incremental, strict HTTP/1.x request parsing on top of Boost.Beast's
/// `basic_parser` (Boost 1.74, header-only; included only by the .cpp): bytes
/// in, complete requests out, in any split. Pure: no actor, no socket, so
/// that it can be tested byte by byte and fuzzed.
///
/// Strict (RFC 9112): anything two parsers could frame differently fails
/// instead of being guessed at. The rules, each with the status of the
/// failure (after a failure the parser takes no more input: the connection
/// answers and closes):
/// - request line: `method SP request-target SP HTTP-version CRLF`, single
///   spaces; the method a token (any token: an unknown method is the
///   server's 501, not a parse error); the target without controls or
///   spaces, in origin-form (`/path?query`), absolute-form
///   (`scheme://authority[/path][?query]`), `*` (OPTIONS only) or any form
///   for CONNECT; else 400. `HTTP/<digit>.<digit>` other than 1.0 and 1.1:
///   505; any other version text: 400. A request line over the header limit
///   by itself: 414 (with empty lines before it that bring the section over
///   the limit: 431, below).
/// - empty lines (CRLF) before a request line are ignored (RFC 9112 2.2);
///   they count towards the header limit.
/// - every line ends in CRLF: a bare LF or a CR not followed by LF is 400.
/// - fields: `name: value`, the name a token with no whitespace before the
///   colon, the value free of control characters (HTAB allowed, obs-text
///   allowed); a line starting with whitespace (obsolete line folding, or
///   whitespace before the first field) is 400.
/// - HTTP/1.1 needs exactly one `Host`; any request with two is 400, and so
///   is a `Host` value with characters no URI authority has.
/// - `Content-Length`: one field, digits only (a list or a repeated field,
///   even with equal values, is 400).
/// - `Transfer-Encoding`: 400 on HTTP/1.0, together with `Content-Length`,
///   with `chunked` more than once, or when `chunked` is not the final
///   coding (RFC 9112 6.3: the length cannot be determined); 501 for any
///   other coding before a final `chunked` (RFC 9112 6.1: a coding the
///   server does not understand).
/// - chunked bodies: `chunk-size [chunk-ext] CRLF data CRLF`, the size
///   hexadecimal (up to 16 digits), extensions by RFC 9112 7.1.1 without
///   control characters; anything else (a bare LF, junk after the size, no
///   CRLF after the data) is 400. A chunk-size line over the header limit is
///   400; the last-chunk line and the trailer section together over the
///   header limit are 431. Trailer fields are checked like header fields
///   and then dropped (never merged into `headers`).
/// - a header section (request line, fields, the empty line, and the empty
///   lines before it) over `max_header_bytes`: 431.
/// - a body over `max_body_bytes`: 413 (a `Content-Length` above it fails
///   at once, a chunked body as soon as a chunk size would pass it).
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
  /// Any token: `GET`, `BREW`, ...
  std::string method;
  /// The request target as sent, e.g. `/delay/100?x=1` or
  /// `http://example.com/`; `path_of` (http_fields.hpp) gives its path.
  std::string target;
  unsigned version_major = 1;
  unsigned version_minor = 1;
  /// Whether the client wants the connection kept open afterwards
  /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
  /// `Connection: keep-alive`; `close` always wins).
  bool keep_alive = true;
  /// The fields of the header section, in order, as sent (the value without
  /// the whitespace around it).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

class request_parser {
public:
  /// Default limits: 8 KiB of header section, 1 MiB of body.
  static constexpr size_t default_max_header_bytes = 8 * 1024;
  static constexpr size_t default_max_body_bytes = 1024 * 1024;

  /// No bound on the requests one `feed` produces.
  static constexpr size_t no_limit = SIZE_MAX;

  explicit request_parser(size_t max_header_bytes = default_max_header_bytes,
                          size_t max_body_bytes = default_max_body_bytes);

  request_parser(const request_parser&) = delete;

  request_parser& operator=(const request_parser&) = delete;

  ~request_parser();

  /// Parses the bytes left unparsed by the last call (see `unparsed`), then
  /// `bytes`; every request completed by them is appended to `out`, at most
  /// `max_requests` of them: then parsing stops before the next request, and
  /// the rest is kept for the next call (`feed({}, out)` resumes). Returns 0,
  /// or the status code of the failure (400, 413, 414, 431, 501, 505) once
  /// the input cannot be served.
  int feed(std::string_view bytes, std::vector<request>& out,
           size_t max_requests = no_limit);

  /// Bytes received and not looked at yet because `feed` stopped at its
  /// `max_requests`. At most one call's bytes plus a header section.
  size_t unparsed() const noexcept;

  /// Ends the input at the bytes fed so far: a request that begins after
  /// them never comes out (a request begun before it is finished by later
  /// bytes), and once the parser gets there, `input_ended` is true and
  /// later input is ignored. For a server's stop.
  void end_input();

  /// Every request that began before `end_input` has come out.
  bool input_ended() const noexcept;

  /// Some bytes of a request that is not complete yet have arrived, or
  /// bytes wait unparsed (`unparsed`).
  bool mid_request() const noexcept;

  /// Bytes of a header section that is not complete yet have arrived: of a
  /// request line and its fields, or only empty lines before a request
  /// (then `mid_request` is false). False after a failure. What a header
  /// read timeout watches.
  bool in_header_section() const noexcept;

  /// The header section of the request being received is complete and its
  /// body is not (none, some or all but the end of it has arrived). False
  /// after a failure and once the input has ended. What a body read timeout
  /// watches.
  bool in_body() const noexcept;

  /// The request being received when its header section is complete, it
  /// has a body, and no byte of that body has arrived yet: its method,
  /// target, version, `keep_alive` and header fields (the body is empty).
  /// Null at any other time, and after a failure.
  const request* awaiting_body() const noexcept;

  /// The request being received (or the one the failure is about) says
  /// `HEAD` in its request line, as far as that has arrived: an error
  /// response to it must not carry a body (RFC 9110 9.3.2).
  bool head_request() const noexcept;

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
