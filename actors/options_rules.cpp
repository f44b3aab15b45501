// The table of the core's option rules (options.hpp): what values each
// takes, or why the server refuses it; the registered protocols add theirs
// (registry.hpp). options.cpp judges values against the table.

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
#include "quiesce/registry.hpp"

#include "actors/admin_endpoint.hpp"
#include "actors/listener.hpp"

namespace quiesce::options {

namespace {

using namespace std::chrono_literals;

constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

/// A check and the phrase that says what it allows.
struct value_test {
  std::function<bool(const caf::config_value&, std::string_view)> accepts;
  std::string text;
};

template <class T>
std::optional<T> value_as(const caf::config_value& x) {
  if (auto ptr = caf::get_if<T>(&x))
    return T{*ptr};
  return std::nullopt;
}

/// "24h", "10ms", "0s": the largest unit that renders `x` exactly.
std::string render(caf::timespan x) {
  const std::pair<caf::timespan, const char*> units[]
    = {{1h, "h"}, {1min, "min"}, {1s, "s"}, {1ms, "ms"}, {1us, "us"}};
  if (x == caf::timespan{0})
    return "0s";
  for (auto& [unit, name] : units)
    if (x.count() % unit.count() == 0)
      return std::to_string(x.count() / unit.count()) + name;
  return std::to_string(x.count()) + "ns";
}

value_test integer(int64_t lo, int64_t hi) {
  auto text = hi == int64_max ? "an integer of at least " + std::to_string(lo)
                              : "an integer from " + std::to_string(lo) + " to "
                                  + std::to_string(hi);
  return {[lo, hi](const caf::config_value& x, std::string_view) {
            auto n = value_as<int64_t>(x);
            return n && *n >= lo && *n <= hi;
          },
          std::move(text)};
}

/// Durations between `lo` and `hi`, judged by the text as written when it is
/// known: CAF's parser turns `1000000000h` into about 801h without a word.
value_test duration(caf::timespan lo, caf::timespan hi, std::string note = {}) {
  auto text = lo == caf::timespan{1}
                ? "a duration greater than 0s and at most " + render(hi)
                : "a duration from " + render(lo) + " to " + render(hi);
  if (!note.empty())
    text += "; " + note;
  return {[lo, hi](const caf::config_value& x, std::string_view raw) {
            caf::timespan d{0};
            if (!raw.empty()) {
              if (!parse_duration(raw, d))
                return false;
            } else if (auto parsed = value_as<caf::timespan>(x)) {
              d = *parsed;
            } else {
              return false;
            }
            return d >= lo && d <= hi;
          },
          std::move(text)};
}

/// One of `names`, as strings (`as_atoms` false) or atoms.
value_test one_of(std::vector<std::string> names, bool as_atoms) {
  std::string text = "one of";
  for (size_t i = 0; i < names.size(); ++i) {
    text += i == 0 ? " " : ", ";
    text += as_atoms ? "'" + names[i] + "'" : names[i];
  }
  return {[names = std::move(names), as_atoms](const caf::config_value& x,
                                               std::string_view) {
            std::string given;
            if (as_atoms) {
              auto atm = value_as<caf::atom_value>(x);
              if (!atm)
                return false;
              given = to_string(*atm);
            } else if (auto str = value_as<std::string>(x)) {
              given = *str;
            } else {
              return false;
            }
            return std::find(names.begin(), names.end(), given) != names.end();
          },
          std::move(text)};
}

/// Any value of the option's type.
value_test any(std::string text) {
  return {[](const caf::config_value&, std::string_view) { return true; },
          std::move(text)};
}

rule checked(std::string name, value_test test) {
  return {std::move(name), rule_kind::check, std::move(test.accepts),
          std::move(test.text)};
}

rule refused(std::string name, std::string why) {
  return {std::move(name), rule_kind::refuse, nullptr, std::move(why)};
}

rule command_line_only(std::string name) {
  return {std::move(name), rule_kind::command_line_only, nullptr,
          "only on the command line"};
}

std::vector<rule> make_rules() {
  const std::string logger
    = "CAF's logger is compiled out of Debian's libcaf; quiesce has its own: "
      "--log-level";
  const std::string basp
    = "quiesce's only CAF network (BASP) connections are its own control "
      "plane between master and workers, set up by quiesce on loopback";
  const std::string streams = "quiesce uses no CAF streams";
  const std::string profiler
    = "CAF's profiler times every actor run and writes a file without bound; "
      "profile quiesce with perf instead";
  const std::string openssl
    = "CAF's OpenSSL module is not loaded: quiesce serves plain TCP";
  auto host_form = [](const caf::config_value& x, std::string_view) {
    auto str = value_as<std::string>(x);
    return str && host_address(*str).has_value();
  };
  auto worker_form = [](const caf::config_value& x, std::string_view) {
    if (auto n = value_as<int64_t>(x))
      return *n >= 1 && *n <= static_cast<int64_t>(max_workers);
    auto str = value_as<std::string>(x);
    return str && parse_workers(*str).has_value();
  };
  auto admin_form = [](const caf::config_value& x, std::string_view) {
    auto str = value_as<std::string>(x);
    return str && (str->empty() || parse_admin_address(*str).has_value());
  };
  auto log_level = [](const caf::config_value& x, std::string_view) {
    log::level ignored;
    auto str = value_as<std::string>(x);
    return str && log::parse_level(*str, ignored);
  };
  // clang-format off
  return {
    // -- CAF's own global options ---------------------------------------------
    command_line_only("help"),
    command_line_only("long-help"),
    command_line_only("dump-config"),
    command_line_only("config-file"),
    // -- quiesce ---------------------------------------------------------------
    checked("host", {host_form, "an address or a host name, an IPv6 address "
                                "bare as ::1 or in brackets as [::1]"}),
    checked("port", any("a port from 0 to 65535 (0 picks a free one)")),
    checked("protocol", one_of(protocol_names(), false)),
    checked("drain-timeout", duration(1ns, max_timeout)),
    checked("stop-delay", duration(0s, max_timeout, "0s: none")),
    checked("max-connections",
            any("0 or more; 0, or more than the open-file limit allows: "
                "derived from that limit")),
    checked("idle-timeout", duration(0s, max_timeout, "0s: never")),
    checked("write-timeout", duration(0s, max_timeout, "0s: never")),
    checked("workers", {worker_form, "auto (the CPUs this process may run on) "
                                     "or a count from 1 to "
                                     + std::to_string(max_workers)}),
    checked("workers-ready-timeout", duration(1ns, max_timeout)),
    checked("admin", {admin_form, "HOST:PORT (an IPv6 host in brackets, "
                                  "[::1]:9090; port 0 picks a free one)"}),
    checked("log-level", {log_level, "one of debug, info, warning, error, "
                                     "off"}),
    checked("log-format", one_of({"text", "json"}, false)),
    // -- CAF: scheduler --------------------------------------------------------
    // 'testing' is CAF's test coordinator, which runs nothing by itself.
    checked("scheduler.policy", one_of({"stealing", "sharing"}, true)),
    // 0 divides by zero in the work-stealing policy (SIGFPE).
    checked("scheduler.max-threads",
            integer(1, static_cast<int64_t>(max_scheduler_threads))),
    // 0: an actor that may handle no message is resumed again and again.
    checked("scheduler.max-throughput", integer(1, int64_max)),
    refused("scheduler.enable-profiling", profiler),
    refused("scheduler.profiling-resolution", profiler),
    refused("scheduler.profiling-output-file", profiler),
    // -- CAF: work stealing (how idle scheduler threads look for work) ---------
    // Poll attempts run back to back: a huge count is an endless spin.
    checked("work-stealing.aggressive-poll-attempts", integer(0, 10000)),
    // Steal intervals are divisors (i % interval): 0 is SIGFPE.
    checked("work-stealing.aggressive-steal-interval", integer(1, int64_max)),
    checked("work-stealing.moderate-poll-attempts", integer(0, 10000)),
    checked("work-stealing.moderate-steal-interval", integer(1, int64_max)),
    // A worker in this phase sees a new job only between two sleeps.
    checked("work-stealing.moderate-sleep-duration", duration(0s, 10ms)),
    checked("work-stealing.relaxed-steal-interval", integer(1, int64_max)),
    // 0 (or close to it) turns the idle wait into a spin.
    checked("work-stealing.relaxed-sleep-duration", duration(1ms, 10s)),
    // -- CAF: middleman (the I/O layer) ----------------------------------------
    // 'testing' is CAF's fake multiplexer; 'asio' is not built in.
    checked("middleman.network-backend", one_of({"default"}, true)),
    refused("middleman.app-identifiers", basp),
    refused("middleman.app-identifier", basp),
    refused("middleman.enable-automatic-connections",
            basp + " (it would open a second listening port)"),
    // 0 never reads a socket: no request is ever answered, a core spins.
    // More lets one client hold the one I/O thread longer per turn.
    checked("middleman.max-consecutive-reads", integer(1, 1000)),
    refused("middleman.heartbeat-interval", basp),
    refused("middleman.connection-timeout", basp),
    checked("middleman.attach-utility-actors", any("a flag")),
    refused("middleman.manual-multiplexing",
            "it stops CAF's I/O thread: nothing would be served"),
    refused("middleman.workers", basp),
    // -- CAF: modules that quiesce does not load -------------------------------
    refused("opencl.device-ids", "CAF's OpenCL module is not loaded"),
    refused("openssl.certificate", openssl),
    refused("openssl.key", openssl),
    refused("openssl.passphrase", openssl),
    refused("openssl.capath", openssl),
    refused("openssl.cafile", openssl),
    // -- CAF: streams (every actor's constructor reads them; 0 for both
    //    max-batch-delay and credit-round-interval is SIGFPE) ----------------
    refused("stream.desired-batch-complexity", streams),
    refused("stream.max-batch-delay", streams),
    refused("stream.credit-round-interval", streams),
    // -- CAF: logger -----------------------------------------------------------
    refused("logger.verbosity", logger),
    refused("logger.file-name", logger),
    refused("logger.file-format", logger),
    refused("logger.file-verbosity", logger),
    refused("logger.console", logger),
    refused("logger.console-format", logger),
    refused("logger.console-verbosity", logger),
    refused("logger.component-blacklist", logger),
    refused("logger.inline-output", logger),
  };
  // clang-format on
}

} // namespace

const std::vector<rule>& rules() {
  // Built on first use, and again after a protocol was registered (the
  // `protocol` rule lists them, and each brings its own rules).
  static std::vector<rule> table;
  static uint64_t built_for = 0;
  if (table.empty() || built_for != registry_version()) {
    table = make_rules();
    for (auto& x : protocol_rules())
      table.push_back(std::move(x));
    built_for = registry_version();
  }
  return table;
}

rule integer_rule(std::string name, int64_t lo, int64_t hi) {
  return checked(std::move(name), integer(lo, hi));
}

rule duration_rule(std::string name, caf::timespan lo, caf::timespan hi,
                   std::string note) {
  return checked(std::move(name), duration(lo, hi, std::move(note)));
}

const rule* find_rule(std::string_view name) {
  for (auto& x : rules())
    if (x.name == name)
      return &x;
  return nullptr;
}

} // namespace quiesce::options
