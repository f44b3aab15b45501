#pragma once

/// @file
/// The acceptor for tests (broker_fixture.hpp), without the acceptor's
/// internal header; no test framework header either, so that the library
/// can compile it.

#include <cstddef>
#include <memory>

#include "caf/io/doorman.hpp"
#include "caf/io/middleman.hpp"
#include "caf/timespan.hpp"

#include "quiesce/behaviour.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/service.hpp"

namespace quiesce::testing {

/// Spawns quiesce's acceptor broker on `door` (a listening socket: the fake
/// multiplexer's in a test). Its connections report to `sup` and get their
/// behaviours from `make`; it pauses at `max_connections` open ones;
/// `idle_timeout` is theirs (zero: no idle close). Its log names it
/// `test:8080`.
acceptor_actor spawn_acceptor(caf::io::middleman& mm, caf::io::doorman_ptr door,
                              supervisor_actor sup, behaviour_factory make,
                              size_t max_connections,
                              caf::timespan idle_timeout);

/// The same, with `services` as the server's services: what the
/// connections' `connection_io::service` finds (none if null).
acceptor_actor
spawn_acceptor(caf::io::middleman& mm, caf::io::doorman_ptr door,
               supervisor_actor sup, behaviour_factory make,
               size_t max_connections, caf::timespan idle_timeout,
               std::shared_ptr<const service_directory> services);

} // namespace quiesce::testing
