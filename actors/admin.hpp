#pragma once

/// @file
/// The admin endpoint (`--admin=HOST:PORT`; the README's "Admin endpoint"
/// has the contract and the metrics). Served by the HTTP behaviour with
/// `http_routes` (quiesce/http.hpp) on a listener, acceptor and supervisor
/// of its own, apart from the clients': its connections are not counted.
///
/// - `GET /healthz`: 200 while the process runs.
/// - `GET /readyz`: 503 ("starting") until `ready` (the server accepts),
///   200 then, 503 ("stopping") from `stopping` on.
/// - `GET /metrics`: the Prometheus text format (`text/plain;
///   version=0.0.4`), made with prometheus-cpp's core registry and text
///   serializer from the process's counters (metrics.hpp) or, with
///   workers, the master's sum (master.hpp), plus the admin actor's own
///   values: stopping, the last stop's duration, workers and restarts.
///   A master whose workers do not all answer within `metrics_timeout`
///   serves what it has: `quiesce_workers_unanswered` counts the missing
///   ones (their last known values are in the sums). Once the master has
///   ended (the control plane ends before the admin listener closes), the
///   last sum it gave is served, the final one after the stop's report.

#include <optional>
#include <string>

#include "caf/typed_event_based_actor.hpp"

#include "actors/admin_endpoint.hpp"
#include "quiesce/admin.hpp"
#include "quiesce/messages.hpp"

namespace quiesce {

/// The values of `/metrics` beside the counters.
struct admin_values {
  /// The server accepts connections (`ready`); not reset by a stop.
  bool ready = false;
  bool stopping = false;
  /// The drain of the last stop, in seconds (0 before any).
  double last_stop_seconds = 0;
  uint32_t workers = 1;
  uint64_t restarts = 0;
  /// With workers: the workers that did not answer (else none).
  std::optional<uint32_t> unanswered;
};

/// The Prometheus text of `counters` and `values`.
std::string metrics_text(const metrics_snapshot& counters,
                         const admin_values& values);

/// The content type of `metrics_text`.
constexpr const char* metrics_content_type = "text/plain; version=0.0.4";

struct admin_config {
  /// One process: its counters; null with workers (then `master`).
  process_counters* counters = nullptr;
  master_actor master;
  uint32_t workers = 1;
  /// How long the master may take to sum the workers' counters.
  caf::timespan metrics_timeout = std::chrono::seconds(2);
};

struct admin_state {
  static inline const char* name = "quiesce.admin";
  admin_config cfg;
  admin_values values;
  /// With workers: the last sum the master gave (asked for again at the
  /// stop's report: the final one), served once the master is gone.
  std::optional<metrics_snapshot> last_sum;
  bool master_gone = false;
};

using admin_pointer = admin_actor::stateful_pointer<admin_state>;

admin_actor::behavior_type admin_main(admin_pointer self, admin_config cfg);

/// Starts the admin endpoint on `setup.lst`: the admin actor and the
/// listener's supervisor and acceptor (the `admin_starter`).
caf::expected<admin_actors> start_admin(caf::actor_system& sys,
                                        admin_setup setup);

} // namespace quiesce
