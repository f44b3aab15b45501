#pragma once

/// @file
/// The connection actor: one broker per accepted connection, driving one
/// behaviour. The connection's life (when to deliver input, when to send FIN
/// and `done`, the linger, the idle and write timeouts, the forced end) is
/// decided by its lifecycle core (connection_lifecycle.hpp), which has no CAF
/// in it. This actor is the core's adapter: it turns CAF messages and socket
/// facts into the core's events and carries out the actions the core
/// returns. It also holds the behaviour, its requests to other actors, the
/// read buffer's size and every workaround for CAF 0.17, each named where it
/// is done:
///
/// - delayed messages go through the timer relay, never to the broker itself
///   (CAF 0.17.6 leaks a broker a delayed message reaches after it quit);
///   requests to other actors have no CAF timeout for the same reason;
/// - output goes to the kernel at once when CAF holds nothing for the
///   socket (direct send: CAF would wait a turn and cost two epoll_ctl);
/// - a peer that half-closes while the behaviour is busy is answered through
///   a second, write-only scribe on a duplicate descriptor (CAF 0.17 drops
///   the scribe at end-of-stream);
/// - a peer close while CAF still holds output is watched through a
///   duplicate descriptor and the inode of CAF's (CAF reports nothing more
///   about a dropped scribe);
/// - the end of a closed or aborted connection waits one turn (CAF 0.17
///   merges a scribe added and removed in the same turn into nothing and
///   never releases it);
/// - without a socket (CAF's test multiplexer) the socket-only actions are
///   left out and the end-of-stream after a local read shutdown is made up.
///
/// The behaviour of a connection, as a client sees it, is in
/// docs/architecture.md (the contract) and in connection_lifecycle.hpp.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>
#include <sys/types.h>

#include "caf/actor_addr.hpp"
#include "caf/actor_clock.hpp"
#include "caf/actor_control_block.hpp"
#include "caf/io/connection_handle.hpp"

#include "quiesce/behaviour.hpp"
#include "actors/connection_lifecycle.hpp"
#include "actors/metrics.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/service.hpp"
#include "actors/socket_ops.hpp"
#include "actors/timer_relay.hpp"

namespace quiesce {

/// How every connection actor of a server behaves: the lifecycle's limits
/// (linger, linger_time, discard_limit, max_pending_output, idle_timeout,
/// write_timeout, flush_poll; see lifecycle_limits) and what needs CAF.
struct connection_config : lifecycle_limits {
  /// Makes the protocol of each connection.
  behaviour_factory make_behaviour;
  /// Told `done` when the connection closes.
  supervisor_actor supervisor;
  /// The read buffer: `small_read` bytes while the peer sends little at a
  /// time (an idle connection keeps only this much); a read that fills it
  /// switches to `large_read` bytes, and two reads in a row shorter than
  /// `small_read` switch back and free the large buffer.
  size_t small_read = 512;
  size_t large_read = 16 * 1024;
  /// Carries every delayed message of the connection actors (see
  /// timer_relay.hpp); the acceptor spawns one if none is set.
  timer_relay relay;
  /// The server is stopping already: the acceptor takes the clients left in
  /// the listen backlog at a stop, and their `stop` is on its way. Such a
  /// connection says `stop_requested()` from the start, so that bytes it
  /// reads before its `stop` arrives are treated as sent before the stop.
  bool stopping = false;
  /// At `retire` (a reload's old worker), how long a connection waits for
  /// one more request before it stops: that request, sent in the meantime
  /// by a client that loops on a keep-alive connection, is answered as one
  /// in flight at the stop (HTTP: with `Connection: close`) instead of
  /// racing the close. The supervisor keeps it below the drain timeout.
  caf::timespan retire_grace = std::chrono::seconds(1);
  /// At `stop`, how long a connection that has received nothing yet waits
  /// for its first request (0: none, it is idle and closes at once). Set
  /// on a socket passed by systemd (activation.hpp): a client accepted
  /// just before the stop sent its request to the socket, not to this
  /// process, and the next server cannot take the connection over. The
  /// request is answered as one in flight at the stop, as in the retire
  /// grace.
  caf::timespan fresh_grace{0};
  /// The stop delay runs (`--stop-delay`): the acceptor starts connections
  /// in the closing mode (behaviour::on_closing) from their first byte.
  bool closing = false;
  /// The server's services, for `connection_io::service`; none if null.
  std::shared_ptr<const service_directory> services;
  /// Where the connections and their bytes are counted (metrics.hpp); not
  /// at all if null (the admin endpoint's own connections).
  process_counters* counters = nullptr;
};

/// One configuration for all connection actors of a server: each keeps a
/// pointer, not a copy (memory per idle connection, see
/// docs/performance.md).
using shared_config = std::shared_ptr<const connection_config>;

/// The state of one connection actor: the adapter between CAF and the
/// connection's lifecycle core.
class connection_state : public connection_io {
public:
  static inline const char* name = "quiesce.connection";

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

  // -- message handlers: each becomes an event of the core --------------------

  /// `retire`: the stop after a grace, or at the next input.
  void on_retire();

  /// The stop after `grace`, or at the next input (retire, fresh_grace).
  void begin_grace(caf::timespan grace);

  void on_data(caf::io::new_data_msg& msg);

  void on_transferred(const caf::io::data_transferred_msg& msg);

  void on_peer_closed();

  void on_stop();

  void on_forced(const caf::exit_msg& msg);

  void on_timer_fired(timer_kind kind);

  /// A turn after reading resumed: resumes it again if it should still run
  /// (connection_actions.cpp, resume_reading).
  void on_read_again();

  /// The stop delay began (the `closing` tag of `lifecycle_timer_atom`).
  void on_closing();

  /// A behaviour timer fired.
  void on_timer(uint64_t token);

  void on_message(caf::message& msg);

  void on_request_timeout();

  /// An actor this connection has monitored ended: its pending requests
  /// fail at once (see watched_).
  void on_down(const caf::down_msg& msg);

  /// A behaviour threw: abort the connection instead of leaving it half done.
  void on_exception();

protected:
  uint64_t new_ask(std::unique_ptr<detail::ask_callbacks> callbacks) override;

  std::unique_ptr<detail::ask_callbacks> take_ask(uint64_t id) override;

  void ask_done() override;
  const service_directory* services() const override;

  uint64_t new_request(uint64_t token) override;

  void send_request(uint64_t id, const caf::actor& dest, caf::timespan timeout,
                    caf::message msg, caf::behavior on_reply) override;

  void reply_arrived(uint64_t id, caf::expected<caf::message> reply) override;

private:
  connection_lifecycle::time_point now() const;

  /// "connection N", for the log.
  std::string describe() const;

  static std::string millis(caf::timespan x);

  /// True while the behaviour has work in flight or a request is pending.
  bool busy() const;

  /// Carries out the core's actions, in order.
  void run(const lifecycle_actions& actions);

  void run_one(const lifecycle_action& x);

  /// After a behaviour callback: flushes its output and tells the core.
  void after_callback();

  /// Sends what the last callback wrote; returns how many of those bytes
  /// wait in CAF (bytes left from an earlier flush were counted then).
  size_t flush_output();

  struct pending_request;

  /// Ends the pending request `id`: what it was, if it is still pending and
  /// the behaviour is to be told (not after the FIN).
  std::optional<pending_request> end_request(uint64_t id);

  /// Makes sure a check of the requests' deadlines comes by `at`.
  void arm_request_check(caf::actor_clock::time_point at);

  /// Monitors `dest` (valid) unless it is watched already; returns its key.
  caf::actor_control_block* watch(const caf::actor& dest);

  /// Demonitors the watched actors no pending request is for.
  void prune_watched();

  /// The error of a failed ask, as its error callback gets it.
  std::string render_error(const caf::error& err,
                           const detail::ask_callbacks& ask) const;

  /// Sizes the read buffer after a read of `msg` (see small_read).
  void adapt_read_buffer(caf::io::new_data_msg& msg);

  /// After the peer's FIN, a write-only scribe on a duplicate descriptor;
  /// false if impossible.
  bool reopen_write_only();

  /// After a peer close with output still in CAF: a duplicate descriptor and
  /// CAF's inode to watch; false if impossible.
  bool watch_flush();

  /// CAF has closed its descriptor (the flushing state's question).
  bool caf_flushed() const;

  /// The write timer's question: has the peer read since the last sample?
  bool peer_read_since_sample();

  void sample_output();

  /// Sends this actor `msg` after `delay`, through the relay.
  void send_later(caf::timespan delay, caf::message msg);

  connection_actor::broker_pointer self_ = nullptr;
  caf::io::connection_handle hdl_;
  /// CAF's output buffer of `hdl_` (the scribe's own, so its address is
  /// stable while the scribe lives): looked up once, not per write.
  std::vector<char>* out_ = nullptr;
  shared_config cfg_;
  std::unique_ptr<behaviour> behaviour_;
  /// The lifecycle core (constructed in init, when the limits are known).
  std::optional<connection_lifecycle> core_;
  /// The socket; nothing under CAF's test multiplexer.
  std::optional<int> fd_;
  /// The input being handled (for `deliver`).
  caf::io::new_data_msg* input_ = nullptr;
  /// The last callback wrote bytes that are not flushed yet.
  bool wrote_ = false;
  /// Bytes in `*out_` before the last callback wrote: an earlier flush's,
  /// left there while CAF was still writing and counted as waiting then.
  size_t out_counted_ = 0;
  /// Reads use the large buffer (see connection_config::small_read).
  bool large_reads_ = false;
  /// `retire` came and the grace runs: the next input stops the connection.
  bool retiring_ = false;
  /// A grace was given (a second `stop` stops).
  bool graced_ = false;
  /// `on_closing` ran: the stop delay's closing mode is told once.
  bool closing_ = false;
  /// A byte has come in (the connection is not fresh: fresh_grace).
  bool received_ = false;
  /// Reads in a row shorter than `small_read` while `large_reads_`.
  uint8_t short_reads_ = 0;
  static constexpr uint8_t small_reads_to_shrink = 2;
  /// A timer went to the relay: the relay is told when this actor ends.
  bool timers_sent_ = false;
  /// The `end` action ran: the actor has quit, no later action runs.
  bool ended_ = false;
  /// The kernel took bytes since the output sample: take a new one at the
  /// next look instead of comparing.
  bool output_sample_stale_ = false;
  /// A request made by the behaviour whose reply (or error) has not come.
  struct pending_request {
    /// The behaviour's token (`request`).
    uint64_t token = 0;
    /// The callbacks of an `ask`; nullptr for a `request`.
    std::unique_ptr<detail::ask_callbacks> ask;
    /// When it fails with a timeout if no reply has come.
    caf::actor_clock::time_point deadline = caf::actor_clock::time_point::max();
    /// Its receiver, one of `watched_` (only compared, never followed: the
    /// entry in `watched_` keeps the address valid); nullptr if invalid.
    caf::actor_control_block* dest = nullptr;
  };
  /// The pending requests by id.
  std::unordered_map<uint64_t, pending_request> pending_requests_;
  uint64_t last_request_id_ = 0;
  /// The time of the earliest check of the requests' deadlines under way at
  /// the relay; max(): none (see arm_request_check).
  caf::actor_clock::time_point next_request_check_
    = caf::actor_clock::time_point::max();
  /// The receivers of requests this actor monitors. CAF 0.17 answers a
  /// request left in the mailbox of an actor that ends
  /// (`request_receiver_down`), but not one the actor held in a response
  /// promise (no broken-promise error): the down message fails those. One
  /// monitor per receiver and connection, made at the first request to it
  /// (a pipelining client sends ~100,000 requests a second to one actor):
  /// an entry stays until the actor ends (its down message), until
  /// prune_watched finds no request pending for it, or until this actor ends
  /// (the destructor demonitors: a monitor would keep this actor's memory
  /// for as long as the receiver lives).
  std::vector<caf::actor_addr> watched_;
  /// The entry of `watched_` the last request went to (the usual case).
  caf::actor_control_block* last_watched_ = nullptr;
  /// At this many entries, prune_watched runs before a new one is added.
  static constexpr size_t min_watch_limit = 8;
  size_t watch_limit_ = min_watch_limit;
  /// The exit reason of a forced end (the supervisor's).
  caf::error forced_reason_;
  /// A duplicate descriptor this actor owns and closes (flushing).
  int owned_fd_ = -1;
  /// CAF's descriptor and its socket's device and inode, while flushing.
  int caf_fd_ = -1;
  dev_t caf_fd_dev_ = 0;
  ino_t caf_fd_inode_ = 0;
  /// The kernel's account of the output when the write timer last looked
  /// (or output started waiting): a peer that reads, however slowly, makes
  /// the kernel's acknowledged bytes grow even while the kernel's send
  /// buffer stays too full for CAF to write (and after a peer close CAF
  /// reports no writes at all).
  std::optional<socket_ops::output_sample> output_sample_;
};

/// The function of a connection actor; the acceptor forks one per connection.
connection_actor::behavior_type connection_main(
  connection_actor::stateful_broker_pointer<connection_state> self,
  caf::io::connection_handle hdl, shared_config cfg);

} // namespace quiesce
