// The HTTP request parser (http_request_parser.hpp): requests and bodies fed
// to Beast, and the parser's public functions. The header section's scan
// and the callbacks' checks are in http_header_scan.cpp and
// http_request_checks.cpp; the state they share in
// http_request_parser_impl.hpp.

#include "actors/behaviours/http_request_parser_impl.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

#include "actors/behaviours/http_syntax.hpp"

namespace quiesce::http {

namespace {

using namespace syntax; // the grammar of RFC 9110/9112 (http_syntax.hpp)

} // namespace

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
         && (st.in_body || st.ls != impl::line_state::start
             || (st.capped && st.kept() > 0));
}

bool request_parser::in_header_section() const noexcept {
  auto& st = *impl_;
  return failure_ == 0 && !st.ended && !st.in_body && !st.capped
         && (st.ls != impl::line_state::start || st.blank_bytes > 0
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
