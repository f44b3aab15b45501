#include "actors/master.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "caf/io/middleman.hpp"

#include "actors/control_plane.hpp"
#include "actors/supervisor.hpp"
#include "actors/metrics.hpp"
#include "quiesce/log.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "master";

void tell(master_pointer self, master_event::kind what, uint32_t worker,
          std::string detail, uint32_t connections = 0) {
  auto& st = self->state;
  if (st.cfg.observer)
    st.cfg.observer(
      master_event{what, worker, std::move(detail), st.stopping, connections});
}

/// A worker ended, or was given up on, before it answered its stop: the
/// connections it held at the last poll were cut, and at least one (it had
/// not finished, or it would have answered) counts as forced.
void count_lost(master_pointer self, uint32_t held) {
  self->state.report.forced += std::max(held, uint32_t{1});
  // The metrics say the same (their `forced` counts connections).
  self->state.ended.forced += std::max(held, uint32_t{1});
}

/// Whether the current message comes from an actor of this process (not
/// from a BASP peer, and not anonymous: a peer's message may be).
bool from_here(master_pointer self, const char* what) {
  auto& sender = self->current_sender();
  if (sender && sender->node() == self->node())
    return true;
  log::warning(component, std::string{"ignored `"} + what + "` from "
                            + (sender ? to_string(sender->node())
                                      : std::string{"an anonymous sender"})
                            + ": only the master's own process may send it");
  return false;
}

caf::error refused_here() {
  return caf::make_error(caf::sec::request_receiver_down,
                         "only the master's own process may ask this");
}

/// `retire` to worker `id`, whose answer is logged.
void retire_worker(master_pointer self, uint32_t id) {
  auto& st = self->state;
  auto& entry = st.workers.at(id);
  if (entry.retiring)
    return;
  entry.retiring = true;
  self
    ->request(entry.handle, st.cfg.stop_deadline + st.cfg.stop_deadline,
              retire_atom_v)
    .then(
      [self, id](shutdown_report& x) {
        log::info(component, "worker " + std::to_string(id)
                               + " retired: " + std::to_string(x.drained)
                               + " drained, " + std::to_string(x.forced)
                               + " forced, in " + log::millis(x.duration));
        // Its end, even during a stop that has not had its answer (the
        // stop may have crossed this answer), is no loss: its connections
        // are accounted for.
        auto i = self->state.workers.find(id);
        if (i != self->state.workers.end())
          i->second.retired = true;
      },
      [id](caf::error& err) {
        log::debug(component, "worker " + std::to_string(id)
                                + " gave no answer to its retire ("
                                + to_string(err) + ")");
      });
}

/// Answers every `stop` and ends the master once no worker holds the stop
/// up any more.
void finish_if_stopped(master_pointer self) {
  auto& st = self->state;
  if (!st.stopping || st.stopped)
    return;
  for (auto& kvp : st.workers)
    if (kvp.second.stop_pending)
      return;
  st.stopped = true;
  // The process's summary, in the form of a single process's (the sums;
  // the duration is the longest worker's).
  log::info(component,
            "stopped: drained=" + std::to_string(st.report.drained)
              + " forced=" + std::to_string(st.report.forced)
              + " duration=" + log::millis(st.report.duration)
              + " open_at_stop=" + std::to_string(st.report.open_at_stop)
              + " (sums of " + std::to_string(st.answered)
              + " workers; duration: the longest)",
            [&] {
              auto fields = summary_fields(st.report);
              fields.emplace_back("workers", st.answered);
              return fields;
            }());
  for (auto& rp : st.waiting)
    rp.deliver(st.report);
  st.waiting.clear();
  if (!st.cfg.linger)
    self->quit();
}

/// Adds one worker's report to the sum.
void add_report(shutdown_report& sum, const shutdown_report& x) {
  sum.open_at_stop += x.open_at_stop;
  sum.drained += x.drained;
  sum.forced += x.forced;
  sum.duration = std::max(sum.duration, x.duration);
}

/// Sends worker `id` its `stop` and waits for the answer.
void stop_worker(master_pointer self, uint32_t id) {
  auto& entry = self->state.workers.at(id);
  entry.stop_pending = true;
  self->request(entry.handle, self->state.cfg.stop_deadline, stop_atom_v)
    .then(
      [self, id](shutdown_report& x) {
        auto& st = self->state;
        auto i = st.workers.find(id);
        if (i == st.workers.end() || !i->second.stop_pending)
          return;
        i->second.stop_pending = false;
        log::info(component,
                  "worker " + std::to_string(id)
                    + " answered the stop: " + std::to_string(x.drained)
                    + " drained, " + std::to_string(x.forced) + " forced");
        add_report(st.report, x);
        ++st.answered;
        finish_if_stopped(self);
      },
      [self, id](caf::error& err) {
        // Its deadline passed, or it ended first (then its down message
        // has dropped it already and this comes too late to matter).
        auto& st = self->state;
        auto i = st.workers.find(id);
        if (i == st.workers.end() || !i->second.stop_pending)
          return;
        i->second.stop_pending = false;
        if (i->second.retired) {
          // It answered its retire and ended before the stop reached it.
          finish_if_stopped(self);
          return;
        }
        count_lost(self, i->second.connections);
        log::warning(component, "worker " + std::to_string(id)
                                  + " did not answer the stop ("
                                  + to_string(err)
                                  + "); the stop goes on without it");
        finish_if_stopped(self);
      });
}

void begin_stop(master_pointer self, const char* why) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  log::info(component, std::string{why} + ": stopping "
                         + std::to_string(st.workers.size()) + " workers");
  for (auto& kvp : st.workers)
    stop_worker(self, kvp.first);
  finish_if_stopped(self);
}

/// Why a registration cannot be accepted, or empty.
std::string refusal(master_pointer self, const std::string& secret, uint32_t id,
                    const supervisor_actor& sup) {
  auto& st = self->state;
  if (!same_secret(secret, st.cfg.secret))
    return "wrong secret";
  if (st.cfg.expects ? !st.cfg.expects(id) : st.cfg.expected.count(id) == 0)
    return "unknown worker id";
  if (st.workers.count(id) > 0)
    return "worker id registered already";
  if (!sup)
    return "no supervisor";
  for (auto& kvp : st.workers)
    if (kvp.second.handle == sup)
      return "supervisor registered already as worker "
             + std::to_string(kvp.first);
  return {};
}

void worker_gone(master_pointer self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto i = std::find_if(st.workers.begin(), st.workers.end(), [&](auto& kvp) {
    return kvp.second.handle.address() == msg.source;
  });
  if (i == st.workers.end())
    return;
  auto id = i->first;
  auto held_stop = i->second.stop_pending;
  auto held = i->second.connections;
  auto retiring = i->second.retiring;
  // It answered its retire and ended before the stop reached it: no loss.
  if (i->second.retired)
    held_stop = false;
  add_counts(st.ended, i->second.last, false);
  st.workers.erase(i);
  auto reason = to_string(msg.reason);
  if (held_stop)
    count_lost(self, held);
  auto line = "worker " + std::to_string(id) + " is gone (" + reason + ")";
  if (st.stopping && !held_stop)
    log::info(component, line + " after its stop");
  else if (retiring && !held_stop)
    log::info(component, line + " after its retire");
  else
    log::warning(component,
                 line + "; it held " + std::to_string(held)
                   + " connections at the last poll"
                   + (held_stop ? "; the stop goes on without it" : ""));
  tell(self, master_event::kind::gone, id, reason, held);
  finish_if_stopped(self);
}

/// Asks every worker for its connection count, and again after the
/// interval. Answers are kept for the log line of a worker that is gone; a
/// missing answer leaves the last one.
void poll(master_pointer self) {
  auto& st = self->state;
  if (st.cfg.on_poll) {
    uint32_t open = 0;
    bool answering = true;
    auto now = self->clock().now();
    for (auto& kvp : st.workers) {
      open += kvp.second.connections;
      answering
        = answering && now - kvp.second.last_answer < st.cfg.unresponsive_after;
    }
    st.cfg.on_poll(open, answering);
  }
  for (auto& kvp : st.workers) {
    auto id = kvp.first;
    self->request(kvp.second.handle, st.cfg.poll_interval, connections_atom_v)
      .then(
        [self, id](uint32_t n) {
          auto i = self->state.workers.find(id);
          if (i != self->state.workers.end()) {
            i->second.connections = n;
            i->second.last_answer = self->clock().now();
          }
        },
        [](caf::error&) {});
    poll_metrics(self, id);
  }
  self->delayed_send(self, st.cfg.poll_interval, connections_atom_v);
}

} // namespace

std::string to_string(master_event::kind x) {
  switch (x) {
    case master_event::kind::registered:
      return "registered";
    case master_event::kind::refused:
      return "refused";
    case master_event::kind::gone:
      return "gone";
    case master_event::kind::given_up:
      return "given_up";
  }
  return "?";
}

master_actor::behavior_type master_main(master_pointer self,
                                        master_config cfg) {
  self->state.cfg = std::move(cfg);
  if (self->state.cfg.poll_interval.count() > 0)
    self->delayed_send(self, self->state.cfg.poll_interval, connections_atom_v);
  self->set_down_handler(
    [self](caf::down_msg& msg) { worker_gone(self, msg); });
  return {
    [self](register_atom, const std::string& secret, uint32_t id,
           supervisor_actor& sup) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      auto why = refusal(self, secret, id, sup);
      if (!why.empty()) {
        // Never the secret itself in the log.
        log::warning(component, "registration refused (" + why + ", worker id "
                                  + std::to_string(id) + ", from "
                                  + to_string(self->current_sender()) + ")");
        tell(self, master_event::kind::refused, id, why);
        return caf::make_error(caf::sec::invalid_argument,
                               "registration refused");
      }
      self->monitor(sup);
      st.workers[id].handle = sup;
      st.workers[id].last_answer = self->clock().now();
      log::info(component, "worker " + std::to_string(id) + " registered");
      tell(self, master_event::kind::registered, id, {});
      if (st.stopping) {
        // A worker that arrives during a stop drains with the others.
        stop_worker(self, id);
        if (st.forcing)
          self->send(sup, force_atom_v);
      } else if (st.retire_on_register.erase(id) > 0) {
        retire_worker(self, id);
      } else if (st.closing) {
        self->send(sup, closing_atom_v); // started during the stop delay
      }
      return caf::ok_atom_v;
    },
    [self](stop_atom) -> caf::result<shutdown_report> {
      if (!from_here(self, "stop"))
        return refused_here();
      auto rp = self->make_response_promise<shutdown_report>();
      if (self->state.stopped) {
        // Lingering after the stop (master_config::linger).
        rp.deliver(self->state.report);
        return rp;
      }
      self->state.waiting.push_back(rp);
      begin_stop(self, "stop requested");
      return rp;
    },
    [self](force_atom) {
      if (!from_here(self, "force"))
        return;
      auto& st = self->state;
      begin_stop(self, "stop forced");
      if (st.forcing)
        return;
      st.forcing = true;
      log::warning(component, "forcing the stop of "
                                + std::to_string(st.workers.size())
                                + " workers");
      for (auto& kvp : st.workers)
        self->send(kvp.second.handle, force_atom_v);
      // A worker that cannot act on the force (stopped, wedged) does not
      // hold the stop up past `force_deadline`.
      self->delayed_send(self, st.cfg.force_deadline, drain_timeout_atom_v);
    },
    [self](drain_timeout_atom) {
      auto& st = self->state;
      if (self->current_sender() == nullptr
          || self->current_sender()->address() != self->address())
        return; // its own timer only
      for (auto& kvp : st.workers) {
        auto& entry = kvp.second;
        if (!entry.stop_pending)
          continue;
        entry.stop_pending = false;
        count_lost(self, entry.connections);
        log::warning(component, "worker " + std::to_string(kvp.first)
                                  + " did not answer within "
                                  + log::millis(st.cfg.force_deadline)
                                  + " of the force; the stop goes on without "
                                    "it");
        tell(self, master_event::kind::given_up, kvp.first, {},
             entry.connections);
      }
      finish_if_stopped(self);
    },
    [self](workers_atom) -> caf::result<uint32_t> {
      if (!from_here(self, "workers"))
        return refused_here();
      return static_cast<uint32_t>(self->state.workers.size());
    },
    [self](metrics_atom) -> caf::result<metrics_snapshot> {
      if (!from_here(self, "metrics"))
        return refused_here();
      auto rp = self->make_response_promise<metrics_snapshot>();
      collect_metrics(self, rp);
      return rp;
    },
    [self](metrics_atom, const std::string& secret, uint32_t id,
           metrics_snapshot& x) {
      auto& st = self->state;
      auto i = st.workers.find(id);
      if (!same_secret(secret, st.cfg.secret) || i == st.workers.end())
        return;
      i->second.last = std::move(x);
    },
    [self](done_atom, const std::string& secret,
           uint32_t id) -> caf::result<caf::ok_atom> {
      // A worker about to exit: BASP keeps one connection's messages in
      // order, so its report and final counts are in this mailbox already.
      // Its exit must not overtake them (the report would count as lost).
      if (!same_secret(secret, self->state.cfg.secret))
        return caf::make_error(caf::sec::invalid_argument, "wrong secret");
      log::debug(component, "worker " + std::to_string(id) + " leaves");
      return caf::ok_atom_v;
    },
    [self](connections_atom) {
      if (self->current_sender() == nullptr
          || self->current_sender()->address() != self->address())
        return; // its own timer only
      poll(self);
    },
    [self](service_atom, const std::string& secret,
           const std::string& name) -> caf::result<caf::actor> {
      auto& st = self->state;
      if (!same_secret(secret, st.cfg.secret)) {
        log::warning(component, "service look-up refused (wrong secret, from "
                                  + to_string(self->current_sender()) + ")");
        return caf::make_error(caf::sec::invalid_argument,
                               "service look-up refused");
      }
      caf::actor found;
      if (st.cfg.services)
        found = st.cfg.services->find(name);
      if (!found)
        return caf::make_error(caf::sec::invalid_argument,
                               "no shared service named '" + name + "'");
      return found;
    },
    [self](closing_atom) {
      if (!from_here(self, "closing"))
        return;
      auto& st = self->state;
      if (st.closing || st.stopping)
        return;
      st.closing = true;
      log::info(component, "stop delay: " + std::to_string(st.workers.size())
                             + " workers go into the closing mode");
      for (auto& kvp : st.workers)
        self->send(kvp.second.handle, closing_atom_v);
    },
    [self](retire_atom, uint32_t id) {
      if (!from_here(self, "retire"))
        return;
      auto& st = self->state;
      if (st.workers.count(id) > 0)
        retire_worker(self, id);
      else
        st.retire_on_register.insert(id);
    },
  };
}

caf::expected<published_master> start_master(caf::actor_system& sys,
                                             master_config cfg) {
  if (cfg.secret.empty())
    return caf::make_error(caf::sec::invalid_argument,
                           "the master needs a secret");
  auto master = sys.spawn(master_main, std::move(cfg));
  // Loopback only: the control plane is no open door.
  auto port = sys.middleman().publish(master, 0, "127.0.0.1");
  if (!port) {
    caf::anon_send_exit(master, caf::exit_reason::user_shutdown);
    return std::move(port.error());
  }
  return published_master{master, *port};
}

} // namespace quiesce
