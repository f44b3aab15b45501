#define CAF_SUITE actors.admin

// The admin actor (actors/admin.hpp) and the master's sums of the workers'
// counters (master_metrics.cpp) under the test coordinator: readiness
// ("starting" until `ready`, "stopping" from `stopping`), the metrics text from
// given counters, the sum over workers that answer, one that does not (in
// `unanswered`, with its last values), and a worker that ended (its last values
// kept, also the final ones it pushed); the master's last sum served once it
// has ended (the final one, asked for at the stop's report); `--admin`'s
// address forms.

#include "actors/admin.hpp"

#include <map>
#include <string>
#include <utility>

#include "caf/test/dsl.hpp"

#include "actors/master.hpp"
#include "actors/metrics.hpp"

using namespace quiesce;

namespace {

using namespace std::chrono_literals;

/// An HTTP answer of the admin actor.
struct reply {
  int32_t status = 0;
  std::string type;
  std::string body;
};

/// A worker's supervisor as the master sees it: answers `metrics` with
/// `counts`, or never.
struct fake_worker_state {
  metrics_snapshot counts;
  bool silent = false;
};

supervisor_actor::behavior_type
fake_worker(supervisor_actor::stateful_pointer<fake_worker_state> self,
            metrics_snapshot counts, bool silent) {
  self->state.counts = std::move(counts);
  self->state.silent = silent;
  return {
    [](connected_atom, connection_actor&) {},
    [](done_atom) {},
    [](stop_atom) { return shutdown_report{}; },
    [](force_atom) {},
    [](drain_timeout_atom) {},
    [](connections_atom) { return uint32_t{0}; },
    [](retire_atom) { return shutdown_report{}; },
    [](closing_atom) {},
    [self](metrics_atom) -> caf::result<metrics_snapshot> {
      if (self->state.silent)
        return self->make_response_promise<metrics_snapshot>(); // never kept
      return self->state.counts;
    },
  };
}

metrics_snapshot counts(uint64_t accepted, uint64_t open, uint64_t ok) {
  metrics_snapshot x;
  x.accepted = accepted;
  x.open = open;
  x.responses.resize(counted_statuses.size() + 1);
  x.responses[status_slot(200)] = ok;
  return x;
}

/// The sample lines of a Prometheus text, by series.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> result;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    auto line = text.substr(pos, end - pos);
    pos = end == std::string::npos ? text.size() : end + 1;
    auto space = line.rfind(' ');
    if (line.empty() || line[0] == '#' || space == std::string::npos)
      continue;
    result[line.substr(0, space)] = line.substr(space + 1);
  }
  return result;
}

struct fixture : test_coordinator_fixture<> {
  process_counters counters;

  reply get(const admin_actor& admin, const std::string& path) {
    self->send(admin, http_get_atom_v, path);
    sched.run();
    reply result;
    self->receive(
      [&](int32_t status, std::string& type, std::string& body) {
        result = reply{status, std::move(type), std::move(body)};
      },
      caf::after(0s) >> [] {});
    return result;
  }

  /// The master's sum now (its timeouts triggered once if `timeouts`).
  metrics_snapshot sum(const master_actor& master, bool timeouts = false) {
    self->send(master, metrics_atom_v);
    sched.run();
    if (timeouts) {
      sched.trigger_timeouts();
      sched.run();
    }
    metrics_snapshot result;
    result.unanswered = 99;
    self->receive([&](metrics_snapshot& x) { result = std::move(x); },
                  caf::after(0s) >> [] {});
    return result;
  }

  void enroll(const master_actor& master, uint32_t id,
              const supervisor_actor& sup) {
    self->send(master, register_atom_v, std::string{"s"}, id, sup);
    sched.run();
    self->receive([](caf::ok_atom) {}, caf::after(0s) >> [] {});
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(admin_tests, fixture)

CAF_TEST(readyz is 503 until ready then 200 and 503 again at stopping) {
  admin_config acfg;
  acfg.counters = &counters;
  auto admin = sys.spawn(admin_main, acfg);
  auto starting = get(admin, "/readyz");
  CAF_CHECK_EQUAL(starting.status, 503);
  CAF_CHECK_EQUAL(starting.body, "starting\n");
  auto early_health = get(admin, "/healthz");
  CAF_CHECK_EQUAL(early_health.status, 200);
  caf::anon_send(admin, ready_atom_v);
  sched.run();
  auto ready = get(admin, "/readyz");
  CAF_CHECK_EQUAL(ready.status, 200);
  CAF_CHECK_EQUAL(ready.body, "ready\n");
  caf::anon_send(admin, stopping_atom_v);
  sched.run();
  auto unready = get(admin, "/readyz");
  CAF_CHECK_EQUAL(unready.status, 503);
  CAF_CHECK_EQUAL(unready.body, "stopping\n");
  auto health = get(admin, "/healthz");
  CAF_CHECK_EQUAL(health.status, 200);
  auto other = get(admin, "/other");
  CAF_CHECK_EQUAL(other.status, 404);
  caf::anon_send_exit(admin, caf::exit_reason::user_shutdown);
  sched.run();
}

CAF_TEST(metrics show the counters and the admin values) {
  admin_config acfg;
  acfg.counters = &counters;
  auto admin = sys.spawn(admin_main, acfg);
  for (int i = 0; i < 5; ++i)
    process_counters::add(counters.accepted);
  process_counters::add(counters.open, 2);
  process_counters::add(counters.drained, 3);
  process_counters::add(counters.forced);
  process_counters::add(counters.received_bytes, 1000);
  process_counters::add(counters.sent_bytes, 2000);
  for (int i = 0; i < 4; ++i)
    counters.count_response(200);
  counters.count_response(404);
  counters.count_response(299); // not one of counted_statuses
  shutdown_report report;
  report.duration = 1500ms;
  caf::anon_send(admin, stopping_atom_v);
  caf::anon_send(admin, stopped_atom_v, report);
  caf::anon_send(admin, workers_atom_v, uint32_t{3}, uint64_t{2});
  sched.run();
  auto m = get(admin, "/metrics");
  CAF_CHECK_EQUAL(m.status, 200);
  CAF_CHECK_EQUAL(m.type, "text/plain; version=0.0.4");
  auto x = samples(m.body);
  std::map<std::string, std::string> expected{
    {"quiesce_connections_accepted_total", "5"},
    {"quiesce_connections_open", "2"},
    {"quiesce_connections_drained_total", "3"},
    {"quiesce_connections_forced_total", "1"},
    {"quiesce_received_bytes_total", "1000"},
    {"quiesce_sent_bytes_total", "2000"},
    {"quiesce_http_requests_total{code=\"200\"}", "4"},
    {"quiesce_http_requests_total{code=\"404\"}", "1"},
    {"quiesce_http_requests_total{code=\"other\"}", "1"},
    {"quiesce_http_requests_total{code=\"503\"}", "0"},
    {"quiesce_stopping", "1"},
    {"quiesce_last_stop_duration_seconds", "1.5"},
    {"quiesce_workers", "3"},
    {"quiesce_worker_restarts_total", "2"},
  };
  for (auto& [name, value] : expected) {
    auto found = x.count(name) > 0 ? x[name] : std::string{"<missing>"};
    CAF_CHECK_EQUAL(name + " " + found, name + " " + value);
  }
  // One process: no worker to be unanswered.
  CAF_CHECK_EQUAL(x.count("quiesce_workers_unanswered"), 0u);
  caf::anon_send_exit(admin, caf::exit_reason::user_shutdown);
  sched.run();
}

CAF_TEST(the master sums its workers and keeps the counts of ended ones) {
  master_config mcfg;
  mcfg.secret = "s";
  mcfg.expected = {1, 2, 3};
  mcfg.poll_interval = caf::timespan{0};
  auto master = sys.spawn(master_main, mcfg);
  auto one = sys.spawn(fake_worker, counts(10, 1, 7), false);
  auto two = sys.spawn(fake_worker, counts(20, 2, 9), false);
  enroll(master, 1, one);
  enroll(master, 2, two);
  auto both = sum(master);
  CAF_CHECK_EQUAL(both.accepted, 30u);
  CAF_CHECK_EQUAL(both.open, 3u);
  CAF_CHECK_EQUAL(both.responses.at(status_slot(200)), 16u);
  CAF_CHECK_EQUAL(both.unanswered, 0u);
  // Worker 2's final counts, pushed at the end of its drain, then its end.
  auto final_two = counts(25, 0, 11);
  caf::anon_send(master, metrics_atom_v, std::string{"s"}, uint32_t{2},
                 final_two);
  // A push without the secret changes nothing.
  caf::anon_send(master, metrics_atom_v, std::string{"x"}, uint32_t{2},
                 counts(1000, 0, 1000));
  sched.run();
  caf::anon_send_exit(two, caf::exit_reason::kill);
  sched.run();
  auto after = sum(master);
  CAF_CHECK_EQUAL(after.accepted, 35u); // 10 + 25: never backwards
  CAF_CHECK_EQUAL(after.open, 1u);      // an ended worker holds none
  CAF_CHECK_EQUAL(after.responses.at(status_slot(200)), 18u);
  // A worker that does not answer: served without it, and said so, with
  // what was known of it (nothing yet).
  auto three = sys.spawn(fake_worker, counts(5, 5, 5), true);
  enroll(master, 3, three);
  auto partial = sum(master, true);
  CAF_CHECK_EQUAL(partial.unanswered, 1u);
  CAF_CHECK_EQUAL(partial.accepted, 35u);
  for (auto& w : {one, three})
    caf::anon_send_exit(w, caf::exit_reason::kill);
  caf::anon_send_exit(master, caf::exit_reason::kill);
  sched.run();
}

CAF_TEST(after the master ends the admin serves its final sum) {
  master_config mcfg;
  mcfg.secret = "s";
  mcfg.expected = {1};
  mcfg.poll_interval = caf::timespan{0};
  auto master = sys.spawn(master_main, mcfg);
  auto one = sys.spawn(fake_worker, counts(10, 1, 7), false);
  enroll(master, 1, one);
  admin_config acfg;
  acfg.master = master;
  acfg.workers = 1;
  auto admin = sys.spawn(admin_main, acfg);
  sched.run();
  auto first = get(admin, "/metrics");
  CAF_CHECK_EQUAL(first.status, 200);
  auto x = samples(first.body);
  CAF_CHECK_EQUAL(x["quiesce_connections_accepted_total"], "10");
  // The worker's final counts at the end of its drain, then its end; then
  // the stop's report, and the control plane ends.
  caf::anon_send(master, metrics_atom_v, std::string{"s"}, uint32_t{1},
                 counts(12, 0, 9));
  sched.run();
  caf::anon_send_exit(one, caf::exit_reason::kill);
  sched.run();
  shutdown_report report;
  report.duration = 250ms;
  caf::anon_send(admin, stopping_atom_v);
  caf::anon_send(admin, stopped_atom_v, report);
  sched.run();
  caf::anon_send_exit(master, caf::exit_reason::kill);
  sched.run();
  auto last = get(admin, "/metrics");
  CAF_CHECK_EQUAL(last.status, 200);
  auto y = samples(last.body);
  CAF_CHECK_EQUAL(y["quiesce_connections_accepted_total"], "12");
  CAF_CHECK_EQUAL(y["quiesce_http_requests_total{code=\"200\"}"], "9");
  CAF_CHECK_EQUAL(y["quiesce_last_stop_duration_seconds"], "0.25");
  CAF_CHECK_EQUAL(y["quiesce_stopping"], "1");
  caf::anon_send_exit(admin, caf::exit_reason::user_shutdown);
  sched.run();
}

CAF_TEST(without a sum yet a gone master makes metrics 503) {
  master_config mcfg;
  mcfg.secret = "s";
  mcfg.expected = {1};
  auto master = sys.spawn(master_main, mcfg);
  admin_config acfg;
  acfg.master = master;
  auto admin = sys.spawn(admin_main, acfg);
  sched.run();
  caf::anon_send_exit(master, caf::exit_reason::kill);
  sched.run();
  auto m = get(admin, "/metrics");
  CAF_CHECK_EQUAL(m.status, 503);
  caf::anon_send_exit(admin, caf::exit_reason::user_shutdown);
  sched.run();
}

CAF_TEST(admin addresses are host and port) {
  auto v4 = parse_admin_address("127.0.0.1:9090");
  CAF_REQUIRE(v4.has_value());
  CAF_CHECK_EQUAL(v4->first, "127.0.0.1");
  CAF_CHECK_EQUAL(v4->second, 9090u);
  auto v6 = parse_admin_address("[::1]:0");
  CAF_REQUIRE(v6.has_value());
  CAF_CHECK_EQUAL(v6->first, "[::1]");
  CAF_CHECK_EQUAL(v6->second, 0u);
  for (auto bad :
       {"", "127.0.0.1", "127.0.0.1:", ":80", "::1:80", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:8x", "[::1:80"})
    CAF_CHECK_EQUAL(std::string{bad} + ": "
                      + (parse_admin_address(bad) ? "accepted" : "refused"),
                    std::string{bad} + ": refused");
}

CAF_TEST_FIXTURE_SCOPE_END()
