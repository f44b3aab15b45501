#pragma once

/// @file
/// The life of one connection as a state machine with no I/O in it (a
/// "sans-I/O" core, like h11 or quinn-proto): it owns no socket, no clock, no
/// actor and includes no CAF header. The connection actor (connection.hpp) is
/// its adapter: it turns CAF messages and socket facts into the events below
/// and carries out the actions the core returns, in order.
///
/// The promise it keeps, whatever the order of events:
///
/// - the socket is aborted (RST) only when forced while work is in flight,
///   when the peer stops reading for a whole write timeout, or when the
///   behaviour failed;
/// - FIN goes out only once every byte owed has been taken by the kernel;
/// - `done` is reported at most once, and only with or after the FIN or at
///   the end;
/// - nothing comes out after the end;
/// - a stop ends at the latest when it is forced (the supervisor's drain
///   deadline).
///
/// States and what moves between them (docs/architecture.md has the whole
/// table of states × events):
///
///     open ──stop, input unread──> stop_waiting ──input read──┐
///      │ stop / close / idle timeout                          │
///      v                                                      v
///     draining <──────────────────────────────────────────────┘
///      │ peer FIN while busy ──> answering ──idle, sent──> FIN, end
///      │ idle and sent
///      v
///     lingering (FIN sent, `done`) ──quiet for `linger`──> closing
///      │ peer FIN, limits                                     │ EOF
///      v                                                      v
///     ended <─────────────────────────────────────────────────┘
///
///     any, peer closed with output owed ──> flushing ──sent──> ended
///     any, forced / write timeout ──> ending ──end tick──> ended

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace quiesce {

/// The limits every connection of a server shares (see connection_config,
/// which extends this with the parts that need CAF).
struct lifecycle_limits {
  /// After the FIN, how long a connection waits without input for the peer's
  /// FIN before it closes anyway.
  std::chrono::nanoseconds linger = std::chrono::seconds(1);
  /// How long a linger may take in all, however often input comes: a client
  /// that keeps sending after its answer (an upload refused with 413) is
  /// closed this long after the FIN. nginx's `lingering_time`. Zero: no
  /// limit.
  std::chrono::nanoseconds linger_time = std::chrono::seconds(30);
  /// How many bytes of input a connection reads and discards in all (after
  /// its FIN, or during a stop once only its output waits). Past it, reading
  /// stops; once the output has left, the peer gets one `linger` to read it,
  /// then the connection closes. 1 MiB, the HTTP body limit: the server
  /// has no use for any of it, and a request larger than that is refused
  /// anyway; a client that sends that much more after its answer is not
  /// waiting for anything. Closing with input unread makes the kernel send
  /// RST, and a peer that has not read its answer by then may lose it:
  /// nginx (lingering_time) makes the same trade. Zero: no limit.
  size_t discard_limit = size_t{1} << 20;
  /// Output waiting to be sent above which reading pauses.
  size_t max_pending_output = 64 * 1024;
  /// How long a connection with nothing in flight and no activity stays
  /// open before the framework closes it, as after the behaviour's own
  /// `close`. Zero, the default of this struct, means never; the server sets
  /// it from `--idle-timeout` (60 s unless configured).
  std::chrono::nanoseconds idle_timeout{0};
  /// How long output may wait while the peer reads none of it before the
  /// connection is aborted: RST, a warning in the log, and during a stop it
  /// counts as forced. The server sets it from `--write-timeout`; 60 s
  /// (nginx's `send_timeout`). Zero: never.
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(60);
  /// How often a connection whose peer closed while output was still owed
  /// asks whether that output has left (the `flushing` state).
  std::chrono::nanoseconds flush_poll = std::chrono::milliseconds(50);
};

/// Where a connection is in its life. Exactly one at a time; the rest of the
/// core's data is counters, times and which timers are under way.
enum class lifecycle_state : uint8_t {
  /// Serving the protocol: input goes to the behaviour.
  open,
  /// `stop` arrived while bytes the client sent before it still waited
  /// unread in the kernel: they are delivered first (they are in flight),
  /// then the behaviour hears of the stop.
  stop_waiting,
  /// Stop, the behaviour's own close or the idle timeout: finishing the work
  /// in flight and the output owed. Input goes to the behaviour only while
  /// it is busy; otherwise it is discarded.
  draining,
  /// The peer sent FIN while the behaviour was busy: nothing more is read,
  /// the answer is written through a write-only handle, then FIN and end.
  answering,
  /// FIN sent and `done` reported: input is discarded until the peer's FIN
  /// or the linger ends, so that a client still sending gets no reset.
  lingering,
  /// Reading ended locally after a quiet linger: waiting for the socket's
  /// end-of-stream.
  closing,
  /// The peer closed while output was still owed: waiting until the
  /// framework has sent it (or failed).
  flushing,
  /// Closed or aborted: the actor ends on the end tick, ignoring the rest.
  ending,
  /// Over: no event has any effect.
  ended,
};

/// The number of states, for tables.
constexpr size_t lifecycle_state_count = 9;

/// A state's name, for logs and tables.
const char* to_string(lifecycle_state x);

/// The core's timers, each with a message kind of its own in the adapter.
enum class timer_kind : uint8_t {
  /// The linger after the FIN (and its overall limit, `linger_time`).
  linger,
  /// The idle timeout.
  idle,
  /// The write timeout.
  write,
  /// The `flushing` state's poll.
  flush_poll,
  /// On a later turn of the event loop after a close or an abort, the actor
  /// ends (armed with no delay: the adapter chooses how much a turn is).
  end_tick,
};

/// The number of timer kinds, for tables.
constexpr size_t timer_kind_count = 5;

const char* to_string(timer_kind x);

/// Why a connection ended.
enum class end_reason : uint8_t {
  /// Closed cleanly, or by the peer.
  normal,
  /// Forced by the supervisor with work in flight.
  forced,
  /// The peer read nothing for a whole write timeout.
  write_timeout,
  /// The behaviour failed (threw).
  failed,
};

const char* to_string(end_reason x);

/// What the adapter must do.
enum class action_kind : uint8_t {
  /// Give the bytes just read to the behaviour (a behaviour callback).
  deliver,
  /// Tell the behaviour of the stop (a behaviour callback, once).
  tell_stop,
  /// Tell the behaviour its input has ended: the peer sent FIN while it was
  /// busy (a behaviour callback).
  input_end,
  /// Stop reading from the socket.
  pause_reading,
  /// Read from the socket again.
  resume_reading,
  /// Output starts waiting: remember the kernel's account of the socket's
  /// output, for the write timer's question "has the peer read since?".
  sample_output,
  /// The peer sent FIN while the behaviour is busy: keep a handle that only
  /// writes. If that is impossible, the adapter sends `reopen_failed`.
  write_only,
  /// The peer closed while output is owed: keep watching the socket until
  /// the output has left. If that is impossible, `reopen_failed`.
  watch_flush,
  /// Shut the write side down: the peer reads end-of-stream after the
  /// output.
  fin,
  /// End reading locally; the end-of-stream comes back as `peer_closed`.
  shut_read,
  /// Tell the supervisor `done`.
  report_done,
  /// Arm the timer `timer` to fire after `delay`.
  arm,
  /// Reset the connection (RST).
  abort,
  /// Release the socket (and anything held for it).
  close,
  /// The actor ends with `reason`.
  end,
  /// Nothing to do: a line for the debug log (`why`).
  note,
};

/// The number of action kinds, for tables.
constexpr size_t action_kind_count = 16;

const char* to_string(action_kind x);

/// One action; fields other than `kind` matter only for some kinds.
struct lifecycle_action {
  action_kind kind = action_kind::note;
  timer_kind timer = timer_kind::linger;
  end_reason reason = end_reason::normal;
  /// arm: the delay; abort for a write timeout: how long output stalled.
  std::chrono::nanoseconds delay{0};
  /// close, end, note: why, for the log (static text; in a note, `{ms}`
  /// stands for `delay`, `{discarded}` and `{discard_limit}` for those
  /// numbers).
  const char* why = nullptr;
};

inline lifecycle_action make_action(action_kind kind,
                                    const char* why = nullptr) {
  lifecycle_action x;
  x.kind = kind;
  x.why = why;
  return x;
}

/// The actions of one event, in the order they must be carried out. At most
/// one of them is a behaviour callback (deliver, tell_stop, input_end), and
/// it comes last: after it the adapter calls `callback_done`.
class lifecycle_actions {
public:
  static constexpr size_t capacity = 8;

  void push(const lifecycle_action& x);

  const lifecycle_action* begin() const {
    return xs_;
  }

  const lifecycle_action* end() const {
    return xs_ + size_;
  }

  size_t size() const {
    return size_;
  }

  bool empty() const {
    return size_ == 0;
  }

  const lifecycle_action& operator[](size_t i) const {
    return xs_[i];
  }

private:
  lifecycle_action xs_[capacity];
  size_t size_ = 0;
};

/// The lifecycle of one connection. Every event returns the actions it
/// takes; the adapter carries them out in order.
class connection_lifecycle {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;
  using duration = std::chrono::nanoseconds;

  /// `limits` must outlive the core (one config for every connection).
  /// `stopping`: the server was stopping when the connection was accepted
  /// (the backlog taken at a stop): `stop_requested` from the start.
  connection_lifecycle(const lifecycle_limits& limits, bool stopping);

  // -- events -----------------------------------------------------------------

  /// The connection opened; `busy`: the behaviour has work from the start.
  lifecycle_actions start(time_point now, bool busy);

  /// `n` bytes were read from the socket.
  lifecycle_actions read(time_point now, size_t n);

  /// A behaviour callback (one the core asked for, or a timer, message or
  /// reply of the behaviour's own) has returned. `busy`: the behaviour has
  /// work in flight or a request pending. `wrote`: it wrote output;
  /// `queued` bytes of it wait in the framework (the kernel did not take
  /// them at once).
  lifecycle_actions callback_done(time_point now, bool busy, bool wrote,
                                  size_t queued);

  /// The kernel took `written` bytes; `remaining` still wait in the
  /// framework.
  lifecycle_actions transferred(time_point now, size_t written,
                                size_t remaining);

  /// The socket reached end-of-stream or failed. `fin`: the peer sent FIN
  /// and the socket can still send (ask `may_answer_after_fin` first: only
  /// then does it matter).
  lifecycle_actions peer_closed(time_point now, bool fin);

  /// The adapter could not do `write_only` or `watch_flush`.
  lifecycle_actions reopen_failed(time_point now);

  /// `stop` from the supervisor; `unread`: bytes the client sent that wait
  /// unread in the kernel.
  lifecycle_actions stop(time_point now, size_t unread);

  /// Forced by the supervisor (drain deadline, second signal); `unread` as
  /// for `stop`.
  lifecycle_actions force(time_point now, size_t unread);

  /// The behaviour asked to close (its callback's `callback_done` follows).
  void close_requested();

  /// The behaviour holds its input (or lets it come again).
  lifecycle_actions hold_input(bool hold);

  /// `unread`: bytes that wait unread in the kernel (input that arrived but
  /// that the event loop has not read yet); the adapter asks only while
  /// `lingering`.
  lifecycle_actions linger_timer(time_point now, size_t unread = 0);

  lifecycle_actions idle_timer(time_point now);

  /// `peer_read`: the kernel's account shows the peer read output since the
  /// last sample.
  lifecycle_actions write_timer(time_point now, bool peer_read);

  /// `flushed`: the framework has sent (or dropped) what it held.
  lifecycle_actions flush_poll(time_point now, bool flushed);

  lifecycle_actions end_tick();

  /// The behaviour threw: the connection is aborted and over (the adapter
  /// ends the actor with the error).
  lifecycle_actions failed();

  // -- queries ----------------------------------------------------------------

  lifecycle_state state() const {
    return state_;
  }

  /// `stop` arrived (or the server was stopping at the accept).
  bool stop_requested() const {
    return stop_requested_;
  }

  /// The behaviour may still do work: its timers, messages and replies are
  /// delivered (after the FIN they are dropped).
  bool accepts_work() const;

  /// Output bytes that wait in the framework, not yet taken by the kernel.
  size_t pending_output() const {
    return pending_;
  }

  bool done_reported() const {
    return done_;
  }

  bool reading_paused() const {
    return paused_;
  }

  /// Whether the connection's socket is to be read now: it has a reading
  /// handle (not once answering on the write-only one, flushing or ending)
  /// and reading is not paused.
  bool reads() const {
    return has_reader() && !paused_;
  }

  /// A peer close now would keep the connection answering if the peer sent
  /// FIN (see `peer_closed`): the adapter needs to ask the socket.
  bool may_answer_after_fin() const;

  /// A timer of `kind` is under way.
  bool armed(timer_kind kind) const {
    return (armed_ & bit(kind)) != 0;
  }

  /// Bytes discarded so far.
  size_t discarded() const {
    return discarded_;
  }

private:
  static constexpr duration zero{0};

  static uint8_t bit(timer_kind kind) {
    return static_cast<uint8_t>(1u << static_cast<unsigned>(kind));
  }

  bool serving() const;

  bool quiet() const;

  void note_activity(time_point now);

  void arm(lifecycle_actions& out, timer_kind kind, duration delay);

  /// Not answering on the write-only handle, flushing, ending or ended.
  bool has_reader() const;

  void update_reading(lifecycle_actions& out);

  void flushed_output(lifecycle_actions& out, time_point now, bool wrote,
                      size_t queued);

  void settle(lifecycle_actions& out, time_point now);

  void watch_idle(lifecycle_actions& out, time_point now);

  void watch_output(lifecycle_actions& out, time_point now);

  void tell_stop(lifecycle_actions& out);

  void begin_linger(lifecycle_actions& out, time_point now);

  void discard(lifecycle_actions& out, time_point now, size_t n);

  void report_done(lifecycle_actions& out);

  void finish(lifecycle_actions& out, const char* why);

  void abort(lifecycle_actions& out, end_reason reason, duration stalled);

  void end_later(lifecycle_actions& out, end_reason reason);

  const lifecycle_limits* limits_;
  lifecycle_state state_ = lifecycle_state::open;
  end_reason end_reason_ = end_reason::normal;
  /// Timers under way, a bit per timer_kind.
  uint8_t armed_ = 0;
  bool busy_ = false;
  bool stop_requested_ = false;
  /// The behaviour's `on_stop` has run (once).
  bool stop_told_ = false;
  bool done_ = false;
  /// Reading is paused (see update_reading).
  bool paused_ = false;
  /// More than `max_pending_output` bytes waited; clears once all have left.
  bool output_full_ = false;
  bool input_held_ = false;
  /// The discard limit was reached: reading stays paused.
  bool discard_capped_ = false;
  /// The connection was quiet when last looked at (watch_idle).
  bool was_quiet_ = false;
  /// Bytes given to the behaviour by the last `deliver`, not yet counted
  /// against `unread_at_stop_` (that happens once its callback returned).
  size_t delivered_ = 0;
  /// Bytes that waited in the kernel at the stop and are not yet delivered.
  size_t unread_at_stop_ = 0;
  size_t pending_ = 0;
  size_t discarded_ = 0;
  /// The last input (for the linger).
  time_point last_input_{};
  /// The last input read or output written or sent (for the idle timeout).
  time_point last_activity_{};
  /// When the FIN went out (for `linger_time`).
  time_point linger_began_{};
  /// Output started waiting, or the peer was last seen reading.
  time_point output_progress_{};
};

} // namespace quiesce
