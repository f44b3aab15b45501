#pragma once

/// @file
/// Protocol name -> behaviour factory: what `--protocol=NAME` picks from.
/// Adding a protocol to quiesce is one line in registry.cpp; a server binary
/// of its own calls `add` before `run_server`.

#include <string>
#include <string_view>
#include <vector>

#include "caf/actor_system_config.hpp"
#include "caf/config_option_set.hpp"

#include "quiesce/behaviour.hpp"

namespace quiesce::behaviours {

/// A registered protocol.
struct protocol {
  /// Declares the protocol's own options (`--NAME.key=value`, or a `[NAME]`
  /// section of the config file); null for a protocol without options.
  void (*add_options)(caf::config_option_set&);
  /// Makes the factory of its behaviours from the parsed configuration.
  /// It may throw `std::invalid_argument` for an option value it cannot
  /// use: `run_server` then exits with a usage error (2) whose message is
  /// the exception's.
  behaviour_factory (*make)(const caf::actor_system_config&);
};

/// Registers `proto` as `name` (replacing one of that name): how a server
/// binary of its own adds protocols before `run_server`. Not thread-safe:
/// call it from `main`, before the server starts.
void add(std::string name, protocol proto);

/// The protocol registered as `name`, or null.
const protocol* find(std::string_view name);

/// Every registered name, sorted.
std::vector<std::string> names();

/// Declares the options of every registered protocol.
void add_options(caf::config_option_set& opts);

} // namespace quiesce::behaviours
