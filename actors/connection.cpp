#include "actors/connection.hpp"

#include <algorithm>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "caf/actor_cast.hpp"
#include "caf/exit_reason.hpp"
#include "caf/sec.hpp"

#include "actors/log.hpp"
#include "actors/socket_ops.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "connection";

/// How often a connection whose peer closed checks whether CAF has sent the
/// bytes it still held.
constexpr auto flush_check_interval = std::chrono::milliseconds(50);

/// The connection's own timer messages, made once and shared (a
/// caf::message is reference-counted): a pending timer costs no allocation
/// of its own beyond the relay's entry.
const caf::message& linger_message() {
  static const caf::message msg = caf::make_message(linger_atom_v);
  return msg;
}

const caf::message& idle_message() {
  static const caf::message msg = caf::make_message(idle_atom_v);
  return msg;
}

const caf::message& write_check_message() {
  static const caf::message msg = caf::make_message(write_timeout_atom_v);
  return msg;
}

std::string describe(caf::io::connection_handle hdl) {
  return "connection " + std::to_string(hdl.id());
}

std::string millis(caf::timespan x) {
  return std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(x).count())
         + "ms";
}

} // namespace

connection_state::~connection_state() {
  if (owned_fd_ >= 0)
    ::close(owned_fd_);
  // Pending timers (the idle timer above all) would keep this actor's
  // memory for as long as they run (timer_relay.hpp).
  if (self_ != nullptr && timers_sent_ && cfg_ && cfg_->relay)
    cancel_timers(cfg_->relay, self_->address());
  // The actor is gone, whatever ended it: one line per connection, the
  // counterpart of "opened" (tests count both to find leaked actors).
  if (self_ != nullptr && log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " actor ended");
}

void connection_state::init(connection_actor::broker_pointer self,
                            caf::io::connection_handle hdl, shared_config cfg) {
  self_ = self;
  hdl_ = hdl;
  out_ = &self_->wr_buf(hdl_);
  cfg_ = std::move(cfg);
  behaviour_ = cfg_->make_behaviour();
  stop_requested_ = cfg_->stopping;
  fd_ = socket_ops::native_fd(self_, hdl_);
  // Written bytes are confirmed by data_transferred_msg: the connection knows
  // when its output has left, which the close and the backpressure rely on.
  self_->ack_writes(hdl_, true);
  self_->configure_read(hdl_,
                        caf::io::receive_policy::at_most(cfg_->small_read));
  if (log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " opened");
  // A connection that sends nothing is idle from the start.
  watch_idle();
}

void connection_state::write(std::string_view bytes) {
  if (bytes.empty())
    return;
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
  // Wind down like a stop, without calling on_stop: the behaviour chose it.
  // The caller's callback is followed by flush_output and close_if_drained.
  if (phase_ == phase::open)
    phase_ = phase::stopping;
}

connection_actor connection_state::handle() const {
  return caf::actor_cast<connection_actor>(self_);
}

caf::actor_system& connection_state::system() const {
  return self_->system();
}

uint64_t connection_state::new_request(uint64_t token) {
  auto id = ++last_request_id_;
  pending_requests_.emplace(id, token);
  return id;
}

void connection_state::send_request(uint64_t id, const caf::actor& dest,
                                    caf::timespan timeout, caf::message msg,
                                    caf::behavior on_reply) {
  // No CAF timeout: it would be a delayed message to this broker (see
  // send_later). The relay brings ours; whichever of reply and timeout comes
  // first ends the request, the other is dropped. CAF answers a request to
  // an invalid handle with an error at once.
  auto hdl = self_->request(dest, caf::infinite, std::move(msg));
  self_->add_multiplexed_response_handler(hdl.id(), std::move(on_reply));
  send_later(timeout, caf::make_message(request_timeout_atom_v, id));
}

void connection_state::on_request_timeout(uint64_t id) {
  if (pending_requests_.count(id) > 0)
    reply_arrived(id, caf::make_error(caf::sec::request_timeout));
}

void connection_state::reply_arrived(uint64_t id,
                                     caf::expected<caf::message> reply) {
  auto i = pending_requests_.find(id);
  if (i == pending_requests_.end())
    return; // timed out already, or the reply came first
  auto token = i->second;
  pending_requests_.erase(i);
  if (phase_ != phase::open && phase_ != phase::stopping) {
    // The connection has ended its work; nobody can use the reply.
    if (log::enabled(log::level::debug))
      log::debug(component, describe(hdl_) + " dropped the reply to request "
                              + std::to_string(token) + " after the FIN");
    return;
  }
  if (reply)
    behaviour_->on_reply(token, *reply, *this);
  else
    behaviour_->on_reply_error(token, reply.error(), *this);
  flush_output();
  close_if_drained();
}

void connection_state::on_message(caf::message& msg) {
  if (phase_ != phase::open && phase_ != phase::stopping)
    return;
  behaviour_->on_message(msg, *this);
  flush_output();
  close_if_drained();
}

bool connection_state::busy() const {
  return !pending_requests_.empty() || !behaviour_->idle();
}

void connection_state::on_timer(uint64_t token) {
  // After the FIN nothing may be written any more: the work is over.
  if (phase_ != phase::open && phase_ != phase::stopping)
    return;
  behaviour_->on_timer(token, *this);
  flush_output();
  close_if_drained();
}

void connection_state::adapt_read_buffer(caf::io::new_data_msg& msg) {
  auto n = msg.buf.size();
  if (!large_reads_) {
    if (n < cfg_->small_read)
      return;
    // The read filled the small buffer: more is coming than it holds.
    large_reads_ = true;
    self_->configure_read(hdl_,
                          caf::io::receive_policy::at_most(cfg_->large_read));
    return;
  }
  if (n >= cfg_->small_read)
    return;
  // Little at a time again. `msg.buf` is the scribe's own read buffer, lent
  // to this handler (CAF swaps it back afterwards): leaving an empty vector
  // in its place frees the large one, and the scribe makes a small one.
  large_reads_ = false;
  std::vector<char>{}.swap(msg.buf);
  self_->configure_read(hdl_,
                        caf::io::receive_policy::at_most(cfg_->small_read));
}

void connection_state::on_data(caf::io::new_data_msg& msg) {
  if (phase_ == phase::open || (phase_ == phase::stopping && busy())) {
    note_activity();
    auto size = msg.buf.size();
    behaviour_->on_data({msg.buf.data(), size}, *this);
    adapt_read_buffer(msg); // may take the buffer away: use `size` below
    flush_output();
    if (stop_pending_) {
      // The bytes that waited in the kernel at the stop have been read.
      unread_at_stop_ -= std::min(unread_at_stop_, size);
      if (unread_at_stop_ == 0) {
        if (phase_ == phase::open)
          begin_stop();
        else
          tell_stop(); // the behaviour closed on its own meanwhile
        return;
      }
    }
    close_if_drained();
    return;
  }
  // Stopping and idle, or lingering: the input is read and dropped. It only
  // keeps the linger going, up to the limits.
  discard(msg.buf.size());
}

void connection_state::discard(size_t n) {
  last_input_ = self_->clock().now();
  discarded_ += n;
  if (discard_capped_ || cfg_->discard_limit == 0
      || discarded_ < cfg_->discard_limit)
    return;
  discard_capped_ = true;
  if (log::enabled(log::level::debug))
    log::debug(component,
               describe(hdl_) + " discarded " + std::to_string(discarded_)
                 + " bytes of unwanted input (the limit is "
                 + std::to_string(cfg_->discard_limit) + "): reading no more");
  if (phase_ == phase::closing) {
    // The linger is over already and reading ended locally, but input keeps
    // coming: close now.
    finish("closed: the discard limit was reached");
    return;
  }
  // Stopping: the output still waiting goes first (the write timeout
  // watches it), then the FIN. Lingering: the linger timer gives the peer
  // one more `linger` to read what it was sent, then closes.
  update_reading();
}

void connection_state::on_transferred(
  const caf::io::data_transferred_msg& msg) {
  // `remaining` counts every byte CAF still holds for this socket, including
  // bytes flushed while this write was under way.
  pending_output_ = msg.remaining;
  // The kernel took bytes: the peer reads (the write timeout).
  if (msg.written > 0) {
    output_progress_ = self_->clock().now();
    output_sample_stale_ = true;
  }
  if (pending_output_ == 0)
    output_full_ = false;
  // Output leaving is activity: a peer reading a long response is not idle.
  note_activity();
  update_reading();
  close_if_drained();
}

void connection_state::on_peer_closed() {
  // End of stream or an I/O error (reset, timeout): CAF has dropped the
  // socket already. Bytes still buffered are sent by CAF's stream on its own.
  if ((phase_ == phase::open || phase_ == phase::stopping) && busy()
      && write_after_peer_fin()) {
    // Input is over: a message half received can never complete.
    behaviour_->on_input_end(*this);
    flush_output();
    close_if_drained();
    return;
  }
  if (pending_output_ > 0 && watch_flush_after_peer_close())
    return;
  switch (phase_) {
    case phase::open:
      finish("closed by the peer");
      break;
    case phase::stopping:
      finish("closed by the peer during the stop");
      break;
    case phase::lingering:
    case phase::closing:
    case phase::flushing:
      finish("closed");
      break;
  }
}

bool connection_state::write_after_peer_fin() {
  // The peer has sent everything (FIN after its request) and waits for the
  // answer that the behaviour still owes. CAF 0.17 drops the scribe at
  // end-of-stream, so the actor takes the socket back through a duplicate
  // descriptor and a second scribe that only writes (it never reads: the
  // peer's FIN is in). Only when nothing written earlier is still on its way,
  // or the two scribes could reorder bytes.
  if (!fd_ || pending_output_ > 0 || peer_finished_)
    return false;
  // A reset (RST) ends the end-of-stream too, but then nothing can reach
  // the peer any more: keeping the descriptor until the behaviour's work is
  // done (a long timer, a slow backend) would only leak it meanwhile, and
  // keep a stop waiting for that work until the drain deadline. Only a FIN
  // leaves the socket in CLOSE_WAIT, still able to send.
  if (!socket_ops::peer_sent_fin(*fd_)) {
    if (log::enabled(log::level::debug))
      log::debug(component, describe(hdl_)
                              + " reset by the peer; dropping the work in "
                                "flight");
    return false;
  }
  auto dup_fd = ::fcntl(*fd_, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    return false;
  hdl_ = static_cast<caf::io::abstract_broker*>(self_)->add_scribe(dup_fd);
  out_ = &self_->wr_buf(hdl_);
  fd_ = dup_fd;
  peer_finished_ = true;
  reading_paused_ = false;
  self_->ack_writes(hdl_, true);
  if (phase_ == phase::open)
    phase_ = phase::stopping; // answer, then close
  if (log::enabled(log::level::debug))
    log::debug(component,
               describe(hdl_) + " peer sent FIN; answering what is in flight");
  return true;
}

bool connection_state::watch_flush_after_peer_close() {
  // The peer closed while CAF still holds bytes for it. CAF's stream goes on
  // writing them (a peer that half-closed may still read), but this actor
  // would learn nothing more about the socket, and ending now would hide a
  // descriptor from max-connections and bytes from the drain. So the actor
  // stays, holding a duplicate of the socket, and checks every
  // `flush_check_interval` whether CAF has closed its descriptor (done or
  // failed). A stop's deadline or a second signal aborts the socket.
  if (!fd_)
    return false;
  struct stat st {};
  if (::fstat(*fd_, &st) != 0)
    return false;
  auto dup_fd = ::fcntl(*fd_, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    return false;
  caf_fd_ = *fd_;
  caf_fd_inode_ = st.st_ino;
  owned_fd_ = dup_fd;
  fd_ = dup_fd;
  phase_ = phase::flushing;
  // CAF reports no more writes: the write timeout watches what the peer
  // acknowledges (on_write_check), through the duplicate.
  watch_output();
  if (log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " closed by the peer with "
                            + std::to_string(pending_output_)
                            + " bytes still to send");
  arm_linger_timer(flush_check_interval);
  return true;
}

void connection_state::on_stop() {
  stop_requested_ = true;
  if (stop_pending_ || stop_told_)
    return; // stop twice: harmless
  if (phase_ == phase::stopping) {
    // Winding down already (the behaviour's own close, or a peer that
    // half-closed while work is in flight): nothing more is read, but the
    // behaviour still hears of the stop, once. Else `stop_requested` would
    // hold its last answer back until the drain deadline.
    tell_stop();
    return;
  }
  if (phase_ != phase::open)
    return;
  // Bytes the client sent before the stop may still wait in the kernel, not
  // yet read by the event loop: they were sent before the stop and count as
  // in flight. The behaviour gets them before it hears of the stop.
  if (fd_) {
    unread_at_stop_ = socket_ops::unread_bytes(*fd_);
    if (unread_at_stop_ > 0) {
      stop_pending_ = true;
      return;
    }
  }
  begin_stop();
}

void connection_state::begin_stop() {
  phase_ = phase::stopping;
  tell_stop();
}

void connection_state::tell_stop() {
  stop_pending_ = false;
  stop_told_ = true;
  behaviour_->on_stop(*this);
  flush_output();
  close_if_drained();
}

void connection_state::on_linger() {
  linger_timer_armed_ = false;
  if (phase_ == phase::flushing) {
    // CAF closes its descriptor once the stream has written everything (or
    // failed); a new socket may reuse the number, never the inode.
    struct stat st {};
    if (::fstat(caf_fd_, &st) != 0 || st.st_ino != caf_fd_inode_) {
      ::close(owned_fd_); // the last reference: the kernel sends FIN
      owned_fd_ = -1;
      fd_.reset();
      finish("flushed after the peer closed");
      return;
    }
    arm_linger_timer(flush_check_interval);
    return;
  }
  if (phase_ != phase::lingering)
    return;
  auto now = self_->clock().now();
  auto lingered = now - linger_began_;
  auto limited = cfg_->linger_time > caf::timespan{0};
  if (limited && lingered >= cfg_->linger_time) {
    // Input kept coming for the whole linger time (nginx's lingering_time).
    if (log::enabled(log::level::debug))
      log::debug(component, describe(hdl_) + " lingered for " + millis(lingered)
                              + ", the limit, with "
                              + std::to_string(discarded_)
                              + " bytes discarded: closing");
    finish("closed at the linger time limit");
    return;
  }
  auto quiet = now - last_input_;
  if (quiet < cfg_->linger) {
    auto wait = cfg_->linger - quiet;
    if (limited)
      wait = std::min(wait, cfg_->linger_time - lingered);
    arm_linger_timer(wait);
    return;
  }
  if (discard_capped_) {
    // Reading stopped at the discard limit; the peer had its `linger` to
    // read what it was sent. Unread input makes this close a reset.
    finish("closed after the discard limit");
    return;
  }
  // The peer neither closed nor sent anything for a whole linger: close.
  // Nothing is left unread, so the close sends no reset.
  if (fd_) {
    phase_ = phase::closing;
    // The event loop now reads end-of-stream and drops the socket; the
    // resulting connection_closed_msg finishes this actor.
    socket_ops::shutdown_read(*fd_);
    return;
  }
  self_->close(hdl_);
  finish("closed after the linger");
}

void connection_state::on_idle_check() {
  idle_timer_armed_ = false;
  // Busy now: watch_idle arms the timer again once the work is done.
  if (phase_ != phase::open || cfg_->idle_timeout <= caf::timespan{0}
      || !quiet())
    return;
  auto quiet_for = self_->clock().now() - last_activity_;
  if (quiet_for < cfg_->idle_timeout) {
    // Activity since the timer was armed: wait for the rest.
    arm_idle_timer(cfg_->idle_timeout - quiet_for);
    return;
  }
  if (log::enabled(log::level::debug))
    log::debug(component,
               describe(hdl_) + " idle for " + millis(quiet_for) + ": closing");
  // Like the behaviour's own close: FIN, done, linger.
  phase_ = phase::stopping;
  close_if_drained();
}

void connection_state::on_forced(const caf::exit_msg& msg) {
  if (ending_)
    return;
  if (quiet_at_force()) {
    // Nothing is lost by closing: a clean close, as a stop would have done
    // had the connection got to it (the stop's broadcast may still be on its
    // way through the event loop, or its `done` in the supervisor's
    // mailbox). It counts as drained.
    if (!done_reported_) {
      if (fd_)
        socket_ops::shutdown_write(*fd_);
      report_done();
    }
    if (log::enabled(log::level::debug))
      log::debug(component, describe(hdl_)
                              + " closed at the forced stop: nothing in "
                                "flight");
    end_later(caf::error{});
    return;
  }
  if (log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " closed by force");
  abort_connection(msg.reason);
}

bool connection_state::quiet_at_force() const {
  switch (phase_) {
    case phase::lingering:
    case phase::closing:
      return true; // the FIN is out: nothing owed
    case phase::flushing:
      return false; // CAF still holds output for the peer
    case phase::open:
    case phase::stopping:
      break;
  }
  if (!quiet())
    return false;
  // Bytes the client sent that wait unread in the kernel are a request in
  // flight, as at a stop.
  return !fd_ || socket_ops::unread_bytes(*fd_) == 0;
}

void connection_state::abort_connection(caf::error reason) {
  if (fd_)
    socket_ops::abort(*fd_);
  end_later(std::move(reason));
}

void connection_state::end_later(caf::error reason) {
  ending_ = true;
  end_reason_ = std::move(reason);
  send_later(std::chrono::milliseconds(1), linger_message());
}

bool connection_state::ending() const {
  return ending_;
}

void connection_state::end_now() {
  self_->quit(end_reason_);
}

void connection_state::on_write_check() {
  write_timer_armed_ = false;
  if (pending_output_ == 0 || cfg_->write_timeout <= caf::timespan{0})
    return; // nothing waits: the next wait arms the timer again
  auto now = self_->clock().now();
  if (fd_) {
    auto before = output_sample_;
    auto stale = output_sample_stale_;
    sample_output();
    if (before && output_sample_ && !stale
        && socket_ops::peer_read_since(*before, *output_sample_))
      output_progress_ = now;
  }
  auto stalled = now - output_progress_;
  if (stalled < cfg_->write_timeout) {
    write_timer_armed_ = true;
    send_later(cfg_->write_timeout - stalled, write_check_message());
    return;
  }
  // The operator must be able to see why a client lost its connection.
  log::warning(component,
               describe(hdl_) + ": write timeout: no output taken for "
                 + millis(stalled) + " with " + std::to_string(pending_output_)
                 + " bytes waiting (write timeout "
                 + millis(cfg_->write_timeout) + "); aborting (reset)");
  abort_connection(caf::sec::connection_timeout);
}

void connection_state::watch_output() {
  if (pending_output_ == 0 || write_timer_armed_
      || cfg_->write_timeout <= caf::timespan{0})
    return;
  // When it fires, it re-arms for what is left of the timeout.
  write_timer_armed_ = true;
  send_later(output_progress_ + cfg_->write_timeout - self_->clock().now(),
             write_check_message());
}

void connection_state::sample_output() {
  output_sample_ = socket_ops::sample_output(*fd_);
  output_sample_stale_ = false;
}

void connection_state::on_exception() {
  log::error(component,
             describe(hdl_) + ": the behaviour threw an exception; aborting");
  if (fd_)
    socket_ops::abort(*fd_);
}

void connection_state::flush_output() {
  if (!wrote_)
    return;
  wrote_ = false;
  note_activity();
  auto& buf = *out_;
  if (fd_ && pending_output_ == 0 && !buf.empty()) {
    // CAF holds nothing for this socket, so nothing can be overtaken: the
    // bytes go to the kernel now. Through CAF they would wait for the next
    // turn of the event loop and cost two epoll_ctl calls (CAF watches for
    // writability around every write) and an acknowledgement message.
    // Whatever the kernel does not take, and everything after an error,
    // goes through CAF as before.
    if (auto sent = socket_ops::send_now(*fd_, buf.data(), buf.size());
        sent && *sent > 0)
      buf.erase(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*sent));
    if (buf.empty()) {
      update_reading();
      return;
    }
  }
  if (fd_) {
    if (pending_output_ == 0 && cfg_->write_timeout > caf::timespan{0}) {
      // Output starts waiting: the write timeout counts from here.
      output_progress_ = self_->clock().now();
      sample_output();
    }
    pending_output_ += buf.size();
  }
  self_->flush(hdl_);
  if (pending_output_ > cfg_->max_pending_output)
    output_full_ = true;
  update_reading();
  watch_output();
}

bool connection_state::stop_requested() const {
  return stop_requested_;
}

void connection_state::hold_input(bool hold) {
  input_held_ = hold;
  update_reading();
}

void connection_state::update_reading() {
  // After a half-close the scribe only writes: it must never start reading.
  if (peer_finished_)
    return;
  // Once the FIN is out, reading goes on (the peer's FIN must be seen)
  // unless the discard limit was reached.
  auto serving = phase_ == phase::open || phase_ == phase::stopping;
  auto pause = discard_capped_ || (serving && (output_full_ || input_held_));
  if (pause == reading_paused_)
    return;
  reading_paused_ = pause;
  if (pause)
    self_->halt(hdl_);
  else
    self_->trigger(hdl_);
}

void connection_state::close_if_drained() {
  if (phase_ == phase::open) {
    // Every event ends here: the place to notice that the connection has
    // become idle.
    watch_idle();
    return;
  }
  if (phase_ != phase::stopping || busy() || pending_output_ > 0)
    return;
  begin_linger();
}

bool connection_state::quiet() const {
  return !busy() && pending_output_ == 0 && !wrote_ && !stop_pending_
         && !peer_finished_;
}

void connection_state::note_activity() {
  if (cfg_->idle_timeout > caf::timespan{0})
    last_activity_ = self_->clock().now();
}

void connection_state::watch_idle() {
  if (phase_ != phase::open || cfg_->idle_timeout <= caf::timespan{0})
    return;
  if (!quiet()) {
    was_quiet_ = false;
    return;
  }
  if (!was_quiet_) {
    // The connection has just become idle (or opened): the idle time counts
    // from now, whatever the last activity was. Work in flight is no idling.
    was_quiet_ = true;
    last_activity_ = self_->clock().now();
  }
  if (idle_timer_armed_)
    return; // when it fires, it re-arms for what is left
  arm_idle_timer(last_activity_ + cfg_->idle_timeout - self_->clock().now());
}

void connection_state::arm_idle_timer(caf::timespan delay) {
  idle_timer_armed_ = true;
  send_later(delay, idle_message());
}

void connection_state::begin_linger() {
  phase_ = phase::lingering;
  last_input_ = self_->clock().now();
  linger_began_ = last_input_;
  // Read again, so that the peer's FIN (and any late input) is seen.
  update_reading();
  // FIN after the last byte of output: the kernel has all of it.
  if (fd_)
    socket_ops::shutdown_write(*fd_);
  if (log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " sent FIN");
  // Everything owed is sent: the connection has drained. What remains (the
  // linger) only spares a client that still sends a reset.
  report_done();
  if (peer_finished_) {
    // The peer's FIN came first: nothing to linger for.
    finish("closed after answering a half-closed peer");
    return;
  }
  arm_linger_timer(cfg_->linger);
}

void connection_state::report_done() {
  if (done_reported_)
    return;
  done_reported_ = true;
  self_->send(cfg_->supervisor, done_atom_v);
}

void connection_state::arm_linger_timer(caf::timespan delay) {
  if (linger_timer_armed_)
    return;
  linger_timer_armed_ = true;
  send_later(delay, linger_message());
}

void connection_state::finish(const char* why) {
  if (log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " " + why);
  // CAF has dropped the socket on a peer close already; this releases a
  // scribe still attached: the write-only one after a half-close (it sends
  // FIN again, harmless), or one under the test multiplexer.
  self_->close(hdl_);
  report_done();
  self_->quit();
}

connection_actor::behavior_type connection_main(
  connection_actor::stateful_broker_pointer<connection_state> self,
  caf::io::connection_handle hdl, shared_config cfg) {
  self->state.init(self, hdl, std::move(cfg));
  self->set_exit_handler([self](caf::exit_msg& msg) {
    // Forced by the supervisor; any other exit reason ends the actor too.
    self->state.on_forced(msg);
  });
  self->set_exception_handler(
    [self](caf::scheduled_actor*, std::exception_ptr&) -> caf::error {
      self->state.on_exception();
      return caf::sec::runtime_error;
    });
  // Once ending only the timer that ends the actor counts.
  auto& st = self->state;
  return {
    [&st](caf::io::new_data_msg& msg) {
      if (!st.ending())
        st.on_data(msg);
    },
    [&st](caf::io::data_transferred_msg& msg) {
      if (!st.ending())
        st.on_transferred(msg);
    },
    [&st](caf::io::connection_closed_msg&) {
      if (!st.ending())
        st.on_peer_closed();
    },
    [&st](stop_atom) {
      if (!st.ending())
        st.on_stop();
    },
    [&st](linger_atom) {
      if (st.ending())
        st.end_now();
      else
        st.on_linger();
    },
    [&st](idle_atom) {
      if (!st.ending())
        st.on_idle_check();
    },
    [&st](write_timeout_atom) {
      if (!st.ending())
        st.on_write_check();
    },
    [&st](timer_atom, uint64_t token) {
      if (!st.ending())
        st.on_timer(token);
    },
    [&st](deliver_atom, caf::message& msg) {
      if (!st.ending())
        st.on_message(msg);
    },
    [&st](request_timeout_atom, uint64_t id) {
      if (!st.ending())
        st.on_request_timeout(id);
    },
  };
}

} // namespace quiesce
