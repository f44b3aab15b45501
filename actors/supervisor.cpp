#include "actors/supervisor.hpp"

#include <chrono>
#include <string>

#include "caf/exit_reason.hpp"

#include "quiesce/log.hpp"

namespace quiesce {

namespace {

/// The component of the supervisor's log lines (supervisor_config).
const char* component_of(supervisor_pointer self) {
  return self->state.cfg.log_component;
}

/// Ends the supervisor once nothing is left to wait for.
void finish_if_drained(supervisor_pointer self) {
  auto& st = self->state;
  if (!st.stopping || st.acceptor_alive || !st.connections.empty())
    return;
  st.report.duration = self->clock().now() - st.stop_began;
  if (st.cfg.summary && !st.cfg.numeric_summary)
    log::info(component_of(self), st.cfg.summary(st.report));
  else if (st.cfg.summary)
    log::info(component_of(self), st.cfg.summary(st.report),
              summary_fields(st.report));
  else
    log::info(component_of(self),
              "stopped: drained=" + std::to_string(st.report.drained)
                + " forced=" + std::to_string(st.report.forced)
                + " duration=" + log::millis(st.report.duration),
              summary_fields(st.report));
  if (st.cfg.on_drained && st.cfg.counters != nullptr)
    st.cfg.on_drained(st.cfg.counters->snapshot());
  for (auto& rp : st.waiting)
    rp.deliver(st.report);
  st.waiting.clear();
  self->quit();
}

void force_remaining(supervisor_pointer self, const char* why) {
  auto& st = self->state;
  if (st.forcing)
    return;
  st.forcing = true;
  size_t unfinished = 0;
  for (auto& kvp : st.connections) {
    auto& entry = kvp.second;
    self->send_exit(entry.handle, caf::exit_reason::user_shutdown);
    if (!entry.done)
      ++unfinished;
  }
  // Not counted as forced here: a connection that has not reported `done`
  // yet may have nothing in flight (its stop or its `done` still on the
  // way); it then closes cleanly and reports `done`. Only a connection that
  // ends without `done` was cut off (connection_gone).
  log::warning(component_of(self),
               std::string{why} + ": closing " + std::to_string(unfinished)
                 + " unfinished connections by force ("
                 + std::to_string(st.connections.size() - unfinished)
                 + " drained ones were lingering; those with "
                   "nothing in flight close cleanly)");
  finish_if_drained(self);
}

/// `order` to every open connection.
void tell_connections(supervisor_pointer self, connection_order order) {
  auto& st = self->state;
  if (st.cfg.broadcast_stop) {
    std::vector<connection_actor> open;
    open.reserve(st.connections.size());
    for (auto& kvp : st.connections)
      open.push_back(kvp.second.handle);
    st.cfg.broadcast_stop(std::move(open), order);
  } else {
    for (auto& kvp : st.connections)
      tell_connection(kvp.second.handle, order);
  }
}

void tell_connections(supervisor_pointer self, bool retire) {
  tell_connections(self,
                   retire ? connection_order::retire : connection_order::stop);
}

/// The stop delay began: serve on, in the closing mode (supervisor.hpp).
void begin_closing(supervisor_pointer self) {
  auto& st = self->state;
  if (st.stopping || st.closing)
    return;
  st.closing = true;
  log::info(component_of(self),
            "closing mode: " + std::to_string(st.connections.size())
              + " connections open; still accepting");
  if (st.acceptor_alive)
    self->send(st.acceptor, closing_atom_v);
  tell_connections(self, connection_order::closing);
}

void begin_stop(supervisor_pointer self, const char* why, bool retire = false) {
  auto& st = self->state;
  if (st.stopping) {
    if (st.retiring && !retire) {
      // A stop during a retire: the connections still in their grace stop
      // now (those stopped already ignore it).
      st.retiring = false;
      log::info(component_of(self),
                std::string{why} + ": the retire becomes a stop");
      tell_connections(self, false);
    }
    return;
  }
  st.stopping = true;
  st.retiring = retire;
  st.stop_began = self->clock().now();
  for (auto& kvp : st.connections)
    if (!kvp.second.done)
      ++st.report.open_at_stop;
  log::info(component_of(self), std::string{why} + ": stopping; "
                                  + std::to_string(st.report.open_at_stop)
                                  + " connections open, drain timeout "
                                  + log::millis(st.cfg.drain_timeout));
  if (st.acceptor_alive) {
    if (retire)
      self->send(st.acceptor, retire_atom_v);
    else
      self->send(st.acceptor, stop_atom_v);
  }
  tell_connections(self, retire);
  self->delayed_send(self, st.cfg.drain_timeout, drain_timeout_atom_v);
  finish_if_drained(self);
}

/// One more connection drained during the stop.
void count_drained(supervisor_state& st) {
  ++st.report.drained;
  if (st.cfg.counters != nullptr)
    process_counters::add(st.cfg.counters->drained);
}

/// A connection reported `done`: it owes nothing any more. Before its down
/// message, since both come from the same actor.
void connection_done(supervisor_pointer self, const caf::actor_addr& addr) {
  auto& st = self->state;
  auto i = st.connections.find(addr);
  if (i == st.connections.end() || i->second.done)
    return;
  i->second.done = true;
  // Also after the force went out: the connection had nothing in flight.
  if (st.stopping)
    count_drained(st);
}

/// A connection actor ended (its down message).
void connection_gone(supervisor_pointer self, const caf::actor_addr& addr,
                     const caf::error& reason) {
  auto& st = self->state;
  auto i = st.connections.find(addr);
  if (i == st.connections.end())
    return;
  // Ended during the stop without `done`: with an error it aborted its
  // socket (forced at the deadline or by a second signal with work in
  // flight, its write timeout, a behaviour that threw), which is a close by
  // force; without one, it ended on its own cleanly.
  if (st.stopping && !i->second.done) {
    if (reason) {
      ++st.report.forced;
      if (st.cfg.counters != nullptr)
        process_counters::add(st.cfg.counters->forced);
      if (reason != caf::exit_reason::user_shutdown)
        log::warning(component_of(self),
                     "a connection failed during the drain ("
                       + to_string(reason) + "); counted as forced");
    } else {
      count_drained(st);
    }
  }
  st.connections.erase(i);
  if (st.cfg.counters != nullptr)
    st.cfg.counters->connection_ended();
  // After the counts: a test waits on this line, then reads them.
  if (log::enabled(log::level::debug))
    log::debug(component_of(self), "a connection ended; "
                                     + std::to_string(st.connections.size())
                                     + " open");
  finish_if_drained(self);
}

} // namespace

void tell_connection(const connection_actor& conn, connection_order order) {
  switch (order) {
    case connection_order::stop:
      caf::anon_send(conn, stop_atom_v);
      break;
    case connection_order::retire:
      caf::anon_send(conn, retire_atom_v);
      break;
    case connection_order::closing:
      caf::anon_send(conn, lifecycle_timer_atom_v,
                     static_cast<uint8_t>(lifecycle_timer::closing));
      break;
  }
}

supervisor_actor::behavior_type supervisor_main(supervisor_pointer self,
                                                supervisor_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.acceptor = st.cfg.start_acceptor(self);
  st.acceptor_alive = true;
  self->monitor(st.acceptor);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& s = self->state;
    if (msg.source == s.acceptor.address()) {
      s.acceptor_alive = false;
      if (!s.stopping) {
        if (!msg.reason) {
          // Its socket was stopped by another process (acceptor.hpp).
          begin_stop(self, "listener stopped elsewhere");
          return;
        }
        log::error(component_of(self), "the acceptor ended unexpectedly ("
                                         + to_string(msg.reason) + ")");
        begin_stop(self, "listener lost");
        return;
      }
      finish_if_drained(self);
      return;
    }
    connection_gone(self, msg.source, msg.reason);
  });
  return {
    [self](connected_atom, connection_actor& conn) {
      auto& s = self->state;
      self->monitor(conn);
      auto& entry = s.connections[conn.address()];
      entry.handle = conn;
      if (s.stopping) {
        // Accepted while the listener closed: it drains like the others.
        ++s.report.open_at_stop;
        if (s.forcing) {
          // Like the others at the force: it decides (connection_gone).
          self->send_exit(conn, caf::exit_reason::user_shutdown);
        } else if (s.retiring) {
          self->send(conn, retire_atom_v);
        } else {
          self->send(conn, stop_atom_v);
        }
      } else if (s.closing) {
        // Accepted before the acceptor took its `closing`.
        tell_connection(conn, connection_order::closing);
      }
    },
    [self](done_atom) {
      connection_done(self,
                      caf::actor_cast<caf::actor_addr>(self->current_sender()));
    },
    [self](stop_atom) {
      auto rp = self->make_response_promise<shutdown_report>();
      self->state.waiting.push_back(rp);
      begin_stop(self, "stop requested");
      return rp;
    },
    [self](retire_atom) {
      auto rp = self->make_response_promise<shutdown_report>();
      self->state.waiting.push_back(rp);
      begin_stop(self, "retire requested", true);
      return rp;
    },
    [self](force_atom) {
      begin_stop(self, "stop forced");
      force_remaining(self, "stop forced");
    },
    [self](closing_atom) { begin_closing(self); },
    [self](drain_timeout_atom) {
      force_remaining(self, "drain timeout passed");
    },
    [self](metrics_atom) {
      auto* counters = self->state.cfg.counters;
      return counters != nullptr ? counters->snapshot() : metrics_snapshot{};
    },
    [self](connections_atom) {
      uint32_t open = 0;
      for (auto& kvp : self->state.connections)
        if (!kvp.second.done)
          ++open;
      return open;
    },
  };
}

std::vector<log::field> summary_fields(const shutdown_report& x) {
  return {{"drained", x.drained},
          {"forced", x.forced},
          {"duration_ms",
           std::chrono::duration<double, std::milli>(x.duration).count()},
          {"open_at_stop", x.open_at_stop}};
}

} // namespace quiesce
