#pragma once

/// @file
/// The connection actor: one broker per accepted connection, driving one
/// behaviour. It owns the socket and the close:
///
/// - open: input goes to the behaviour; its output is flushed after each
///   callback. Reading pauses while more than `max_pending_output` bytes wait
///   to be sent (a peer that does not read cannot make the server buffer
///   without bound) and resumes once they have gone.
/// - `stop`: bytes the client sent before the stop but still unread in the
///   kernel go to the behaviour first (they are in flight, not idle); then
///   the behaviour's `on_stop` runs (at once on a connection that winds down
///   already: after the behaviour's own close, or answering a peer that
///   half-closed; it reads nothing more). As soon as the behaviour is idle
///   and every written byte has left (the kernel has it), the actor sends FIN
///   (shutdown of the write side) and `done` to the supervisor: nothing is
///   owed any more. It then lingers: it reads and discards input until the
///   peer's FIN, so that a client still sending gets no reset. A linger ends
///   when the peer closes or after `linger` without input; it then ends
///   reading locally and closes, and the actor ends.
/// - discarded input is bounded: input read while nobody wants it (after
///   the FIN, or during a stop once the behaviour is idle and only output
///   waits) counts against `discard_limit`. Past it the connection stops
///   reading; once its output has left it gives the peer one more `linger`
///   to read it, then closes. And a linger takes `linger_time` at most,
///   however the peer trickles input. Such a close drops unread input, so
///   the kernel resets the connection (see connection_config).
/// - peer close or I/O error at any time: `done` (if not sent yet), end. If
///   CAF still holds output for the peer, the actor stays until CAF has
///   written it (its write timeout or a stop's deadline aborts it). And
///   a peer that half-closes (FIN after its request) while the behaviour is
///   busy still gets its answer: the actor writes it through a second,
///   write-only scribe on a duplicate descriptor, then sends FIN and ends.
/// - requests of the behaviour to other actors keep the connection busy
///   until their reply or error has reached the behaviour.
/// - idle timeout (`idle_timeout`, zero: none): a connection that is idle
///   (the behaviour idle, no request pending, no output waiting) and has had
///   no activity (input read, output written or sent) for that long closes
///   as after the behaviour's own `close`: FIN, `done`, the linger. One
///   timer message per connection, re-armed lazily: activity only records
///   the time; when the timer fires it re-arms for the remainder, and a busy
///   connection re-arms it when it becomes idle again.
/// - a peer that resets (RST) the connection while the behaviour is busy
///   ends the actor at once, like any peer close: its answer has nowhere to
///   go. Only a FIN (the kernel's TCP state CLOSE_WAIT) gets the answer
///   through a duplicate descriptor, see above.
/// - write timeout (`write_timeout`, zero: none): output that waits (CAF
///   holds bytes for the socket, also after a peer close) while the peer
///   reads none of it for that long means a peer that does not read: the
///   connection is aborted (RST, no `done`) and a warning says so. The peer
///   reads when the kernel takes bytes from CAF (data_transferred_msg) or
///   acknowledges bytes beyond the receive window the peer had when the
///   timer last looked (a slow reader frees its window long before the
///   server's send buffer has room for CAF). One timer message per
///   connection, re-armed lazily like the idle timer: progress only records
///   the time, the timer looks at the kernel's counters when it fires. A
///   peer's kernel may grow its window once on its own, early in a
///   connection: the abort then comes up to one more timeout later.
/// - forced (exit message `user_shutdown` from the supervisor, at the drain
///   deadline or a second signal): a connection with nothing in flight (the
///   behaviour idle, no request pending, no output waiting, no input unread
///   in the kernel) or one that has sent its FIN already closes cleanly
///   (FIN, `done`); any other aborts its socket (RST: the peer's next read
///   fails, it is never a clean end) and reports nothing. The actor ends on
///   a later turn of the event loop either way.
/// - an abort (forced, write timeout, a behaviour that throws) resets the
///   connection: see socket_ops::abort.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>
#include <sys/types.h>

#include "caf/actor_clock.hpp"
#include "caf/io/connection_handle.hpp"

#include "actors/behaviour.hpp"
#include "actors/messages.hpp"
#include "actors/socket_ops.hpp"
#include "actors/timer_relay.hpp"

namespace quiesce {

/// How every connection actor of a server behaves.
struct connection_config {
  /// Makes the protocol of each connection.
  behaviour_factory make_behaviour;
  /// Told `done` when the connection closes.
  supervisor_actor supervisor;
  /// After the FIN, how long a connection waits without input for the peer's
  /// FIN before it closes anyway.
  caf::timespan linger = std::chrono::seconds(1);
  /// How long a linger may take in all, however often input comes: a client
  /// that keeps sending after its answer (an upload refused with 413) is
  /// closed this long after the FIN. nginx's `lingering_time`. Zero: no
  /// limit.
  caf::timespan linger_time = std::chrono::seconds(30);
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
  /// The read buffer: `small_read` bytes while the peer sends little at a
  /// time (an idle connection keeps only this much); a read that fills it
  /// switches to `large_read` bytes, and the next read shorter than
  /// `small_read` switches back and frees the large buffer.
  size_t small_read = 512;
  size_t large_read = 16 * 1024;
  /// Carries every delayed message of the connection actors (see
  /// timer_relay.hpp); the acceptor spawns one if none is set.
  timer_relay relay;
  /// How long a connection with nothing in flight and no activity stays
  /// open before the framework closes it (see the file comment). Zero, the
  /// default of this struct, means never; the server sets it from
  /// `--idle-timeout` (60 s unless configured).
  caf::timespan idle_timeout{0};
  /// How long output may wait while the peer reads none of it (see the file
  /// comment) before the connection is aborted: RST, a warning in the log,
  /// and during a stop it counts as forced. The server sets it from
  /// `--write-timeout`; 60 s (nginx's `send_timeout`). Zero: never.
  caf::timespan write_timeout = std::chrono::seconds(60);
  /// The server is stopping already: the acceptor takes the clients left in
  /// the listen backlog at a stop, and their `stop` is on its way. Such a
  /// connection says `stop_requested()` from the start, so that bytes it
  /// reads before its `stop` arrives are treated as sent before the stop.
  bool stopping = false;
};

/// One configuration for all connection actors of a server: each keeps a
/// pointer, not a copy (memory per idle connection, see
/// docs/performance.md).
using shared_config = std::shared_ptr<const connection_config>;

/// The state of one connection actor; see the file comment for its phases.
class connection_state : public connection_io {
public:
  static inline const char* name = "quiesce.connection";

  enum class phase {
    /// Serving the protocol.
    open,
    /// `stop` arrived, or the behaviour asked to close: finishing in-flight
    /// work and output.
    stopping,
    /// FIN sent: discarding input until the peer's FIN or the linger ends.
    lingering,
    /// Reading ended locally: waiting for the socket to leave the event loop.
    closing,
    /// The peer closed while CAF still held output for it: waiting for CAF
    /// to finish writing (or fail), holding a duplicate descriptor.
    flushing,
  };

  connection_state() = default;

  connection_state(const connection_state&) = delete;

  connection_state& operator=(const connection_state&) = delete;

  ~connection_state() override;

  /// Called once, from the actor's function.
  void init(connection_actor::broker_pointer self,
            caf::io::connection_handle hdl, shared_config cfg);

  // -- connection_io --------------------------------------------------------

  void write(std::string_view bytes) override;

  void start_timer(caf::timespan delay, uint64_t token) override;

  void close() override;

  void hold_input(bool hold) override;

  bool stop_requested() const override;

  connection_actor handle() const override;

  caf::actor_system& system() const override;

  // -- message handlers -------------------------------------------------------

  void on_data(caf::io::new_data_msg& msg);

  void on_transferred(const caf::io::data_transferred_msg& msg);

  void on_peer_closed();

  void on_stop();

  void on_linger();

  /// The idle timer fired.
  void on_idle_check();

  /// The write timer fired.
  void on_write_check();

  void on_timer(uint64_t token);

  void on_message(caf::message& msg);

  void on_forced(const caf::exit_msg& msg);

  /// The connection has closed or aborted its socket (a forced exit, the
  /// write timeout) and ends on its next timer message: it ignores every
  /// other message until `end_now`.
  bool ending() const;

  /// Ends the actor with the reason `ending` recorded.
  void end_now();

  /// A behaviour threw: abort the connection instead of leaving it half done.
  void on_exception();

  phase current_phase() const {
    return phase_;
  }

  void on_request_timeout(uint64_t id);

protected:
  uint64_t new_request(uint64_t token) override;

  void send_request(uint64_t id, const caf::actor& dest, caf::timespan timeout,
                    caf::message msg, caf::behavior on_reply) override;

  void reply_arrived(uint64_t id, caf::expected<caf::message> reply) override;

private:
  /// True while the behaviour has work in flight or a request is pending.
  bool busy() const;

  /// Sizes the read buffer after a read of `msg` (see small_read).
  void adapt_read_buffer(caf::io::new_data_msg& msg);

  /// Flushes what the last callback wrote and applies backpressure.
  void flush_output();

  /// Pauses or resumes reading: paused while serving and either the output
  /// is over `max_pending_output` (until it has all left) or the behaviour
  /// holds its input.
  void update_reading();

  /// Starts the close once the behaviour is idle and the output has left;
  /// while serving, arms the idle timer instead (watch_idle).
  void close_if_drained();

  /// Nothing in flight: the behaviour is idle, no request is pending, no
  /// output waits, no stop waits for input.
  bool quiet() const;

  /// Records activity (input, output): the idle timeout counts from here.
  void note_activity();

  /// Input nobody wants (see the file comment): counts it against
  /// `discard_limit`.
  void discard(size_t n);

  /// True when a forced exit can close without losing anything: nothing in
  /// flight (quiet, and no input unread in the kernel), or the FIN is out.
  bool quiet_at_force() const;

  /// Aborts the socket (RST) and ends the actor on a later turn with
  /// `reason`, without `done`.
  void abort_connection(caf::error reason);

  /// Ends the actor on a later turn of the event loop with `reason`,
  /// ignoring everything meanwhile: a connection accepted in this turn
  /// (the backlog taken at a stop, then a second signal) would have its
  /// scribe added and removed in one turn, which CAF 0.17 merges into
  /// nothing and never releases.
  void end_later(caf::error reason);

  /// Arms the write timer if output waits and none is under way.
  void watch_output();

  /// Takes a new sample of the socket's output (see output_sample_).
  void sample_output();

  /// Arms the idle timer if the connection serves, is quiet and has no
  /// timer under way.
  void watch_idle();

  void arm_idle_timer(caf::timespan delay);

  /// Tells the behaviour of the stop and winds down.
  void begin_stop();

  /// Runs the behaviour's `on_stop` (once per connection: also when the
  /// connection is winding down already, see on_stop), then flushes and
  /// closes if drained.
  void tell_stop();

  void begin_linger();

  void arm_linger_timer(caf::timespan delay);

  /// After the peer's FIN, keeps a busy behaviour able to answer; false if
  /// it cannot (then the connection ends as on any peer close).
  bool write_after_peer_fin();

  /// After a peer close with output still in CAF's buffers: stays until
  /// CAF has written it; false if it cannot watch (then it ends at once).
  bool watch_flush_after_peer_close();

  /// Sends this actor `msg` after `delay`, through the relay.
  void send_later(caf::timespan delay, caf::message msg);

  /// Tells the supervisor `done`, once.
  void report_done();

  /// Reports `done` (unless the FIN did) and ends the actor.
  void finish(const char* why);

  connection_actor::broker_pointer self_ = nullptr;
  caf::io::connection_handle hdl_;
  /// CAF's output buffer of `hdl_` (the scribe's own, so its address is
  /// stable while the scribe lives): looked up once, not per write.
  std::vector<char>* out_ = nullptr;
  shared_config cfg_;
  std::unique_ptr<behaviour> behaviour_;
  /// The socket; nothing under CAF's test multiplexer.
  std::optional<int> fd_;
  phase phase_ = phase::open;
  /// The last callback wrote bytes that are not flushed yet.
  bool wrote_ = false;
  /// Bytes flushed to CAF that have not reached the kernel yet (only tracked
  /// on real sockets; the test multiplexer takes bytes at once).
  size_t pending_output_ = 0;
  /// Reads use the large buffer (see connection_config::small_read).
  bool large_reads_ = false;
  /// Reading is paused (see update_reading).
  bool reading_paused_ = false;
  /// More than `max_pending_output` bytes waited to be sent; clears once all
  /// have left.
  bool output_full_ = false;
  /// The behaviour asked not to get more input for now.
  bool input_held_ = false;
  /// Requests made by the behaviour whose reply (or error) has not come:
  /// id -> the behaviour's token.
  std::unordered_map<uint64_t, uint64_t> pending_requests_;
  uint64_t last_request_id_ = 0;
  /// Ending: the actor ends on its next timer message (see end_later);
  /// everything else is ignored meanwhile.
  bool ending_ = false;
  caf::error end_reason_;
  /// A linger timer message is on its way.
  bool linger_timer_armed_ = false;
  /// `done` went to the supervisor.
  bool done_reported_ = false;
  /// The peer sent FIN while the behaviour was busy; `hdl_` now writes only.
  bool peer_finished_ = false;
  /// `stop` arrived while bytes sent before it still waited in the kernel:
  /// the behaviour hears of the stop once `unread_at_stop_` bytes are read.
  bool stop_pending_ = false;
  size_t unread_at_stop_ = 0;
  /// `stop` arrived (`stop_requested`).
  bool stop_requested_ = false;
  /// The behaviour's `on_stop` has run (once).
  bool stop_told_ = false;
  /// A duplicate descriptor this actor owns and closes (flushing phase).
  int owned_fd_ = -1;
  /// CAF's descriptor and its socket's inode, while flushing.
  int caf_fd_ = -1;
  ino_t caf_fd_inode_ = 0;
  caf::actor_clock::time_point last_input_;
  /// The last input read or output written or sent (for `idle_timeout`).
  caf::actor_clock::time_point last_activity_;
  /// A timer went to the relay: the relay is told when this actor ends.
  bool timers_sent_ = false;
  /// An idle timer message is on its way.
  bool idle_timer_armed_ = false;
  /// The connection was quiet when last looked at (watch_idle).
  bool was_quiet_ = false;
  /// Input read and discarded so far (see discard_limit).
  size_t discarded_ = 0;
  /// `discard_limit` was reached: reading stays paused.
  bool discard_capped_ = false;
  /// When the FIN went out (for `linger_time`).
  caf::actor_clock::time_point linger_began_;
  /// A write timer message is on its way.
  bool write_timer_armed_ = false;
  /// Output started waiting, or the peer was last seen reading: the kernel
  /// took bytes (data_transferred_msg) or the peer acknowledged some.
  caf::actor_clock::time_point output_progress_;
  /// The kernel's account of the output when the write timer last looked
  /// (or output started waiting): a peer that reads, however slowly, makes
  /// the kernel's acknowledged bytes grow even while the kernel's send
  /// buffer stays too full for CAF to write (and after a peer close CAF
  /// reports no writes at all).
  std::optional<socket_ops::output_sample> output_sample_;
  /// The kernel took bytes since the sample: take a new one at the next
  /// look instead of comparing.
  bool output_sample_stale_ = false;
};

/// The function of a connection actor; the acceptor forks one per connection.
connection_actor::behavior_type connection_main(
  connection_actor::stateful_broker_pointer<connection_state> self,
  caf::io::connection_handle hdl, shared_config cfg);

} // namespace quiesce
