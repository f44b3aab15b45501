#include "actors/connection.hpp"

#include <algorithm>
#include <string>
#include <unistd.h>
#include <vector>

#include "caf/actor_cast.hpp"
#include "caf/actor_system.hpp"
#include "caf/exit_reason.hpp"
#include "caf/sec.hpp"

#include "quiesce/log.hpp"
#include "actors/socket_ops.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "connection";

} // namespace

connection_state::~connection_state() {
  if (owned_fd_ >= 0)
    ::close(owned_fd_);
  // Pending timers (the idle timer above all) would keep this actor's
  // memory for as long as they run (timer_relay.hpp).
  if (self_ != nullptr && timers_sent_ && cfg_ && cfg_->relay)
    cancel_timers(cfg_->relay, self_->address());
  // A monitor stays in the monitored actor until it fires, holding this
  // actor's address: that would keep this actor's memory for as long as a
  // service lives.
  if (self_ != nullptr)
    for (auto& x : watched_)
      self_->demonitor(x);
  // The actor is gone, whatever ended it: one line per connection, the
  // counterpart of "opened" (tests count both to find leaked actors).
  if (self_ != nullptr && log::enabled(log::level::debug))
    log::debug(component, describe() + " actor ended");
}

void connection_state::init(connection_actor::broker_pointer self,
                            caf::io::connection_handle hdl, shared_config cfg) {
  self_ = self;
  hdl_ = hdl;
  out_ = &self_->wr_buf(hdl_);
  cfg_ = std::move(cfg);
  behaviour_ = cfg_->make_behaviour();
  core_.emplace(*cfg_, cfg_->stopping);
  fd_ = socket_ops::native_fd(self_, hdl_);
  // Written bytes are confirmed by data_transferred_msg: the connection knows
  // when its output has left, which the close and the backpressure rely on.
  self_->ack_writes(hdl_, true);
  self_->configure_read(hdl_,
                        caf::io::receive_policy::at_most(cfg_->small_read));
  if (log::enabled(log::level::debug))
    log::debug(component, describe() + " opened");
  run(core_->start(now(), busy()));
  if (cfg_->closing)
    on_closing(); // accepted during the stop delay
}

connection_lifecycle::time_point connection_state::now() const {
  return self_->clock().now();
}

std::string connection_state::describe() const {
  return "connection " + std::to_string(hdl_.id());
}

std::string connection_state::millis(caf::timespan x) {
  return std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(x).count())
         + "ms";
}

// -- connection_io ------------------------------------------------------------

void connection_state::write(std::string_view bytes) {
  if (bytes.empty())
    return;
  if (cfg_->counters != nullptr)
    process_counters::add(cfg_->counters->sent_bytes, bytes.size());
  if (!wrote_)
    out_counted_ = out_->size(); // an earlier flush's, counted already
  out_->insert(out_->end(), bytes.begin(), bytes.end());
  wrote_ = true;
}

void connection_state::start_timer(caf::timespan delay, uint64_t token) {
  send_later(delay, caf::make_message(timer_atom_v, token));
}

void connection_state::send_later(caf::timespan delay, caf::message msg) {
  // Never a delayed message to this broker itself: CAF 0.17.6 leaks a
  // broker that one reaches after it has quit (timer_relay.hpp).
  timers_sent_ = true;
  quiesce::send_later(cfg_->relay, std::max(delay, caf::timespan{0}),
                      self_->address(), std::move(msg));
}

void connection_state::close() {
  // The caller's callback is followed by after_callback, which settles.
  core_->close_requested();
}

void connection_state::hold_input(bool hold) {
  run(core_->hold_input(hold));
}

bool connection_state::stop_requested() const {
  return core_->stop_requested();
}

connection_actor connection_state::handle() const {
  return caf::actor_cast<connection_actor>(self_);
}

caf::actor_system& connection_state::system() const {
  return self_->system();
}

const service_directory* connection_state::services() const {
  return cfg_->services.get();
}

bool connection_state::busy() const {
  return !pending_requests_.empty() || !behaviour_->idle();
}

// -- message handlers ---------------------------------------------------------

void connection_state::on_message(caf::message& msg) {
  if (!core_->accepts_work())
    return;
  behaviour_->on_message(msg, *this);
  after_callback();
}

void connection_state::on_timer(uint64_t token) {
  // After the FIN nothing may be written any more: the work is over.
  if (!core_->accepts_work())
    return;
  behaviour_->on_timer(token, *this);
  after_callback();
}

void connection_state::on_closing() {
  // Once: one accepted during the delay is in the closing mode from its
  // start and may still get the supervisor's `closing` (behaviour::on_closing
  // is called at most once).
  if (closing_)
    return;
  closing_ = true;
  if (log::enabled(log::level::debug))
    log::debug(component, describe() + ": the next answer closes (stop delay)");
  if (!core_->accepts_work())
    return;
  behaviour_->on_closing(*this);
  after_callback();
}

void connection_state::on_retire() {
  // Also for one accepted during the stop (stop_requested from its start):
  // a fresh client whose first request is on its way gets the grace too.
  begin_grace(cfg_->retire_grace);
}

void connection_state::begin_grace(caf::timespan grace) {
  if (retiring_)
    return;
  retiring_ = true;
  graced_ = true;
  send_later(grace, caf::make_message(stop_atom_v));
}

void connection_state::on_data(caf::io::new_data_msg& msg) {
  received_ = true;
  if (retiring_) {
    // A request during the grace: in flight at the stop, so that its
    // answer is the last (the bytes just read count as unread at the stop,
    // as do any still in the kernel).
    retiring_ = false;
    size_t unread = msg.buf.size();
    if (fd_ && core_->state() == lifecycle_state::open)
      unread += socket_ops::unread_bytes(*fd_);
    run(core_->stop(now(), unread));
  }
  if (cfg_->counters != nullptr)
    process_counters::add(cfg_->counters->received_bytes, msg.buf.size());
  input_ = &msg;
  run(core_->read(now(), msg.buf.size()));
  input_ = nullptr;
}

void connection_state::adapt_read_buffer(caf::io::new_data_msg& msg) {
  auto n = msg.buf.size();
  if (!large_reads_) {
    if (n < cfg_->small_read)
      return;
    // The read filled the small buffer: more is coming than it holds.
    large_reads_ = true;
    short_reads_ = 0;
    self_->configure_read(hdl_,
                          caf::io::receive_policy::at_most(cfg_->large_read));
    return;
  }
  if (n >= cfg_->small_read) {
    short_reads_ = 0;
    return;
  }
  // The first short read after a switch is often the rest of the burst that
  // filled the small buffer (a pipeline of 600 bytes is read as 512 + 88):
  // switching back on it would read every such burst twice and allocate the
  // large buffer again for each.
  if (++short_reads_ < small_reads_to_shrink)
    return;
  // Little at a time again. `msg.buf` is the scribe's own read buffer, lent
  // to this handler (CAF swaps it back afterwards): leaving an empty vector
  // in its place frees the large one, and the scribe makes a small one.
  large_reads_ = false;
  std::vector<char>{}.swap(msg.buf);
  self_->configure_read(hdl_,
                        caf::io::receive_policy::at_most(cfg_->small_read));
}

void connection_state::on_transferred(
  const caf::io::data_transferred_msg& msg) {
  if (msg.written > 0)
    output_sample_stale_ = true;
  run(core_->transferred(now(), msg.written, msg.remaining));
}

void connection_state::on_peer_closed() {
  // End of stream or an I/O error (reset, timeout): CAF has dropped the
  // socket already. Bytes still buffered are sent by CAF's stream on its own.
  auto fin = false;
  if (fd_ && core_->may_answer_after_fin()) {
    // A reset (RST) ends the stream too, but then nothing can reach the
    // peer any more. Only a FIN leaves the socket in CLOSE_WAIT, still able
    // to send.
    fin = socket_ops::peer_sent_fin(*fd_);
    if (!fin && log::enabled(log::level::debug))
      log::debug(component, describe()
                              + " reset by the peer; dropping the work in "
                                "flight");
  }
  run(core_->peer_closed(now(), fin));
}

void connection_state::on_stop() {
  // Bytes the client sent before the stop may still wait in the kernel, not
  // yet read by the event loop: they were sent before the stop and count as
  // in flight. Only an open connection asks (the core ignores it otherwise).
  size_t unread = 0;
  if (fd_ && core_->state() == lifecycle_state::open)
    unread = socket_ops::unread_bytes(*fd_);
  if (cfg_->fresh_grace.count() > 0 && !graced_ && !received_ && unread == 0
      && core_->state() == lifecycle_state::open) {
    // Nothing has come yet on a socket passed by systemd: the first
    // request may be on its way (fresh_grace).
    if (log::enabled(log::level::debug))
      log::debug(component, describe() + " has sent nothing yet: waiting "
                              + log::millis(cfg_->fresh_grace)
                              + " for its first request");
    begin_grace(cfg_->fresh_grace);
    return;
  }
  retiring_ = false;
  run(core_->stop(now(), unread));
}

void connection_state::on_forced(const caf::exit_msg& msg) {
  forced_reason_ = msg.reason;
  size_t unread = 0;
  switch (core_->state()) {
    case lifecycle_state::open:
    case lifecycle_state::stop_waiting:
    case lifecycle_state::draining:
      if (fd_)
        unread = socket_ops::unread_bytes(*fd_);
      break;
    default:
      break;
  }
  run(core_->force(now(), unread));
}

void connection_state::on_timer_fired(timer_kind kind) {
  switch (kind) {
    case timer_kind::linger: {
      // The core must know of input that waits unread in the kernel: the
      // linger timer's message may be handled before the event loop reads
      // input that arrived just before it.
      size_t unread = 0;
      if (fd_ && core_->state() == lifecycle_state::lingering)
        unread = socket_ops::unread_bytes(*fd_);
      run(core_->linger_timer(now(), unread));
      return;
    }
    case timer_kind::idle:
      run(core_->idle_timer(now()));
      return;
    case timer_kind::write:
      run(core_->write_timer(now(), peer_read_since_sample()));
      return;
    case timer_kind::flush_poll:
      run(core_->flush_poll(now(), core_->state() == lifecycle_state::flushing
                                     && caf_flushed()));
      return;
    case timer_kind::end_tick:
      run(core_->end_tick());
      return;
  }
}

void connection_state::on_read_again() {
  if (!ended_ && core_ && core_->reads())
    self_->trigger(hdl_);
}

void connection_state::on_exception() {
  run(core_->failed());
}

connection_actor::behavior_type connection_main(
  connection_actor::stateful_broker_pointer<connection_state> self,
  caf::io::connection_handle hdl, shared_config cfg) {
  self->state.init(self, hdl, std::move(cfg));
  self->set_exit_handler([self](caf::exit_msg& msg) {
    // Forced by the supervisor; any other exit reason ends the actor too.
    self->state.on_forced(msg);
  });
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.on_down(msg); });
  self->set_exception_handler(
    [self](caf::scheduled_actor*, std::exception_ptr&) -> caf::error {
      self->state.on_exception();
      return caf::sec::runtime_error;
    });
  auto& st = self->state;
  return {
    [&st](caf::io::new_data_msg& msg) { st.on_data(msg); },
    [&st](caf::io::data_transferred_msg& msg) { st.on_transferred(msg); },
    [&st](caf::io::connection_closed_msg&) { st.on_peer_closed(); },
    [&st](stop_atom) { st.on_stop(); },
    [&st](retire_atom) { st.on_retire(); },
    [&st](lifecycle_timer_atom, uint8_t tag) {
      // The tags are the core's timer kinds (messages.hpp); anything else
      // is not one of ours.
      if (tag < timer_kind_count)
        st.on_timer_fired(static_cast<timer_kind>(tag));
      else if (tag == static_cast<uint8_t>(lifecycle_timer::read_again))
        st.on_read_again();
      else if (tag == static_cast<uint8_t>(lifecycle_timer::closing))
        st.on_closing();
    },
    [&st](timer_atom, uint64_t token) { st.on_timer(token); },
    [&st](deliver_atom, caf::message& msg) { st.on_message(msg); },
    [&st](request_timeout_atom) { st.on_request_timeout(); },
  };
}

} // namespace quiesce
