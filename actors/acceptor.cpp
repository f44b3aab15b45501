#include "actors/acceptor.hpp"

#include <algorithm>
#include <string>

#include "caf/sec.hpp"

#include "actors/deferred_close.hpp"
#include "actors/listener.hpp"
#include "quiesce/log.hpp"
#include "actors/socket_ops.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "acceptor";

using acceptor_pointer
  = acceptor_actor::stateful_broker_pointer<acceptor_state>;

/// Starts the connection actor of `hdl` and tells the supervisor.
void start_connection(acceptor_pointer self, caf::io::connection_handle hdl) {
  auto& s = self->state;
  auto conn = self->fork(connection_main, hdl, s.connection);
  self->monitor(conn);
  ++s.open;
  ++s.accepted;
  // Open from now on; the supervisor counts the end (it sees every
  // connection end, also after this acceptor has ended at a stop).
  if (auto* counters = s.cfg.connection.counters) {
    process_counters::add(counters->accepted);
    process_counters::add(counters->open);
  }
  self->send(s.cfg.connection.supervisor, connected_atom_v, conn);
}

/// At the stop: connections accepted from now on get their stop from the
/// supervisor, after their first read perhaps: they know of it from the
/// start.
void mark_stopping(acceptor_pointer self) {
  auto& s = self->state;
  auto stopping = std::make_shared<connection_config>(*s.connection);
  stopping->stopping = true;
  s.connection = std::move(stopping);
}

/// At the stop delay: connections accepted from now on start in the closing
/// mode (connection_config::closing).
void mark_closing(acceptor_pointer self) {
  auto& s = self->state;
  if (s.connection->closing)
    return;
  auto closing = std::make_shared<connection_config>(*s.connection);
  closing->closing = true;
  s.connection = std::move(closing);
  log::info(component, "still accepting on " + s.cfg.address
                         + "; new connections in the closing mode (stop "
                           "delay)");
}

/// At the stop: clients whose handshake has completed wait in the backlog,
/// connected as far as they know, perhaps with a request sent. Closing the
/// listener would reset them; instead they are accepted and get what every
/// connection gets at a stop (its request answered, or a FIN at once). Even
/// past --max-connections (the server is stopping), but never past what the
/// descriptor limit allows.
void accept_backlog(acceptor_pointer self, int listen_fd) {
  auto& s = self->state;
  auto capacity
    = std::max(s.cfg.max_connections, max_connections_for(raise_fd_limit()));
  size_t taken = 0;
  while (s.open < capacity) {
    auto fd = socket_ops::accept_waiting(listen_fd);
    if (fd < 0)
      break;
    auto hdl = static_cast<caf::io::abstract_broker*>(self)->add_scribe(fd);
    start_connection(self, hdl);
    ++taken;
  }
  if (taken > 0)
    log::info(component, "accepted " + std::to_string(taken)
                           + " clients waiting in the backlog at the stop");
}

/// The stop: no more accepting. `leave_socket`: other processes go on
/// accepting on it (a shared listener, or a reload's old worker), so it is
/// neither shut down nor is its backlog taken.
void stop_accepting(acceptor_pointer self, bool leave_socket) {
  auto& s = self->state;
  if (s.stopping)
    return; // stop twice (or a retire and a stop): harmless
  s.stopping = true;
  s.leaving = leave_socket;
  if (leave_socket) {
    // Other processes accept on this socket: a shutdown() would stop it
    // listening in all of them, and the clients in its backlog are
    // theirs to take. This one only stops accepting, on the later turns
    // of `close` below (the doorman never shuts the socket down:
    // shared_listener.hpp). A client accepted before then is served like
    // one from the backlog.
    mark_stopping(self);
  } else if (auto fd = socket_ops::native_fd(self, s.hdl)) {
    // Refuse new clients now: the kernel stops listening at once.
    // Clients already in the backlog are taken first, or the shutdown
    // resets them.
    mark_stopping(self);
    accept_backlog(self, *fd);
    socket_ops::stop_listening(*fd);
  }
  // Take the doorman out of the event loop on a later turn: a stop in
  // the same turn as the doorman's start (deferred_close.hpp).
  defer_close(s.cfg.connection.relay, self->address(),
              caf::make_message(caf::close_atom_v));
}

} // namespace

acceptor_actor::behavior_type
acceptor_main(acceptor_actor::stateful_broker_pointer<acceptor_state> self,
              caf::io::doorman_ptr door, acceptor_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  if (!st.cfg.connection.relay)
    st.cfg.connection.relay = spawn_timer_relay(self->system());
  st.connection = std::make_shared<const connection_config>(st.cfg.connection);
  st.hdl = door->hdl();
  self->add_doorman(std::move(door));
  self->set_down_handler([self](caf::down_msg&) {
    // A connection actor ended: one more may be accepted.
    auto& s = self->state;
    --s.open;
    if (s.paused && !s.stopping && s.open < s.cfg.max_connections) {
      s.paused = false;
      self->trigger(s.hdl);
      log::info(component, "accepting again: " + std::to_string(s.open)
                             + " connections open");
    }
  });
  return {
    [self](caf::io::new_connection_msg& msg) {
      auto& s = self->state;
      start_connection(self, msg.handle);
      if (s.open >= s.cfg.max_connections && !s.paused) {
        // Clients wait in the backlog; the down handler resumes.
        s.paused = true;
        self->halt(s.hdl);
        log::warning(component, "paused accepting: " + std::to_string(s.open)
                                  + " connections open (the limit)");
      }
    },
    [self](stop_atom) {
      stop_accepting(self, self->state.cfg.shared_listener);
    },
    [self](retire_atom) { stop_accepting(self, true); },
    [self](closing_atom) { mark_closing(self); },
    [self](caf::close_atom) {
      auto& s = self->state;
      if (s.leaving && !s.left_loop) {
        // Still listening, for the other processes too: a client may be
        // waiting in the same turn of the event loop. Closing now would let
        // CAF accept it for a doorman already detached, which drops it
        // unserved; out of the event loop first, any such client still
        // reaches this acceptor (and is served as stopping). The close
        // comes on a later turn, when no accept can be pending.
        s.left_loop = true;
        self->halt(s.hdl);
        defer_close(s.cfg.connection.relay, self->address(),
                    caf::make_message(caf::close_atom_v));
        return;
      }
      self->close(s.hdl);
      // CAF 0.17 delivers no acceptor_closed_msg after a local close: send
      // it ourselves, so that there is one terminal path.
      self->send(caf::actor_cast<acceptor_actor>(self),
                 caf::io::acceptor_closed_msg{s.hdl});
    },
    [self](caf::io::acceptor_closed_msg&) {
      auto& s = self->state;
      if (s.stopping) {
        log::info(component, "listener closed " + s.cfg.address + " after "
                               + std::to_string(s.accepted) + " connections");
        self->quit();
        return;
      }
      if (auto fd = socket_ops::native_fd(self, s.hdl);
          fd && !socket_ops::listening(*fd)) {
        // Another process holding the socket stopped it listening (workers
        // of one master, all stopping): the end of accepting, not a fault.
        log::info(component, "listener " + s.cfg.address
                               + " stopped by another process after "
                               + std::to_string(s.accepted) + " connections");
        self->quit();
        return;
      }
      log::error(component, "listening socket " + s.cfg.address
                              + " failed; no longer accepting");
      self->quit(caf::sec::socket_operation_failed);
    },
  };
}

} // namespace quiesce
