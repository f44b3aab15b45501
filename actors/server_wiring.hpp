#pragma once

/// @file
/// How one serving process (a single process, or a worker) wires its
/// supervisor to CAF's I/O event loop: the acceptor it starts on the
/// listening socket, with the connections' configuration, and the
/// broadcast that hands an order for every open connection to the event
/// loop in one go (supervisor_config::broadcast_stop).

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "caf/io/doorman.hpp"
#include "caf/io/middleman.hpp"
#include "caf/timespan.hpp"

#include "actors/supervisor.hpp"
#include "quiesce/behaviour.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/service.hpp"

namespace quiesce {

/// What the acceptor of a serving process is started with.
struct acceptor_setup {
  behaviour_factory factory;
  size_t max_connections = 0;
  caf::timespan idle_timeout{0};
  caf::timespan write_timeout{0};
  caf::timespan drain_timeout{0};
  /// For the log: the address the socket listens on.
  std::string address;
  /// `listener::shared` and `listener::passed`.
  bool shared_listener = false;
  bool passed_socket = false;
  /// A worker of a master (not a single process).
  bool worker = false;
  std::shared_ptr<service_directory> directory;
};

/// The supervisor's `start_acceptor`: spawns the acceptor broker on `door`.
std::function<acceptor_actor(supervisor_actor)>
acceptor_starter(caf::io::middleman& mm, caf::io::doorman_ptr door,
                 acceptor_setup setup);

/// The supervisor's `broadcast_stop`: one hand-over to the event loop,
/// which there tells every connection broker in the same turn.
std::function<void(std::vector<connection_actor>, connection_order)>
event_loop_broadcast(caf::io::middleman& mm);

} // namespace quiesce
