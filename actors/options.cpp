#include "quiesce/options.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "caf/actor_system_config.hpp"
#include "caf/atom.hpp"
#include "caf/pec.hpp"
#include "caf/sec.hpp"

#include "quiesce/log.hpp"

#include "actors/listener.hpp"

namespace quiesce::options {

namespace {

constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

} // namespace

std::string name_of(const caf::config_option& opt) {
  std::string result;
  if (opt.category() != "global") {
    result.assign(opt.category().begin(), opt.category().end());
    result += '.';
  }
  result.append(opt.long_name().begin(), opt.long_name().end());
  return result;
}

namespace {

/// What kind of number an option takes, by CAF's name of its type.
enum class number_kind { none, unsigned_integer, signed_integer, duration };

number_kind number_kind_of(const caf::config_option& opt) {
  std::string_view type{opt.type_name().data(), opt.type_name().size()};
  if (type == "timespan")
    return number_kind::duration;
  // CAF names its integer types int8 ... uint64.
  auto is_unsigned = type.substr(0, 1) == "u";
  if (is_unsigned)
    type.remove_prefix(1);
  if (type.substr(0, 3) != "int")
    return number_kind::none;
  type.remove_prefix(3);
  if (type != "8" && type != "16" && type != "32" && type != "64")
    return number_kind::none;
  return is_unsigned ? number_kind::unsigned_integer
                     : number_kind::signed_integer;
}

} // namespace

bool plain_decimal(std::string_view text, bool allow_minus) {
  if (allow_minus && text.substr(0, 1) == "-")
    text.remove_prefix(1);
  if (text.empty()
      || text.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  return text.size() == 1 || text.front() != '0';
}

verdict judge_text(const caf::config_option& opt, std::string_view raw) {
  if (raw.empty())
    return {};
  switch (number_kind_of(opt)) {
    case number_kind::none:
      return {};
    case number_kind::unsigned_integer:
      if (plain_decimal(raw, false))
        return {};
      return {rule_kind::check, "must be a decimal integer: digits only, no "
                                "sign, no leading zero"};
    case number_kind::signed_integer:
      if (plain_decimal(raw, true))
        return {};
      return {rule_kind::check, "must be a decimal integer: digits and a '-' "
                                "if negative, no leading zero"};
    case number_kind::duration:
      break;
  }
  // The count's digits, after a sign; the rest is the duration rule's.
  auto count = raw;
  if (count.front() == '+' || count.front() == '-')
    count.remove_prefix(1);
  auto digits = count.substr(0, count.find_first_not_of("0123456789"));
  if (digits.size() > 1 && digits.front() == '0')
    return {rule_kind::check, "must be a duration whose count has no leading "
                              "zero (10ms, not 010ms)"};
  return {};
}

verdict judge(const caf::config_option& opt, const caf::config_value& value,
              std::string_view raw, origin from) {
  auto* x = find_rule(name_of(opt));
  if (x == nullptr) {
    // No rule (a protocol of a server binary of its own): a number must
    // still be written as the rules want, and a duration must be one that
    // CAF's parser did not wrap around.
    if (auto text = judge_text(opt, raw); !text.ok())
      return text;
    if (caf::holds_alternative<caf::timespan>(value) && duration_overflows(raw))
      return {rule_kind::check, "must be a duration of at most 2562047h"};
    return {};
  }
  switch (x->kind) {
    case rule_kind::refuse:
      return {x->kind, x->text};
    case rule_kind::command_line_only:
      if (from == origin::command_line)
        return {};
      return {x->kind, x->text};
    case rule_kind::check:
      break;
  }
  if (auto text = judge_text(opt, raw); !text.ok())
    return text;
  if (x->accepts(value, raw))
    return {};
  return {x->kind, "must be " + x->text};
}

std::string describe(const verdict& what, const std::string& subject) {
  switch (what.kind) {
    case rule_kind::refuse:
      return "unsupported option " + subject + " (" + what.text + ")";
    case rule_kind::command_line_only:
      return "option only for the command line " + subject;
    case rule_kind::check:
      break;
  }
  return "bad value " + subject + " (" + what.text + ")";
}

namespace {

/// An option on the command line: `--NAME=RAW` (or a flag `--NAME`).
struct argument {
  const caf::config_option* opt;
  const std::string* arg;
  std::string_view raw;
};

/// The options of `args` that `opts` knows, in order, up to the remainder
/// (where CAF's parser stops).
std::vector<argument> arguments(const caf::config_option_set& opts,
                                const std::vector<std::string>& args) {
  std::vector<argument> result;
  for (auto& arg : args) {
    std::string_view body{arg};
    if (body.substr(0, 2) != "--") {
      if (body.substr(0, 1) == "-")
        continue; // a short option (-h)
      break;      // the remainder
    }
    body.remove_prefix(2);
    if (body.substr(0, 4) == "caf#")
      body.remove_prefix(4);
    auto eq = body.find('=');
    auto name = body.substr(0, eq);
    auto raw
      = eq == std::string_view::npos ? std::string_view{} : body.substr(eq + 1);
    if (auto* opt = opts.cli_long_name_lookup({name.data(), name.size()}))
      result.push_back({opt, &arg, raw});
  }
  return result;
}

} // namespace

std::string check_numbers(const caf::config_option_set& opts,
                          const std::vector<std::string>& args) {
  for (auto& x : arguments(opts, args)) {
    // An option refused whatever its value is judged as such below (or
    // after CAF's parse), not by its text.
    auto* x_rule = find_rule(name_of(*x.opt));
    verdict what;
    if (x_rule == nullptr || x_rule->kind == rule_kind::check)
      what = judge_text(*x.opt, x.raw);
    if (what.ok() && x.opt->type_name() == "timespan"
        && duration_overflows(x.raw))
      what = judge(*x.opt, caf::config_value{caf::timespan{0}}, x.raw,
                   origin::command_line);
    if (!what.ok())
      return describe(what, "in '" + *x.arg + "'");
  }
  return {};
}

std::string check_command_line(const caf::config_option_set& opts,
                               const caf::settings& content,
                               const std::vector<std::string>& args) {
  // The last occurrence of each option is the one in `content`.
  std::map<std::string, argument> last;
  for (auto& x : arguments(opts, args))
    last.insert_or_assign(name_of(*x.opt), x);
  for (auto& [name, x] : last) {
    auto* value = caf::get_if(&content, name);
    if (value == nullptr)
      continue;
    auto what = judge(*x.opt, *value, x.raw, origin::command_line);
    if (!what.ok())
      return describe(what, "in '" + *x.arg + "'");
  }
  return {};
}

std::string describe_parse_error(const caf::actor_system_config& cfg,
                                 const caf::error& err) {
  // CAF 0.17 puts the offending argument into the error's context as
  // `"argument" = "--port=70000"`.
  auto text = to_string(err);
  std::string arg;
  const std::string key = "\"argument\" = \"";
  if (auto i = text.find(key); i != std::string::npos) {
    auto first = i + key.size();
    arg = text.substr(first, text.find('"', first) - first);
  }
  if (err.category() == caf::atom("system")
      && err.code() == static_cast<uint8_t>(caf::sec::cannot_open_file)
      && err.context().match_element<std::string>(0))
    return "cannot open the config file '"
           + err.context().get_as<std::string>(0) + "'";
  if (err.category() != caf::atom("parser") || arg.empty())
    return cfg.render(err);
  switch (static_cast<caf::pec>(err.code())) {
    case caf::pec::not_an_option:
      return "unknown option '" + arg + "'";
    case caf::pec::integer_overflow:
    case caf::pec::integer_underflow:
    case caf::pec::timespan_overflow:
      return "value out of range in '" + arg + "'";
    case caf::pec::missing_argument:
      return "missing value in '" + arg + "'";
    default:
      return "bad value in '" + arg + "' ("
             + to_string(static_cast<caf::pec>(err.code())) + ")";
  }
}

bool wants_help(const std::vector<std::string>& args) {
  for (auto& arg : args) {
    if (arg == "--help" || arg == "-h" || arg == "-?" || arg == "--long-help")
      return true;
    if (arg.empty() || arg.front() != '-')
      break; // the remainder
  }
  return false;
}

namespace {

enum class duration_text { ok, overflow, malformed };

duration_text read_duration(std::string_view text, caf::timespan& out) {
  bool negative = false;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  uint64_t count = 0;
  bool too_big = false;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    auto digit = static_cast<uint64_t>(text[i] - '0');
    if (count > (std::numeric_limits<uint64_t>::max() - digit) / 10)
      too_big = true;
    else
      count = count * 10 + digit;
  }
  if (i == 0)
    return duration_text::malformed;
  const std::pair<std::string_view, uint64_t> units[]
    = {{"ns", 1},
       {"us", 1'000},
       {"ms", 1'000'000},
       {"s", 1'000'000'000},
       {"min", 60'000'000'000},
       {"h", 3'600'000'000'000}};
  for (auto& [suffix, factor] : units) {
    if (text.substr(i) != suffix)
      continue;
    if (too_big || count > static_cast<uint64_t>(int64_max) / factor)
      return duration_text::overflow;
    auto ns = static_cast<int64_t>(count * factor);
    out = caf::timespan{negative ? -ns : ns};
    return duration_text::ok;
  }
  return duration_text::malformed;
}

} // namespace

bool parse_duration(std::string_view text, caf::timespan& out) {
  return read_duration(text, out) == duration_text::ok;
}

bool duration_overflows(std::string_view text) {
  caf::timespan ignored;
  return read_duration(text, ignored) == duration_text::overflow;
}

std::optional<size_t> parse_workers(std::string_view text) {
  if (text == "auto")
    return size_t{0};
  if (text.empty() || text.size() > 3 || !plain_decimal(text, false))
    return std::nullopt;
  size_t n = 0;
  for (auto c : text)
    n = n * 10 + static_cast<size_t>(c - '0');
  if (n < 1 || n > max_workers)
    return std::nullopt;
  return n;
}

} // namespace quiesce::options
