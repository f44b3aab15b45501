#pragma once

/// @file
/// Protocol name -> behaviour: what `--protocol=NAME` picks from. The core
/// knows no protocol: a server binary registers its own before `run_server`
/// (`app/protocols.cpp` registers echo and http for `quiesce`;
/// examples/line-server its `line`):
///
///     quiesce::add_protocol("line",
///                           [] { return std::make_unique<line_protocol>(); });
///     quiesce::set_default_protocol("line");
///
/// Not thread-safe: call these from `main`, before the server starts.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "caf/config_option_set.hpp"

#include "quiesce/behaviour.hpp"
#include "quiesce/options.hpp"

namespace quiesce {

/// The options of a protocol, if it has any.
struct protocol_options {
  /// Declares them (`--NAME.key=value` on the command line, `key = value` in
  /// a `[NAME]` section of the config file), each bound to where the
  /// protocol's function reads it (`caf::config_option_adder::add(T& ref,
  /// ...)`): the server's parse stores every value given there before the
  /// first connection starts. Empty for a protocol without options.
  std::function<void(caf::config_option_set&)> declare;
  /// The rule of every option `declare` adds (options.hpp; `rule::name` as
  /// on the command line: `http.max-body`). The server checks each value
  /// against it, wherever it was given, before it starts.
  std::vector<options::rule> rules;
};

/// A registered protocol.
struct protocol {
  /// Makes the behaviour of each new connection.
  behaviour_factory make;
  protocol_options options;
};

/// Registers `make` as protocol `name` (replacing one of that name), with
/// its options if it has any. The first protocol added is the default until
/// `set_default_protocol` names another.
void add_protocol(std::string name, behaviour_factory make,
                  protocol_options opts = {});

/// Makes `name` the protocol of a server started without `--protocol`.
void set_default_protocol(std::string name);

/// The protocol of a server started without `--protocol`: the one
/// `set_default_protocol` named, else the first added; empty if none.
const std::string& default_protocol();

/// The protocol registered as `name`, or null.
const protocol* find_protocol(std::string_view name);

/// Every registered name, sorted.
std::vector<std::string> protocol_names();

/// Declares the options of every registered protocol.
void declare_protocol_options(caf::config_option_set& opts);

/// The rules of every registered protocol's options.
std::vector<options::rule> protocol_rules();

/// Counts the changes to the registry: what is derived from it (the rule
/// table, `options::rules`) is built again when this moves.
uint64_t registry_version();

} // namespace quiesce
