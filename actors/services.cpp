#include "actors/services.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

#include "caf/exit_reason.hpp"
#include "caf/send.hpp"

#include "quiesce/log.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "services";

using entry = services_state::entry;
using phase = services_state::phase;

using log::span;

/// "12.3 ms".
std::string elapsed(caf::timespan x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f ms",
                std::chrono::duration<double, std::milli>(x).count());
  return buf;
}

std::string quoted(const entry& x) {
  return "service '" + x.decl.name + "'";
}

/// Spawns `x`'s actor, monitors it and records it; the error's text if it
/// could not start.
std::string spawn_one(services_pointer self, entry& x) {
  caf::actor handle;
  try {
    handle = x.decl.spawn(self->system());
  } catch (const std::exception& e) {
    return quoted(x)
           + " failed to start: its spawn function threw: " + e.what();
  } catch (...) {
    return quoted(x) + " failed to start: its spawn function threw";
  }
  if (!handle)
    return quoted(x)
           + " failed to start: its spawn function returned no "
             "actor";
  x.handle = std::move(handle);
  x.state = phase::running;
  self->monitor(x.handle);
  if (self->state.cfg.directory)
    self->state.cfg.directory->set(x.decl.name, x.handle, x.decl.handle_type);
  return {};
}

void fail(services_pointer self, entry& x, const std::string& why) {
  auto& st = self->state;
  x.state = phase::gone;
  st.report.failed = true;
  log::error(component, why);
  if (st.cfg.on_failure)
    st.cfg.on_failure(why);
}

/// `x` ended before its stop: its crash policy.
void crashed(services_pointer self, entry& x, const caf::error& reason) {
  auto why = quoted(x) + " ended unexpectedly ("
             + (reason ? to_string(reason) : std::string{"normal exit"}) + ")";
  auto& opts = x.decl.options;
  if (opts.on_crash == crash_policy::stop_server) {
    fail(self, x, why + "; its crash policy stops the server (exit code 1)");
    return;
  }
  auto now = self->clock().now();
  while (!x.restarts.empty() && now - x.restarts.front() >= opts.restart_window)
    x.restarts.pop_front();
  if (x.restarts.size() >= opts.max_restarts) {
    fail(self, x,
         why + " after " + std::to_string(x.restarts.size())
           + " restarts within " + span(opts.restart_window)
           + "; stopping the server (exit code 1)");
    return;
  }
  x.restarts.push_back(now);
  if (auto err = spawn_one(self, x); !err.empty()) {
    fail(self, x,
         why + "; restart: " + err
           + "; stopping the server (exit "
             "code 1)");
    return;
  }
  log::warning(component, why + "; restarted (restart "
                            + std::to_string(x.restarts.size()) + " of at most "
                            + std::to_string(opts.max_restarts) + " within "
                            + span(opts.restart_window) + ")");
}

void finish(services_pointer self) {
  auto& st = self->state;
  log::info(component,
            "services stopped: stopped=" + std::to_string(st.report.stopped)
              + " forced=" + std::to_string(st.report.forced),
            {{"stopped", st.report.stopped}, {"forced", st.report.forced}});
  if (st.cfg.directory)
    st.cfg.directory->clear();
  for (auto& rp : st.waiting)
    rp.deliver(st.report);
  st.waiting.clear();
  self->quit();
}

void force_current(services_pointer self, const std::string& why) {
  auto& st = self->state;
  auto idx = *st.current;
  auto& x = st.entries[idx];
  x.state = phase::forced;
  ++st.report.forced;
  log::warning(component, quoted(x) + " forced " + why + ": not exited "
                            + elapsed(self->clock().now() - x.stop_began)
                            + " after its stop; exit (user_shutdown) sent");
  self->send_exit(x.handle, caf::exit_reason::user_shutdown);
  self->delayed_send(self, st.cfg.kill_after, service_timer_atom_v,
                     static_cast<uint32_t>(idx),
                     static_cast<uint8_t>(service_step::kill));
}

/// Stops the next running service, from the back; finishes when none is
/// left.
void stop_next(services_pointer self) {
  auto& st = self->state;
  size_t idx = st.current ? *st.current : st.entries.size();
  while (idx > 0) {
    --idx;
    auto& x = st.entries[idx];
    if (x.state != phase::running)
      continue;
    st.current = idx;
    x.state = phase::stopping;
    x.stop_began = self->clock().now();
    log::debug(component, quoted(x) + ": stop (deadline "
                            + span(x.decl.options.stop_deadline) + ")");
    // A typed actor cannot send() to a dynamically typed one.
    caf::anon_send(x.handle, stop_atom_v);
    if (st.forcing)
      force_current(self, "at once (second signal)");
    else
      self->delayed_send(self, x.decl.options.stop_deadline,
                         service_timer_atom_v, static_cast<uint32_t>(idx),
                         static_cast<uint8_t>(service_step::deadline));
    return;
  }
  st.current.reset();
  finish(self);
}

/// `x`, being stopped, has exited.
void exited(services_pointer self, size_t idx, const caf::error& reason) {
  auto& st = self->state;
  auto& x = st.entries[idx];
  auto took = elapsed(self->clock().now() - x.stop_began);
  if (x.state == phase::stopping) {
    ++st.report.stopped;
    if (reason)
      log::warning(component, quoted(x) + " stopped in " + took
                                + " with an error (" + to_string(reason) + ")");
    else
      log::info(component, quoted(x) + " stopped in " + took);
  } else {
    log::info(component, quoted(x) + " exited " + took
                           + " after its stop, forced ("
                           + (reason ? to_string(reason) : "normal") + ")");
  }
  x.state = phase::gone;
  if (st.current && *st.current == idx)
    stop_next(self);
}

void on_timer(services_pointer self, uint32_t idx, uint8_t step) {
  auto& st = self->state;
  if (!st.current || *st.current != idx || idx >= st.entries.size())
    return;
  auto& x = st.entries[idx];
  switch (static_cast<service_step>(step)) {
    case service_step::deadline:
      if (x.state == phase::stopping)
        force_current(self, "at its deadline ("
                              + span(x.decl.options.stop_deadline) + ")");
      break;
    case service_step::kill:
      if (x.state != phase::forced)
        break;
      log::warning(component, quoted(x) + " still runs "
                                + span(st.cfg.kill_after)
                                + " after its forced exit (it traps exits): "
                                  "killed");
      x.state = phase::killed;
      self->send_exit(x.handle, caf::exit_reason::kill);
      self->delayed_send(self, st.cfg.give_up_after, service_timer_atom_v, idx,
                         static_cast<uint8_t>(service_step::give_up));
      break;
    case service_step::give_up:
      if (x.state != phase::killed)
        break;
      log::error(component, quoted(x) + " did not exit "
                              + span(st.cfg.give_up_after)
                              + " after a kill (stuck in a blocking call?); "
                                "giving up on it: the teardown guard ends "
                                "the process");
      x.state = phase::gone;
      stop_next(self);
      break;
  }
}

} // namespace

services_actor::behavior_type services_main(services_pointer self,
                                            services_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  for (auto& decl : st.cfg.services)
    st.entries.push_back(entry{decl, {}, phase::not_started, {}, {}});
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& s = self->state;
    for (size_t i = 0; i < s.entries.size(); ++i) {
      auto& x = s.entries[i];
      if (!x.handle || msg.source != x.handle.address())
        continue;
      switch (x.state) {
        case phase::running:
          crashed(self, x, msg.reason);
          break;
        case phase::stopping:
        case phase::forced:
        case phase::killed:
          exited(self, i, msg.reason);
          break;
        default:
          break;
      }
      return;
    }
  });
  return {
    [self](start_atom) -> std::string {
      auto& s = self->state;
      for (auto& x : s.entries) {
        if (x.state != phase::not_started)
          continue;
        // Main prints the error, as every error that keeps it from running.
        if (auto err = spawn_one(self, x); !err.empty())
          return err;
        log::info(component,
                  quoted(x) + " started (stop deadline "
                    + span(x.decl.options.stop_deadline) + ", on a "
                    + (x.decl.options.on_crash == crash_policy::restart
                         ? "crash: restart"
                         : "crash: stop the server")
                    + ")");
      }
      return {};
    },
    [self](stop_atom) {
      auto& s = self->state;
      auto rp = self->make_response_promise<services_report>();
      s.waiting.push_back(rp);
      if (!s.stopping) {
        s.stopping = true;
        stop_next(self);
      }
      return rp;
    },
    [self](force_atom) {
      auto& s = self->state;
      if (s.forcing)
        return;
      s.forcing = true;
      if (s.current && *s.current < s.entries.size()
          && s.entries[*s.current].state == phase::stopping)
        force_current(self, "at once (second signal)");
    },
    [self](service_timer_atom, uint32_t idx, uint8_t step) {
      on_timer(self, idx, step);
    },
  };
}

} // namespace quiesce
