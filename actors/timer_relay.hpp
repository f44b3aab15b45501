#pragma once

/// @file
/// Delayed messages for brokers, without CAF 0.17.6's leak.
///
/// CAF 0.17.6 never frees a broker that a delayed message (one sent with
/// `delayed_send`, or a request's timeout) reaches after the broker has quit:
/// about 1.4 KB per connection actor whose linger or behaviour timer outlived
/// it (valgrind and LeakSanitizer show it; an ordinary actor, or a plain send
/// to the ended broker, does not leak). So connection actors never send
/// themselves delayed messages: the relay, an ordinary actor, gets each one
/// with the connection's weak address and forwards it with a plain send, and
/// only if the connection still exists.
///
/// The relay also keeps the timers itself, ordered by deadline, and asks
/// CAF's clock for one wake-up at a time (the earliest deadline). Every CAF
/// delayed message locks the clock and wakes its thread; at a stop with
/// 10,000 idle connections that was 10,000 linger timers, each costing the
/// I/O thread a futex wake and a context switch. Now a timer is a plain
/// message to the relay.

#include "caf/actor_addr.hpp"
#include "caf/atom.hpp"
#include "caf/fwd.hpp"
#include "caf/message.hpp"
#include "caf/timespan.hpp"
#include "caf/typed_actor.hpp"

namespace quiesce {

/// The relay's own wake-up.
using relay_tick_atom = caf::atom_constant<caf::atom("rlytick")>;

/// Drops every timer of a target that has ended.
using relay_cancel_atom = caf::atom_constant<caf::atom("rlycancel")>;

/// Takes `(delay, target, message)` and sends `message` to `target` after
/// `delay` if `target` still exists then.
using timer_relay = caf::typed_actor<
  caf::reacts_to<caf::timespan, caf::actor_addr, caf::message>,
  caf::reacts_to<relay_tick_atom>,
  caf::reacts_to<relay_cancel_atom, caf::actor_addr>>;

/// Spawns a relay. It is hidden: pending timers must not keep the actor
/// system from shutting down.
timer_relay spawn_timer_relay(caf::actor_system& sys);

/// Sends `msg` to `target` after `delay`, through `relay`. The relay holds
/// only a weak address: a pending timer keeps nothing alive.
void send_later(const timer_relay& relay, caf::timespan delay,
                const caf::actor_addr& target, caf::message msg);

/// Drops the pending timers of `target`, which has ended. Without this a
/// timer would keep them until it fires (an idle timer: a minute), and with
/// it the ended actor's memory: CAF frees an actor only once no address of
/// it (a weak reference) is left. With thousands of new connections a
/// second that was a few hundred megabytes held for a minute.
void cancel_timers(const timer_relay& relay, const caf::actor_addr& target);

} // namespace quiesce
