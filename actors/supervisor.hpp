#pragma once

/// @file
/// The supervisor: starts the acceptor, monitors every connection actor and
/// owns the shutdown sequence and its outcome.
///
/// - `connected(conn)`: monitor it; during a stop, tell it `stop` at once.
/// - `stop`: send `stop` to the acceptor and every connection (the broadcast)
///   and `drain_timeout` to itself after the drain timeout. Answer with the
///   `shutdown_report` when the acceptor has ended and no connection remains.
///   `stop` again just waits for the same report.
/// - `done` from a connection: it has drained (everything it owed is sent);
///   it may still linger for its peer's FIN. A connection that ends during
///   the stop without `done` counts as drained if it ended without an error
///   (a peer close), and as forced with one (its socket was aborted).
///   `done` and the down message come from the same actor, in that order.
/// - `drain_timeout` or `force`: exit every remaining connection with
///   `user_shutdown`. The connection decides: one with work in flight aborts
///   its socket and ends without `done` (forced); one with nothing in
///   flight, whose stop or `done` may still be on its way, closes cleanly
///   and reports `done` (drained); lingering ones have drained already. The
///   supervisor ends once all are gone.
/// - the acceptor ending on its own (its socket failed): log it and begin the
///   stop, so the process does not keep running without a listener.
/// - `retire`: a stop that leaves the listening socket to the processes that
///   stay (a reload's old worker): the acceptor and the connections get
///   `retire` instead of `stop` (no shutdown(), no backlog taken; each
///   connection waits a grace for one more request). A `stop` after it
///   turns it into a plain stop for the connections still in their grace.
/// - `closing` (the stop delay began; before any stop): `closing` to the
///   acceptor (new connections start in the closing mode) and to every
///   open connection, and to each connection announced after it, until a
///   stop. Nothing else changes: the stop that follows is the usual one.
/// - `connections`: how many connections have not reported `done` (a
///   worker's master polls it, for its log and its sums).

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "caf/actor_addr.hpp"
#include "caf/actor_clock.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "caf/typed_response_promise.hpp"

#include "quiesce/log.hpp"
#include "actors/metrics.hpp"
#include "quiesce/messages.hpp"

namespace quiesce {

/// What the supervisor tells every open connection (`broadcast_stop`).
enum class connection_order : uint8_t {
  /// `stop`: the graceful stop.
  stop,
  /// `retire`: the stop of a reload's old worker (a grace first).
  retire,
  /// The closing mode of the stop delay (the `closing` tag of
  /// `lifecycle_timer_atom`): serve on, the next answer closes.
  closing,
};

/// Sends `order` to `conn`.
void tell_connection(const connection_actor& conn, connection_order order);

struct supervisor_config {
  /// Starts the acceptor; called once with the supervisor's own handle.
  std::function<acceptor_actor(supervisor_actor)> start_acceptor;
  /// How long connections may take to finish after a stop.
  caf::timespan drain_timeout = std::chrono::seconds(5);
  /// Delivers `stop` to the connections open at the stop. Unset: the
  /// supervisor sends each one `stop` itself. The server hands the whole
  /// list to the I/O event loop in one go instead, which then tells every
  /// connection broker in one turn: a message per connection from another
  /// thread would cost CAF 0.17 a pipe write and a turn of the loop each
  /// (see docs/performance.md).
  /// `order`: which message (`tell_connection`): `stop`, `retire` (a
  /// reload's old worker) or the closing mode (the stop delay).
  std::function<void(std::vector<connection_actor>, connection_order order)>
    broadcast_stop;
  /// The summary line at the end of the stop, if not the process's own
  /// "stopped: drained=N forced=N duration=T": a worker's master prints the
  /// process's summary, and the worker's line must not read like it.
  std::function<std::string(const shutdown_report&)> summary;
  /// Whether `summary`'s line carries the report as numeric fields (log.hpp):
  /// only a client listener's do, so that a process has one such line.
  bool numeric_summary = true;
  /// The component of the supervisor's log lines.
  const char* log_component = "supervisor";
  /// Where drained and forced connections are counted, and what `metrics`
  /// answers (metrics.hpp); none if null (all zeros).
  process_counters* counters = nullptr;
  /// Called with the final counters once the stop is over, before the
  /// report goes out (a worker hands them to its master, master.hpp).
  std::function<void(const metrics_snapshot&)> on_drained;
};

struct supervisor_state {
  static inline const char* name = "quiesce.supervisor";

  supervisor_config cfg;
  acceptor_actor acceptor;
  bool acceptor_alive = false;
  struct connection_entry {
    connection_actor handle;
    /// It reported `done`: it owes nothing any more and only lingers.
    bool done = false;
  };
  /// Every connection actor that has not ended yet.
  std::unordered_map<caf::actor_addr, connection_entry> connections;
  bool stopping = false;
  /// The stop is a `retire` (not turned into a stop since).
  bool retiring = false;
  bool forcing = false;
  /// The stop delay runs (`closing`) and no stop has begun.
  bool closing = false;
  caf::actor_clock::time_point stop_began;
  shutdown_report report;
  std::vector<caf::typed_response_promise<shutdown_report>> waiting;
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

supervisor_actor::behavior_type supervisor_main(supervisor_pointer self,
                                                supervisor_config cfg);

/// A stop's report as the numeric fields of its summary line (log.hpp):
/// `drained`, `forced`, `duration_ms`, `open_at_stop`.
std::vector<log::field> summary_fields(const shutdown_report& x);

} // namespace quiesce
