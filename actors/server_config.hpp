#pragma once

/// @file
/// The server process's configuration: its options (CAF's included) read
/// from the command line and the config file, and checked (options.hpp).
/// run_server's first step (server.cpp).

#include <algorithm>
#include <chrono>
#include <optional>
#include <sched.h>
#include <string>
#include <thread>

#include "caf/actor_system_config.hpp"
#include "caf/timespan.hpp"

#include "actors/config_file.hpp"
#include "quiesce/registry.hpp"

namespace quiesce {

constexpr int exit_clean = 0;
constexpr int exit_cannot_run = 1;
constexpr int exit_usage = 2;
constexpr int exit_forced = 3;

class server_config : public caf::actor_system_config {
public:
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string protocol = default_protocol();
  caf::timespan drain_timeout = std::chrono::seconds(5);
  /// After the first stop signal, how long the server keeps serving (with
  /// `Connection: close`) before the stop (stop_sequence.hpp).
  caf::timespan stop_delay{0};
  size_t max_connections = 0;
  caf::timespan idle_timeout = std::chrono::seconds(60);
  caf::timespan write_timeout = std::chrono::seconds(60);
  std::string log_level = "info";
  /// "text" or "json" (log.hpp).
  std::string log_format = "text";
  /// "auto" or a count (options.hpp, `parse_workers`; workers.hpp).
  std::string workers = "auto";
  /// How long a master waits for a generation of workers to register: at
  /// its start (then it exits 1) and at a reload (then the reload fails).
  caf::timespan workers_ready_timeout = std::chrono::seconds(30);
  /// `--admin=HOST:PORT`, empty: no admin endpoint (admin_endpoint.hpp).
  std::string admin;
  /// The config file as `configure` read it: a master hands this text to
  /// its workers, which do not read the file again (it may be a pipe, or
  /// changed since).
  config_file config;

  server_config();

  /// Every option, CAF's included (what the rules of options.hpp check).
  const caf::config_option_set& options() const {
    return custom_options_;
  }

  static size_t usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
      return std::max(1u, std::thread::hardware_concurrency());
    return static_cast<size_t>(std::max(1, CPU_COUNT(&set)));
  }

  /// The protocols' own options, which CAF's `--help` leaves to
  /// `--long-help` (they are not in the global category).
  std::string protocol_help() const {
    std::string result;
    for (auto& opt : custom_options_) {
      auto names = protocol_names();
      auto text = [](caf::string_view x) {
        return std::string{x.data(), x.size()};
      };
      auto category = text(opt.category());
      if (std::find(names.begin(), names.end(), category) == names.end())
        continue;
      if (result.empty())
        result = "protocol options:\n";
      result += "  --" + category + "." + text(opt.long_name()) + "=<"
                + text(opt.type_name()) + "> : " + text(opt.description())
                + "\n";
    }
    return result;
  }

  static std::string known_protocols() {
    std::string result;
    for (auto& name : protocol_names()) {
      if (!result.empty())
        result += ", ";
      result += name;
    }
    return result;
  }
};

/// Prints `what` as a usage error; returns the usage exit code.
int usage_error(const std::string& what);

/// Parses the command line and the config file into `cfg` and checks every
/// value (options.hpp). Returns the exit code if the process ends here: a
/// usage error, or the help text or the configuration printed. With
/// `given`, it stands for the config file (a worker's, from its master, as
/// the master read it).
std::optional<int> configure(server_config& cfg, int argc, char** argv,
                             const config_file* given = nullptr);

} // namespace quiesce
