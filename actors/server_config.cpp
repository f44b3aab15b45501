#include "actors/server_config.hpp"

#include <iostream>
#include <sstream>
#include <vector>

#include "caf/io/middleman.hpp"

#include "actors/config_file.hpp"
#include "quiesce/options.hpp"

namespace quiesce {

using namespace std::chrono_literals;

server_config::server_config() {
  opt_group{custom_options_, "global"}
    .add(host, "host", "listening address (default: 127.0.0.1)")
    .add(port, "port", "listening port, 0 picks a free one (default: 8080)")
    .add(protocol, "protocol",
         "connection behaviour: " + known_protocols()
           + " (default: " + default_protocol() + ")")
    .add(drain_timeout, "drain-timeout",
         "how long in-flight work may take after a stop, e.g. 500ms, 5s "
         "(default: 5s)")
    .add(stop_delay, "stop-delay",
         "after the first SIGTERM/SIGINT, how long the server keeps "
         "accepting and serving (HTTP responses then say Connection: close) "
         "before the stop, e.g. 5s; a second signal stops at once "
         "(default: 0s)")
    .add(max_connections, "max-connections",
         "open connections at which accepting pauses; 0 derives it from the "
         "open-file limit (default: 0)")
    .add(idle_timeout, "idle-timeout",
         "how long a connection with nothing in flight may stay silent "
         "before it is closed, e.g. 30s; 0s never closes it (default: 60s)")
    .add(write_timeout, "write-timeout",
         "how long output may wait without the client taking a byte of it "
         "before the connection is aborted, e.g. 30s; 0s never (default: "
         "60s)")
    .add(workers, "workers",
         "worker processes on the one listening socket: auto (the CPUs "
         "this process may run on) or a count; 1 serves from this process "
         "alone (default: auto)")
    .add(workers_ready_timeout, "workers-ready-timeout",
         "how long the master waits for a generation of workers to register: "
         "past it a start fails (exit 1) and a reload fails, the workers "
         "before it serving on (default: 30s)")
    .add(admin, "admin",
         "HOST:PORT of the admin endpoint (/healthz, /readyz, /metrics); "
         "port 0 picks a free one (default: none)")
    .add(log_level, "log-level",
         "debug, info, warning, error or off (default: info)")
    .add(log_format, "log-format",
         "text (one line per event) or json (one JSON object per line, for "
         "log shippers) (default: text)");
  declare_protocol_options(custom_options_);
  load<caf::io::middleman>();
  // Defaults of ours for CAF's own settings; the command line and the
  // config file still override them (see docs/performance.md).
  // One read per readiness event: the next read would mostly only say
  // EAGAIN (request/response traffic), and level-triggered epoll reports
  // a socket with more bytes again in the next turn.
  set("middleman.max-consecutive-reads", 1);
  // As many workers as CPUs this process may run on (taskset, cpusets),
  // not as the machine has: the I/O thread needs the CPU more.
  set("scheduler.max-threads",
      std::min(usable_cpus(), options::max_scheduler_threads));
}

int usage_error(const std::string& what) {
  std::cerr << "quiesce: " << what << " (see --help)" << std::endl;
  return exit_usage;
}

std::optional<int> configure(server_config& cfg, int argc, char** argv,
                             const config_file* given) {
  std::vector<std::string> args{argv + 1, argv + argc};
  // The config file is read and checked first, with the rules of the command
  // line; CAF then reads the same text, which holds no surprise for it.
  if (auto err = options::check_numbers(cfg.options(), args); !err.empty())
    return usage_error(err);
  config_file file;
  if (given != nullptr) {
    file = *given;
  } else if (!options::wants_help(args)) {
    if (auto err = read_config_file(cfg.options(), args, file); !err.empty())
      return usage_error(err);
  }
  if (!options::wants_help(args)) {
    if (file.found) {
      auto err = check_config_file(cfg.options(), file.path, file.text);
      if (!err.empty())
        return usage_error(err);
    }
  }
  cfg.config = file;
  std::istringstream ini{file.text};
  if (auto err = cfg.parse(args, ini))
    return usage_error(options::describe_parse_error(cfg, err));
  if (cfg.cli_helptext_printed) {
    // --help shows the global category only; --long-help (and the dump)
    // has every category, the protocols' included.
    if (!caf::get_or(cfg.content, "dump-config", false)
        && !caf::get_or(cfg.content, "long-help", false))
      std::cout << cfg.protocol_help() << std::flush;
    return exit_clean;
  }
  if (!cfg.remainder.empty())
    return usage_error("unexpected argument '" + cfg.remainder.front() + "'");
  if (auto err = options::check_command_line(cfg.options(), cfg.content, args);
      !err.empty())
    return usage_error(err);
  return std::nullopt;
}

} // namespace quiesce
