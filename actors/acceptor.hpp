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
};

/// The acceptor's function; `door` is the listening socket, already open.
acceptor_actor::behavior_type
acceptor_main(acceptor_actor::stateful_broker_pointer<acceptor_state> self,
              caf::io::doorman_ptr door, acceptor_config cfg);

} // namespace quiesce
