// libFuzzer target: the connection's lifecycle core
// (actors/connection_lifecycle.hpp) alone, driven by random event sequences
// through a model of its world: a peer that sends, half-closes or resets, a
// kernel that holds unread input and takes output, a behaviour that works,
// writes, closes, holds its input or throws, a supervisor that stops and
// forces at its drain deadline, and timers that fire as armed (every armed
// message fires at its time, stale ones too, as the timer relay does).
//
// The model plays the adapter's part (actors/connection.cpp,
// connection_actions.cpp): it carries out the actions in order, calls
// `callback_done` after each behaviour callback, answers `write_only` and
// `watch_flush` (or fails them: `reopen_failed`), and asks for unread input
// (FIONREAD) where the adapter does. Once a nested event has ended the core,
// it carries out nothing more of the outer batch (the adapter must not
// either: the behaviour's scribe may be gone).
//
// Invariants, checked after every step (a violation aborts with a message):
// - no abort unless forced (force), the write timeout expired by the model's
//   own clock (the peer took nothing for write_timeout while output was
//   owed), or the behaviour threw;
// - FIN only once, and only after every owed byte was taken by the kernel; a
//   close with bytes owed only after the peer closed;
// - `done` at most once, and only with or after the FIN or a close, or in
//   the batch that ends;
// - nothing at all after the end, and after the socket is released (close,
//   abort) only `done`, notes, the end tick and the end;
// - a behaviour callback at most once per batch and last; the stop told once;
// - after a stop, the core has ended at the latest `forced_end_margin` after
//   the supervisor's drain deadline, when the model's timers fire as armed.
//
// Input: byte 0 picks the limits (and whether the server was stopping at
// the accept); then each op is one byte (`op % op_count`) followed by the
// bytes it reads. At the end of the input the supervisor stops (if it did
// not) and only the timers run until the core ends.

#include "actors/connection_lifecycle.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "test/fuzz/check.hpp"

using namespace quiesce;
using namespace std::chrono_literals;

namespace {

using time_point = connection_lifecycle::time_point;
using duration = connection_lifecycle::duration;

/// How long after the drain deadline the core may still run: the force
/// makes it `ending`, and the end tick is armed with no delay (end_delay in
/// connection_lifecycle_steps.cpp; the adapter takes it on the event loop's
/// next turn).
constexpr duration forced_end_margin{0};

/// The supervisor's drain timeout (the server's --drain-timeout).
constexpr duration drain_timeout = 3s;

/// The event that a batch of actions answers, for the abort rule.
enum class cause { other, read, force, write_timer, failed, peer_closed };

/// Not a timer of the core: the supervisor's force at its drain deadline.
constexpr int supervisor_force = 100;

struct scheduled {
  time_point due;
  int kind; // a timer_kind, or supervisor_force
};

class input {
public:
  input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const {
    return pos_ >= size_;
  }

  uint8_t byte() {
    return pos_ < size_ ? data_[pos_++] : 0;
  }

private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

lifecycle_limits limits_from(uint8_t x) {
  lifecycle_limits l;
  l.linger = 1s;
  l.linger_time = (x & 2) ? 5s : duration{0};
  l.discard_limit = (x & 4) ? 300 : 0;
  l.max_pending_output = 200;
  l.idle_timeout = (x & 8) ? 10s : duration{0};
  l.write_timeout = (x & 16) ? 2s : 8s;
  if (x & 32)
    l.write_timeout = duration{0};
  l.flush_poll = 50ms;
  return l;
}

class world {
public:
  world(const uint8_t* data, size_t size)
      : in_(data, size), limits_(limits_from(size > 0 ? data[0] : 0)),
        core_(limits_, size > 0 && (data[0] & 1) != 0) {
    in_.byte();
  }

  void run() {
    take(core_.start(now_, false), cause::other);
    while (!in_.empty())
      op(in_.byte());
    // The end: the supervisor stops (if it has not), then only time passes.
    if (!stop_at_)
      stop();
    for (int i = 0; !ended_; ++i) {
      FUZZ_CHECK_MSG(i < 100000, "the core does not end after the stop");
      FUZZ_CHECK_MSG(!timers_.empty(), "not ended and nothing armed");
      fire_next();
    }
  }

private:
  // -- the ops
  // -----------------------------------------------------------------

  void op(uint8_t x) {
    switch (x % 14) {
      case 0: { // time passes: up to 1.27 s in 10 ms, or up to 63.5 s
        auto b = in_.byte();
        duration d = b < 128 ? duration{b * 10ms} : duration{(b - 128) * 500ms};
        advance_to(now_ + d);
        break;
      }
      case 1: // the earliest timer fires
        if (!timers_.empty())
          fire_next();
        break;
      case 2: // the peer sends
        if (!peer_fin_ && !peer_reset_)
          kernel_unread_ += 1 + in_.byte();
        break;
      case 3: // the event loop reads
        read(1 + in_.byte() * 2u);
        break;
      case 4: // the peer half-closes
        peer_fin_ = true;
        break;
      case 5: // the event loop sees the end of the stream
        eof();
        break;
      case 6: // the peer resets
        reset();
        break;
      case 7: // the kernel takes output
        kernel_takes(1 + in_.byte());
        break;
      case 8:
        stop();
        break;
      case 9: // a second signal
        force();
        break;
      case 10: // the behaviour's own work (a timer, message or reply)
        if (!ended_ && core_.accepts_work())
          behaviour_callback();
        break;
      case 11: // the peer reads (what the write timer's sample shows)
        peer_read_ = true;
        break;
      default: // reading and the end of the stream: the usual case
        read(1 + in_.byte() * 2u);
        eof();
        break;
    }
    check_deadline();
  }

  void advance_to(time_point t) {
    while (!timers_.empty() && earliest()->due <= t)
      fire_next();
    now_ = std::max(now_, t);
    check_deadline();
  }

  std::vector<scheduled>::iterator earliest() {
    return std::min_element(
      timers_.begin(), timers_.end(),
      [](const scheduled& a, const scheduled& b) { return a.due < b.due; });
  }

  void fire_next() {
    auto i = earliest();
    auto x = *i;
    timers_.erase(i);
    now_ = std::max(now_, x.due);
    check_deadline();
    if (x.kind == supervisor_force) {
      force();
      return;
    }
    switch (static_cast<timer_kind>(x.kind)) {
      case timer_kind::linger: {
        // As the adapter: FIONREAD only while lingering.
        size_t unread
          = core_.state() == lifecycle_state::lingering ? kernel_unread_ : 0;
        take(core_.linger_timer(now_, unread), cause::other);
        break;
      }
      case timer_kind::idle:
        take(core_.idle_timer(now_), cause::other);
        break;
      case timer_kind::write: {
        // As the adapter: asked only while the core counts output as
        // waiting; the kernel's account shows any byte the peer took since
        // the last look (and a slow peer's acknowledgements).
        auto read
          = core_.pending_output() > 0 && (peer_read_ || (in_.byte() & 1) != 0);
        peer_read_ = false;
        if (read)
          stall_start_ = now_;
        take(core_.write_timer(now_, read), cause::write_timer);
        break;
      }
      case timer_kind::flush_poll: {
        auto flushed = core_.state() == lifecycle_state::flushing
                       && (owed_ == 0 || flush_dropped_);
        take(core_.flush_poll(now_, flushed), cause::other);
        break;
      }
      case timer_kind::end_tick:
        take(core_.end_tick(), cause::other);
        break;
    }
    check_deadline();
  }

  void read(size_t n) {
    if (!scribe_ || paused_ || kernel_unread_ == 0)
      return;
    n = std::min(n, kernel_unread_);
    kernel_unread_ -= n;
    take(core_.read(now_, n), cause::read);
  }

  void eof() {
    // The end of the stream comes after the input before it, and only while
    // the event loop reads; after shut_read it comes at once.
    if (!scribe_ || paused_
        || !(eof_due_ || (peer_fin_ && kernel_unread_ == 0)))
      return;
    scribe_ = false; // CAF 0.17 drops the scribe at end-of-stream
    peer_gone_ = true;
    auto fin = core_.may_answer_after_fin() && peer_fin_ && !eof_due_;
    take(core_.peer_closed(now_, fin), cause::peer_closed);
  }

  void reset() {
    if (peer_reset_)
      return;
    peer_reset_ = true;
    kernel_unread_ = 0;
    // CAF's stream fails: a flush in progress ends (dropped).
    flush_dropped_ = true;
    if (!scribe_ && !write_scribe_)
      return;
    scribe_ = false;
    write_scribe_ = false;
    peer_gone_ = true;
    take(core_.peer_closed(now_, false), cause::peer_closed);
  }

  void kernel_takes(size_t n) {
    if (owed_ == 0 || peer_reset_)
      return;
    n = std::min(n, owed_);
    owed_ -= n;
    stall_start_ = now_;
    if (scribe_ || write_scribe_) {
      take(core_.transferred(now_, n, owed_), cause::other);
      return;
    }
    // Flushing: CAF writes on its own and reports nothing; the write
    // timer's sample shows that the peer read.
    peer_read_ = true;
  }

  void stop() {
    if (!stop_at_) {
      stop_at_ = now_;
      timers_.push_back({now_ + drain_timeout, supervisor_force});
    }
    // As the adapter: FIONREAD only while open.
    size_t unread = core_.state() == lifecycle_state::open ? kernel_unread_ : 0;
    take(core_.stop(now_, unread), cause::other);
  }

  void force() {
    size_t unread = 0;
    switch (core_.state()) {
      case lifecycle_state::open:
      case lifecycle_state::stop_waiting:
      case lifecycle_state::draining:
        unread = kernel_unread_;
        break;
      default:
        break;
    }
    take(core_.force(now_, unread), cause::force);
  }

  void behaviour_callback() {
    auto b = in_.byte();
    if (b % 16 == 15) {
      // It throws: the adapter's exception handler.
      take(core_.failed(), cause::failed);
      return;
    }
    if ((b & 4) != 0)
      core_.close_requested();
    if ((b & 8) != 0) {
      held_ = !held_;
      take(core_.hold_input(held_), cause::other);
    }
    auto busy = (b & 1) != 0;
    auto wrote = (b & 2) != 0;
    size_t queued = 0;
    if (wrote) {
      // What the kernel did not take at once waits in the framework.
      queued = in_.byte();
      if (queued > 0 && owed_ == 0)
        stall_start_ = now_;
      owed_ += queued;
    }
    take(core_.callback_done(now_, busy, wrote, queued), cause::other);
  }

  // -- carrying out actions, with the invariants
  // ---------------------------------

  void take(const lifecycle_actions& xs, cause why) {
    if (trace_)
      print(xs, why);
    if (ended_) {
      FUZZ_CHECK_MSG(xs.empty(), "an action after the end");
      return;
    }
    size_t callbacks = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      auto& x = xs[i];
      auto name = std::string{to_string(x.kind)};
      FUZZ_CHECK_MSG(!ended_, "an action after the end: " + name);
      if (released_) {
        auto ok
          = x.kind == action_kind::report_done || x.kind == action_kind::end
            || x.kind == action_kind::note
            || (x.kind == action_kind::arm && x.timer == timer_kind::end_tick);
        FUZZ_CHECK_MSG(ok, "after the socket was released: " + name);
      }
      switch (x.kind) {
        case action_kind::deliver:
        case action_kind::tell_stop:
        case action_kind::input_end:
          ++callbacks;
          FUZZ_CHECK_MSG(i + 1 == xs.size(), "a callback not last: " + name);
          break;
        default:
          break;
      }
      switch (x.kind) {
        case action_kind::deliver:
          FUZZ_CHECK_MSG(why == cause::read, "deliver without a read");
          break;
        case action_kind::tell_stop:
          FUZZ_CHECK_MSG(!stop_told_, "the stop told twice");
          FUZZ_CHECK_MSG(stop_at_.has_value() || core_.stop_requested(),
                         "the stop told without a stop");
          stop_told_ = true;
          break;
        case action_kind::input_end:
          FUZZ_CHECK_MSG(peer_fin_ && why == cause::peer_closed,
                         "input_end without the peer's FIN");
          break;
        case action_kind::pause_reading:
          paused_ = true;
          break;
        case action_kind::resume_reading:
          paused_ = false;
          break;
        case action_kind::sample_output:
          break;
        case action_kind::write_only:
          FUZZ_CHECK_MSG(
            peer_fin_ && owed_ == 0,
            "a write-only handle without FIN, or with output owed");
          if ((in_.byte() & 3) == 3) {
            take(core_.reopen_failed(now_), cause::other);
          } else {
            write_scribe_ = true;
            paused_ = false;
          }
          break;
        case action_kind::watch_flush:
          FUZZ_CHECK_MSG(owed_ > 0, "watching a flush with nothing owed");
          if ((in_.byte() & 3) == 3)
            take(core_.reopen_failed(now_), cause::other);
          break;
        case action_kind::fin:
          FUZZ_CHECK_MSG(!fin_sent_, "FIN twice");
          FUZZ_CHECK_MSG(owed_ == 0, "FIN with " + std::to_string(owed_)
                                       + " bytes not taken by the kernel");
          fin_sent_ = true;
          break;
        case action_kind::shut_read:
          FUZZ_CHECK_MSG(fin_sent_, "reading ended before the FIN");
          FUZZ_CHECK_MSG(kernel_unread_ == 0,
                         "reading ended with input unread: a reset");
          eof_due_ = true;
          break;
        case action_kind::report_done: {
          FUZZ_CHECK_MSG(!done_, "done twice");
          auto ends = false;
          for (size_t j = i + 1; j < xs.size(); ++j)
            ends = ends || xs[j].kind == action_kind::end;
          FUZZ_CHECK_MSG(fin_sent_ || released_ || ends,
                         "done before the FIN and not at the end");
          done_ = true;
          break;
        }
        case action_kind::arm:
          FUZZ_CHECK_MSG(x.delay >= duration{0}, "a negative delay");
          timers_.push_back({now_ + x.delay, static_cast<int>(x.timer)});
          break;
        case action_kind::abort:
          check_abort(x, why);
          released_ = true;
          break;
        case action_kind::close:
          FUZZ_CHECK_MSG(owed_ == 0 || peer_gone_,
                         "closed with " + std::to_string(owed_)
                           + " bytes owed to a peer still there");
          released_ = true;
          break;
        case action_kind::end:
          FUZZ_CHECK_MSG(i + 1 == xs.size(), "actions after end");
          ended_ = true;
          break;
        case action_kind::note:
          break;
      }
      // The end action, of this batch or of a nested reopen_failed's: the
      // rest of this batch is not carried out (nor by the adapter). The
      // core's state is not the test: `finish` sets it before the close,
      // `done` and end it returns are looked at.
      if (ended_)
        break;
    }
    FUZZ_CHECK_MSG(callbacks <= 1, "two behaviour callbacks in one batch");
    if (core_.state() == lifecycle_state::ended)
      ended_ = true;
    if (ended_ || callbacks == 0)
      return;
    behaviour_callback();
  }

  /// FUZZ_CONNECTION_TRACE=1: each batch on stderr, to read a crash input.
  void print(const lifecycle_actions& xs, cause why) {
    std::fprintf(stderr, "%8lld ms cause %d owed %zu unread %zu -> %s:",
                 static_cast<long long>((now_ - start_) / 1ms),
                 static_cast<int>(why), owed_, kernel_unread_,
                 to_string(core_.state()));
    for (auto& x : xs)
      std::fprintf(stderr, " %s%s%s", to_string(x.kind),
                   x.kind == action_kind::arm ? "/" : "",
                   x.kind == action_kind::arm ? to_string(x.timer) : "");
    std::fprintf(stderr, "\n");
  }

  void check_abort(const lifecycle_action& x, cause why) {
    switch (x.reason) {
      case end_reason::forced:
        FUZZ_CHECK_MSG(why == cause::force, "aborted as forced without force");
        return;
      case end_reason::failed:
        FUZZ_CHECK_MSG(why == cause::failed, "aborted as failed, no throw");
        return;
      case end_reason::write_timeout: {
        FUZZ_CHECK_MSG(why == cause::write_timer,
                       "a write-timeout abort without the write timer");
        FUZZ_CHECK_MSG(limits_.write_timeout > duration{0},
                       "a write-timeout abort with no write timeout");
        FUZZ_CHECK_MSG(owed_ > 0, "a write-timeout abort with nothing owed");
        auto stalled = now_ - stall_start_;
        FUZZ_CHECK_MSG(stalled >= limits_.write_timeout,
                       "a write-timeout abort after only "
                         + std::to_string(stalled.count()) + " ns");
        return;
      }
      case end_reason::normal:
        break;
    }
    quiesce::fuzz::fail("an abort with reason normal");
  }

  void check_deadline() {
    if (!stop_at_ || ended_)
      return;
    FUZZ_CHECK_MSG(now_ <= *stop_at_ + drain_timeout + forced_end_margin,
                   std::string{"not ended by the drain deadline; state "}
                     + to_string(core_.state()));
  }

  input in_;
  lifecycle_limits limits_;
  connection_lifecycle core_;
  const bool trace_ = std::getenv("FUZZ_CONNECTION_TRACE") != nullptr;
  const time_point start_ = time_point{} + 1h;
  time_point now_ = start_;
  std::vector<scheduled> timers_;
  std::optional<time_point> stop_at_;
  // The peer and the kernel.
  size_t kernel_unread_ = 0;
  bool peer_fin_ = false;
  bool peer_reset_ = false;
  bool peer_gone_ = false;
  /// The original scribe reads and writes; CAF drops it at end-of-stream.
  bool scribe_ = true;
  bool write_scribe_ = false;
  bool eof_due_ = false;
  bool paused_ = false;
  /// Output bytes the framework holds that the kernel has not taken.
  size_t owed_ = 0;
  bool flush_dropped_ = false;
  bool peer_read_ = false;
  /// Output began waiting, or the kernel took some, or the peer read.
  time_point stall_start_{};
  bool held_ = false;
  // What came out.
  bool stop_told_ = false;
  bool fin_sent_ = false;
  bool done_ = false;
  bool released_ = false;
  bool ended_ = false;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  world w{data, size};
  w.run();
  return 0;
}
