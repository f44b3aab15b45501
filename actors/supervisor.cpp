#include "actors/supervisor.hpp"

#include <chrono>
#include <cstdio>
#include <string>

#include "caf/exit_reason.hpp"

#include "actors/log.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "supervisor";

std::string millis(caf::timespan x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1fms",
                std::chrono::duration<double, std::milli>(x).count());
  return buf;
}

/// Ends the supervisor once nothing is left to wait for.
void finish_if_drained(supervisor_pointer self) {
  auto& st = self->state;
  if (!st.stopping || st.acceptor_alive || !st.connections.empty())
    return;
  st.report.duration = self->clock().now() - st.stop_began;
  log::info(component, "stopped: drained=" + std::to_string(st.report.drained)
                         + " forced=" + std::to_string(st.report.forced)
                         + " duration=" + millis(st.report.duration));
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
  size_t n = 0;
  for (auto& [addr, conn] : st.connections) {
    if (st.forced.insert(addr).second) {
      self->send_exit(conn, caf::exit_reason::user_shutdown);
      ++n;
    }
  }
  st.report.forced += static_cast<uint32_t>(n);
  log::warning(component, std::string{why} + ": closing " + std::to_string(n)
                            + " connections by force");
  finish_if_drained(self);
}

void begin_stop(supervisor_pointer self, const char* why) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.stop_began = self->clock().now();
  st.report.open_at_stop = static_cast<uint32_t>(st.connections.size());
  log::info(component, std::string{why} + ": stopping; "
                         + std::to_string(st.connections.size())
                         + " connections open, drain timeout "
                         + millis(st.cfg.drain_timeout));
  if (st.acceptor_alive)
    self->send(st.acceptor, stop_atom_v);
  for (auto& kvp : st.connections)
    self->send(kvp.second, stop_atom_v);
  self->delayed_send(self, st.cfg.drain_timeout, drain_timeout_atom_v);
  finish_if_drained(self);
}

/// A connection ended: it reported `done`, or its down message came (it
/// ended any other way). Whichever comes first does the accounting.
void connection_gone(supervisor_pointer self, const caf::actor_addr& addr) {
  auto& st = self->state;
  if (st.connections.erase(addr) == 0)
    return;
  if (st.forced.erase(addr) == 0 && st.stopping)
    ++st.report.drained;
  finish_if_drained(self);
}

} // namespace

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
        log::error(component, "the acceptor ended unexpectedly ("
                                + to_string(msg.reason) + ")");
        begin_stop(self, "listener lost");
        return;
      }
      finish_if_drained(self);
      return;
    }
    connection_gone(self, msg.source);
  });
  return {
    [self](connected_atom, connection_actor& conn) {
      auto& s = self->state;
      self->monitor(conn);
      s.connections.emplace(conn.address(), conn);
      if (s.stopping) {
        // Accepted while the listener closed: it drains like the others.
        ++s.report.open_at_stop;
        if (s.forcing) {
          s.forced.insert(conn.address());
          ++s.report.forced;
          self->send_exit(conn, caf::exit_reason::user_shutdown);
        } else {
          self->send(conn, stop_atom_v);
        }
      }
    },
    [self](done_atom) {
      connection_gone(self,
                      caf::actor_cast<caf::actor_addr>(self->current_sender()));
    },
    [self](stop_atom) {
      auto rp = self->make_response_promise<shutdown_report>();
      self->state.waiting.push_back(rp);
      begin_stop(self, "stop requested");
      return rp;
    },
    [self](force_atom) {
      begin_stop(self, "stop forced");
      force_remaining(self, "stop forced");
    },
    [self](drain_timeout_atom) {
      force_remaining(self, "drain timeout passed");
    },
  };
}

} // namespace quiesce
