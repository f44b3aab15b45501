#pragma once

/// @file
/// The whole message vocabulary of quiesce in one place: atoms, message
/// structs and the typed interfaces of the supervisor, the acceptor and the
/// connection actors.
///
/// The shutdown sequence, in messages:
///
///   main ──stop──▶ supervisor ──stop──▶ acceptor      (closes the listener,
///                      │                              ends on its terminal
///                      │                              acceptor_closed_msg)
///                      ├──stop──▶ every connection    (FIN when idle, or
///                      │                              after in-flight work)
///                      ├──drain_timeout (to itself, after --drain-timeout)
///                      ◀──done── each connection
///   main ◀─shutdown_report── supervisor               (drained, forced, time)
///   main ──stop──▶ services actor ──stop──▶ each service, last declared
///                      │                     first, one at a time
///                      ├──service_timer (its deadline; then exit
///                      │                 user_shutdown, kill)
///   main ◀─services_report── services actor           (stopped, forced)
///
/// With a stop delay (`--stop-delay`) a phase comes first: main ──closing──▶
/// supervisor ──closing──▶ acceptor and every connection (they serve on;
/// HTTP answers close); `stop` follows after the delay.
///
/// A second signal sends `force`: the supervisor then forces every remaining
/// connection at once, as the drain timeout would, and the services actor
/// forces each service without waiting for its deadline.

#include <cstdint>
#include <string>
#include <vector>

#include "caf/atom.hpp"
#include "caf/io/system_messages.hpp"
#include "caf/io/typed_broker.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/timespan.hpp"
#include "caf/type_id.hpp"
#include "caf/typed_actor.hpp"

// -- atoms (at most 10 characters of text each)
// --------------------------------

/// Begin a graceful stop (main -> supervisor -> acceptor and connections).
CAF_ADD_ATOM(quiesce, quiesce, stop_atom, "stop")
/// Force every remaining connection closed now (second signal).
CAF_ADD_ATOM(quiesce, quiesce, force_atom, "force")
/// A connection actor has closed its connection (connection -> supervisor).
CAF_ADD_ATOM(quiesce, quiesce, done_atom, "done")
/// The acceptor started a connection actor (acceptor -> supervisor).
CAF_ADD_ATOM(quiesce, quiesce, connected_atom, "connected")
/// The drain deadline passed (supervisor -> itself, delayed).
CAF_ADD_ATOM(quiesce, quiesce, drain_timeout_atom, "drain_tmo")
/// A timer of a connection's lifecycle fired (connection -> timer relay ->
/// connection, delayed). Its second element tags the kind, one tag per kind
/// (`lifecycle_timer`): the linger after the FIN, the idle timeout, the
/// write timeout, the poll for output left after the peer closed, and the
/// turn after a close or an abort at which the actor ends. One handler for
/// all of them: CAF allocates each actor's handlers with it, about 32 bytes
/// apiece for every open connection.
CAF_ADD_ATOM(quiesce, quiesce, lifecycle_timer_atom, "lc_timer")

/// The tags of `lifecycle_timer_atom`, in the order of the lifecycle core's
/// timer kinds, then the connection actor's own `read_again`: reading
/// resumed, asked once more a turn of the event loop later (connection.cpp
/// says which behaviour of CAF 0.17 that works around).
enum class lifecycle_timer : uint8_t {
  linger,
  idle,
  write,
  flush_poll,
  end_tick,
  read_again,
  /// Not a timer: the closing mode of the stop delay (closing_atom), sent
  /// through this one handler, which spares every open connection the
  /// memory of a handler of its own.
  closing,
};
/// A behaviour's timer fired (connection -> timer relay -> connection,
/// delayed).
CAF_ADD_ATOM(quiesce, quiesce, timer_atom, "timer")
/// Time to fail the behaviour's requests whose deadline has passed
/// (connection -> timer relay -> connection, delayed; one under way per
/// connection, for the earliest deadline).
CAF_ADD_ATOM(quiesce, quiesce, request_timeout_atom, "req_tmo")
/// A message for a connection's behaviour (any actor -> connection).
CAF_ADD_ATOM(quiesce, quiesce, deliver_atom, "deliver")
/// A signal arrived (signal thread -> main).
CAF_ADD_ATOM(quiesce, quiesce, signal_atom, "signal")
/// Spawn every declared service (main -> services actor).
CAF_ADD_ATOM(quiesce, quiesce, start_atom, "start")
/// A step of a service's stop is due: its deadline, the kill after the
/// forced exit, giving up on it (services actor -> itself, delayed).
CAF_ADD_ATOM(quiesce, quiesce, service_timer_atom, "svc_timer")
/// A service failed by its crash policy: stop the server, exit 1
/// (services actor -> main).
CAF_ADD_ATOM(quiesce, quiesce, service_failed_atom, "svc_failed")
/// A worker process registers its supervisor with the master, over BASP
/// (worker -> master; actors/control_plane.hpp).
CAF_ADD_ATOM(quiesce, quiesce, register_atom, "register")
/// How many workers the master has registered (anyone -> master).
CAF_ADD_ATOM(quiesce, quiesce, workers_atom, "workers")
/// How many connections a supervisor holds (master -> worker supervisor,
/// polled; the master's own timer).
CAF_ADD_ATOM(quiesce, quiesce, connections_atom, "conns")
/// A worker process ended: its pid and wait status (child watcher -> the
/// master process's main loop).
CAF_ADD_ATOM(quiesce, quiesce, exited_atom, "exited")
/// A stop that leaves the listening socket to the processes that stay (a
/// reload's old workers): supervisor -> acceptor, which stops accepting
/// without a shutdown(); supervisor -> connection, which gets a grace for
/// one more request before it stops (master -> worker supervisor).
CAF_ADD_ATOM(quiesce, quiesce, retire_atom, "retire")
/// A worker asks the master for a shared service's actor by name, with the
/// secret (worker -> master).
CAF_ADD_ATOM(quiesce, quiesce, service_atom, "service")
/// The process's counters (admin -> master -> worker supervisors; admin ->
/// itself in one process): answered with a `metrics_snapshot`.
CAF_ADD_ATOM(quiesce, quiesce, metrics_atom, "metrics")
/// A stop begins: `/readyz` answers 503 from now on (main -> admin).
CAF_ADD_ATOM(quiesce, quiesce, stopping_atom, "stopping")
/// A stop is over, with its report (main -> admin).
CAF_ADD_ATOM(quiesce, quiesce, stopped_atom, "stopped")
/// An admin request: GET of a path (admin connection -> admin actor).
CAF_ADD_ATOM(quiesce, quiesce, http_get_atom, "http_get")

/// The server accepts connections (`/readyz` 200 from then on).
CAF_ADD_ATOM(quiesce, quiesce, ready_atom, "ready")
/// The stop delay began (`--stop-delay`): keep serving, but every HTTP
/// response says `Connection: close` (main -> supervisor, or master ->
/// every worker supervisor; supervisor -> acceptor, which starts every new
/// connection in that mode; supervisor -> each connection, as the
/// `closing` tag of `lifecycle_timer_atom`).
CAF_ADD_ATOM(quiesce, quiesce, closing_atom, "closing")

namespace quiesce {

// -- message structs ----------------------------------------------------------

/// The outcome of a stop, sent by the supervisor to whoever asked for it.
struct shutdown_report {
  /// Connections that were open when the stop began (or were accepted while
  /// the listener closed).
  uint32_t open_at_stop = 0;
  /// Connections that drained: they reported `done` (everything they owed
  /// was sent; at a forced stop, one with nothing in flight still closes
  /// cleanly and reports it), or ended on their own without an error (peer
  /// close).
  uint32_t drained = 0;
  /// Connections that ended without `done` and with an error: aborted at
  /// the drain deadline or a second signal with work in flight, by their
  /// write timeout, or because their behaviour failed.
  uint32_t forced = 0;
  /// From the first `stop` to the moment the last connection was gone.
  caf::timespan duration{0};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shutdown_report& x) {
  return f(caf::meta::type_name("shutdown_report"), x.open_at_stop, x.drained,
           x.forced, x.duration);
}

inline bool operator==(const shutdown_report& x, const shutdown_report& y) {
  return x.open_at_stop == y.open_at_stop && x.drained == y.drained
         && x.forced == y.forced && x.duration == y.duration;
}

/// The outcome of the services' stop, sent by the services actor to
/// whoever asked for it.
struct services_report {
  /// Services that exited within their stop deadline.
  uint32_t stopped = 0;
  /// Services forced at their deadline (or at once, after a second signal).
  uint32_t forced = 0;
  /// A crash policy gave up on a service (`stop_server`, or too many
  /// restarts), or a restart failed: the process exits 1.
  bool failed = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, services_report& x) {
  return f(caf::meta::type_name("services_report"), x.stopped, x.forced,
           x.failed);
}

inline bool operator==(const services_report& x, const services_report& y) {
  return x.stopped == y.stopped && x.forced == y.forced && x.failed == y.failed;
}

/// The counters of one process (actors/metrics.hpp), or the sum of the
/// workers' (the master's answer). Counters only grow; `open` is a gauge.
struct metrics_snapshot {
  uint64_t accepted = 0;
  uint64_t open = 0;
  uint64_t drained = 0;
  uint64_t forced = 0;
  uint64_t received_bytes = 0;
  uint64_t sent_bytes = 0;
  /// HTTP responses by status, in the order of `counted_statuses`
  /// (actors/metrics.hpp); empty if none were counted.
  std::vector<uint64_t> responses;
  /// The master's sum: workers asked that did not answer in time.
  uint32_t unanswered = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metrics_snapshot& x) {
  return f(caf::meta::type_name("metrics_snapshot"), x.accepted, x.open,
           x.drained, x.forced, x.received_bytes, x.sent_bytes, x.responses,
           x.unanswered);
}

inline bool operator==(const metrics_snapshot& x, const metrics_snapshot& y) {
  return x.accepted == y.accepted && x.open == y.open && x.drained == y.drained
         && x.forced == y.forced && x.received_bytes == y.received_bytes
         && x.sent_bytes == y.sent_bytes && x.responses == y.responses
         && x.unanswered == y.unanswered;
}

// -- typed interfaces
// -----------------------------------------------------------

/// A connection actor: a broker owning one connection and driving one
/// behaviour. It answers `stop` by finishing in-flight work, sending FIN and
/// closing; it then sends `done` to the supervisor. A forced end is an exit
/// message with `exit_reason::user_shutdown`: a connection with work in
/// flight aborts its socket (RST) and ends without `done`; one with nothing
/// in flight closes cleanly (FIN) and reports `done`. Other actors reach its
/// behaviour with `(deliver_atom, caf::message)`.
using connection_actor = caf::io::connection_handler::extend<
  caf::reacts_to<caf::io::data_transferred_msg>, caf::reacts_to<stop_atom>,
  caf::reacts_to<lifecycle_timer_atom, uint8_t>,
  caf::reacts_to<timer_atom, uint64_t>,
  caf::reacts_to<deliver_atom, caf::message>,
  caf::reacts_to<request_timeout_atom>, caf::reacts_to<retire_atom>>;

/// The acceptor: a broker owning the listening socket. On `stop` it stops
/// listening at once (a socket shared with other processes goes on
/// listening for them: actors/acceptor.hpp) and, one event-loop turn later
/// (`close`, to itself), closes the socket; its terminal message is the
/// resulting `acceptor_closed_msg`.
using acceptor_actor = caf::io::accept_handler::extend<
  caf::reacts_to<stop_atom>, caf::reacts_to<caf::close_atom>,
  caf::reacts_to<retire_atom>, caf::reacts_to<closing_atom>>;

/// The supervisor: knows every connection actor and owns the shutdown.
using supervisor_actor = caf::typed_actor<
  caf::reacts_to<connected_atom, connection_actor>, caf::reacts_to<done_atom>,
  caf::replies_to<stop_atom>::with<shutdown_report>, caf::reacts_to<force_atom>,
  caf::reacts_to<drain_timeout_atom>,
  caf::replies_to<connections_atom>::with<uint32_t>,
  caf::replies_to<retire_atom>::with<shutdown_report>,
  caf::replies_to<metrics_atom>::with<metrics_snapshot>,
  caf::reacts_to<closing_atom>>;

/// The services actor: spawns the declared services (service.hpp), applies
/// their crash policies and stops them after the drain. `start` answers an
/// empty text, or the error that kept a service from starting; `stop`
/// answers once every service has exited (or was given up on); `force`
/// makes the stop skip every deadline (a second signal).
using services_actor
  = caf::typed_actor<caf::replies_to<start_atom>::with<std::string>,
                     caf::replies_to<stop_atom>::with<services_report>,
                     caf::reacts_to<force_atom>,
                     caf::reacts_to<service_timer_atom, uint32_t, uint8_t>>;

/// The master of the worker processes (actors/master.hpp), published over
/// BASP on loopback. `register(secret, worker id, supervisor)` answers `ok`
/// for one of its own workers, an error for anything else; `stop` answers
/// with the workers' summed `shutdown_report`; `force` forces every worker;
/// `workers` answers how many are registered; `metrics` answers the sum of
/// the workers' counters; `metrics(secret, id, counters)` is a worker's
/// final counters, sent when its drain is over; `done(secret, id)` is a
/// worker about to exit, answered `ok` once everything it sent before is in
/// (its exit must not overtake its report).
using master_actor = caf::typed_actor<
  caf::replies_to<register_atom, std::string, uint32_t,
                  supervisor_actor>::with<caf::ok_atom>,
  caf::replies_to<stop_atom>::with<shutdown_report>, caf::reacts_to<force_atom>,
  caf::replies_to<workers_atom>::with<uint32_t>,
  caf::reacts_to<connections_atom>, caf::reacts_to<retire_atom, uint32_t>,
  caf::replies_to<service_atom, std::string, std::string>::with<caf::actor>,
  caf::reacts_to<drain_timeout_atom>,
  caf::replies_to<metrics_atom>::with<metrics_snapshot>,
  caf::reacts_to<metrics_atom, std::string, uint32_t, metrics_snapshot>,
  caf::reacts_to<closing_atom>,
  caf::replies_to<done_atom, std::string, uint32_t>::with<caf::ok_atom>>;

/// The admin endpoint's actor (actors/admin.hpp): answers the admin
/// connections' `http_get(path)` with (status, content type, body); told
/// `stopping` when a stop begins, `stopped` with its report, and
/// `workers(count, restarts)` by a master.
using admin_actor
  = caf::typed_actor<caf::replies_to<http_get_atom, std::string>::with<
                       int32_t, std::string, std::string>,
                     caf::reacts_to<ready_atom>, caf::reacts_to<stopping_atom>,
                     caf::reacts_to<stopped_atom, shutdown_report>,
                     caf::reacts_to<workers_atom, uint32_t, uint64_t>>;

} // namespace quiesce
