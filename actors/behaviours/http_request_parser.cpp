#include "actors/behaviours/http_request_parser.hpp"

#include <http_parser.h>

namespace quiesce::http {

namespace {

constexpr int bad_request = 400;
constexpr int payload_too_large = 413;
constexpr int header_fields_too_large = 431;

} // namespace

/// The http_parser state and the callbacks that build requests. The parser
/// is paused at the end of each header section and each message, so that
/// every call of http_parser_execute covers one phase of one request: the
/// header bytes are counted exactly and pipelined requests come out one by
/// one.
struct request_parser::impl {
  http_parser parser;
  size_t max_header_bytes;
  size_t max_body_bytes;
  /// Inside a request: its first byte arrived, its end did not.
  bool in_message = false;
  /// The current request's header section is complete.
  bool headers_done = false;
  /// Some of the current request's body has arrived (for a chunked body,
  /// the first byte of its first chunk-size line).
  bool body_started = false;
  /// Bytes of the current header section so far (and of blank lines before
  /// it, which clients may send between requests).
  size_t header_bytes = 0;
  /// The last http_parser_execute call ended at the end of a header
  /// section: it stops before the section's final LF, which the next call
  /// consumes.
  bool headers_just_done = false;
  /// Why a callback failed; 400 unless a limit was hit.
  int callback_failure = 0;
  request current;
  std::string field;
  std::string value;
  bool in_value = false;
  std::vector<request>* out = nullptr;

  impl(size_t max_header, size_t max_body)
      : max_header_bytes(max_header), max_body_bytes(max_body) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = this;
  }

  /// The callbacks, the same for every parser (they find theirs through
  /// `parser.data`): made once, not kept by each connection.
  static const http_parser_settings* settings() {
    static const http_parser_settings instance = make_settings();
    return &instance;
  }

  static http_parser_settings make_settings() {
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_message_begin = [](http_parser* p) {
      auto& self = *static_cast<impl*>(p->data);
      self.in_message = true;
      self.body_started = false;
      self.current = request{};
      self.field.clear();
      self.value.clear();
      self.in_value = false;
      return 0;
    };
    settings.on_url = [](http_parser* p, const char* at, size_t n) {
      static_cast<impl*>(p->data)->current.target.append(at, n);
      return 0;
    };
    settings.on_header_field = [](http_parser* p, const char* at, size_t n) {
      auto& self = *static_cast<impl*>(p->data);
      if (self.in_value) {
        self.end_header();
      }
      self.field.append(at, n);
      return 0;
    };
    settings.on_header_value = [](http_parser* p, const char* at, size_t n) {
      auto& self = *static_cast<impl*>(p->data);
      self.in_value = true;
      self.value.append(at, n);
      return 0;
    };
    settings.on_headers_complete = [](http_parser* p) {
      auto& self = *static_cast<impl*>(p->data);
      if (self.in_value)
        self.end_header();
      self.headers_done = true;
      self.headers_just_done = true;
      if (!self.valid_field_names())
        return -1;
      // The head is complete: `awaiting_body` shows it from here on.
      self.set_head(p);
      // A declared body above the limit fails before any of it is read.
      if ((p->flags & F_CONTENTLENGTH) != 0
          && p->content_length > self.max_body_bytes) {
        self.callback_failure = payload_too_large;
        return -1;
      }
      http_parser_pause(p, 1);
      return 0;
    };
    settings.on_body = [](http_parser* p, const char* at, size_t n) {
      auto& self = *static_cast<impl*>(p->data);
      if (self.current.body.size() + n > self.max_body_bytes) {
        self.callback_failure = payload_too_large;
        return -1;
      }
      self.current.body.append(at, n);
      return 0;
    };
    settings.on_message_complete = [](http_parser* p) {
      auto& self = *static_cast<impl*>(p->data);
      if (self.in_value)
        self.end_header(); // the last trailer of a chunked body
      if (!self.valid_field_names())
        return -1;
      // Again: http_parser counts a `Connection` field in the trailer
      // section of a chunked body too.
      self.set_head(p);
      self.out->push_back(std::move(self.current));
      self.in_message = false;
      self.headers_done = false;
      self.header_bytes = 0;
      http_parser_pause(p, 1);
      return 0;
    };
    return settings;
  }

  /// RFC 9110 field names are tokens: no whitespace, in particular none
  /// before the colon (RFC 9112 5.1: a server must reject that with 400).
  /// Debian's http_parser is built lenient and lets it through.
  bool valid_field_names() {
    for (auto& kvp : current.headers) {
      auto& name = kvp.first;
      if (name.empty())
        return false;
      for (auto c : name) {
        auto u = static_cast<unsigned char>(c);
        auto token = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')
                     || (u >= '0' && u <= '9')
                     || std::string_view{"!#$%&'*+-.^_`|~"}.find(c)
                          != std::string_view::npos;
        if (!token)
          return false;
      }
    }
    return true;
  }

  /// Copies what http_parser knows of the request line and the connection
  /// into the current request.
  void set_head(http_parser* p) {
    current.method = http_method_str(static_cast<http_method>(p->method));
    current.version_major = p->http_major;
    current.version_minor = p->http_minor;
    current.keep_alive = http_should_keep_alive(p) != 0;
  }

  void end_header() {
    current.headers.emplace_back(std::move(field), std::move(value));
    field.clear();
    value.clear();
    in_value = false;
  }
};

request_parser::request_parser(size_t max_header_bytes, size_t max_body_bytes)
    : impl_(std::make_unique<impl>(max_header_bytes, max_body_bytes)) {
  // nop
}

request_parser::~request_parser() = default;

int request_parser::feed(std::string_view bytes, std::vector<request>& out) {
  if (failure_ != 0)
    return failure_;
  auto& st = *impl_;
  st.out = &out;
  while (!bytes.empty()) {
    auto in_header_phase = !st.headers_done;
    // This call starts with the final LF of the header section.
    auto after_header_section = st.headers_just_done;
    st.headers_just_done = false;
    auto n = http_parser_execute(&st.parser, impl::settings(), bytes.data(),
                                 bytes.size());
    if (in_header_phase) {
      // Paused at the end of the header section, http_parser has not
      // consumed its final LF yet: count it here, with the section.
      st.header_bytes += n + (st.headers_just_done ? 1 : 0);
      if (st.header_bytes > st.max_header_bytes)
        return failure_ = header_fields_too_large;
    } else if (n > (after_header_section ? 1u : 0u)) {
      // More than that LF: body bytes. (If they completed the request,
      // the flag no longer matters: the next request resets it.)
      st.body_started = true;
    }
    auto err = HTTP_PARSER_ERRNO(&st.parser);
    if (err == HPE_PAUSED) {
      http_parser_pause(&st.parser, 0);
    } else if (err == HPE_HEADER_OVERFLOW) {
      return failure_ = header_fields_too_large;
    } else if (err != HPE_OK) {
      return failure_
             = st.callback_failure != 0 ? st.callback_failure : bad_request;
    }
    bytes.remove_prefix(n);
    if (st.parser.upgrade != 0 && !st.in_message) {
      // CONNECT or an Upgrade request: http_parser stops here. Serve the
      // request as plain HTTP (quiesce upgrades nothing) and parse on.
      http_parser_init(&st.parser, HTTP_REQUEST);
      st.parser.data = &st;
    } else if (n == 0 && err != HPE_PAUSED) {
      // No progress without an error: cannot happen with http_parser 2.9,
      // but a loop that cannot end must not depend on that.
      return failure_ = bad_request;
    }
  }
  return 0;
}

bool request_parser::mid_request() const noexcept {
  // Blank lines between requests count towards the header limit, but they
  // are no request (RFC 9112 2.2 lets a server ignore them).
  return impl_->in_message;
}

bool request_parser::in_header_section() const noexcept {
  auto& st = *impl_;
  return failure_ == 0 && !st.headers_done
         && (st.in_message || st.header_bytes > 0);
}

const request* request_parser::awaiting_body() const noexcept {
  auto& st = *impl_;
  if (failure_ != 0 || !st.in_message || !st.headers_done || st.body_started)
    return nullptr;
  return &st.current;
}

} // namespace quiesce::http
