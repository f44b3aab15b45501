#include "actors/connection_lifecycle.hpp"

// The steps the events of connection_lifecycle.cpp share.

#include <algorithm>

namespace quiesce {

namespace {

/// A closed or aborted connection's actor ends on the next turn of its
/// event loop; how that is done is the adapter's (timer_kind::end_tick).
constexpr connection_lifecycle::duration end_delay{0};

} // namespace

// -- internals ----------------------------------------------------------------

void connection_lifecycle::note_activity(time_point now) {
  if (limits_->idle_timeout > zero)
    last_activity_ = now;
}

void connection_lifecycle::arm(lifecycle_actions& out, timer_kind kind,
                               duration delay) {
  armed_ |= bit(kind);
  auto x = make_action(action_kind::arm);
  x.timer = kind;
  x.delay = std::max(delay, zero);
  out.push(x);
}

bool connection_lifecycle::has_reader() const {
  switch (state_) {
    case lifecycle_state::answering: // the write-only handle never reads
    case lifecycle_state::flushing:  // nothing left to read from
    case lifecycle_state::ending:
    case lifecycle_state::ended:
      return false;
    default:
      return true;
  }
}

void connection_lifecycle::update_reading(lifecycle_actions& out) {
  if (!has_reader())
    return;
  // Once the FIN is out, reading goes on (the peer's FIN must be seen)
  // unless the discard limit was reached.
  auto pause = discard_capped_ || (serving() && (output_full_ || input_held_));
  if (pause == paused_)
    return;
  paused_ = pause;
  if (pause)
    out.push(make_action(action_kind::pause_reading));
  else
    out.push(make_action(action_kind::resume_reading));
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
      out.push(make_action(action_kind::sample_output));
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
  out.push(make_action(action_kind::tell_stop));
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
  out.push(make_action(action_kind::fin));
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
  out.push(
    make_action(action_kind::note,
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
  out.push(make_action(action_kind::report_done));
}

void connection_lifecycle::finish(lifecycle_actions& out, const char* why) {
  out.push(make_action(action_kind::close, why));
  report_done(out);
  state_ = lifecycle_state::ended;
  out.push(make_action(action_kind::end, why));
}

void connection_lifecycle::abort(lifecycle_actions& out, end_reason reason,
                                 duration stalled) {
  auto x = make_action(action_kind::abort);
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
