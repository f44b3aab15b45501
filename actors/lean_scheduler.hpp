#pragma once

/// @file
/// CAF 0.17.6's scheduler with a clock that an ending actor does not wake
/// when it has nothing to cancel there.
///
/// Every actor that ends calls `clock().cancel_timeouts(this)`
/// (`local_actor::cleanup`). CAF's clock runs in a thread of its own, so
/// that call allocates a cancellation, pushes it into a 64-slot ring buffer
/// under a mutex and wakes the clock's thread; when the buffer is full, the
/// caller waits for that thread. At a stop with 10,000 idle connections the
/// I/O thread made 10,000 such calls for connection actors that never set a
/// CAF timeout (they use the timer relay, timer_relay.hpp): with the clock's
/// own thread, about 17% of the server's CPU time in that stop (perf).
///
/// The clock here notes which actors set a timeout that an ending actor's
/// cancellation could find (an ordinary, a request or a multi timeout; CAF
/// keeps no other kind by actor) and passes only their cancellations on.
/// Everything else is CAF's own: the same coordinator and policy
/// (`scheduler.policy`), the same clock for delayed messages.

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"

namespace quiesce {

/// Makes the actor system built from `cfg` use the lean clock, if its
/// scheduler is one of CAF's two ordinary ones (`scheduler.policy` stealing,
/// the default, or sharing, without `scheduler.enable-profiling`); with any
/// other setting CAF's own scheduler stays. Call it after the configuration
/// is parsed and before the actor system is constructed.
void use_lean_scheduler(caf::actor_system_config& cfg);

/// Whether `sys` runs with the lean clock.
bool uses_lean_clock(caf::actor_system& sys);

} // namespace quiesce
