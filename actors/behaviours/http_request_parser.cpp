#include "actors/behaviours/http_request_parser.hpp"
#include "actors/behaviours/http_syntax.hpp"

// Beast's own assertions stay off in this file (it is the only one that
// includes Beast): basic_parser.ipp asserts at least 5 bytes when it resumes
// a last chunk (`BOOST_ASSERT(n >= 5)`), which a body whose first chunk is
// the last one, fed `0\r\n` then `\r`, does not have. The code under the
// assertion handles 4 bytes correctly (it waits for more); release builds,
// which define NDEBUG, never check it.
#define BOOST_DISABLE_ASSERTS
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

namespace quiesce::http {

namespace {

namespace bhttp = boost::beast::http;

using namespace syntax; // the grammar of RFC 9110/9112 (http_syntax.hpp)

using boost::beast::error_code;

constexpr int bad_request = 400;
constexpr int payload_too_large = 413;
constexpr int uri_too_long = 414;
constexpr int header_fields_too_large = 431;
constexpr int not_implemented = 501;
constexpr int version_not_supported = 505;

/// The most hexadecimal digits of a chunk size: 16 give every 64-bit size;
/// more (leading zeros) are refused rather than counted.
constexpr size_t max_chunk_size_digits = 16;

/// Where the header section stands, byte by byte (see impl::scan_header).
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

} // namespace

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

request_parser::impl::~impl() = default;

size_t request_parser::impl::parse(const char* p, size_t n,
                                   std::vector<request>& out,
                                   size_t max_requests) {
  size_t pos = 0;
  size_t made = 0;
  for (;;) {
    if (!in_body && ls == line_state::start) {
      // Between requests: empty lines, or the first byte of the next one.
      for (;;) {
        if (consumed + pos >= end_mark) {
          // Every request begun before the end of the input is out: the
          // rest is dropped.
          ended = true;
          pending = 0;
          return n;
        }
        if (pos == n) {
          pending = 0;
          return pos;
        }
        if (made >= max_requests) {
          capped = true;
          pending = 0;
          return pos;
        }
        if (p[pos] != '\r')
          break;
        if (pos + 1 == n) {
          pending = 1; // the CR of an empty line
          return pos;
        }
        if (p[pos + 1] != '\n') {
          fail(bad_request);
          return pos;
        }
        pos += 2;
        blank_bytes += 2;
        if (blank_bytes > max_header_bytes) {
          fail(header_fields_too_large);
          return pos;
        }
      }
      ls = line_state::method;
      scanned = 0;
    }
    if (!in_body) {
      auto length = scan_header(p + pos, n - pos);
      if (failure != 0)
        return pos;
      if (length == 0) {
        pending = n - pos; // kept, from the first byte of the request line
        return pos;
      }
      if (!parse_header(p + pos, length))
        return pos;
      pos += length;
      blank_bytes = 0;
      scanned = 0;
      pending = 0;
      in_body = !complete;
    } else {
      if (pos == n)
        return pos;
      body_started = true;
      auto used = parse_body(p + pos, n - pos);
      if (failure != 0)
        return pos;
      if (used == 0)
        return pos; // needs more: keep the chunk line or trailer section
      pos += used;
    }
    if (complete) {
      out.push_back(std::move(current));
      ++made;
      next_message();
    }
  }
}

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

bool request_parser::impl::parse_header(const char* q, size_t n) {
  beast.emplace(*this);
  error_code ec;
  auto used = beast->put(boost::asio::const_buffer{q, n}, ec);
  if (!ec && used != n)
    ec = bhttp::error::need_more; // cannot happen: the section is whole
  if (ec) {
    fail(callback_status != 0 ? callback_status : bad_request);
    return false;
  }
  return true;
}

size_t request_parser::impl::parse_body(const char* p, size_t n) {
  // A chunk-size line, or the last-chunk line and the trailer section, is
  // looked at only within the header limit (and the CR LF that ends the
  // chunk before it).
  const size_t line_limit = max_header_bytes + 2;
  auto chunked = beast->chunked();
  auto given = chunked ? std::min(n, line_limit) : n;
  chunk_line = false;
  error_code ec;
  auto used = beast->put(boost::asio::const_buffer{p, given}, ec);
  if (ec == bhttp::error::need_more) {
    // Beast waits for the CR LF that ends a chunk-size line (or for the
    // empty line that ends the trailer section) before it looks at the
    // line: a bare LF or CR already here fails now, not when (if ever) the
    // rest comes.
    // (Only the bytes new since the last look, and the one before them:
    // a line trickling in is not scanned again and again.)
    std::string_view region{p, given};
    auto from = std::min(line_checked, given);
    from = from > 0 ? from - 1 : 0;
    line_checked = given;
    if (has_bare_line_break(region.substr(from), from == 0)) {
      fail(bad_request);
      return 0;
    }
    if (given < line_limit)
      return 0; // wait for the rest
    // Too long. With a line complete (after the CR LF that ends the
    // previous chunk), Beast waits for the end of the trailer section.
    auto line_begin = region.substr(0, 2) == "\r\n" ? 2 : 0;
    fail(region.find("\r\n", line_begin) != std::string_view::npos
           ? header_fields_too_large
           : bad_request);
    return 0;
  }
  if (ec) {
    fail(callback_status != 0 ? callback_status : bad_request);
    return 0;
  }
  line_checked = 0; // Beast consumed: the next line begins after it
  if (chunk_line) {
    std::string_view line{p, used};
    if (line.substr(0, 2) == "\r\n")
      line.remove_prefix(2);
    size_t digits = 0;
    while (digits < line.size()
           && std::isxdigit(static_cast<unsigned char>(line[digits])))
      ++digits;
    if (digits > max_chunk_size_digits) {
      fail(bad_request);
      return 0;
    }
    if (complete) {
      // Obsolete line folding in the trailer section: Beast accepts it.
      for (size_t i = 0; i + 1 < line.size(); ++i) {
        if (line[i] == '\n' && (line[i + 1] == ' ' || line[i + 1] == '\t')) {
          fail(bad_request);
          return 0;
        }
      }
    }
  }
  return used;
}

void request_parser::impl::on_request(std::string_view method,
                                      std::string_view target, int version,
                                      error_code& ec) {
  current.method.assign(method.data(), method.size());
  current.target.assign(target.data(), target.size());
  current.version_major = static_cast<unsigned>(version / 10);
  current.version_minor = static_cast<unsigned>(version % 10);
  if (!valid_target(method, target))
    refuse(bad_request, ec);
}

void request_parser::impl::on_field(bhttp::field name,
                                    std::string_view name_text,
                                    std::string_view value, bool trailer,
                                    error_code& ec) {
  // Trailer fields: Beast has checked their syntax (and refused framing
  // fields among them); none changes the request.
  if (trailer)
    return;
  current.headers.emplace_back(std::string{name_text}, std::string{value});
  switch (name) {
    case bhttp::field::host:
      // RFC 9112 3.2: one Host, with a valid value (empty is allowed).
      if (++hosts > 1 || !all_of_class(value, authority_char))
        refuse(bad_request, ec);
      break;
    case bhttp::field::content_length:
      // One field, one number: no list, no repetition, even of one value.
      if (has_content_length || value.empty()
          || value.find_first_not_of("0123456789") != std::string_view::npos)
        refuse(bad_request, ec);
      has_content_length = true;
      break;
    case bhttp::field::transfer_encoding:
      has_transfer_encoding = true;
      for_each_member(value, [&](std::string_view coding) {
        ++codings;
        last_coding_chunked = iequals(coding, "chunked");
        if (last_coding_chunked)
          ++chunked_codings;
        else if (!all_of_class(coding.substr(0, coding.find(';')), tchar))
          refuse(bad_request, ec);
      });
      break;
    case bhttp::field::connection:
      for_each_member(value, [&](std::string_view option) {
        if (iequals(option, "close"))
          connection_close = true;
        else if (iequals(option, "keep-alive"))
          connection_keep_alive = true;
      });
      break;
    default:
      break;
  }
}

void request_parser::impl::on_header(
  boost::optional<std::uint64_t> content_length, bool chunked, error_code& ec) {
  auto http11 = current.version_minor == 1;
  current.keep_alive = !connection_close && (http11 || connection_keep_alive);
  if (http11 && hosts == 0)
    return refuse(bad_request, ec);
  if (has_transfer_encoding) {
    // RFC 9112 6.1: not on HTTP/1.0, not with Content-Length; chunked once
    // (7.1), and last (6.3: else the length cannot be determined).
    if (!http11 || has_content_length || codings == 0 || chunked_codings != 1
        || !last_coding_chunked)
      return refuse(bad_request, ec);
    // Another coding before it: one this server does not understand.
    if (codings > 1)
      return refuse(not_implemented, ec);
  }
  // Beast frames the body by its own reading of these fields: it must be
  // the same as the one checked here.
  if (chunked != has_transfer_encoding
      || content_length.has_value() != has_content_length)
    return refuse(bad_request, ec);
  if (content_length && *content_length > max_body_bytes)
    return refuse(payload_too_large, ec);
}

void request_parser::impl::on_chunk_header(std::uint64_t size,
                                           std::string_view extensions,
                                           error_code& ec) {
  chunk_line = true;
  // Beast checks the grammar of chunk extensions, but lets control
  // characters through in a quoted string.
  for (auto c : extensions) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f)
      return refuse(bad_request, ec);
  }
  if (size > max_body_bytes - current.body.size())
    refuse(payload_too_large, ec);
}

// -- request_parser
// ------------------------------------------------------------

request_parser::request_parser(size_t max_header_bytes, size_t max_body_bytes)
    : impl_(std::make_unique<impl>(max_header_bytes, max_body_bytes)) {
  // nop
}

request_parser::~request_parser() = default;

int request_parser::feed(std::string_view bytes, std::vector<request>& out,
                         size_t max_requests) {
  auto& st = *impl_;
  if (failure_ != 0)
    return failure_;
  st.fed += bytes.size();
  if (st.ended)
    return 0;
  st.capped = false;
  size_t used = 0;
  if (st.kept() == 0) {
    // The common case: straight from the caller's bytes, no copy.
    used = st.parse(bytes.data(), bytes.size(), out, max_requests);
    if (st.failure == 0 && !st.ended && used < bytes.size())
      st.buf.assign(bytes.data() + used, bytes.size() - used);
  } else {
    if (!bytes.empty()) {
      st.buf.erase(0, st.buf_start);
      st.buf_start = 0;
      st.buf.append(bytes.data(), bytes.size());
    }
    used = st.parse(st.buf.data() + st.buf_start, st.kept(), out, max_requests);
    st.buf_start += used;
  }
  st.consumed += used;
  failure_ = st.failure;
  if (failure_ != 0 || st.ended || st.kept() == 0)
    st.drop_kept(); // (an idle connection keeps no buffer)
  return failure_;
}

size_t request_parser::unparsed() const noexcept {
  return impl_->capped ? impl_->kept() : 0;
}

void request_parser::end_input() {
  auto& st = *impl_;
  st.end_mark = std::min(st.end_mark, st.fed);
  if (failure_ == 0 && !st.ended && !mid_request()) {
    st.ended = true;
    st.drop_kept();
  }
}

bool request_parser::input_ended() const noexcept {
  return impl_->ended;
}

bool request_parser::mid_request() const noexcept {
  auto& st = *impl_;
  // Empty lines between requests count towards the header limit, but they
  // are no request (RFC 9112 2.2 lets a server ignore them).
  return failure_ == 0 && !st.ended
         && (st.in_body || st.ls != line_state::start
             || (st.capped && st.kept() > 0));
}

bool request_parser::in_header_section() const noexcept {
  auto& st = *impl_;
  return failure_ == 0 && !st.ended && !st.in_body && !st.capped
         && (st.ls != line_state::start || st.blank_bytes > 0
             || st.pending > 0);
}

bool request_parser::in_body() const noexcept {
  auto& st = *impl_;
  return failure_ == 0 && !st.ended && st.in_body;
}

const request* request_parser::awaiting_body() const noexcept {
  auto& st = *impl_;
  if (failure_ != 0 || st.ended || !st.in_body || st.body_started)
    return nullptr;
  return &st.current;
}

bool request_parser::head_request() const noexcept {
  return impl_->head;
}

} // namespace quiesce::http
