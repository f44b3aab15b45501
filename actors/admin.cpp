#include "actors/admin.hpp"

#include <chrono>
#include <memory>
#include <utility>

#include "caf/io/middleman.hpp"

#include "actors/acceptor.hpp"
#include "actors/metrics.hpp"
#include "actors/shared_listener.hpp"
#include "actors/supervisor.hpp"
#include "quiesce/http.hpp"
#include "quiesce/log.hpp"

namespace quiesce {

namespace {

using answer = caf::result<int32_t, std::string, std::string>;

answer text(int32_t status, std::string body) {
  return answer{status, std::string{"text/plain"}, std::move(body)};
}

/// The text of `/metrics` from the master's `sum`.
std::string metrics_of(admin_pointer self, const metrics_snapshot& sum) {
  auto values = self->state.values;
  values.unanswered = sum.unanswered;
  return metrics_text(sum, values);
}

/// Asks the master for its sum and keeps it (the stop's report: the final).
void fetch_final_sum(admin_pointer self) {
  auto& st = self->state;
  if (!st.cfg.master || st.master_gone)
    return;
  self->request(st.cfg.master, st.cfg.metrics_timeout, metrics_atom_v)
    .then([self](metrics_snapshot& sum) { self->state.last_sum = sum; },
          [](caf::error&) {});
}

} // namespace

admin_actor::behavior_type admin_main(admin_pointer self, admin_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.values.workers = self->state.cfg.workers;
  if (self->state.cfg.master) {
    self->monitor(self->state.cfg.master);
    self->set_down_handler([self](caf::down_msg& msg) {
      if (msg.source == self->state.cfg.master.address())
        self->state.master_gone = true;
    });
  }
  return {
    [self](http_get_atom, const std::string& path) -> answer {
      auto& st = self->state;
      if (path == "/healthz")
        return text(200, "ok\n");
      if (path == "/readyz")
        return st.values.stopping ? text(503, "stopping\n")
               : st.values.ready  ? text(200, "ready\n")
                                  : text(503, "starting\n");
      if (path != "/metrics")
        return text(404, "not found\n");
      if (!st.cfg.master)
        return answer{int32_t{200}, std::string{metrics_content_type},
                      metrics_text(st.cfg.counters != nullptr
                                     ? st.cfg.counters->snapshot()
                                     : metrics_snapshot{},
                                   st.values)};
      if (st.master_gone && st.last_sum)
        return answer{int32_t{200}, std::string{metrics_content_type},
                      metrics_of(self, *st.last_sum)};
      auto rp
        = self->make_response_promise<int32_t, std::string, std::string>();
      self->request(st.cfg.master, st.cfg.metrics_timeout, metrics_atom_v)
        .then(
          [self, rp](metrics_snapshot& sum) mutable {
            self->state.last_sum = sum;
            rp.deliver(int32_t{200}, std::string{metrics_content_type},
                       metrics_of(self, sum));
          },
          [self, rp](caf::error& err) mutable {
            // The master ended while asked: its last sum.
            auto& last = self->state.last_sum;
            if (last
                && (self->state.master_gone
                    || err == caf::sec::request_receiver_down)) {
              rp.deliver(int32_t{200}, std::string{metrics_content_type},
                         metrics_of(self, *last));
              return;
            }
            rp.deliver(int32_t{503}, std::string{"text/plain"},
                       "the workers' counters are not available: "
                         + to_string(err) + "\n");
          });
      return rp;
    },
    [self](ready_atom) { self->state.values.ready = true; },
    [self](stopping_atom) {
      if (self->state.values.stopping)
        return;
      self->state.values.stopping = true;
      log::info("admin", "/readyz answers 503 from now on");
    },
    [self](stopped_atom, const shutdown_report& report) {
      self->state.values.last_stop_seconds
        = std::chrono::duration<double>(report.duration).count();
      fetch_final_sum(self);
    },
    [self](workers_atom, uint32_t count, uint64_t restarts) {
      self->state.values.workers = count;
      self->state.values.restarts = restarts;
    },
  };
}

caf::expected<admin_actors> start_admin(caf::actor_system& sys,
                                        admin_setup setup) {
  admin_config cfg;
  cfg.counters = setup.counters;
  cfg.master = setup.master;
  cfg.workers = setup.workers;
  auto actor = sys.spawn(admin_main, std::move(cfg));
  auto routes = std::make_shared<behaviours::http_routes>();
  routes->paths = {"/healthz", "/readyz", "/metrics"};
  routes->handler = caf::actor_cast<caf::actor>(actor);
  behaviours::http_options opts;
  opts.routes = std::move(routes);
  // Not counted: scraping must not count itself (opts.counters unset).
  auto& mm = sys.middleman();
  auto door = make_listener_doorman(mm.backend(), setup.lst);
  supervisor_config sup_cfg;
  // Admin requests are answered at once: a second is plenty at its close.
  sup_cfg.drain_timeout = std::chrono::seconds(1);
  // Its lines are the admin's, and its summary has no numeric fields: the
  // process's stop summary is the client listener's.
  sup_cfg.log_component = "admin";
  sup_cfg.numeric_summary = false;
  sup_cfg.summary = [](const shutdown_report& x) {
    return "admin listener closed: " + std::to_string(x.drained) + " drained, "
           + std::to_string(x.forced) + " forced";
  };
  sup_cfg.start_acceptor
    = [&mm, door, opts, address = setup.lst.address](supervisor_actor sup) {
        acceptor_config acc_cfg;
        acc_cfg.connection.make_behaviour
          = [opts] { return behaviours::make_http(opts); };
        acc_cfg.connection.supervisor = sup;
        acc_cfg.connection.idle_timeout = std::chrono::seconds(60);
        acc_cfg.max_connections = 64;
        acc_cfg.address = address;
        return mm.spawn_broker(acceptor_main, door, std::move(acc_cfg));
      };
  auto sup = sys.spawn(supervisor_main, std::move(sup_cfg));
  return admin_actors{actor, sup};
}

void add_admin_endpoint() {
  set_admin_starter(start_admin);
}

} // namespace quiesce
