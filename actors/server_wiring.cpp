#include "actors/server_wiring.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "caf/io/network/multiplexer.hpp"

#include "actors/acceptor.hpp"
#include "actors/activation.hpp"
#include "actors/metrics.hpp"

namespace quiesce {

std::function<acceptor_actor(supervisor_actor)>
acceptor_starter(caf::io::middleman& mm, caf::io::doorman_ptr door,
                 acceptor_setup setup) {
  return [&mm, door, setup = std::move(setup)](supervisor_actor sup) {
    acceptor_config acc_cfg;
    acc_cfg.connection.make_behaviour = setup.factory;
    acc_cfg.connection.supervisor = sup;
    acc_cfg.connection.idle_timeout = setup.idle_timeout;
    acc_cfg.connection.write_timeout = setup.write_timeout;
    acc_cfg.connection.services = setup.directory;
    acc_cfg.connection.counters = &counters_of_process();
    // A reload's grace for keep-alive clients, well inside the drain.
    acc_cfg.connection.retire_grace = std::min<caf::timespan>(
      std::chrono::seconds(1), setup.drain_timeout / 2);
    // systemd's socket: a fresh client's first request may be on its
    // way at the stop (activation.hpp).
    if (setup.passed_socket)
      acc_cfg.connection.fresh_grace = fresh_grace(setup.drain_timeout);
    acc_cfg.max_connections = setup.max_connections;
    acc_cfg.address = setup.address;
    // A worker's stop is the server's stop: its socket stops listening
    // for every process (the master holds it only to hand it on), and
    // the clients in the backlog are taken first. Its doorman is still
    // the shared one: nothing else shuts the socket down. A socket
    // passed by systemd is never stopped: the next server takes its
    // backlog.
    acc_cfg.shared_listener
      = setup.shared_listener && (!setup.worker || setup.passed_socket);
    return mm.spawn_broker(acceptor_main, door, std::move(acc_cfg));
  };
}

std::function<void(std::vector<connection_actor>, connection_order)>
event_loop_broadcast(caf::io::middleman& mm) {
  return [&mm](std::vector<connection_actor> conns, connection_order order) {
    // One hand-over to the event loop; there each order to a broker is
    // queued for the same turn instead of a pipe write and a turn apiece.
    mm.backend().post([conns = std::move(conns), order] {
      for (auto& conn : conns)
        tell_connection(conn, order);
    });
  };
}

} // namespace quiesce
