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

/// The connection's own timer messages, made once and shared (a
/// caf::message is reference-counted): a pending timer costs no allocation
/// of its own beyond the relay's entry.
const caf::message& timer_message(timer_kind kind) {
  static const caf::message linger = caf::make_message(linger_atom_v);
  static const caf::message idle = caf::make_message(idle_atom_v);
  static const caf::message write = caf::make_message(write_timeout_atom_v);
  static const caf::message flush = caf::make_message(flush_poll_atom_v);
  static const caf::message end = caf::make_message(end_tick_atom_v);
  switch (kind) {
    case timer_kind::linger:
      return linger;
    case timer_kind::idle:
      return idle;
    case timer_kind::write:
      return write;
    case timer_kind::flush_poll:
      return flush;
    case timer_kind::end_tick:
      break;
  }
  return end;
}

std::string describe(caf::io::connection_handle hdl) {
  return "connection " + std::to_string(hdl.id());
}

std::string millis(caf::timespan x) {
  return std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(x).count())
         + "ms";
}

/// Replaces `key` in `text` by `value` (the core's notes, see
/// lifecycle_action::why).
void fill(std::string& text, std::string_view key, const std::string& value) {
  if (auto i = text.find(key); i != std::string::npos)
    text.replace(i, key.size(), value);
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
  core_.emplace(*cfg_, cfg_->stopping);
  fd_ = socket_ops::native_fd(self_, hdl_);
  // Written bytes are confirmed by data_transferred_msg: the connection knows
  // when its output has left, which the close and the backpressure rely on.
  self_->ack_writes(hdl_, true);
  self_->configure_read(hdl_,
                        caf::io::receive_policy::at_most(cfg_->small_read));
  if (log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " opened");
  run(core_->start(now(), busy()));
}

connection_lifecycle::time_point connection_state::now() const {
  return self_->clock().now();
}

// -- carrying out the core's actions ------------------------------------------

void connection_state::run(const lifecycle_actions& actions) {
  for (auto& x : actions)
    run_one(x);
}

void connection_state::run_one(const lifecycle_action& x) {
  switch (x.kind) {
    case action_kind::deliver: {
      auto& msg = *input_;
      behaviour_->on_data({msg.buf.data(), msg.buf.size()}, *this);
      adapt_read_buffer(msg);
      after_callback();
      return;
    }
    case action_kind::tell_stop:
      behaviour_->on_stop(*this);
      after_callback();
      return;
    case action_kind::input_end:
      // Input is over: a message half received can never complete.
      behaviour_->on_input_end(*this);
      after_callback();
      return;
    case action_kind::pause_reading:
      self_->halt(hdl_);
      return;
    case action_kind::resume_reading:
      self_->trigger(hdl_);
      return;
    case action_kind::sample_output:
      if (fd_)
        sample_output();
      return;
    case action_kind::write_only:
      if (!reopen_write_only())
        run(core_->reopen_failed(now()));
      return;
    case action_kind::watch_flush:
      if (!watch_flush())
        run(core_->reopen_failed(now()));
      return;
    case action_kind::fin:
      if (fd_)
        socket_ops::shutdown_write(*fd_);
      if (log::enabled(log::level::debug))
        log::debug(component, describe(hdl_) + " sent FIN");
      return;
    case action_kind::shut_read:
      if (fd_) {
        // The event loop now reads end-of-stream and drops the socket; the
        // resulting connection_closed_msg is the core's `peer_closed`.
        socket_ops::shutdown_read(*fd_);
        return;
      }
      // The test multiplexer has no socket to shut: CAF's close sends no
      // connection_closed_msg to the broker, so the end-of-stream is made up.
      self_->close(hdl_);
      run(core_->peer_closed(now(), false));
      return;
    case action_kind::report_done:
      self_->send(cfg_->supervisor, done_atom_v);
      return;
    case action_kind::arm:
      send_later(x.delay, timer_message(x.timer));
      return;
    case action_kind::abort:
      switch (x.reason) {
        case end_reason::write_timeout:
          // The operator must be able to see why a client lost its
          // connection.
          log::warning(component,
                       describe(hdl_) + ": write timeout: no output taken for "
                         + millis(x.delay) + " with "
                         + std::to_string(core_->pending_output())
                         + " bytes waiting (write timeout "
                         + millis(cfg_->write_timeout) + "); aborting (reset)");
          break;
        case end_reason::failed:
          log::error(component, describe(hdl_)
                                  + ": the behaviour threw an exception; "
                                    "aborting");
          break;
        default:
          if (log::enabled(log::level::debug))
            log::debug(component, describe(hdl_) + " closed by force");
          break;
      }
      if (fd_)
        socket_ops::abort(*fd_);
      return;
    case action_kind::close:
      if (owned_fd_ >= 0) {
        // The flushing state's duplicate, the last reference to the socket:
        // the kernel sends FIN.
        ::close(owned_fd_);
        owned_fd_ = -1;
        fd_.reset();
      }
      if (x.why != nullptr && log::enabled(log::level::debug))
        log::debug(component, describe(hdl_) + " " + x.why);
      // CAF has dropped the socket on a peer close already; this releases a
      // scribe still attached: the write-only one after a half-close (it
      // sends FIN again, harmless), or one under the test multiplexer.
      self_->close(hdl_);
      return;
    case action_kind::end:
      switch (x.reason) {
        case end_reason::normal:
          self_->quit();
          return;
        case end_reason::forced:
          self_->quit(forced_reason_);
          return;
        case end_reason::write_timeout:
          self_->quit(caf::sec::connection_timeout);
          return;
        case end_reason::failed:
          self_->quit(caf::sec::runtime_error);
          return;
      }
      return;
    case action_kind::note:
      if (x.why != nullptr && log::enabled(log::level::debug)) {
        std::string text = x.why;
        fill(text, "{ms}", millis(x.delay));
        fill(text, "{discarded}", std::to_string(core_->discarded()));
        fill(text, "{discard_limit}", std::to_string(cfg_->discard_limit));
        log::debug(component, describe(hdl_) + " " + text);
      }
      return;
  }
}

void connection_state::after_callback() {
  auto wrote = wrote_;
  size_t queued = 0;
  if (wrote) {
    wrote_ = false;
    queued = flush_output();
  }
  run(core_->callback_done(now(), busy(), wrote, queued));
}

size_t connection_state::flush_output() {
  auto& buf = *out_;
  if (buf.empty())
    return 0;
  if (fd_ && core_->pending_output() == 0) {
    // CAF holds nothing for this socket, so nothing can be overtaken: the
    // bytes go to the kernel now. Through CAF they would wait for the next
    // turn of the event loop and cost two epoll_ctl calls (CAF watches for
    // writability around every write) and an acknowledgement message.
    // Whatever the kernel does not take, and everything after an error,
    // goes through CAF as before.
    if (auto sent = socket_ops::send_now(*fd_, buf.data(), buf.size());
        sent && *sent > 0)
      buf.erase(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*sent));
    if (buf.empty())
      return 0;
  }
  // Without a socket (the test multiplexer) CAF takes the bytes at once:
  // nothing is counted as waiting.
  auto queued = fd_ ? buf.size() : size_t{0};
  self_->flush(hdl_);
  return queued;
}

// -- connection_io ------------------------------------------------------------

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

bool connection_state::busy() const {
  return !pending_requests_.empty() || !behaviour_->idle();
}

// -- requests -----------------------------------------------------------------

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
  if (!core_->accepts_work()) {
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
  after_callback();
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

void connection_state::on_data(caf::io::new_data_msg& msg) {
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
      log::debug(component, describe(hdl_)
                              + " reset by the peer; dropping the work in "
                                "flight");
  }
  run(core_->peer_closed(now(), fin));
}

bool connection_state::reopen_write_only() {
  // CAF 0.17 drops the scribe at end-of-stream, so the actor takes the
  // socket back through a duplicate descriptor and a second scribe that only
  // writes (it never reads: the peer's FIN is in). The core asks for this
  // only when nothing written earlier is still on its way, or the two
  // scribes could reorder bytes.
  if (!fd_)
    return false;
  auto dup_fd = ::fcntl(*fd_, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    return false;
  hdl_ = static_cast<caf::io::abstract_broker*>(self_)->add_scribe(dup_fd);
  out_ = &self_->wr_buf(hdl_);
  fd_ = dup_fd;
  self_->ack_writes(hdl_, true);
  if (log::enabled(log::level::debug))
    log::debug(component,
               describe(hdl_) + " peer sent FIN; answering what is in flight");
  return true;
}

bool connection_state::watch_flush() {
  // The peer closed while CAF still holds bytes for it. CAF's stream goes on
  // writing them (a peer that half-closed may still read), but this actor
  // would learn nothing more about the socket, and ending now would hide a
  // descriptor from max-connections and bytes from the drain. So the actor
  // stays, holding a duplicate of the socket, and the flush poll checks
  // whether CAF has closed its descriptor (done or failed). A stop's
  // deadline or a second signal aborts the socket.
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
  if (log::enabled(log::level::debug))
    log::debug(component, describe(hdl_) + " closed by the peer with "
                            + std::to_string(core_->pending_output())
                            + " bytes still to send");
  return true;
}

bool connection_state::caf_flushed() const {
  // CAF closes its descriptor once the stream has written everything (or
  // failed); a new socket may reuse the number, never the inode.
  struct stat st {};
  return ::fstat(caf_fd_, &st) != 0 || st.st_ino != caf_fd_inode_;
}

void connection_state::on_stop() {
  // Bytes the client sent before the stop may still wait in the kernel, not
  // yet read by the event loop: they were sent before the stop and count as
  // in flight. Only an open connection asks (the core ignores it otherwise).
  size_t unread = 0;
  if (fd_ && core_->state() == lifecycle_state::open)
    unread = socket_ops::unread_bytes(*fd_);
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
    case timer_kind::linger:
      run(core_->linger_timer(now()));
      return;
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

bool connection_state::peer_read_since_sample() {
  if (!fd_ || core_->pending_output() == 0)
    return false;
  auto before = output_sample_;
  auto stale = output_sample_stale_;
  sample_output();
  return before && output_sample_ && !stale
         && socket_ops::peer_read_since(*before, *output_sample_);
}

void connection_state::sample_output() {
  output_sample_ = socket_ops::sample_output(*fd_);
  output_sample_stale_ = false;
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
    [&st](linger_atom) { st.on_timer_fired(timer_kind::linger); },
    [&st](idle_atom) { st.on_timer_fired(timer_kind::idle); },
    [&st](write_timeout_atom) { st.on_timer_fired(timer_kind::write); },
    [&st](flush_poll_atom) { st.on_timer_fired(timer_kind::flush_poll); },
    [&st](end_tick_atom) { st.on_timer_fired(timer_kind::end_tick); },
    [&st](timer_atom, uint64_t token) { st.on_timer(token); },
    [&st](deliver_atom, caf::message& msg) { st.on_message(msg); },
    [&st](request_timeout_atom, uint64_t id) { st.on_request_timeout(id); },
  };
}

} // namespace quiesce
