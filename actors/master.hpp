#pragma once

/// @file
/// The master of the worker processes: the control plane's master side
/// (actors/control_plane.hpp has the shared part and the worker's side).
/// The first piece of the workers issue: it knows its workers and stops
/// them; spawning and restarting worker processes come later.
///
/// - `register(secret, id, supervisor)` over BASP: accepted only with the
///   master's secret and an id it expects that no live worker holds; the
///   master then monitors the supervisor and answers `ok`. Anything else (a
///   wrong secret, an unknown or duplicate id) changes nothing: it is
///   logged, reported to the observer and answered with an error. A worker
///   that registers during a stop is stopped (and forced) at once.
/// - `stop`: `stop` to every registered supervisor, each a request with
///   `stop_deadline`. Once every one has answered, ended, or let its
///   deadline pass, the master answers every `stop` it got with the sum of
///   the reports (counts added, the longest duration) and quits (unless it
///   lingers, see `master_config`).
/// - `force`: begins the stop if need be, then `force` to every worker.
/// - A worker given up on during a stop (it ended, or let its deadline
///   pass, before answering) adds the connections it held at the last poll,
///   at least one, to the forced count: the exit code says 3.
/// - A worker's down message, whatever its reason (after `kill -9` it is
///   `remote_link_unreachable`): the worker is dropped, logged with the
///   connections it held at the last poll, reported to the observer, and no
///   longer holds a stop up.
/// - Every `poll_interval`, `connections` to each worker; the answers are
///   kept for that log line, and their sum goes to `on_poll` with whether
///   every worker has answered within `unresponsive_after` (a worker whose
///   event loop is wedged cannot: BASP messages travel through it).
/// - `retire(id)`: `retire` to that worker (a reload's old generation, or
///   a failed reload's new one), now or when it registers; its answer is
///   logged and its end expected. A `stop` later reaches it too.
/// - `closing` (the stop delay began): `closing` to every registered
///   worker supervisor, and to each one that registers later, until the
///   stop (a worker restarted during the delay serves in the closing mode
///   too).
/// - `service(secret, name)`: the actor of a shared service, for a worker's
///   stand-in; refused without the secret.
/// - `stop`, `force`, `retire`, `closing` and `workers` are taken only from
/// actors of
///   the master's own process: over BASP anyone who reaches the port could
///   send them (registration needs the secret; these need no registration).
///   Anything else is logged and ignored (a request gets an error).

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "caf/actor_clock.hpp"
#include "caf/actor_system.hpp"
#include "caf/expected.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "caf/typed_response_promise.hpp"

#include "quiesce/messages.hpp"
#include "quiesce/service.hpp"

namespace quiesce {

/// Something the master's owner may want to act on (a later piece restarts
/// a worker that is gone).
struct master_event {
  enum class kind : uint8_t {
    /// Worker `worker` registered.
    registered,
    /// A registration was refused; `detail` says why.
    refused,
    /// Worker `worker` ended; `detail` is the reason; `stopping` tells
    /// whether a stop had begun (then its end is expected once it answered).
    gone,
    /// Worker `worker` did not answer within `force_deadline` of a force:
    /// the stop goes on without it; its process is wedged (or stopped by a
    /// signal) and is the owner's to end.
    given_up,
  };
  kind what = kind::registered;
  uint32_t worker = 0;
  std::string detail;
  bool stopping = false;
  /// `gone`: the connections the worker held at its last answer to the
  /// master's poll (at most `poll_interval` old).
  uint32_t connections = 0;
};

/// "registered", "refused" or "gone".
std::string to_string(master_event::kind x);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, master_event& x) {
  return f(caf::meta::type_name("master_event"), x.what, x.worker, x.detail,
           x.stopping, x.connections);
}

inline bool operator==(const master_event& x, const master_event& y) {
  return x.what == y.what && x.worker == y.worker && x.detail == y.detail
         && x.stopping == y.stopping && x.connections == y.connections;
}

struct master_config {
  /// What a worker must present to register.
  std::string secret;
  /// The worker ids the master accepts, one live worker each.
  std::set<uint32_t> expected;
  /// If set, decides instead of `expected` (called in the master's thread;
  /// a process that starts new workers while the master runs, a reload,
  /// keeps the ids behind it).
  std::function<bool(uint32_t)> expects;
  /// How long a worker may take to answer `stop` (its drain timeout and a
  /// margin); after it the stop goes on without that worker.
  caf::timespan stop_deadline = std::chrono::seconds(10);
  /// After `force`, how long a worker may take to answer before the stop
  /// goes on without it (a worker acts on a force at once; one that does
  /// not is stopped by a signal or wedged).
  caf::timespan force_deadline = std::chrono::seconds(1);
  /// How often the master asks each worker how many connections it holds
  /// (for the log line of a worker that is gone); 0 never.
  caf::timespan poll_interval = std::chrono::milliseconds(500);
  /// Called at each poll (in the master's thread; it must not block) with
  /// the connections the workers held at their last answers, and false if
  /// a worker has not answered for `unresponsive_after` (systemd's
  /// watchdog then stops: notify.hpp).
  std::function<void(uint32_t, bool)> on_poll;
  caf::timespan unresponsive_after = std::chrono::seconds(2);
  /// How long a worker may take to answer `metrics` before the sum is
  /// answered without it (master_metrics.cpp).
  caf::timespan metrics_timeout = std::chrono::seconds(1);
  /// Stay after the stop has been answered, until sent an exit: a worker
  /// process that registers late (a signal while the workers start) is
  /// then stopped at once instead of waiting for a master that is gone.
  bool linger = false;
  /// The shared services (service_options::shared) that run in the master
  /// process: `service(secret, name)` answers a worker with one.
  std::shared_ptr<const service_directory> services;
  /// Told of every event, in the master's own thread: it must not block.
  std::function<void(const master_event&)> observer;
};

struct master_state {
  static inline const char* name = "quiesce.master";

  master_config cfg;
  struct worker_entry {
    supervisor_actor handle;
    /// A `stop` went out and neither its answer nor the worker's end has
    /// come back.
    bool stop_pending = false;
    /// Its answer to the last poll.
    uint32_t connections = 0;
    /// When it last answered a poll (or registered).
    caf::actor_clock::time_point last_answer;
    /// Sent `retire` (its end is expected).
    bool retiring = false;
    /// Answered its `retire`: its drain is over and its end follows, during
    /// a stop too (then no loss: its connections are accounted for).
    bool retired = false;
    /// Its last answer to `metrics` (a poll's or a scrape's).
    metrics_snapshot last;
  };
  /// The counters of the workers that have ended (their last answers), so
  /// that the sums never go backwards when a worker is gone.
  metrics_snapshot ended;
  /// Ids told to retire before they registered: retired when they do.
  std::set<uint32_t> retire_on_register;
  std::map<uint32_t, worker_entry> workers;
  bool stopping = false;
  bool forcing = false;
  /// `closing` came (the stop delay).
  bool closing = false;
  /// The stop has been answered.
  bool stopped = false;
  shutdown_report report;
  /// Workers whose report is in `report`.
  uint32_t answered = 0;
  std::vector<caf::typed_response_promise<shutdown_report>> waiting;
};

using master_pointer = master_actor::stateful_pointer<master_state>;

master_actor::behavior_type master_main(master_pointer self, master_config cfg);

/// `metrics`: asks every worker and answers `rp` with the sum (and the
/// workers that have ended), counting the ones that do not answer within
/// `metrics_timeout` in `unanswered` with their last known values
/// (master_metrics.cpp).
void collect_metrics(master_pointer self,
                     caf::typed_response_promise<metrics_snapshot> rp);

/// Asks worker `id` for its counters and keeps the answer (the poll): what
/// is kept of it once it has ended.
void poll_metrics(master_pointer self, uint32_t id);

/// A master spawned in `sys` and published on 127.0.0.1.
struct published_master {
  master_actor handle;
  /// The BASP port the workers connect to.
  uint16_t port = 0;
};

/// Spawns the master with `cfg` and publishes it on 127.0.0.1, port chosen
/// by the system. On failure the master is ended again and the error says
/// why.
caf::expected<published_master> start_master(caf::actor_system& sys,
                                             master_config cfg);

} // namespace quiesce
