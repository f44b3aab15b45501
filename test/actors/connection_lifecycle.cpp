#define CAF_SUITE actors.lifecycle

// The connection's lifecycle core (connection_lifecycle.hpp) alone: no
// actor, no socket, no clock. Every event in every state, checked against a
// table written out below: the table is the specification, so a change of
// the core's behaviour shows as a changed row here.
//
// Each *situation* is a state reached by a documented prefix of events
// (`situations()`), with the context that matters for it (busy or not,
// output owed or not). Each *event* is one call of the core's interface at a
// fixed time after the prefix (`events()`). A row gives the actions the
// event returns, in order, and the state after it.

#include "actors/connection_lifecycle.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "caf/test/unit_test.hpp"

using namespace quiesce;
using namespace std::chrono_literals;

namespace {

using time_point = connection_lifecycle::time_point;
using duration = connection_lifecycle::duration;

/// The prefix happens at t0; events at t0 + 2 s (after a whole linger, long
/// before the idle and write timeouts) unless they say otherwise.
const time_point t0 = time_point{} + 1000s;
const time_point t1 = t0 + 2s;

/// The limits of every test: small numbers where a test reaches them.
lifecycle_limits test_limits() {
  lifecycle_limits x;
  x.linger = 1s;
  x.linger_time = 30s;
  x.discard_limit = 100;
  x.max_pending_output = 64;
  x.idle_timeout = 60s;
  x.write_timeout = 60s;
  x.flush_poll = 50ms;
  return x;
}

std::string millis(duration x) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(x);
  if (ms == x)
    return std::to_string(ms.count()) + "ms";
  return std::to_string(x.count()) + "ns";
}

/// Actions as one line: kinds in order, with the timer and delay of `arm`,
/// the reason of `abort` and `end` (and the stall of a write timeout's
/// abort); "-" for none.
std::string format(const lifecycle_actions& xs) {
  std::string out;
  for (auto& x : xs) {
    if (!out.empty())
      out += ' ';
    out += to_string(x.kind);
    switch (x.kind) {
      case action_kind::arm:
        out += "(";
        out += to_string(x.timer);
        out += "," + millis(x.delay) + ")";
        break;
      case action_kind::abort:
        out += "(";
        out += to_string(x.reason);
        if (x.reason == end_reason::write_timeout)
          out += "," + millis(x.delay);
        out += ")";
        break;
      case action_kind::end:
        out += "(";
        out += to_string(x.reason);
        out += ")";
        break;
      default:
        break;
    }
  }
  return out.empty() ? "-" : out;
}

/// A core driven by a prefix; each step's actions are checked on the way.
struct driven {
  lifecycle_limits limits = test_limits();
  connection_lifecycle core{limits, false};

  driven() = default;
  driven(const driven&) = delete;
  driven& operator=(const driven&) = delete;

  /// One prefix step: its actions must be `want`.
  void step(const lifecycle_actions& got, const char* want) {
    CAF_CHECK_EQUAL(format(got), want);
  }
};

using prefix_fn = std::function<void(driven&)>;

struct situation {
  const char* name;
  lifecycle_state state;
  prefix_fn prefix;
};

// -- the situations: a prefix for every state ---------------------------------

void open(driven& d) {
  // A new connection with nothing in flight is idle from the start.
  d.step(d.core.start(t0, false), "arm(idle,60000ms)");
}

void open_owed(driven& d) {
  // Input, and an answer of 10 bytes that the kernel did not take at once:
  // the write timeout watches it.
  open(d);
  d.step(d.core.read(t0, 5), "deliver");
  d.step(d.core.callback_done(t0, false, true, 10),
         "sample_output arm(write,60000ms)");
}

void open_busy(driven& d) {
  // Input whose answer is not written yet (a request to a backend).
  open(d);
  d.step(d.core.read(t0, 5), "deliver");
  d.step(d.core.callback_done(t0, true, false, 0), "-");
}

void stop_waiting(driven& d) {
  // The stop finds 10 bytes unread in the kernel: in flight.
  open(d);
  d.step(d.core.stop(t0, 10), "-");
}

void draining_busy(driven& d) {
  open_busy(d);
  d.step(d.core.stop(t0, 0), "tell_stop");
  d.step(d.core.callback_done(t0, true, false, 0), "-");
}

void draining_owed(driven& d) {
  // Stopped and idle, but 10 bytes of output still wait for the kernel.
  open_owed(d);
  d.step(d.core.stop(t0, 0), "tell_stop");
  d.step(d.core.callback_done(t0, false, false, 0), "-");
}

void answering(driven& d) {
  // The peer's FIN while the behaviour is busy and nothing is owed.
  open_busy(d);
  d.step(d.core.peer_closed(t0, true), "write_only input_end");
  d.step(d.core.callback_done(t0, true, false, 0), "-");
}

void lingering(driven& d) {
  // A stop of an idle connection: FIN, done, the linger.
  open(d);
  d.step(d.core.stop(t0, 0), "tell_stop");
  d.step(d.core.callback_done(t0, false, false, 0),
         "fin report_done arm(linger,1000ms)");
}

void closing(driven& d) {
  // A whole linger without input: reading ends locally.
  lingering(d);
  d.step(d.core.linger_timer(t0 + 1s, 0), "shut_read");
}

void flushing(driven& d) {
  // The peer closes while 10 bytes of output are still owed.
  open_owed(d);
  d.step(d.core.peer_closed(t0, false), "watch_flush arm(flush_poll,50ms)");
}

void ending(driven& d) {
  // Forced while 5 bytes wait unread in the kernel (a request in flight).
  open(d);
  d.step(d.core.force(t0, 5), "abort(forced) arm(end_tick,0ms)");
}

void ended(driven& d) {
  ending(d);
  d.step(d.core.end_tick(), "end(forced)");
}

const std::vector<situation>& situations() {
  static const std::vector<situation> xs{
    {"open", lifecycle_state::open, open},
    {"open_owed", lifecycle_state::open, open_owed},
    {"open_busy", lifecycle_state::open, open_busy},
    {"stop_waiting", lifecycle_state::stop_waiting, stop_waiting},
    {"draining_busy", lifecycle_state::draining, draining_busy},
    {"draining_owed", lifecycle_state::draining, draining_owed},
    {"answering", lifecycle_state::answering, answering},
    {"lingering", lifecycle_state::lingering, lingering},
    {"closing", lifecycle_state::closing, closing},
    {"flushing", lifecycle_state::flushing, flushing},
    {"ending", lifecycle_state::ending, ending},
    {"ended", lifecycle_state::ended, ended},
  };
  return xs;
}

// -- the events ---------------------------------------------------------------

using event_fn = std::function<lifecycle_actions(connection_lifecycle&)>;

struct event {
  const char* name;
  event_fn run;
};

const std::vector<event>& events() {
  using c = connection_lifecycle;
  static const std::vector<event> xs{
    // 5 bytes read from the socket.
    {"read", [](c& x) { return x.read(t1, 5); }},
    // 200 bytes read: past the discard limit (100) if discarded.
    {"read_200", [](c& x) { return x.read(t1, 200); }},
    // The kernel took 10 bytes; nothing remains.
    {"taken", [](c& x) { return x.transferred(t1, 10, 0); }},
    // The kernel took 4 bytes; 6 remain.
    {"taken_part", [](c& x) { return x.transferred(t1, 4, 6); }},
    {"peer_fin", [](c& x) { return x.peer_closed(t1, true); }},
    // A reset or an I/O error: the stream ended and nothing can be sent.
    {"peer_reset", [](c& x) { return x.peer_closed(t1, false); }},
    {"reopen_failed", [](c& x) { return x.reopen_failed(t1); }},
    {"stop", [](c& x) { return x.stop(t1, 0); }},
    // A stop while 7 bytes wait unread in the kernel.
    {"stop_unread", [](c& x) { return x.stop(t1, 7); }},
    {"force", [](c& x) { return x.force(t1, 0); }},
    {"force_unread", [](c& x) { return x.force(t1, 7); }},
    // The behaviour's own close: close_requested, then its callback returns
    // idle, having written nothing.
    {"close",
     [](c& x) {
       x.close_requested();
       return x.callback_done(t1, false, false, 0);
     }},
    {"hold", [](c& x) { return x.hold_input(true); }},
    // Release after a hold; the row shows the release's actions.
    {"release",
     [](c& x) {
       x.hold_input(true);
       return x.hold_input(false);
     }},
    // A behaviour callback returns: idle, nothing written.
    {"cb_idle", [](c& x) { return x.callback_done(t1, false, false, 0); }},
    // A behaviour callback returns: busy, 100 bytes written that the kernel
    // did not take (more than max_pending_output, 64).
    {"cb_wrote_100", [](c& x) { return x.callback_done(t1, true, true, 100); }},
    {"linger", [](c& x) { return x.linger_timer(t1, 0); }},
    // The linger timer while 9 bytes wait unread in the kernel.
    {"linger_unread", [](c& x) { return x.linger_timer(t1, 9); }},
    // The idle timer, early (activity since it was armed) and when due.
    {"idle_early", [](c& x) { return x.idle_timer(t1); }},
    {"idle_due", [](c& x) { return x.idle_timer(t0 + 60s); }},
    // The write timer when due: the peer read nothing, or read some.
    {"write_stalled", [](c& x) { return x.write_timer(t0 + 60s, false); }},
    {"write_read", [](c& x) { return x.write_timer(t0 + 60s, true); }},
    {"flush_poll", [](c& x) { return x.flush_poll(t1, false); }},
    {"flushed", [](c& x) { return x.flush_poll(t1, true); }},
    {"end_tick", [](c& x) { return x.end_tick(); }},
    // The behaviour threw.
    {"failed", [](c& x) { return x.failed(); }},
  };
  return xs;
}

struct row {
  const char* situation;
  const char* event;
  const char* actions;
  const char* state;
};

// clang-format off
/// The specification: situation, event, the actions in order, the state
/// after. Arm delays are what is left of the timeout at the event's time.
const row table[] = {
  // -- open
  {"open", "read", "deliver", "open"},
  {"open", "read_200", "deliver", "open"},
  {"open", "taken", "-", "open"},
  {"open", "taken_part", "-", "open"},
  // Nothing in flight: a peer close ends the connection, with `done`.
  {"open", "peer_fin", "close report_done end(normal)", "ended"},
  {"open", "peer_reset", "close report_done end(normal)", "ended"},
  {"open", "reopen_failed", "-", "open"},
  {"open", "stop", "tell_stop", "draining"},
  {"open", "stop_unread", "-", "stop_waiting"},
  // Forced with nothing in flight: a clean close that counts as drained.
  {"open", "force", "fin report_done note arm(end_tick,0ms)", "ending"},
  // Unread input is a request in flight: the force aborts.
  {"open", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  // The behaviour's own close, idle and nothing owed: FIN, done, linger.
  {"open", "close", "fin report_done arm(linger,1000ms)", "lingering"},
  {"open", "hold", "pause_reading", "open"},
  {"open", "release", "resume_reading", "open"},
  {"open", "cb_idle", "-", "open"},
  // Output starts waiting (write timeout); above 64 bytes reading pauses.
  {"open", "cb_wrote_100", "sample_output pause_reading arm(write,60000ms)", "open"},
  {"open", "linger", "-", "open"},
  {"open", "linger_unread", "-", "open"},
  // Armed at t0 for 60 s; at t0 + 2 s the rest is 58 s.
  {"open", "idle_early", "arm(idle,58000ms)", "open"},
  // Idle for the whole timeout: like the behaviour's own close.
  {"open", "idle_due", "note fin report_done arm(linger,1000ms)", "lingering"},
  {"open", "write_stalled", "-", "open"},
  {"open", "write_read", "-", "open"},
  {"open", "flush_poll", "-", "open"},
  {"open", "flushed", "-", "open"},
  {"open", "end_tick", "-", "open"},
  // No `done`: the supervisor sees the actor end with an error.
  {"open", "failed", "abort(failed)", "ended"},

  // -- open_owed
  {"open_owed", "read", "deliver", "open"},
  {"open_owed", "read_200", "deliver", "open"},
  {"open_owed", "taken", "-", "open"},
  {"open_owed", "taken_part", "-", "open"},
  // A peer close with output owed: stay until it has left.
  {"open_owed", "peer_fin", "watch_flush arm(flush_poll,50ms)", "flushing"},
  {"open_owed", "peer_reset", "watch_flush arm(flush_poll,50ms)", "flushing"},
  {"open_owed", "reopen_failed", "-", "open"},
  {"open_owed", "stop", "tell_stop", "draining"},
  {"open_owed", "stop_unread", "-", "stop_waiting"},
  {"open_owed", "force", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"open_owed", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  // FIN waits for the 10 bytes owed.
  {"open_owed", "close", "-", "draining"},
  {"open_owed", "hold", "pause_reading", "open"},
  {"open_owed", "release", "resume_reading", "open"},
  {"open_owed", "cb_idle", "-", "open"},
  {"open_owed", "cb_wrote_100", "pause_reading", "open"},
  {"open_owed", "linger", "-", "open"},
  {"open_owed", "linger_unread", "-", "open"},
  {"open_owed", "idle_early", "-", "open"},
  {"open_owed", "idle_due", "-", "open"},
  // The peer read nothing for a whole write timeout: reset.
  {"open_owed", "write_stalled", "abort(write_timeout,60000ms) arm(end_tick,0ms)", "ending"},
  {"open_owed", "write_read", "arm(write,60000ms)", "open"},
  {"open_owed", "flush_poll", "-", "open"},
  {"open_owed", "flushed", "-", "open"},
  {"open_owed", "end_tick", "-", "open"},
  {"open_owed", "failed", "abort(failed)", "ended"},

  // -- open_busy
  {"open_busy", "read", "deliver", "open"},
  {"open_busy", "read_200", "deliver", "open"},
  {"open_busy", "taken", "-", "open"},
  {"open_busy", "taken_part", "-", "open"},
  // FIN after a request whose answer is owed: answer it, then FIN.
  {"open_busy", "peer_fin", "write_only input_end", "answering"},
  // A reset: nothing can reach the peer; the work is dropped.
  {"open_busy", "peer_reset", "close report_done end(normal)", "ended"},
  {"open_busy", "reopen_failed", "-", "open"},
  {"open_busy", "stop", "tell_stop", "draining"},
  {"open_busy", "stop_unread", "-", "stop_waiting"},
  {"open_busy", "force", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"open_busy", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"open_busy", "close", "fin report_done arm(linger,1000ms)", "lingering"},
  {"open_busy", "hold", "pause_reading", "open"},
  {"open_busy", "release", "resume_reading", "open"},
  {"open_busy", "cb_idle", "-", "open"},
  {"open_busy", "cb_wrote_100", "sample_output pause_reading arm(write,60000ms)", "open"},
  {"open_busy", "linger", "-", "open"},
  {"open_busy", "linger_unread", "-", "open"},
  {"open_busy", "idle_early", "-", "open"},
  {"open_busy", "idle_due", "-", "open"},
  {"open_busy", "write_stalled", "-", "open"},
  {"open_busy", "write_read", "-", "open"},
  {"open_busy", "flush_poll", "-", "open"},
  {"open_busy", "flushed", "-", "open"},
  {"open_busy", "end_tick", "-", "open"},
  {"open_busy", "failed", "abort(failed)", "ended"},

  // -- stop_waiting
  // Bytes sent before the stop go to the behaviour first.
  {"stop_waiting", "read", "deliver", "stop_waiting"},
  {"stop_waiting", "read_200", "deliver", "stop_waiting"},
  {"stop_waiting", "taken", "-", "stop_waiting"},
  {"stop_waiting", "taken_part", "-", "stop_waiting"},
  {"stop_waiting", "peer_fin", "close report_done end(normal)", "ended"},
  {"stop_waiting", "peer_reset", "close report_done end(normal)", "ended"},
  {"stop_waiting", "reopen_failed", "-", "stop_waiting"},
  {"stop_waiting", "stop", "-", "stop_waiting"},
  {"stop_waiting", "stop_unread", "-", "stop_waiting"},
  // 10 bytes still unread since the stop: in flight, so an abort.
  {"stop_waiting", "force", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"stop_waiting", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"stop_waiting", "close", "fin report_done arm(linger,1000ms)", "lingering"},
  {"stop_waiting", "hold", "pause_reading", "stop_waiting"},
  {"stop_waiting", "release", "resume_reading", "stop_waiting"},
  {"stop_waiting", "cb_idle", "-", "stop_waiting"},
  {"stop_waiting", "cb_wrote_100", "sample_output pause_reading arm(write,60000ms)", "stop_waiting"},
  {"stop_waiting", "linger", "-", "stop_waiting"},
  {"stop_waiting", "linger_unread", "-", "stop_waiting"},
  {"stop_waiting", "idle_early", "-", "stop_waiting"},
  // The idle timeout applies only while open.
  {"stop_waiting", "idle_due", "-", "stop_waiting"},
  {"stop_waiting", "write_stalled", "-", "stop_waiting"},
  {"stop_waiting", "write_read", "-", "stop_waiting"},
  {"stop_waiting", "flush_poll", "-", "stop_waiting"},
  {"stop_waiting", "flushed", "-", "stop_waiting"},
  {"stop_waiting", "end_tick", "-", "stop_waiting"},
  {"stop_waiting", "failed", "abort(failed)", "ended"},

  // -- draining_busy
  {"draining_busy", "read", "deliver", "draining"},
  {"draining_busy", "read_200", "deliver", "draining"},
  {"draining_busy", "taken", "-", "draining"},
  {"draining_busy", "taken_part", "-", "draining"},
  {"draining_busy", "peer_fin", "write_only input_end", "answering"},
  {"draining_busy", "peer_reset", "close report_done end(normal)", "ended"},
  {"draining_busy", "reopen_failed", "-", "draining"},
  // A second stop is harmless: the behaviour hears of it once.
  {"draining_busy", "stop", "-", "draining"},
  {"draining_busy", "stop_unread", "-", "draining"},
  {"draining_busy", "force", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"draining_busy", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"draining_busy", "close", "fin report_done arm(linger,1000ms)", "lingering"},
  {"draining_busy", "hold", "pause_reading", "draining"},
  {"draining_busy", "release", "resume_reading", "draining"},
  // The work in flight is done: FIN, done, linger.
  {"draining_busy", "cb_idle", "fin report_done arm(linger,1000ms)", "lingering"},
  {"draining_busy", "cb_wrote_100", "sample_output pause_reading arm(write,60000ms)", "draining"},
  {"draining_busy", "linger", "-", "draining"},
  {"draining_busy", "linger_unread", "-", "draining"},
  {"draining_busy", "idle_early", "-", "draining"},
  {"draining_busy", "idle_due", "-", "draining"},
  {"draining_busy", "write_stalled", "-", "draining"},
  {"draining_busy", "write_read", "-", "draining"},
  {"draining_busy", "flush_poll", "-", "draining"},
  {"draining_busy", "flushed", "-", "draining"},
  {"draining_busy", "end_tick", "-", "draining"},
  {"draining_busy", "failed", "abort(failed)", "ended"},

  // -- draining_owed
  // Stopped and idle: input is discarded, counted against the limit.
  {"draining_owed", "read", "-", "draining"},
  // Past the discard limit (100): reading stops.
  {"draining_owed", "read_200", "note pause_reading", "draining"},
  // FIN only once the kernel has taken every byte owed.
  {"draining_owed", "taken", "fin report_done arm(linger,1000ms)", "lingering"},
  {"draining_owed", "taken_part", "-", "draining"},
  {"draining_owed", "peer_fin", "watch_flush arm(flush_poll,50ms)", "flushing"},
  {"draining_owed", "peer_reset", "watch_flush arm(flush_poll,50ms)", "flushing"},
  {"draining_owed", "reopen_failed", "-", "draining"},
  {"draining_owed", "stop", "-", "draining"},
  {"draining_owed", "stop_unread", "-", "draining"},
  {"draining_owed", "force", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"draining_owed", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"draining_owed", "close", "-", "draining"},
  {"draining_owed", "hold", "pause_reading", "draining"},
  {"draining_owed", "release", "resume_reading", "draining"},
  {"draining_owed", "cb_idle", "-", "draining"},
  {"draining_owed", "cb_wrote_100", "pause_reading", "draining"},
  {"draining_owed", "linger", "-", "draining"},
  {"draining_owed", "linger_unread", "-", "draining"},
  {"draining_owed", "idle_early", "-", "draining"},
  {"draining_owed", "idle_due", "-", "draining"},
  {"draining_owed", "write_stalled", "abort(write_timeout,60000ms) arm(end_tick,0ms)", "ending"},
  {"draining_owed", "write_read", "arm(write,60000ms)", "draining"},
  {"draining_owed", "flush_poll", "-", "draining"},
  {"draining_owed", "flushed", "-", "draining"},
  {"draining_owed", "end_tick", "-", "draining"},
  {"draining_owed", "failed", "abort(failed)", "ended"},

  // -- answering
  // The write-only handle: late input is discarded.
  {"answering", "read", "-", "answering"},
  {"answering", "read_200", "note", "answering"},
  {"answering", "taken", "-", "answering"},
  {"answering", "taken_part", "-", "answering"},
  {"answering", "peer_fin", "close report_done end(normal)", "ended"},
  {"answering", "peer_reset", "close report_done end(normal)", "ended"},
  {"answering", "reopen_failed", "close report_done end(normal)", "ended"},
  // The behaviour hears of the stop while it answers.
  {"answering", "stop", "tell_stop", "answering"},
  {"answering", "stop_unread", "tell_stop", "answering"},
  {"answering", "force", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"answering", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"answering", "close", "fin report_done close end(normal)", "ended"},
  {"answering", "hold", "-", "answering"},
  {"answering", "release", "-", "answering"},
  // Answered: FIN, done and the end (the peer's FIN came first).
  {"answering", "cb_idle", "fin report_done close end(normal)", "ended"},
  // The write-only handle never reads: nothing to pause.
  {"answering", "cb_wrote_100", "sample_output arm(write,60000ms)", "answering"},
  {"answering", "linger", "-", "answering"},
  {"answering", "linger_unread", "-", "answering"},
  {"answering", "idle_early", "-", "answering"},
  {"answering", "idle_due", "-", "answering"},
  {"answering", "write_stalled", "-", "answering"},
  {"answering", "write_read", "-", "answering"},
  {"answering", "flush_poll", "-", "answering"},
  {"answering", "flushed", "-", "answering"},
  {"answering", "end_tick", "-", "answering"},
  {"answering", "failed", "abort(failed)", "ended"},

  // -- lingering
  {"lingering", "read", "-", "lingering"},
  {"lingering", "read_200", "note pause_reading", "lingering"},
  {"lingering", "taken", "-", "lingering"},
  {"lingering", "taken_part", "-", "lingering"},
  // `done` went out with the FIN: not again.
  {"lingering", "peer_fin", "close end(normal)", "ended"},
  {"lingering", "peer_reset", "close end(normal)", "ended"},
  {"lingering", "reopen_failed", "-", "lingering"},
  {"lingering", "stop", "-", "lingering"},
  {"lingering", "stop_unread", "-", "lingering"},
  // The FIN is out and nothing owed: a clean end, never an abort.
  {"lingering", "force", "note arm(end_tick,0ms)", "ending"},
  {"lingering", "force_unread", "note arm(end_tick,0ms)", "ending"},
  {"lingering", "close", "-", "lingering"},
  {"lingering", "hold", "-", "lingering"},
  {"lingering", "release", "-", "lingering"},
  {"lingering", "cb_idle", "-", "lingering"},
  // Not an input the adapter makes: after the FIN no behaviour code
  // runs (accepts_work() is false), so no callback returns.
  {"lingering", "cb_wrote_100", "sample_output arm(write,60000ms)", "lingering"},
  // Quiet for a whole linger, nothing unread: end reading locally.
  {"lingering", "linger", "shut_read", "closing"},
  // Input waits unread: never end the read side then (the EPIPE test
  // below says why); wait another linger from now.
  {"lingering", "linger_unread", "arm(linger,1000ms)", "lingering"},
  {"lingering", "idle_early", "-", "lingering"},
  {"lingering", "idle_due", "-", "lingering"},
  {"lingering", "write_stalled", "-", "lingering"},
  {"lingering", "write_read", "-", "lingering"},
  {"lingering", "flush_poll", "-", "lingering"},
  {"lingering", "flushed", "-", "lingering"},
  {"lingering", "end_tick", "-", "lingering"},
  {"lingering", "failed", "abort(failed)", "ended"},

  // -- closing
  {"closing", "read", "-", "closing"},
  // Input keeps coming after the linger ended: close at the limit.
  {"closing", "read_200", "note close end(normal)", "ended"},
  {"closing", "taken", "-", "closing"},
  {"closing", "taken_part", "-", "closing"},
  {"closing", "peer_fin", "close end(normal)", "ended"},
  {"closing", "peer_reset", "close end(normal)", "ended"},
  {"closing", "reopen_failed", "-", "closing"},
  {"closing", "stop", "-", "closing"},
  {"closing", "stop_unread", "-", "closing"},
  {"closing", "force", "note arm(end_tick,0ms)", "ending"},
  {"closing", "force_unread", "note arm(end_tick,0ms)", "ending"},
  {"closing", "close", "-", "closing"},
  {"closing", "hold", "-", "closing"},
  {"closing", "release", "-", "closing"},
  {"closing", "cb_idle", "-", "closing"},
  {"closing", "cb_wrote_100", "sample_output arm(write,60000ms)", "closing"},
  {"closing", "linger", "-", "closing"},
  {"closing", "linger_unread", "-", "closing"},
  {"closing", "idle_early", "-", "closing"},
  {"closing", "idle_due", "-", "closing"},
  {"closing", "write_stalled", "-", "closing"},
  {"closing", "write_read", "-", "closing"},
  {"closing", "flush_poll", "-", "closing"},
  {"closing", "flushed", "-", "closing"},
  {"closing", "end_tick", "-", "closing"},
  {"closing", "failed", "abort(failed)", "ended"},

  // -- flushing
  {"flushing", "read", "-", "flushing"},
  {"flushing", "read_200", "note", "flushing"},
  {"flushing", "taken", "-", "flushing"},
  {"flushing", "taken_part", "-", "flushing"},
  {"flushing", "peer_fin", "close report_done end(normal)", "ended"},
  {"flushing", "peer_reset", "close report_done end(normal)", "ended"},
  {"flushing", "reopen_failed", "close report_done end(normal)", "ended"},
  {"flushing", "stop", "-", "flushing"},
  {"flushing", "stop_unread", "-", "flushing"},
  {"flushing", "force", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"flushing", "force_unread", "abort(forced) arm(end_tick,0ms)", "ending"},
  {"flushing", "close", "-", "flushing"},
  {"flushing", "hold", "-", "flushing"},
  {"flushing", "release", "-", "flushing"},
  {"flushing", "cb_idle", "-", "flushing"},
  {"flushing", "cb_wrote_100", "-", "flushing"},
  {"flushing", "linger", "-", "flushing"},
  {"flushing", "linger_unread", "-", "flushing"},
  {"flushing", "idle_early", "-", "flushing"},
  {"flushing", "idle_due", "-", "flushing"},
  // The peer that closed reads nothing either: reset.
  {"flushing", "write_stalled", "abort(write_timeout,60000ms) arm(end_tick,0ms)", "ending"},
  {"flushing", "write_read", "arm(write,60000ms)", "flushing"},
  // Not flushed yet: ask again.
  {"flushing", "flush_poll", "arm(flush_poll,50ms)", "flushing"},
  {"flushing", "flushed", "close report_done end(normal)", "ended"},
  {"flushing", "end_tick", "-", "flushing"},
  {"flushing", "failed", "abort(failed)", "ended"},

  // -- ending
  {"ending", "read", "-", "ending"},
  {"ending", "read_200", "-", "ending"},
  {"ending", "taken", "-", "ending"},
  {"ending", "taken_part", "-", "ending"},
  {"ending", "peer_fin", "-", "ending"},
  {"ending", "peer_reset", "-", "ending"},
  {"ending", "reopen_failed", "-", "ending"},
  {"ending", "stop", "-", "ending"},
  {"ending", "stop_unread", "-", "ending"},
  {"ending", "force", "-", "ending"},
  {"ending", "force_unread", "-", "ending"},
  {"ending", "close", "-", "ending"},
  {"ending", "hold", "-", "ending"},
  {"ending", "release", "-", "ending"},
  {"ending", "cb_idle", "-", "ending"},
  {"ending", "cb_wrote_100", "-", "ending"},
  {"ending", "linger", "-", "ending"},
  {"ending", "linger_unread", "-", "ending"},
  {"ending", "idle_early", "-", "ending"},
  {"ending", "idle_due", "-", "ending"},
  {"ending", "write_stalled", "-", "ending"},
  {"ending", "write_read", "-", "ending"},
  {"ending", "flush_poll", "-", "ending"},
  {"ending", "flushed", "-", "ending"},
  // The actor ends a turn after the abort, with the abort's reason.
  {"ending", "end_tick", "end(forced)", "ended"},
  // Not an input the adapter makes (no behaviour code runs after the end).
  {"ending", "failed", "abort(failed)", "ended"},

  // -- ended
  {"ended", "read", "-", "ended"},
  {"ended", "read_200", "-", "ended"},
  {"ended", "taken", "-", "ended"},
  {"ended", "taken_part", "-", "ended"},
  {"ended", "peer_fin", "-", "ended"},
  {"ended", "peer_reset", "-", "ended"},
  {"ended", "reopen_failed", "-", "ended"},
  {"ended", "stop", "-", "ended"},
  {"ended", "stop_unread", "-", "ended"},
  {"ended", "force", "-", "ended"},
  {"ended", "force_unread", "-", "ended"},
  {"ended", "close", "-", "ended"},
  {"ended", "hold", "-", "ended"},
  {"ended", "release", "-", "ended"},
  {"ended", "cb_idle", "-", "ended"},
  {"ended", "cb_wrote_100", "-", "ended"},
  {"ended", "linger", "-", "ended"},
  {"ended", "linger_unread", "-", "ended"},
  {"ended", "idle_early", "-", "ended"},
  {"ended", "idle_due", "-", "ended"},
  {"ended", "write_stalled", "-", "ended"},
  {"ended", "write_read", "-", "ended"},
  {"ended", "flush_poll", "-", "ended"},
  {"ended", "flushed", "-", "ended"},
  {"ended", "end_tick", "-", "ended"},
  {"ended", "failed", "-", "ended"},
};
// clang-format on

std::string state_of(const driven& d) {
  return to_string(d.core.state());
}

std::string line(const char* s, const char* e, const std::string& actions,
                 const char* state) {
  return std::string{"{\""} + s + "\", \"" + e + "\", \"" + actions + "\", \""
         + state + "\"},";
}

const situation& find_situation(const std::string& name) {
  for (auto& x : situations())
    if (name == x.name)
      return x;
  CAF_FAIL("no situation " << name);
}

const event& find_event(const std::string& name) {
  for (auto& x : events())
    if (name == x.name)
      return x;
  CAF_FAIL("no event " << name);
}

struct fixture {};

} // namespace

CAF_TEST_FIXTURE_SCOPE(lifecycle_tests, fixture)

CAF_TEST(every situation reaches its state by its prefix) {
  std::set<lifecycle_state> reached;
  for (auto& s : situations()) {
    CAF_MESSAGE("situation " << s.name);
    driven d;
    s.prefix(d);
    CAF_CHECK_EQUAL(to_string(d.core.state()), to_string(s.state));
    reached.insert(d.core.state());
  }
  // Every state of the enum has a situation.
  CAF_CHECK_EQUAL(reached.size(), lifecycle_state_count);
}

CAF_TEST(the table has one row for every situation and event) {
  std::map<std::pair<std::string, std::string>, int> seen;
  for (auto& r : table)
    ++seen[{r.situation, r.event}];
  for (auto& s : situations())
    for (auto& e : events()) {
      auto n = seen[{s.name, e.name}];
      if (n != 1) {
        // The actual row, to write the specification from (after checking
        // it against the header's promises).
        driven d;
        s.prefix(d);
        auto got = format(e.run(d.core));
        CAF_ERROR(n << " rows for " << s.name << " x " << e.name
                    << "; the core does: "
                    << line(s.name, e.name, got, to_string(d.core.state())));
      }
    }
  CAF_CHECK_EQUAL(seen.size(), situations().size() * events().size());
}

CAF_TEST(every event in every state does what the table says) {
  for (auto& r : table) {
    auto& s = find_situation(r.situation);
    auto& e = find_event(r.event);
    driven d;
    s.prefix(d);
    auto got = format(e.run(d.core));
    CAF_CHECK_EQUAL(line(r.situation, r.event, got, to_string(d.core.state())),
                    line(r.situation, r.event, r.actions, r.state));
  }
}

// The storm's EPIPE (issue 11): a client still sending after our FIN must
// never get a reset. After the FIN the connection lingers, reading and
// discarding input. When the linger timer fires, the adapter asks the kernel
// how many bytes wait unread (FIONREAD): the timer's message can be handled
// before the event loop reads input that arrived just before it. If the core
// then ended the read side (shutdown(SHUT_RD)) or closed the socket with that
// input unread, the Linux kernel would answer it, and every segment after
// it, with RST: the client, still sending, sees EPIPE or ECONNRESET. So
// unread input counts as activity: the linger goes on, re-armed for a whole
// linger from now. Only a linger that ends with nothing unread ends reading.
CAF_TEST(a linger timer with input unread in the kernel lingers on) {
  driven d;
  lingering(d);
  // Unread input at the timer: no shut_read, no close, no abort; re-armed.
  auto got = d.core.linger_timer(t0 + 1s, 3);
  CAF_CHECK_EQUAL(format(got), "arm(linger,1000ms)");
  CAF_CHECK_EQUAL(state_of(d), "lingering");
  // Still unread at the next timer (the event loop has not read it yet):
  // the same again.
  got = d.core.linger_timer(t0 + 2s, 3);
  CAF_CHECK_EQUAL(format(got), "arm(linger,1000ms)");
  // The event loop reads and discards it; the timer armed then finds the
  // peer quiet only a whole linger after that input.
  CAF_CHECK_EQUAL(format(d.core.read(t0 + 2500ms, 3)), "-");
  got = d.core.linger_timer(t0 + 3s, 0);
  CAF_CHECK_EQUAL(format(got), "arm(linger,500ms)");
  // Nothing unread and quiet for a whole linger: reading ends locally (no
  // reset: nothing is unread), and the end-of-stream ends the connection.
  got = d.core.linger_timer(t0 + 3500ms, 0);
  CAF_CHECK_EQUAL(format(got), "shut_read");
  CAF_CHECK_EQUAL(state_of(d), "closing");
  CAF_CHECK_EQUAL(format(d.core.peer_closed(t0 + 3500ms, false)),
                  "close end(normal)");
}

CAF_TEST(a client that sends for the whole linger time is closed then) {
  // The bound on the linger (nginx's lingering_time): input unread at every
  // timer keeps the linger going only until linger_time after the FIN.
  driven d;
  lingering(d);
  auto at = t0;
  for (int i = 0; i < 29; ++i) {
    at += 1s;
    CAF_CHECK_EQUAL(format(d.core.linger_timer(at, 1)), "arm(linger,1000ms)");
  }
  // The last wait is cut to what is left of the 30 s.
  CAF_CHECK_EQUAL(format(d.core.linger_timer(t0 + 29500ms, 1)),
                  "arm(linger,500ms)");
  CAF_CHECK_EQUAL(format(d.core.linger_timer(t0 + 30s, 1)),
                  "close end(normal)");
  CAF_CHECK_EQUAL(state_of(d), "ended");
}

CAF_TEST(past the discard limit a linger closes once the peer had a linger) {
  driven d;
  lingering(d);
  CAF_CHECK_EQUAL(format(d.core.read(t0 + 100ms, 60)), "-");
  CAF_CHECK_EQUAL(format(d.core.read(t0 + 200ms, 60)), "note pause_reading");
  CAF_CHECK_EQUAL(d.core.discarded(), 120u);
  CAF_CHECK(d.core.reading_paused());
  // The timer armed at the FIN: a linger from the last input is not over.
  CAF_CHECK_EQUAL(format(d.core.linger_timer(t0 + 1s, 0)), "arm(linger,200ms)");
  // Reading stopped, so unread input is expected now: it no longer holds
  // the linger (closing with it unread is the documented trade).
  CAF_CHECK_EQUAL(format(d.core.linger_timer(t0 + 1200ms, 50)),
                  "close end(normal)");
}

CAF_TEST(bytes unread at the stop reach the behaviour before the stop) {
  driven d;
  stop_waiting(d);
  CAF_CHECK(d.core.stop_requested());
  CAF_CHECK(d.core.accepts_work());
  CAF_CHECK_EQUAL(format(d.core.read(t0, 6)), "deliver");
  CAF_CHECK_EQUAL(format(d.core.callback_done(t0, true, false, 0)), "-");
  CAF_CHECK_EQUAL(state_of(d), "stop_waiting");
  // The last 4 of the 10 (and 2 more): now the behaviour hears of the stop.
  CAF_CHECK_EQUAL(format(d.core.read(t0, 6)), "deliver");
  CAF_CHECK_EQUAL(format(d.core.callback_done(t0, true, false, 0)),
                  "tell_stop");
  CAF_CHECK_EQUAL(state_of(d), "draining");
  CAF_CHECK_EQUAL(format(d.core.callback_done(t0, false, false, 0)),
                  "fin report_done arm(linger,1000ms)");
  CAF_CHECK(d.core.done_reported());
  CAF_CHECK(!d.core.accepts_work());
}

CAF_TEST(a connection accepted during a stop starts stopping) {
  auto limits = test_limits();
  connection_lifecycle core{limits, true};
  CAF_CHECK(core.stop_requested());
  CAF_CHECK_EQUAL(format(core.start(t0, true)), "-");
  CAF_CHECK_EQUAL(format(core.stop(t0, 0)), "tell_stop");
}

CAF_TEST(reading resumes once the output that filled the buffer has left) {
  driven d;
  open(d);
  CAF_CHECK_EQUAL(format(d.core.read(t0, 5)), "deliver");
  CAF_CHECK_EQUAL(format(d.core.callback_done(t0, false, true, 100)),
                  "sample_output pause_reading arm(write,60000ms)");
  CAF_CHECK_EQUAL(d.core.pending_output(), 100u);
  CAF_CHECK(d.core.armed(timer_kind::write));
  CAF_CHECK(!d.core.may_answer_after_fin());
  CAF_CHECK_EQUAL(format(d.core.transferred(t1, 60, 40)), "-");
  CAF_CHECK(d.core.reading_paused());
  // All of it has left: reading resumes, and the idle time starts now.
  CAF_CHECK_EQUAL(format(d.core.transferred(t1, 40, 0)), "resume_reading");
  CAF_CHECK_EQUAL(format(d.core.idle_timer(t0 + 60s)), "arm(idle,2000ms)");
}

CAF_TEST(the socket is read in every state that has a reading handle) {
  for (auto& s : situations()) {
    CAF_MESSAGE("situation " << s.name);
    driven d;
    s.prefix(d);
    auto st = d.core.state();
    auto has_reader
      = st != lifecycle_state::answering && st != lifecycle_state::flushing
        && st != lifecycle_state::ending && st != lifecycle_state::ended;
    CAF_CHECK_EQUAL(d.core.reads(), has_reader && !d.core.reading_paused());
  }
  driven d;
  open(d);
  CAF_CHECK(d.core.reads());
  d.core.hold_input(true);
  CAF_CHECK(!d.core.reads());
  d.core.hold_input(false);
  CAF_CHECK(d.core.reads());
}

CAF_TEST(zero limits turn the idle and write timeouts off) {
  auto limits = test_limits();
  limits.idle_timeout = duration{0};
  limits.write_timeout = duration{0};
  limits.linger_time = duration{0};
  limits.discard_limit = 0;
  connection_lifecycle core{limits, false};
  CAF_CHECK_EQUAL(format(core.start(t0, false)), "-");
  CAF_CHECK_EQUAL(format(core.read(t0, 5)), "deliver");
  CAF_CHECK_EQUAL(format(core.callback_done(t0, false, true, 10)), "-");
  CAF_CHECK_EQUAL(format(core.idle_timer(t0 + 1h)), "-");
  CAF_CHECK_EQUAL(format(core.write_timer(t0 + 1h, false)), "-");
  core.close_requested();
  CAF_CHECK_EQUAL(format(core.callback_done(t0, false, false, 0)), "-");
  CAF_CHECK_EQUAL(format(core.transferred(t0, 10, 0)),
                  "fin report_done arm(linger,1000ms)");
  // No discard limit and no linger time: unread input lingers on.
  CAF_CHECK_EQUAL(format(core.read(t0, 1u << 30)), "-");
  CAF_CHECK_EQUAL(format(core.linger_timer(t0 + 1h, 1)), "arm(linger,1000ms)");
}

CAF_TEST(names of states timers reasons and actions) {
  CAF_CHECK_EQUAL(std::string{to_string(lifecycle_state::stop_waiting)},
                  "stop_waiting");
  CAF_CHECK_EQUAL(std::string{to_string(static_cast<lifecycle_state>(99))},
                  "?");
  CAF_CHECK_EQUAL(std::string{to_string(timer_kind::flush_poll)}, "flush_poll");
  CAF_CHECK_EQUAL(std::string{to_string(end_reason::write_timeout)},
                  "write_timeout");
  CAF_CHECK_EQUAL(std::string{to_string(action_kind::resume_reading)},
                  "resume_reading");
  lifecycle_actions xs;
  CAF_CHECK(xs.empty());
  xs.push(make_action(action_kind::note, "why"));
  CAF_CHECK_EQUAL(xs.size(), 1u);
  CAF_CHECK_EQUAL(std::string{xs[0].why}, "why");
}

CAF_TEST_FIXTURE_SCOPE_END()
