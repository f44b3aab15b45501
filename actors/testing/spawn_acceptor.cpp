// The one piece of the test fixture (quiesce/testing/broker_fixture.hpp)
// compiled into the library: it needs the acceptor's internal header.

#include "quiesce/testing/spawn_acceptor.hpp"

#include <utility>

#include "actors/acceptor.hpp"

namespace quiesce::testing {

acceptor_actor spawn_acceptor(caf::io::middleman& mm, caf::io::doorman_ptr door,
                              supervisor_actor sup, behaviour_factory make,
                              size_t max_connections,
                              caf::timespan idle_timeout) {
  return spawn_acceptor(mm, std::move(door), std::move(sup), std::move(make),
                        max_connections, idle_timeout, nullptr);
}

acceptor_actor
spawn_acceptor(caf::io::middleman& mm, caf::io::doorman_ptr door,
               supervisor_actor sup, behaviour_factory make,
               size_t max_connections, caf::timespan idle_timeout,
               std::shared_ptr<const service_directory> services) {
  acceptor_config cfg;
  cfg.connection.make_behaviour = std::move(make);
  cfg.connection.supervisor = std::move(sup);
  cfg.connection.idle_timeout = idle_timeout;
  cfg.connection.services = std::move(services);
  cfg.max_connections = max_connections;
  cfg.address = "test:8080";
  return mm.spawn_broker(acceptor_main, std::move(door), std::move(cfg));
}

} // namespace quiesce::testing
