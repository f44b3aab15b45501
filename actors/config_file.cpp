#include "actors/config_file.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <tuple>
#include <unistd.h>
#include <utility>

#include "caf/config_option.hpp"
#include "caf/detail/ini_consumer.hpp"
#include "caf/detail/parser/read_ini.hpp"
#include "caf/parser_state.hpp"
#include "caf/pec.hpp"

#include "quiesce/options.hpp"

namespace quiesce {

namespace {

/// CAF's default config file, read from the working directory.
constexpr const char* default_config_file = "caf-application.ini";

using text_state = caf::parser_state<const char*, const char*>;

/// Where the entries of a parse go, and where the parser is.
struct parse_context {
  /// The text the parser reads.
  const char* begin = nullptr;
  /// The text as written: the same length, the same positions (see
  /// `defuse_durations`).
  const char* original = nullptr;
  const text_state* ps = nullptr;
  std::vector<config_entry> entries;
};

/// Line and column (from 1) of `pos` in the text from `begin`. Counted here:
/// CAF's parser state counts a line break as the first character of the
/// next line, and misses one at the very start.
std::pair<int, int> position(const char* begin, const char* pos) {
  int line = 1;
  auto line_begin = begin;
  for (auto i = begin; i < pos; ++i) {
    if (*i == '\n') {
      ++line;
      line_begin = i + 1;
    }
  }
  return {line, static_cast<int>(pos - line_begin) + 1};
}

/// Takes the keys and values of one section (or of a map value) from CAF's
/// INI parser, with the line of each key and the text of each value. The
/// parser calls it as it calls CAF's own consumers.
class section_consumer : public caf::detail::abstract_ini_consumer {
public:
  /// A section of the file (`value_map` false), or a map that is the value
  /// of a key in `outer` (`value_map` true).
  section_consumer(parse_context& ctx, std::string category,
                   section_consumer* outer, bool value_map)
      : abstract_ini_consumer(outer), ctx_(ctx), category_(std::move(category)),
        outer_(outer), value_map_(value_map) {
    // nop
  }

  void key(std::string name) {
    key_ = std::move(name);
    // At the `=` (or the `{` of a map): the value's text follows.
    value_begin_ = ctx_.ps->i;
    line_ = position(ctx_.begin, value_begin_).first;
  }

  void value_impl(caf::config_value&& x) override {
    if (value_map_) {
      map_.emplace(key_, std::move(x));
      return;
    }
    config_entry entry;
    entry.category = category_;
    entry.key = key_;
    entry.line = line_;
    auto scalar = !caf::holds_alternative<caf::config_value::list>(x)
                  && !caf::holds_alternative<caf::config_value::dictionary>(x);
    if (scalar && value_begin_ != nullptr && ctx_.ps->i > value_begin_) {
      // The text as written, from the original at the same position.
      std::string_view raw{ctx_.original + (value_begin_ - ctx_.begin) + 1,
                           static_cast<size_t>(ctx_.ps->i - value_begin_ - 1)};
      auto first = raw.find_first_not_of(" \t");
      auto last = raw.find_last_not_of(" \t\n");
      if (first != std::string_view::npos)
        entry.raw = std::string{raw.substr(first, last - first + 1)};
    }
    entry.value = std::move(x);
    ctx_.entries.push_back(std::move(entry));
  }

  /// A map after `key`: in the global section a section of its own (as
  /// `stream { ... }`), elsewhere the key's value.
  section_consumer begin_map() {
    if (!value_map_ && category_ == "global")
      return section_consumer{ctx_, key_, this, false};
    return section_consumer{ctx_, category_, this, true};
  }

  void end_map() {
    if (value_map_ && outer_ != nullptr)
      outer_->value_impl(caf::config_value{std::move(map_)});
  }

private:
  parse_context& ctx_;
  std::string category_;
  section_consumer* outer_;
  bool value_map_;
  std::string key_;
  int line_ = 0;
  const char* value_begin_ = nullptr;
  caf::config_value::dictionary map_;
};

/// The top level of the file: sections.
class file_consumer {
public:
  explicit file_consumer(parse_context& ctx) : ctx_(ctx) {
    // nop
  }

  void key(std::string name) {
    section_ = std::move(name);
  }

  section_consumer begin_map() {
    return section_consumer{ctx_, section_, nullptr, false};
  }

private:
  parse_context& ctx_;
  std::string section_;
};

std::string humanize(caf::pec code) {
  auto text = to_string(code);
  std::replace(text.begin(), text.end(), '_', ' ');
  return text;
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'
         || c == '.';
}

bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

/// Where `defuse_numbers` changed the text first, or npos.
struct defused {
  /// A duration that does not fit in a timespan.
  size_t overflow = std::string::npos;
  /// A number with a leading zero.
  size_t leading_zero = std::string::npos;
};

/// Replaces with zeros, outside strings, atoms and comments, the digits of
/// - every duration in `text` that does not fit in a timespan
///   (`1000000000h`): CAF's parser multiplies such a count by its unit with
///   signed overflow (undefined behaviour);
/// - every number with a leading zero (`010`, `08080`, `010ms`): CAF reads
///   it as octal, or fails on its first 8 or 9 with a syntax error about
///   the next character.
/// The parser then reads `0000000000h` or `00000`, and the entry's raw text
/// (taken from the original) still says what was written, which the rules
/// judge (options::judge_text).
defused defuse_numbers(std::string& text) {
  defused result;
  size_t i = 0;
  auto skip_to = [&](char end) {
    for (++i; i < text.size() && text[i] != end; ++i)
      if (end == '"' && text[i] == '\\')
        ++i;
  };
  while (i < text.size()) {
    auto c = text[i];
    if (c == ';') {
      skip_to('\n');
    } else if (c == '"' || c == '\'') {
      skip_to(c);
    } else if (is_digit(c)
               && (i == 0 || !is_word_char(text[i - 1])
                   || text[i - 1] == '-')) {
      // A number and its unit: digits, then letters.
      auto digits_end = i;
      while (digits_end < text.size() && is_digit(text[digits_end]))
        ++digits_end;
      auto end = digits_end;
      while (end < text.size()
             && std::isalpha(static_cast<unsigned char>(text[end])))
        ++end;
      auto token = std::string_view{text}.substr(i, end - i);
      auto* first = &result.overflow;
      if (!options::duration_overflows(token))
        first = digits_end - i > 1 && c == '0' ? &result.leading_zero : nullptr;
      if (first != nullptr) {
        *first = std::min(*first, i);
        std::fill(text.begin() + static_cast<std::ptrdiff_t>(i),
                  text.begin() + static_cast<std::ptrdiff_t>(digits_end), '0');
      }
      i = end;
      continue;
    }
    ++i;
  }
  return result;
}

/// The largest config file read: a file of quiesce's few dozen options is
/// a few KiB, and one that never ends (`/dev/zero`, a FIFO) must not take
/// all the memory there is.
constexpr size_t max_config_file = size_t{1} << 20;

/// Reads all of `path`; false with `errno` set on failure (EFBIG: more than
/// `max_config_file` bytes).
bool read_all(const std::string& path, std::string& out) {
  auto fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n > 0 && out.size() + static_cast<size_t>(n) > max_config_file) {
      ::close(fd);
      errno = EFBIG;
      return false;
    }
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      ::close(fd);
      return true;
    } else if (errno != EINTR) {
      auto err = errno;
      ::close(fd);
      errno = err;
      return false;
    }
  }
}

/// A hint for an unknown key: the spelling with dashes, or that the section
/// does not exist.
std::string unknown_hint(const caf::config_option_set& opts,
                         const config_entry& entry) {
  auto dashed = entry.key;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  if (dashed != entry.key
      && opts.qualified_name_lookup(entry.category, dashed) != nullptr)
    return " (did you mean " + dashed + "?)";
  auto known = std::any_of(opts.begin(), opts.end(), [&](auto& opt) {
    return opt.category() == entry.category;
  });
  if (!known)
    return " (there is no section [" + entry.category + "])";
  return {};
}

} // namespace

std::string read_config_file(const caf::config_option_set& opts,
                             const std::vector<std::string>& args,
                             config_file& out) {
  out = config_file{};
  out.path = default_config_file;
  bool named = false;
  if (auto* opt = opts.qualified_name_lookup("global.config-file")) {
    auto [i, value] = caf::find_by_long_name(*opt, args.begin(), args.end());
    if (i != args.end()) {
      if (value.empty())
        return "missing value in '" + *i + "'";
      auto parsed = opt->parse(value);
      auto* path = parsed ? caf::get_if<std::string>(&*parsed) : nullptr;
      if (path == nullptr)
        return "bad value in '" + *i + "'";
      out.path = *path;
      named = true;
    }
  }
  if (read_all(out.path, out.text)) {
    out.found = true;
    return {};
  }
  if (errno == ENOENT && !named)
    return {};
  if (errno == ENOENT)
    return "cannot open the config file '" + out.path + "'";
  if (errno == EFBIG)
    return "cannot read the config file '" + out.path + "': larger than 1 MiB";
  return "cannot read the config file '" + out.path
         + "': " + std::strerror(errno);
}

config_parse_result parse_config_text(std::string_view text) {
  config_parse_result result;
  std::string defused{text};
  auto changed = defuse_numbers(defused);
  if (changed.overflow != std::string::npos) {
    result.overflow = true;
    std::tie(result.overflow_line, result.overflow_column)
      = position(text.data(), text.data() + changed.overflow);
  }
  if (changed.leading_zero != std::string::npos) {
    result.leading_zero = true;
    std::tie(result.leading_zero_line, result.leading_zero_column)
      = position(text.data(), text.data() + changed.leading_zero);
  }
  parse_context ctx;
  text_state ps{defused.data(), defused.data() + defused.size()};
  ctx.begin = defused.data();
  ctx.original = text.data();
  ctx.ps = &ps;
  file_consumer consumer{ctx};
  caf::detail::parser::read_ini(ps, consumer);
  if (ps.code > caf::pec::trailing_character || ps.i != ps.e) {
    result.ok = false;
    std::tie(result.line, result.column) = position(defused.data(), ps.i);
    auto code = ps.code > caf::pec::trailing_character
                  ? ps.code
                  : caf::pec::unexpected_character;
    result.error = humanize(code);
    if (code == caf::pec::unexpected_character && ps.i != ps.e) {
      auto c = static_cast<unsigned char>(*ps.i);
      if (c == '\r') {
        result.error = "unexpected carriage return (CR): lines must end in "
                       "LF alone";
      } else if (c < 0x20 || c >= 0x7f) {
        // Never the raw byte: a control character, or one byte of a UTF-8
        // character, on standard error.
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02X", c);
        result.error = std::string{"unexpected byte "} + hex;
        if (c >= 0x80)
          result.error += " (outside strings and comments the file is ASCII)";
      } else {
        result.error += " '" + std::string(1, *ps.i) + "'";
        if (std::isalpha(c))
          result.error += "; a string is written in double quotes, an atom "
                          "in single quotes";
      }
    }
    return result;
  }
  result.entries = std::move(ctx.entries);
  return result;
}

std::string check_config_file(const caf::config_option_set& opts,
                              const std::string& path, std::string_view text) {
  auto parsed = parse_config_text(text);
  if (!parsed.ok)
    return "syntax error in " + path + " line " + std::to_string(parsed.line)
           + " column " + std::to_string(parsed.column) + " (" + parsed.error
           + ")";
  std::map<std::string, int> seen;
  for (auto& entry : parsed.entries) {
    auto name = entry.category == "global" ? entry.key
                                           : entry.category + "." + entry.key;
    auto where = path + " line " + std::to_string(entry.line);
    auto value = entry.raw.empty() ? to_string(entry.value) : entry.raw;
    auto* opt = opts.qualified_name_lookup(entry.category, entry.key);
    if (opt == nullptr)
      return "unknown option in " + where + ": " + name
             + unknown_hint(opts, entry);
    if (auto [i, added] = seen.emplace(name, entry.line); !added)
      return "option given twice in " + where + ": " + name + " (first on line "
             + std::to_string(i->second) + ")";
    if (opt->check(entry.value)) {
      std::string type{opt->type_name().begin(), opt->type_name().end()};
      if (type == "atom")
        type += ", a word in single quotes";
      return "bad value in " + where + ": " + name + " = " + value
             + " (expected " + type + ")";
    }
    auto what = options::judge(*opt, entry.value, entry.raw,
                               options::origin::config_file);
    if (!what.ok())
      return options::describe(what,
                               "in " + where + ": " + name + " = " + value);
  }
  // A duration too large, or a number with a leading zero, that no check
  // above caught (say, in a list).
  if (parsed.overflow)
    return "bad value in " + path + " line "
           + std::to_string(parsed.overflow_line) + " column "
           + std::to_string(parsed.overflow_column)
           + " (a duration of more than 2562047h)";
  if (parsed.leading_zero)
    return "bad value in " + path + " line "
           + std::to_string(parsed.leading_zero_line) + " column "
           + std::to_string(parsed.leading_zero_column)
           + " (a number with a leading zero: numbers are decimal, without "
             "one)";
  return {};
}

} // namespace quiesce
