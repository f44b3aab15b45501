#include "support/json.hpp"

#include <cstdint>
#include <cstdlib>

namespace quiesce::test {

namespace {

/// A recursive-descent reader over `text`; `fail` records the first error.
class reader {
public:
  explicit reader(std::string_view text) : text_(text) {}

  std::optional<json_object> object_document() {
    skip_space();
    json_object result;
    if (!object(&result))
      return std::nullopt;
    skip_space();
    if (pos_ != text_.size())
      return fail("text after the object");
    return result;
  }

  const std::string& error() const {
    return error_;
  }

private:
  std::nullopt_t fail(const std::string& why) {
    if (error_.empty())
      error_ = why + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }

  bool at_end() const {
    return pos_ >= text_.size();
  }

  char peek() const {
    return at_end() ? '\0' : text_[pos_];
  }

  void skip_space() {
    while (
      !at_end()
      && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos_;
  }

  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) {
      fail("bad literal");
      return false;
    }
    pos_ += word.size();
    return true;
  }

  /// An object; its scalar members into `out` if not null.
  bool object(json_object* out) {
    if (peek() != '{') {
      fail("no object");
      return false;
    }
    ++pos_;
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_space();
      std::string key;
      if (!string(key))
        return false;
      skip_space();
      if (peek() != ':') {
        fail("no colon");
        return false;
      }
      ++pos_;
      skip_space();
      json_value val;
      if (!value(val))
        return false;
      if (out != nullptr && !out->emplace(key, std::move(val)).second) {
        fail("member '" + key + "' twice");
        return false;
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return true;
      }
      fail("no comma or closing brace");
      return false;
    }
  }

  bool array() {
    ++pos_; // '['
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_space();
      json_value ignored;
      if (!value(ignored))
        return false;
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return true;
      }
      fail("no comma or closing bracket");
      return false;
    }
  }

  bool value(json_value& out) {
    switch (peek()) {
      case '"':
        out.type = json_value::kind::string;
        return string(out.text);
      case '{':
        out.type = json_value::kind::other;
        return object(nullptr);
      case '[':
        out.type = json_value::kind::other;
        return array();
      case 't':
        out.type = json_value::kind::boolean;
        out.boolean = true;
        return literal("true");
      case 'f':
        out.type = json_value::kind::boolean;
        return literal("false");
      case 'n':
        out.type = json_value::kind::null;
        return literal("null");
      default:
        out.type = json_value::kind::number;
        return number(out);
    }
  }

  bool digits() {
    auto start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9')
      ++pos_;
    return pos_ > start;
  }

  bool number(json_value& out) {
    auto start = pos_;
    if (peek() == '-')
      ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (!digits()) {
      fail("bad value");
      return false;
    }
    if (peek() == '.') {
      ++pos_;
      if (!digits()) {
        fail("no digits after the point");
        return false;
      }
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-')
        ++pos_;
      if (!digits()) {
        fail("no digits in the exponent");
        return false;
      }
    }
    out.text = std::string{text_.substr(start, pos_ - start)};
    out.number = std::strtod(out.text.c_str(), nullptr);
    return true;
  }

  int hex_digit(char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  }

  bool hex4(uint32_t& out) {
    out = 0;
    for (int i = 0; i < 4; ++i) {
      auto d = hex_digit(peek());
      if (d < 0) {
        fail("bad \\u escape");
        return false;
      }
      out = out * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    return true;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  /// The length of a well-formed UTF-8 sequence at `pos_` (RFC 3629), or 0.
  size_t utf8_length() const {
    auto byte = [&](size_t i) {
      return pos_ + i < text_.size()
               ? static_cast<unsigned char>(text_[pos_ + i])
               : 0u;
    };
    auto lead = byte(0);
    size_t len = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF)
      len = 2;
    else if (lead >= 0xE0 && lead <= 0xEF)
      len = 3;
    else if (lead >= 0xF0 && lead <= 0xF4)
      len = 4;
    else
      return 0;
    if (lead == 0xE0)
      lo = 0xA0;
    else if (lead == 0xED)
      hi = 0x9F;
    else if (lead == 0xF0)
      lo = 0x90;
    else if (lead == 0xF4)
      hi = 0x8F;
    if (byte(1) < lo || byte(1) > hi)
      return 0;
    for (size_t i = 2; i < len; ++i)
      if (byte(i) < 0x80 || byte(i) > 0xBF)
        return 0;
    return len;
  }

  bool string(std::string& out) {
    if (peek() != '"') {
      fail("no string");
      return false;
    }
    ++pos_;
    for (;;) {
      if (at_end()) {
        fail("unterminated string");
        return false;
      }
      auto c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) {
        fail("raw control character in a string");
        return false;
      }
      if (c >= 0x80) {
        auto len = utf8_length();
        if (len == 0) {
          fail("invalid UTF-8 in a string");
          return false;
        }
        out.append(text_.substr(pos_, len));
        pos_ += len;
        continue;
      }
      ++pos_;
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      auto esc = peek();
      ++pos_;
      switch (esc) {
        case '"':
        case '\\':
        case '/':
          out += esc;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp))
            return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (!literal("\\u") || !hex4(low) || low < 0xDC00 || low > 0xDFFF) {
              fail("lone high surrogate");
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("lone low surrogate");
            return false;
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail("bad escape");
          return false;
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

} // namespace

std::optional<json_object> parse_json_object(std::string_view text,
                                             std::string* error) {
  reader r{text};
  auto result = r.object_document();
  if (!result && error != nullptr)
    *error = r.error();
  return result;
}

} // namespace quiesce::test
