#pragma once

/// @file
/// Closing a broker's socket on a later turn of the event loop: the one
/// workaround the acceptor and the connection actors share.
///
/// CAF 0.17's default multiplexer merges a socket's "add" and "remove" that
/// fall in the same turn of its event loop into nothing, and the scribe or
/// doorman is then never released (LeakSanitizer saw it in stop storms: a
/// stop that comes in the same turn as the acceptor's start; a connection
/// accepted from the backlog at a stop and forced by a second signal in the
/// same turn). So a broker that closes at a moment it does not choose (a
/// stop, a forced end) takes its socket out of the event loop, or ends, on
/// a message that comes back after `deferred_close_delay`.
///
/// The message goes through the timer relay, never as a delayed message to
/// the broker itself: CAF 0.17.6 leaks a broker that a delayed message
/// reaches after it has quit (timer_relay.hpp).

#include <chrono>

#include "caf/actor_addr.hpp"
#include "caf/message.hpp"

#include "actors/timer_relay.hpp"

namespace quiesce {

/// Long enough to land on a later turn of the event loop, short against any
/// drain.
constexpr auto deferred_close_delay = std::chrono::milliseconds(1);

/// Sends `msg` to `broker` on a later turn of the event loop, through
/// `relay`: the broker closes (or ends) when it arrives.
inline void defer_close(const timer_relay& relay, const caf::actor_addr& broker,
                        caf::message msg) {
  send_later(relay, deferred_close_delay, broker, std::move(msg));
}

} // namespace quiesce
