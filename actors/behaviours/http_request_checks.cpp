// What the HTTP request parser checks of what Beast lets through, in Beast's
// callbacks (http_request_parser_impl.hpp): the request line, Host,
// Content-Length, Transfer-Encoding, Connection, chunk sizes.

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

} // namespace quiesce::http
