#pragma once

/// @file
/// The doorman of the server's listening socket, and the one place that
/// knows how CAF 0.17's stock doorman ends.
///
/// CAF's `doorman_impl::graceful_shutdown()` (called by `close(hdl)`, by a
/// broker quitting with the doorman attached, and at the actor system's
/// shutdown) calls `shutdown(fd, SHUT_RDWR)`. On a listening socket that
/// other processes hold too (workers forked over one socket, a socket passed
/// by systemd), that stops the socket listening in every one of them: each
/// connect is refused. A listener marked `shared` therefore gets a doorman
/// that only leaves the event loop; its descriptor is closed when CAF frees
/// the doorman, and the socket listens on in the other processes.
/// docs/architecture.md ("The shutdown") has the acceptor's side.

#include "caf/io/doorman.hpp"
#include "caf/io/network/multiplexer.hpp"

#include "actors/listener.hpp"

namespace quiesce {

/// Makes the doorman of `lst.fd`, which then owns the descriptor
/// (`lst.fd` becomes -1). With `lst.shared` on CAF's default multiplexer it
/// never `shutdown()`s the socket; otherwise it is CAF's own doorman
/// (under CAF's test multiplexer there is no real socket to protect).
caf::io::doorman_ptr make_listener_doorman(caf::io::network::multiplexer& mpx,
                                           listener& lst);

} // namespace quiesce
