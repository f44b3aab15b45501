#include "actors/connection_lifecycle.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>

namespace quiesce {

namespace {

template <class Enum, size_t N>
const char* name_of(Enum x, const char* const (&names)[N]) {
  auto i = static_cast<size_t>(x);
  return i < N ? names[i] : "?";
}

} // namespace

const char* to_string(lifecycle_state x) {
  static constexpr const char* names[]
    = {"open",    "stop_waiting", "draining", "answering", "lingering",
       "closing", "flushing",     "ending",   "ended"};
  static_assert(std::size(names) == lifecycle_state_count);
  return name_of(x, names);
}

const char* to_string(timer_kind x) {
  static constexpr const char* names[]
    = {"linger", "idle", "write", "flush_poll", "end_tick"};
  static_assert(std::size(names) == timer_kind_count);
  return name_of(x, names);
}

const char* to_string(end_reason x) {
  static constexpr const char* names[]
    = {"normal", "forced", "write_timeout", "failed"};
  return name_of(x, names);
}

const char* to_string(action_kind x) {
  static constexpr const char* names[]
    = {"deliver",       "tell_stop",      "input_end",
       "pause_reading", "resume_reading", "sample_output",
       "write_only",    "watch_flush",    "fin",
       "shut_read",     "report_done",    "arm",
       "abort",         "close",          "end",
       "note"};
  static_assert(std::size(names) == action_kind_count);
  return name_of(x, names);
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
  out.push(make_action(action_kind::deliver));
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
    out.push(make_action(action_kind::write_only));
    out.push(make_action(action_kind::input_end));
    return out;
  }
  if (pending_ > 0 && state_ != lifecycle_state::ending
      && state_ != lifecycle_state::ended
      && state_ != lifecycle_state::flushing) {
    // The framework still holds bytes for the peer (a peer that
    // half-closed may still read them): stay until they have left, so that
    // neither the descriptor nor the bytes are lost from sight.
    state_ = lifecycle_state::flushing;
    out.push(make_action(action_kind::watch_flush));
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
    out.push(make_action(action_kind::fin));
    report_done(out);
  }
  out.push(make_action(action_kind::note,
                       "closed at the forced stop: nothing in flight"));
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

lifecycle_actions connection_lifecycle::linger_timer(time_point now,
                                                     size_t unread) {
  lifecycle_actions out;
  armed_ &= static_cast<uint8_t>(~bit(timer_kind::linger));
  if (state_ != lifecycle_state::lingering)
    return out;
  if (unread > 0 && !discard_capped_) {
    // Input has arrived that the event loop has not read yet: the peer is
    // not quiet. Ending the read side now would make the kernel answer that
    // input (and any after it) with a reset, to a client that may be
    // sending still, after our FIN: the storm's EPIPE (issue 11).
    last_input_ = now;
  }
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
  out.push(make_action(action_kind::shut_read));
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
  auto note = make_action(action_kind::note, "idle for {ms}: closing");
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
  auto x = make_action(action_kind::end);
  x.reason = end_reason_;
  out.push(x);
  return out;
}

lifecycle_actions connection_lifecycle::failed() {
  lifecycle_actions out;
  if (state_ == lifecycle_state::ended)
    return out;
  auto x = make_action(action_kind::abort, "the behaviour failed");
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

} // namespace quiesce
