#pragma once

/// @file
/// The state of `http::request_parser` (its `impl`) and Beast's callbacks
/// into it, shared by the files that define its steps:
/// http_request_parser.cpp (requests, bodies and the parser's public
/// functions), http_header_scan.cpp (the header section byte by byte, before
/// Beast sees it) and http_request_checks.cpp (what the callbacks check of
/// what Beast lets through). Only these files include Beast: include this
/// header before any other Boost header.

// Beast's own assertions stay off where this header is included (the only
// files that include Beast): basic_parser.ipp asserts at least 5 bytes when it
// resumes a last chunk (`BOOST_ASSERT(n >= 5)`), which a body whose first
// chunk is the last one, fed `0\r\n` then `\r`, does not have. The code
// under the assertion handles 4 bytes correctly (it waits for more); release
// builds, which define NDEBUG, never check it.
#ifndef BOOST_DISABLE_ASSERTS
#define BOOST_DISABLE_ASSERTS
#endif
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/behaviours/http_request_parser.hpp"

namespace quiesce::http {

namespace bhttp = boost::beast::http;

using boost::beast::error_code;

/// The parser state. Beast's parser is made for one message at a time and
/// for a header section that is whole in one buffer, so:
/// - the header section is scanned here first (line structure, request line,
///   limits: `scan_header`), byte by byte as it arrives, and handed to Beast
///   only once it is complete and within the limit; Beast then parses it in
///   one `put` (fields, Content-Length, Transfer-Encoding, Connection).
///   Every split of the input thus gives Beast the same header bytes at once:
///   the outcome cannot depend on the split.
/// - bytes Beast has not consumed (a header section or a chunk-size line not
///   complete yet, or input after `max_requests`) are kept in `buf`, bounded
///   by the header limit (or by one `feed` and a header section);
/// - one Beast parser per message, emplaced when its header section is
///   complete (no allocation: a single buffer is never copied by Beast);
/// - Beast's callbacks (`message`) fill `current` directly, without
///   `beast::http::fields`, and check what Beast lets through.
struct request_parser::impl {
  static constexpr int bad_request = 400;
  static constexpr int payload_too_large = 413;
  static constexpr int uri_too_long = 414;
  static constexpr int header_fields_too_large = 431;
  static constexpr int not_implemented = 501;
  static constexpr int version_not_supported = 505;

  /// The most hexadecimal digits of a chunk size: 16 give every 64-bit size;
  /// more (leading zeros) are refused rather than counted.
  static constexpr size_t max_chunk_size_digits = 16;

  /// Where the header section stands, byte by byte (see scan_header).
  enum class line_state : uint8_t {
    /// Before a request line: empty lines may come.
    start,
    method,
    /// The first byte of the target (after the method's space).
    target_begin,
    target,
    /// `HTTP/d.d`, then its CR.
    version,
    /// The LF after the request line's CR.
    line_lf,
    /// At the beginning of a field line, or of the empty line.
    line_start,
    field,
    field_lf,
    /// The LF of the empty line that ends the section.
    end_lf,
  };

  /// Beast's parser for one request: its callbacks go to the impl.
  class message final : public bhttp::basic_parser<true> {
  public:
    explicit message(impl& owner) : owner_(owner) {
      // The impl enforces both limits itself: the header section before Beast
      // sees it, the body in on_header / on_chunk_header (so that the status
      // does not depend on which check Beast makes first).
      // (Not `boost::none` for no body limit: Beast 1.74's finish_header
      // compares the Content-Length with the optional, and any value is
      // greater than none.)
      header_limit(std::numeric_limits<std::uint32_t>::max());
      body_limit(std::numeric_limits<std::uint64_t>::max());
      // One step per `put`: the header section, a chunk-size line, or body
      // bytes (the default, stated because awaiting_body depends on it).
      eager(false);
    }

  private:
    void on_request_impl(bhttp::verb, boost::beast::string_view method,
                         boost::beast::string_view target, int version,
                         error_code& ec) override {
      owner_.on_request({method.data(), method.size()},
                        {target.data(), target.size()}, version, ec);
    }

    void on_response_impl(int, boost::beast::string_view, int,
                          error_code& ec) override {
      ec = bhttp::error::bad_version; // never called for requests
    }

    void on_field_impl(bhttp::field name, boost::beast::string_view name_text,
                       boost::beast::string_view value,
                       error_code& ec) override {
      owner_.on_field(name, {name_text.data(), name_text.size()},
                      {value.data(), value.size()}, is_header_done(), ec);
    }

    void on_header_impl(error_code& ec) override {
      owner_.on_header(content_length(), chunked(), ec);
    }

    void on_body_init_impl(const boost::optional<std::uint64_t>&,
                           error_code&) override {
      // nop: the body grows as it arrives (no reserve: a client could declare
      // 1 MiB and send nothing).
    }

    size_t on_body_impl(boost::beast::string_view body, error_code&) override {
      owner_.current.body.append(body.data(), body.size());
      return body.size();
    }

    void on_chunk_header_impl(std::uint64_t size,
                              boost::beast::string_view extensions,
                              error_code& ec) override {
      owner_.on_chunk_header(size, {extensions.data(), extensions.size()}, ec);
    }

    size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                              error_code&) override {
      owner_.current.body.append(body.data(), body.size());
      return body.size();
    }

    void on_finish_impl(error_code&) override {
      owner_.complete = true;
    }

    impl& owner_;
  };

  impl(size_t max_header, size_t max_body)
      : max_header_bytes(max_header), max_body_bytes(max_body) {
    // nop
  }

  ~impl();

  size_t max_header_bytes;
  size_t max_body_bytes;

  // -- input ------------------------------------------------------------------

  /// Bytes received and not consumed yet: `buf` from `buf_start` on (the
  /// bytes before it are consumed; erased only when more are appended, so
  /// that resuming from kept bytes request by request moves nothing).
  std::string buf;
  size_t buf_start = 0;

  size_t kept() const noexcept {
    return buf.size() - buf_start;
  }

  /// Drops every byte kept and frees the buffer.
  void drop_kept() {
    if (buf.capacity() > std::string{}.capacity())
      std::string{}.swap(buf);
    else
      buf.clear();
    buf_start = 0;
  }
  /// `buf` holds bytes not looked at because `feed` reached `max_requests`.
  bool capped = false;
  /// Bytes fed so far, and the stream offset of the first byte not consumed.
  uint64_t fed = 0;
  uint64_t consumed = 0;
  /// `end_input`: no request begins at or after this offset.
  uint64_t end_mark = UINT64_MAX;
  bool ended = false;
  int failure = 0;

  // -- the message being received ---------------------------------------------

  /// Its header section is complete: Beast has it and reads the body.
  bool in_body = false;
  line_state ls = line_state::start;
  /// Bytes of empty lines before the request line.
  size_t blank_bytes = 0;
  /// Bytes of the header section looked at (from the request line on).
  size_t scanned = 0;
  /// Bytes of the header section received and kept (a CR of an empty line,
  /// or the section so far).
  size_t pending = 0;
  /// Where `HTTP/` begins in the request line.
  size_t version_at = 0;
  bool head = false;
  /// A byte after the header section has arrived.
  bool body_started = false;
  /// Beast finished the message.
  bool complete = false;
  /// The last `put` parsed a chunk-size line.
  bool chunk_line = false;
  /// Bytes of a chunk-size line or trailer section not complete yet that
  /// have been looked at for bare line breaks (parse_body).
  size_t line_checked = 0;
  /// The status of a failure found by a callback (Beast only has error
  /// codes).
  int callback_status = 0;
  // What the header fields said.
  unsigned hosts = 0;
  bool has_content_length = false;
  bool has_transfer_encoding = false;
  unsigned codings = 0;
  unsigned chunked_codings = 0;
  bool last_coding_chunked = false;
  bool connection_close = false;
  bool connection_keep_alive = false;
  request current;
  std::optional<message> beast;

  /// Parses from `p[0]` (stream offset `consumed`) to `p[n]`; appends
  /// complete requests to `out`, at most `max_requests`. Returns how many
  /// bytes are consumed: the rest must be kept for the next call.
  size_t parse(const char* p, size_t n, std::vector<request>& out,
               size_t max_requests);

  /// Looks at the header section at `q[0..n)` from `scanned` on. Returns its
  /// length once it is complete; 0 while it is not, or after a failure.
  size_t scan_header(const char* q, size_t n);

  /// Hands the complete header section `q[0..n)` to a new Beast parser.
  /// False after a failure.
  bool parse_header(const char* q, size_t n);

  /// Feeds body bytes `p[0..n)` (n > 0) to Beast. Returns how many it
  /// consumed; 0 may mean it needs more (a chunk line or the trailer
  /// section is not complete).
  size_t parse_body(const char* p, size_t n);

  void fail(int status) {
    if (failure == 0)
      failure = status;
  }

  /// Ready for the next request.
  void next_message() {
    in_body = false;
    ls = line_state::start;
    blank_bytes = 0;
    scanned = 0;
    pending = 0;
    head = false;
    body_started = false;
    complete = false;
    line_checked = 0;
    callback_status = 0;
    hosts = 0;
    has_content_length = false;
    has_transfer_encoding = false;
    codings = 0;
    chunked_codings = 0;
    last_coding_chunked = false;
    connection_close = false;
    connection_keep_alive = false;
    current = request{};
  }

  // -- Beast's callbacks (through `message`) ----------------------------------

  void on_request(std::string_view method, std::string_view target, int version,
                  error_code& ec);

  void on_field(bhttp::field name, std::string_view name_text,
                std::string_view value, bool trailer, error_code& ec);

  void on_header(boost::optional<std::uint64_t> content_length, bool chunked,
                 error_code& ec);

  void on_chunk_header(std::uint64_t size, std::string_view extensions,
                       error_code& ec);

  /// A check failed with `status`: Beast stops with `ec`.
  void refuse(int status, error_code& ec) {
    callback_status = status;
    ec = bhttp::error::bad_value;
  }
};

} // namespace quiesce::http
