#pragma once

/// @file
/// The rules every option value must pass before the server starts, wherever
/// it was given (the command line or a config file), CAF's own options
/// included: one table, option name -> check -> what is allowed (or why
/// quiesce refuses the option). CAF checks only the type of a value; a type
/// is not a range (`--scheduler.max-threads=0` divides by zero in CAF,
/// `--middleman.max-consecutive-reads=0` never reads), and a timespan
/// silently wraps in CAF's parser (`1000000000h` becomes ~801h). The table
/// says, for each option, what the server can live with; the README lists
/// it. The config file's own reading is in config_file.hpp.

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "caf/actor_system_config.hpp"
#include "caf/config_option.hpp"
#include "caf/error.hpp"
#include "caf/config_option_set.hpp"
#include <optional>
#include <string_view>

#include "caf/config_value.hpp"
#include "caf/settings.hpp"
#include "caf/timespan.hpp"

namespace quiesce::options {

/// The most scheduler threads quiesce accepts, and the cap of its default
/// (the CPUs the process may run on): its scheduled actors are a supervisor
/// and a timer relay; more idle workers only add wake-ups.
constexpr size_t max_scheduler_threads = 256;

/// The most worker processes `--workers` accepts.
constexpr size_t max_workers = 256;

/// `--workers`' text: "auto" (0: the CPUs of the affinity mask, resolved by
/// the server) or a count from 1 to `max_workers`; nothing if malformed.
std::optional<size_t> parse_workers(std::string_view text);

/// The longest value of quiesce's own timeouts. Nothing in a server waits
/// for longer than a day on purpose (`0s` turns off the timeouts that may be
/// off), and the bound keeps every deadline far from where adding it to the
/// clock overflows (~2562047h).
constexpr caf::timespan max_timeout = std::chrono::hours{24};

/// What a rule does with an option.
enum class rule_kind {
  /// The value must pass `accepts`.
  check,
  /// quiesce does not support the option at all: giving it is an error.
  refuse,
  /// Meaningful on the command line only (`--help`, `--config-file`).
  command_line_only,
};

/// The rule of one option.
struct rule {
  /// The option's name as on the command line, without the dashes:
  /// `port`, `http.max-body`, `scheduler.max-threads`.
  std::string name;
  rule_kind kind = rule_kind::check;
  /// For `check`: whether `value` (already of the option's type) is
  /// allowed. `raw` is the value as written, empty if unknown; it decides
  /// for durations, which CAF's parser may have wrapped around.
  std::function<bool(const caf::config_value& value, std::string_view raw)>
    accepts;
  /// For `check`: what is allowed ("an integer from 1 to 256"); for
  /// `refuse`: why quiesce does not support it.
  std::string text;
};

/// The table: a rule for every option the server declares, CAF's included.
/// The core's rules are in options_rules.cpp; a protocol's come with its
/// registration (`protocol_options::rules`, registry.hpp), e.g. HTTP's in
/// behaviours/http_protocol.cpp. Built again after the registry changed.
const std::vector<rule>& rules();

/// A rule for an integer option: from `lo` to `hi`.
rule integer_rule(std::string name, int64_t lo, int64_t hi);

/// A rule for a duration option: from `lo` to `hi` (at most `max_timeout`
/// is wise), judged by the text as written when it is known (CAF's parser
/// wraps large durations around). `note` follows the range in the rule's
/// text ("0s: no limit").
rule duration_rule(std::string name, caf::timespan lo, caf::timespan hi,
                   std::string note = {});

/// The rule of option `name` (as in `rule::name`), or null.
const rule* find_rule(std::string_view name);

/// The name of `opt` as on the command line: `port`, `http.max-body`.
std::string name_of(const caf::config_option& opt);

/// Where a value was given.
enum class origin { command_line, config_file };

/// What a rule says of a value: nothing (`ok`), or what is wrong.
struct verdict {
  rule_kind kind = rule_kind::check;
  /// Empty if the value passes; else what is allowed ("must be an integer
  /// from 1 to 256"), why the option is refused, or "only on the command
  /// line".
  std::string text;

  bool ok() const noexcept {
    return text.empty();
  }
};

/// Judges `value` of option `opt` (it has passed `opt.check`) given at
/// `from`, with `raw` as written (empty if unknown): first its text
/// (`judge_text`), then its rule. An option without a rule (one a protocol
/// added in a server binary of its own) passes on its type and its text
/// alone.
verdict judge(const caf::config_option& opt, const caf::config_value& value,
              std::string_view raw, origin from);

/// Judges the text `raw` of a number as written, for option `opt`, before
/// its value means anything. An integer must be plain decimal: `0`, or
/// digits without a leading zero (and a `-` before them only for a signed
/// type). CAF 0.17 reads `010` as octal 8, `0x10` as 16 and `0b1` as 1, takes
/// `+8` and ` 8`, and refuses `08080` only as a "trailing_character"; nginx
/// reads `010` as 10. A leading zero is refused rather than read as either:
/// the same text meant 8 to CAF, and quietly meaning 10 now would move a
/// configuration that worked. The count of a duration must not have a
/// leading zero either (CAF reads `010ms` as 8ms); its sign and unit are the
/// duration rule's. An empty `raw` (not known), and other options, pass.
verdict judge_text(const caf::config_option& opt, std::string_view raw);

/// Whether `text` is an integer in plain decimal: `0`, or digits without a
/// leading zero, with a `-` before them if `allow_minus`.
bool plain_decimal(std::string_view text, bool allow_minus);

/// The sentence for a usage error about a value that failed `what`;
/// `subject` names where it was given: "in '--port=x'" or "in F line 3:
/// port = x". E.g. "bad value in '--scheduler.max-threads=0' (must be an
/// integer from 1 to 256)", "unsupported option in '--logger.verbosity=x'
/// (CAF's logger is ...)".
std::string describe(const verdict& what, const std::string& subject);

/// Checks the numbers of the command line `args` before CAF's parser sees
/// them: the text of integers and durations (`judge_text`: CAF reads
/// `--port=010` as port 8), and no duration too large for a timespan
/// (`1000000000h` is signed overflow in CAF's parser: undefined behaviour;
/// in practice a value wrapped around). Returns an empty string or the
/// sentence for a usage error, naming the argument.
std::string check_numbers(const caf::config_option_set& opts,
                          const std::vector<std::string>& args);

/// Checks the options the command line `args` set, with their values as
/// parsed into `content` (the last of an option given twice counts). Returns
/// an empty string or the sentence for a usage error, naming the argument.
std::string check_command_line(const caf::config_option_set& opts,
                               const caf::settings& content,
                               const std::vector<std::string>& args);

/// Whether `text` is a duration as CAF writes them whose value does not fit
/// in a timespan (beyond about 2562047h): CAF's parser would overflow.
bool duration_overflows(std::string_view text);

/// Turns an error of CAF's `actor_system_config::parse` into a sentence
/// that names the argument ("unknown option '--bogus=1'").
std::string describe_parse_error(const caf::actor_system_config& cfg,
                                 const caf::error& err);

/// Whether `args` ask for the help text (`--help`, `-h`, `-?`,
/// `--long-help`), which must not depend on a config file that may be
/// broken.
bool wants_help(const std::vector<std::string>& args);

/// Parses a duration as CAF writes them (an integer and one of ns, us, ms,
/// s, min, h) without CAF's silent wrap-around: false if `text` is not one
/// or does not fit in a timespan.
bool parse_duration(std::string_view text, caf::timespan& out);

} // namespace quiesce::options
