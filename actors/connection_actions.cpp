#include "actors/connection.hpp"

// The connection actor's half that carries out the lifecycle core's actions,
// with the socket facts it needs (connection.cpp has the message handlers).
// Each workaround for CAF 0.17 says which behaviour of CAF it works around.

#include <algorithm>
#include <iterator>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "caf/actor_cast.hpp"
#include "caf/io/network/multiplexer.hpp"
#include "caf/sec.hpp"
#include "caf/send.hpp"

#include "actors/deferred_close.hpp"
#include "quiesce/log.hpp"
#include "actors/socket_ops.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "connection";

caf::message make_timer_message(lifecycle_timer tag) {
  return caf::make_message(lifecycle_timer_atom_v, static_cast<uint8_t>(tag));
}

// The public tags and the core's timer kinds are the same list.
static_assert(static_cast<int>(lifecycle_timer::linger)
              == static_cast<int>(timer_kind::linger));
static_assert(static_cast<int>(lifecycle_timer::idle)
              == static_cast<int>(timer_kind::idle));
static_assert(static_cast<int>(lifecycle_timer::write)
              == static_cast<int>(timer_kind::write));
static_assert(static_cast<int>(lifecycle_timer::flush_poll)
              == static_cast<int>(timer_kind::flush_poll));
static_assert(static_cast<int>(lifecycle_timer::end_tick)
              == static_cast<int>(timer_kind::end_tick));

/// The connection's own timer messages, made once and shared (a
/// caf::message is reference-counted): a pending timer costs no allocation
/// of its own beyond the relay's entry.
const caf::message& timer_message(timer_kind kind) {
  static const caf::message messages[] = {
    make_timer_message(lifecycle_timer::linger),
    make_timer_message(lifecycle_timer::idle),
    make_timer_message(lifecycle_timer::write),
    make_timer_message(lifecycle_timer::flush_poll),
    make_timer_message(lifecycle_timer::end_tick),
  };
  static_assert(std::size(messages) == timer_kind_count);
  return messages[static_cast<size_t>(kind)];
}

/// Replaces `key` in `text` by `value` (the core's notes, see
/// lifecycle_action::why).
void fill(std::string& text, std::string_view key, const std::string& value) {
  if (auto i = text.find(key); i != std::string::npos)
    text.replace(i, key.size(), value);
}

} // namespace

// -- carrying out the core's actions ------------------------------------------

void connection_state::run(const lifecycle_actions& actions) {
  for (auto& x : actions) {
    // An action can run the core again (write_only or watch_flush failing
    // gives reopen_failed, whose actions end the actor): the rest of this
    // batch must not touch the scribe CAF dropped at end-of-stream.
    if (ended_)
      return;
    run_one(x);
  }
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
      // CAF 0.17.6 loses a resume that comes before the event loop has
      // applied the pause: `halt` only queues the removal of the socket's
      // read interest (applied after the turn's handlers have run),
      // `trigger` does nothing while the stream still has its reader
      // (stream::activate), and the removal, once applied, drops the
      // reader: the connection never reads again. A pipelining client whose
      // replies came back from another actor in the turn of the pause
      // stalled so. A function posted to the event loop runs after the
      // pending removals are applied; the message it sends asks for
      // reading once more, which re-adds the read interest if it was lost
      // and does nothing if not.
      self_->backend().post([conn = self_->address()] {
        if (auto dest = caf::actor_cast<connection_actor>(conn))
          caf::anon_send(dest, lifecycle_timer_atom_v,
                         static_cast<uint8_t>(lifecycle_timer::read_again));
      });
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
        log::debug(component, describe() + " sent FIN");
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
      if (x.timer == timer_kind::end_tick) {
        // A later turn of the event loop, whatever the core's delay: a
        // connection accepted in this turn (the backlog at a stop, then a
        // second signal) must not have its scribe added and removed in one
        // turn (deferred_close.hpp).
        timers_sent_ = true;
        defer_close(cfg_->relay, self_->address(), timer_message(x.timer));
        return;
      }
      send_later(x.delay, timer_message(x.timer));
      return;
    case action_kind::abort:
      switch (x.reason) {
        case end_reason::write_timeout:
          // The operator must be able to see why a client lost its
          // connection.
          log::warning(component,
                       describe() + ": write timeout: no output taken for "
                         + millis(x.delay) + " with "
                         + std::to_string(core_->pending_output())
                         + " bytes waiting (write timeout "
                         + millis(cfg_->write_timeout) + "); aborting (reset)");
          break;
        case end_reason::failed:
          log::error(component, describe()
                                  + ": the behaviour threw an exception; "
                                    "aborting");
          break;
        default:
          if (log::enabled(log::level::debug))
            log::debug(component, describe() + " closed by force");
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
        log::debug(component, describe() + " " + x.why);
      // CAF has dropped the socket on a peer close already; this releases a
      // scribe still attached: the write-only one after a half-close (it
      // sends FIN again, harmless), or one under the test multiplexer.
      self_->close(hdl_);
      return;
    case action_kind::end:
      ended_ = true;
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
        log::debug(component, describe() + " " + text);
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
  // nothing is counted as waiting. Else only what this callback added:
  // while CAF is writing, its flush leaves the buffer as it is (stream.cpp,
  // `stream::flush` moves it only when not `writing`), so bytes an earlier
  // callback flushed may still be in it, counted then.
  auto queued
    = fd_ ? buf.size() - std::min(out_counted_, buf.size()) : size_t{0};
  self_->flush(hdl_);
  return queued;
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
  // abstract_broker::add_scribe: typed_broker's add_tcp_scribe(fd) does not
  // compile in 0.17.6 (it calls an abstract_broker overload that does not
  // exist). The scribe is not in the event loop yet: add_servant's
  // launch_servant is a no-op for scribes (abstract_broker.hpp:394), and
  // only configure_read launches one (scribe_impl.cpp:38-43); this one is
  // never configured. Only a CAF flush adds it, for writing (stream.cpp:73),
  // and then output waits, so the core ends no earlier than CAF's write
  // event. So answering in on_input_end and ending in this same turn (direct
  // send, then `finish`) adds and removes nothing in one turn: no leak of
  // the kind deferred_close.hpp works around.
  hdl_ = self_->add_scribe(dup_fd);
  out_ = &self_->wr_buf(hdl_);
  fd_ = dup_fd;
  self_->ack_writes(hdl_, true);
  if (log::enabled(log::level::debug))
    log::debug(component,
               describe() + " peer sent FIN; answering what is in flight");
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
  caf_fd_dev_ = st.st_dev;
  caf_fd_inode_ = st.st_ino;
  owned_fd_ = dup_fd;
  fd_ = dup_fd;
  if (log::enabled(log::level::debug))
    log::debug(component, describe() + " closed by the peer with "
                            + std::to_string(core_->pending_output())
                            + " bytes still to send");
  return true;
}

bool connection_state::caf_flushed() const {
  // CAF closes its descriptor once the stream has written everything (or
  // failed); a new file may reuse the number, never the socket's identity
  // (device and inode; an inode number is unique only on its device).
  struct stat st {};
  return ::fstat(caf_fd_, &st) != 0 || !S_ISSOCK(st.st_mode)
         || st.st_dev != caf_fd_dev_ || st.st_ino != caf_fd_inode_;
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

} // namespace quiesce
