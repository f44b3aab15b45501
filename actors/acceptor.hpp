#pragma once

/// @file
/// The acceptor: a broker that owns the listening socket and starts one
/// connection actor per accepted connection.
///
/// - new connection: fork a connection actor, monitor it, tell the
///   supervisor (`connected`).
/// - at `max_connections` open connections it pauses accepting: clients wait
///   in the listen backlog (never reset, never an EMFILE spin) and accepting
///   resumes when a connection ends.
/// - `stop`: accept the clients already waiting in the listen backlog (they
///   get a clean close, or their request answered, instead of a reset), stop
///   listening (new clients are refused at once), close the
///   socket, and send itself `acceptor_closed_msg`: CAF 0.17 sends none after
///   a local close. That message is the terminal one for both a requested
///   close and a socket failure: a requested close ends normally (info), a
///   failure ends with an error the supervisor reports.
/// - `stop` on a shared listener (`acceptor_config::shared_listener`, other
///   processes accept on the same socket): no `shutdown()` and no backlog
///   taken, both would be the others' loss. The doorman leaves the event
///   loop on the later turn and is closed one turn after that (its
///   descriptor only); the socket listens on in the other processes. A
///   client accepted in between (about 1 ms) is served as one taken from
///   the backlog: it knows of the stop.
/// - `retire` (a reload's old worker): the shared listener's stop, whatever
///   the configuration: the new workers accept on the same socket.
/// - `closing` (the stop delay began): accepting goes on; every connection
///   accepted from now on starts in the closing mode
///   (`connection_config::closing`).
/// - `acceptor_closed_msg` before any stop, on a socket that no longer
///   listens: another process holding it stopped it (workers of one master,
///   at the server's stop): the acceptor ends normally, and its supervisor
///   takes that as the beginning of its own stop.

#include <cstddef>

#include "caf/io/doorman.hpp"

#include "actors/connection.hpp"
#include "quiesce/messages.hpp"

namespace quiesce {

struct acceptor_config {
  /// Given to every connection actor.
  connection_config connection;
  /// Open connections at which accepting pauses.
  size_t max_connections = 1024;
  /// For the log: the address the socket listens on.
  std::string address;
  /// Other processes accept on the socket too (`listener::shared`): the stop
  /// neither `shutdown()`s it nor takes its backlog. The doorman must then
  /// be one that never `shutdown()`s it either (`make_listener_doorman`).
  bool shared_listener = false;
};

struct acceptor_state {
  static inline const char* name = "quiesce.acceptor";
  acceptor_config cfg;
  /// `cfg.connection`, shared by every connection actor.
  shared_config connection;
  caf::io::accept_handle hdl;
  size_t open = 0;
  size_t accepted = 0;
  bool paused = false;
  bool stopping = false;
  /// The stop leaves the socket to other processes (a shared listener's
  /// stop, or `retire`): no shutdown(), no backlog taken.
  bool leaving = false;
  /// A shared listener's close: the doorman is out of the event loop, the
  /// close comes on the next `close`.
  bool left_loop = false;
};

/// The acceptor's function; `door` is the listening socket, already open.
acceptor_actor::behavior_type
acceptor_main(acceptor_actor::stateful_broker_pointer<acceptor_state> self,
              caf::io::doorman_ptr door, acceptor_config cfg);

} // namespace quiesce
