#include "actors/connection_lifecycle.hpp"

#include <algorithm>
#include <cstdlib>

namespace quiesce {

namespace {

using duration = connection_lifecycle::duration;

constexpr duration zero{0};

/// The turn after which a closed or aborted connection's actor ends (see
/// timer_kind::end_tick).
constexpr duration end_delay = std::chrono::milliseconds(1);

lifecycle_action make(action_kind kind, const char* why = nullptr) {
  lifecycle_action x;
  x.kind = kind;
  x.why = why;
  return x;
}

} // namespace

const char* to_string(lifecycle_state x) {
  switch (x) {
    case lifecycle_state::open:
      return "open";
    case lifecycle_state::stop_waiting:
      return "stop_waiting";
    case lifecycle_state::draining:
      return "draining";
    case lifecycle_state::answering:
      return "answering";
    case lifecycle_state::lingering:
      return "lingering";
    case lifecycle_state::closing:
      return "closing";
    case lifecycle_state::flushing:
      return "flushing";
    case lifecycle_state::ending:
      return "ending";
    case lifecycle_state::ended:
      return "ended";
  }
  return "?";
}

const char* to_string(timer_kind x) {
  switch (x) {
    case timer_kind::linger:
      return "linger";
    case timer_kind::idle:
      return "idle";
    case timer_kind::write:
      return "write";
    case timer_kind::flush_poll:
      return "flush_poll";
    case timer_kind::end_tick:
      return "end_tick";
  }
  return "?";
}

const char* to_string(end_reason x) {
  switch (x) {
    case end_reason::normal:
      return "normal";
    case end_reason::forced:
      return "forced";
    case end_reason::write_timeout:
      return "write_timeout";
    case end_reason::failed:
      return "failed";
  }
  return "?";
}

const char* to_string(action_kind x) {
  switch (x) {
    case action_kind::deliver:
      return "deliver";
    case action_kind::tell_stop:
      return "tell_stop";
    case action_kind::input_end:
      return "input_end";
    case action_kind::pause_reading:
      return "pause_reading";
    case action_kind::resume_reading:
      return "resume_reading";
    case action_kind::sample_output:
      return "sample_output";
    case action_kind::write_only:
      return "write_only";
    case action_kind::watch_flush:
      return "watch_flush";
    case action_kind::fin:
      return "fin";
    case action_kind::shut_read:
      return "shut_read";
    case action_kind::report_done:
      return "report_done";
    case action_kind::arm:
      return "arm";
    case action_kind::abort:
      return "abort";
    case action_kind::close:
      return "close";
    case action_kind::end:
      return "end";
    case action_kind::note:
      return "note";
  }
  return "?";
}

void lifecycle_actions::push(const lifecycle_action& x) {
  // No event takes more than six actions (begin_linger then finish); the
  // table test and the fuzz target would find one that did.
  if (size_ == capacity)
    std::abort();
  xs_[size_++] = x;
}

connection_lifecycle::connection_lifecycle(const lifecycle_limits& limits,
                                           bool stopping)
    : limits_(&limits), stop_requested_(stopping) {
  // Nothing else: the adapter calls `start`.
}

// -- events -------------------------------------------------------------------

lifecycle_actions connection_lifecycle::start(time_point now, bool busy) {
  lifecycle_actions out;
  busy_ = busy;
  // A connection that sends nothing is idle from the start.
  watch_idle(out, now);
  return out;
}

lifecycle_actions connection_lifecycle::read(time_point now, size_t n) {
  lifecycle_actions out;
  switch (state_) {
    case lifecycle_state::open:
    case lifecycle_state::stop_waiting:
      break;
    case lifecycle_state::draining:
      if (busy_)
        break;
      // Draining and idle: nobody wants the input.
      discard(out, now, n);
      return out;
    case lifecycle_state::answering:
      // The write-only handle reads nothing; input that was on its way
      // before the peer's FIN has nowhere to go.
    case lifecycle_state::lingering:
    case lifecycle_state::closing:
    case lifecycle_state::flushing:
      discard(out, now, n);
      return out;
    case lifecycle_state::ending:
    case lifecycle_state::ended:
      return out;
  }
  note_activity(now);
  delivered_ = n;
  out.push(make(action_kind::deliver));
  return out;
}

lifecycle_actions connection_lifecycle::callback_done(time_point now, bool busy,
                                                      bool wrote,
                                                      size_t queued) {
  lifecycle_actions out;
  busy_ = busy;
  if (state_ == lifecycle_state::ending || state_ == lifecycle_state::ended)
    return out;
  flushed_output(out, now, wrote, queued);
  auto delivered = delivered_;
  delivered_ = 0;
  if (delivered > 0 && unread_at_stop_ > 0) {
    // The bytes that waited in the kernel at the stop are being read.
    unread_at_stop_ -= std::min(unread_at_stop_, delivered);
    if (unread_at_stop_ == 0) {
      tell_stop(out);
      return out;
    }
  }
  settle(out, now);
  return out;
}

lifecycle_actions connection_lifecycle::transferred(time_point now,
                                                    size_t written,
                                                    size_t remaining) {
  lifecycle_actions out;
  if (state_ == lifecycle_state::ending || state_ == lifecycle_state::ended)
    return out;
  // `remaining` counts every byte the framework still holds for the socket,
  // including bytes queued while this write was under way.
  pending_ = remaining;
  // The kernel took bytes: the peer reads (the write timeout).
  if (written > 0)
    output_progress_ = now;
  if (pending_ == 0)
    output_full_ = false;
  // Output leaving is activity: a peer reading a long response is not idle.
  note_activity(now);
  update_reading(out);
  settle(out, now);
  return out;
}

bool connection_lifecycle::may_answer_after_fin() const {
  return (state_ == lifecycle_state::open
          || state_ == lifecycle_state::stop_waiting
          || state_ == lifecycle_state::draining)
         && busy_ && pending_ == 0;
}

lifecycle_actions connection_lifecycle::peer_closed(time_point now, bool fin) {
  lifecycle_actions out;
  if (may_answer_after_fin() && fin) {
    // The peer has sent everything (FIN after its request) and waits for
    // the answer the behaviour still owes. Only when nothing written
    // earlier is still on its way: the adapter's new handle could overtake
    // it.
    state_ = lifecycle_state::answering;
    paused_ = false; // the new handle is not paused
    unread_at_stop_ = 0;
    out.push(make(action_kind::write_only));
    out.push(make(action_kind::input_end));
    return out;
  }
  if (pending_ > 0 && state_ != lifecycle_state::ending
      && state_ != lifecycle_state::ended
      && state_ != lifecycle_state::flushing) {
    // The framework still holds bytes for the peer (a peer that
    // half-closed may still read them): stay until they have left, so that
    // neither the descriptor nor the bytes are lost from sight.
    state_ = lifecycle_state::flushing;
    out.push(make(action_kind::watch_flush));
    watch_output(out, now);
    arm(out, timer_kind::flush_poll, limits_->flush_poll);
    return out;
  }
  switch (state_) {
    case lifecycle_state::open:
    case lifecycle_state::stop_waiting:
      finish(out, "closed by the peer");
      break;
    case lifecycle_state::draining:
    case lifecycle_state::answering:
      finish(out, "closed by the peer during the stop");
      break;
    case lifecycle_state::lingering:
    case lifecycle_state::closing:
    case lifecycle_state::flushing:
      finish(out, "closed");
      break;
    case lifecycle_state::ending:
    case lifecycle_state::ended:
      break;
  }
  return out;
}

lifecycle_actions connection_lifecycle::reopen_failed(time_point) {
  lifecycle_actions out;
  if (state_ == lifecycle_state::answering
      || state_ == lifecycle_state::flushing)
    finish(out, "closed by the peer (no descriptor left to finish with)");
  return out;
}

lifecycle_actions connection_lifecycle::stop(time_point, size_t unread) {
  lifecycle_actions out;
  stop_requested_ = true;
  if (unread_at_stop_ > 0 || stop_told_)
    return out; // stop twice: harmless
  switch (state_) {
    case lifecycle_state::draining:
    case lifecycle_state::answering:
      // Winding down already (the behaviour's own close, or a peer that
      // half-closed while work is in flight): the behaviour still hears of
      // the stop, once. Else `stop_requested` would hold its last answer
      // back until the drain deadline.
      tell_stop(out);
      return out;
    case lifecycle_state::open:
      break;
    default:
      return out;
  }
  if (unread > 0) {
    // Bytes the client sent before the stop wait in the kernel: they are in
    // flight, and the behaviour gets them before it hears of the stop.
    state_ = lifecycle_state::stop_waiting;
    unread_at_stop_ = unread;
    was_quiet_ = false;
    return out;
  }
  tell_stop(out);
  return out;
}

lifecycle_actions connection_lifecycle::force(time_point, size_t unread) {
  lifecycle_actions out;
  bool quiet_now = false;
  switch (state_) {
    case lifecycle_state::ending:
    case lifecycle_state::ended:
      return out;
    case lifecycle_state::lingering:
    case lifecycle_state::closing:
      quiet_now = true; // the FIN is out: nothing owed
      break;
    case lifecycle_state::flushing:
      quiet_now = false; // the framework still holds output for the peer
      break;
    case lifecycle_state::open:
    case lifecycle_state::stop_waiting:
    case lifecycle_state::draining:
    case lifecycle_state::answering:
      // Bytes the client sent that wait unread in the kernel are a request
      // in flight, as at a stop.
      quiet_now = quiet() && unread == 0;
      break;
  }
  if (!quiet_now) {
    abort(out, end_reason::forced, zero);
    return out;
  }
  // Nothing is lost by closing: a clean close, as a stop would have done had
  // the connection got to it (the stop's broadcast may still be on its way,
  // or its `done` in the supervisor's mailbox). It counts as drained.
  if (!done_) {
    out.push(make(action_kind::fin));
    report_done(out);
  }
  out.push(
    make(action_kind::note, "closed at the forced stop: nothing in flight"));
  end_later(out, end_reason::normal);
  return out;
}

void connection_lifecycle::close_requested() {
  // Wind down like a stop, without telling the behaviour: it chose it.
  if (state_ == lifecycle_state::open
      || state_ == lifecycle_state::stop_waiting)
    state_ = lifecycle_state::draining;
}

lifecycle_actions connection_lifecycle::hold_input(bool hold) {
  lifecycle_actions out;
  input_held_ = hold;
  update_reading(out);
  return out;
}

lifecycle_actions connection_lifecycle::linger_timer(time_point now) {
  lifecycle_actions out;
  armed_ &= static_cast<uint8_t>(~bit(timer_kind::linger));
  if (state_ != lifecycle_state::lingering)
    return out;
  auto lingered = now - linger_began_;
  auto limited = limits_->linger_time > zero;
  if (limited && lingered >= limits_->linger_time) {
    // Input kept coming for the whole linger time (nginx's lingering_time).
    finish(out, "closed at the linger time limit");
    return out;
  }
  auto quiet_for = now - last_input_;
  if (quiet_for < limits_->linger) {
    duration wait = limits_->linger - quiet_for;
    if (limited)
      wait = std::min(wait, duration{limits_->linger_time - lingered});
    arm(out, timer_kind::linger, wait);
    return out;
  }
  if (discard_capped_) {
    // Reading stopped at the discard limit; the peer had its `linger` to
    // read what it was sent. Unread input makes this close a reset.
    finish(out, "closed after the discard limit");
    return out;
  }
  // The peer neither closed nor sent anything for a whole linger. Nothing
  // is left unread, so the close sends no reset; the end-of-stream that
  // follows the local shutdown ends the connection.
  state_ = lifecycle_state::closing;
  out.push(make(action_kind::shut_read));
  return out;
}

lifecycle_actions connection_lifecycle::idle_timer(time_point now) {
  lifecycle_actions out;
  armed_ &= static_cast<uint8_t>(~bit(timer_kind::idle));
  // Busy now: watch_idle arms the timer again once the work is done.
  if (state_ != lifecycle_state::open || limits_->idle_timeout <= zero
      || !quiet())
    return out;
  auto quiet_for = now - last_activity_;
  if (quiet_for < limits_->idle_timeout) {
    // Activity since the timer was armed: wait for the rest.
    arm(out, timer_kind::idle, limits_->idle_timeout - quiet_for);
    return out;
  }
  auto note = make(action_kind::note, "idle for {ms}: closing");
  note.delay = quiet_for;
  out.push(note);
  // Like the behaviour's own close: FIN, done, linger.
  state_ = lifecycle_state::draining;
  settle(out, now);
  return out;
}

lifecycle_actions connection_lifecycle::write_timer(time_point now,
                                                    bool peer_read) {
  lifecycle_actions out;
  armed_ &= static_cast<uint8_t>(~bit(timer_kind::write));
  if (state_ == lifecycle_state::ending || state_ == lifecycle_state::ended
      || pending_ == 0 || limits_->write_timeout <= zero)
    return out; // nothing waits: the next wait arms the timer again
  if (peer_read)
    output_progress_ = now;
  auto stalled = now - output_progress_;
  if (stalled < limits_->write_timeout) {
    arm(out, timer_kind::write, limits_->write_timeout - stalled);
    return out;
  }
  abort(out, end_reason::write_timeout, stalled);
  return out;
}

lifecycle_actions connection_lifecycle::flush_poll(time_point, bool flushed) {
  lifecycle_actions out;
  armed_ &= static_cast<uint8_t>(~bit(timer_kind::flush_poll));
  if (state_ != lifecycle_state::flushing)
    return out;
  if (flushed) {
    pending_ = 0;
    finish(out, "flushed after the peer closed");
    return out;
  }
  arm(out, timer_kind::flush_poll, limits_->flush_poll);
  return out;
}

lifecycle_actions connection_lifecycle::end_tick() {
  lifecycle_actions out;
  armed_ &= static_cast<uint8_t>(~bit(timer_kind::end_tick));
  if (state_ != lifecycle_state::ending)
    return out;
  state_ = lifecycle_state::ended;
  auto x = make(action_kind::end);
  x.reason = end_reason_;
  out.push(x);
  return out;
}

lifecycle_actions connection_lifecycle::failed() {
  lifecycle_actions out;
  if (state_ == lifecycle_state::ended)
    return out;
  auto x = make(action_kind::abort, "the behaviour failed");
  x.reason = end_reason::failed;
  out.push(x);
  state_ = lifecycle_state::ended;
  return out;
}

// -- queries ------------------------------------------------------------------

bool connection_lifecycle::accepts_work() const {
  switch (state_) {
    case lifecycle_state::open:
    case lifecycle_state::stop_waiting:
    case lifecycle_state::draining:
    case lifecycle_state::answering:
      return true;
    default:
      return false;
  }
}

bool connection_lifecycle::serving() const {
  return state_ == lifecycle_state::open
         || state_ == lifecycle_state::stop_waiting
         || state_ == lifecycle_state::draining;
}

bool connection_lifecycle::quiet() const {
  return !busy_ && pending_ == 0 && unread_at_stop_ == 0
         && state_ != lifecycle_state::answering;
}

// -- internals ----------------------------------------------------------------

void connection_lifecycle::note_activity(time_point now) {
  if (limits_->idle_timeout > zero)
    last_activity_ = now;
}

void connection_lifecycle::arm(lifecycle_actions& out, timer_kind kind,
                               duration delay) {
  armed_ |= bit(kind);
  auto x = make(action_kind::arm);
  x.timer = kind;
  x.delay = std::max(delay, zero);
  out.push(x);
}

void connection_lifecycle::update_reading(lifecycle_actions& out) {
  switch (state_) {
    case lifecycle_state::answering: // the write-only handle never reads
    case lifecycle_state::flushing:  // nothing left to read from
    case lifecycle_state::ending:
    case lifecycle_state::ended:
      return;
    default:
      break;
  }
  // Once the FIN is out, reading goes on (the peer's FIN must be seen)
  // unless the discard limit was reached.
  auto pause = discard_capped_ || (serving() && (output_full_ || input_held_));
  if (pause == paused_)
    return;
  paused_ = pause;
  if (pause)
    out.push(make(action_kind::pause_reading));
  else
    out.push(make(action_kind::resume_reading));
}

void connection_lifecycle::flushed_output(lifecycle_actions& out,
                                          time_point now, bool wrote,
                                          size_t queued) {
  if (!wrote)
    return;
  note_activity(now);
  if (queued > 0) {
    if (pending_ == 0 && limits_->write_timeout > zero) {
      // Output starts waiting: the write timeout counts from here.
      output_progress_ = now;
      out.push(make(action_kind::sample_output));
    }
    pending_ += queued;
    if (pending_ > limits_->max_pending_output)
      output_full_ = true;
  }
  update_reading(out);
  watch_output(out, now);
}

void connection_lifecycle::settle(lifecycle_actions& out, time_point now) {
  if (state_ == lifecycle_state::open
      || state_ == lifecycle_state::stop_waiting) {
    // Every event ends here: the place to notice that the connection has
    // become idle.
    watch_idle(out, now);
    return;
  }
  if ((state_ != lifecycle_state::draining
       && state_ != lifecycle_state::answering)
      || busy_ || pending_ > 0)
    return;
  begin_linger(out, now);
}

void connection_lifecycle::watch_idle(lifecycle_actions& out, time_point now) {
  if (limits_->idle_timeout <= zero)
    return;
  if (state_ != lifecycle_state::open || !quiet()) {
    was_quiet_ = false;
    return;
  }
  if (!was_quiet_) {
    // The connection has just become idle (or opened): the idle time counts
    // from now, whatever the last activity was. Work in flight is no idling.
    was_quiet_ = true;
    last_activity_ = now;
  }
  if (armed(timer_kind::idle))
    return; // when it fires, it re-arms for what is left
  arm(out, timer_kind::idle, last_activity_ + limits_->idle_timeout - now);
}

void connection_lifecycle::watch_output(lifecycle_actions& out,
                                        time_point now) {
  if (pending_ == 0 || armed(timer_kind::write)
      || limits_->write_timeout <= zero)
    return;
  // When it fires, it re-arms for what is left of the timeout.
  arm(out, timer_kind::write, output_progress_ + limits_->write_timeout - now);
}

void connection_lifecycle::tell_stop(lifecycle_actions& out) {
  unread_at_stop_ = 0;
  stop_told_ = true;
  if (state_ == lifecycle_state::open
      || state_ == lifecycle_state::stop_waiting)
    state_ = lifecycle_state::draining;
  out.push(make(action_kind::tell_stop));
}

void connection_lifecycle::begin_linger(lifecycle_actions& out,
                                        time_point now) {
  auto answering = state_ == lifecycle_state::answering;
  state_ = lifecycle_state::lingering;
  last_input_ = now;
  linger_began_ = now;
  // Read again, so that the peer's FIN (and any late input) is seen; the
  // write-only handle of a half-closed peer never reads.
  if (!answering)
    update_reading(out);
  // FIN after the last byte of output: the kernel has all of it.
  out.push(make(action_kind::fin));
  // Everything owed is sent: the connection has drained. What remains (the
  // linger) only spares a client that still sends a reset.
  report_done(out);
  if (answering) {
    // The peer's FIN came first: nothing to linger for.
    finish(out, "closed after answering a half-closed peer");
    return;
  }
  arm(out, timer_kind::linger, limits_->linger);
}

void connection_lifecycle::discard(lifecycle_actions& out, time_point now,
                                   size_t n) {
  last_input_ = now;
  discarded_ += n;
  if (discard_capped_ || limits_->discard_limit == 0
      || discarded_ < limits_->discard_limit)
    return;
  discard_capped_ = true;
  out.push(make(action_kind::note,
                "discarded {discarded} bytes of unwanted input (the limit is "
                "{discard_limit}): reading no more"));
  if (state_ == lifecycle_state::closing) {
    // The linger is over already and reading ended locally, but input keeps
    // coming: close now.
    finish(out, "closed: the discard limit was reached");
    return;
  }
  // Draining: the output still waiting goes first (the write timeout watches
  // it), then the FIN. Lingering: the linger timer gives the peer one more
  // `linger` to read what it was sent, then closes.
  update_reading(out);
}

void connection_lifecycle::report_done(lifecycle_actions& out) {
  if (done_)
    return;
  done_ = true;
  out.push(make(action_kind::report_done));
}

void connection_lifecycle::finish(lifecycle_actions& out, const char* why) {
  out.push(make(action_kind::close, why));
  report_done(out);
  state_ = lifecycle_state::ended;
  out.push(make(action_kind::end, why));
}

void connection_lifecycle::abort(lifecycle_actions& out, end_reason reason,
                                 duration stalled) {
  auto x = make(action_kind::abort);
  x.reason = reason;
  x.delay = stalled;
  out.push(x);
  end_later(out, reason);
}

void connection_lifecycle::end_later(lifecycle_actions& out,
                                     end_reason reason) {
  // Not at once: a connection accepted in this turn (the backlog taken at
  // a stop, then a second signal) would have its socket added and removed
  // in one turn, which the adapter's framework may not survive.
  state_ = lifecycle_state::ending;
  end_reason_ = reason;
  arm(out, timer_kind::end_tick, end_delay);
}

} // namespace quiesce
