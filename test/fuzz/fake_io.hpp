#pragma once

// A connection_io for the fuzz targets: no actor system, no socket. It
// records what a behaviour does (writes, timers, close, hold) and runs its
// timers on a virtual clock, earliest deadline first (ties in the order they
// were started), as the connection actor's clock does; now() reads that
// clock. handle(), system() and requests abort: the behaviours fuzzed here
// use none of them.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quiesce/behaviour.hpp"
#include "test/fuzz/check.hpp"

namespace quiesce::fuzz {

class fake_io final : public connection_io {
public:
  struct timer {
    /// Virtual milliseconds (caf::timespan counts nanoseconds; a /delay of
    /// 10^12 ms would overflow a nanosecond clock after a few).
    uint64_t deadline_ms;
    uint64_t seq;
    uint64_t token;
  };

  std::string out;
  /// Where each write ends in `out`.
  std::vector<size_t> write_ends;
  /// Bytes written after close(): a bug (the framework would lose them).
  size_t writes_after_close = 0;
  int closes = 0;
  bool held = false;
  /// What stop_requested() says.
  bool stop_was_requested = false;
  uint64_t now_ms = 0;
  std::vector<timer> timers;

  void write(std::string_view bytes) override {
    if (closes > 0)
      writes_after_close += bytes.size() + 1;
    out.append(bytes);
    write_ends.push_back(out.size());
  }

  void start_timer(caf::timespan delay, uint64_t token) override {
    FUZZ_CHECK(delay.count() >= 0);
    auto ms = static_cast<uint64_t>(delay.count()) / 1000000u;
    timers.push_back(timer{now_ms + ms, next_seq_++, token});
  }

  /// The virtual clock, as the timers count it.
  caf::actor_clock::time_point now() const override {
    return caf::actor_clock::time_point{} + std::chrono::milliseconds(now_ms);
  }

  void close() override {
    ++closes;
  }

  void hold_input(bool hold) override {
    held = hold;
  }

  bool stop_requested() const override {
    return stop_was_requested;
  }

  connection_actor handle() const override {
    fail("handle() called");
  }

  caf::actor_system& system() const override {
    fail("system() called");
  }

  /// The timer that fires next (timers must not be empty).
  const timer& next_timer() const {
    return timers[next_index()];
  }

  /// Fires the earliest timer; false when none is pending.
  bool fire_next(behaviour& b) {
    if (timers.empty())
      return false;
    auto best = next_index();
    auto t = timers[best];
    timers.erase(timers.begin() + static_cast<std::ptrdiff_t>(best));
    FUZZ_CHECK_MSG(t.deadline_ms >= now_ms, "a timer fired out of order");
    now_ms = t.deadline_ms;
    b.on_timer(t.token, *this);
    return true;
  }

private:
  size_t next_index() const {
    size_t best = 0;
    for (size_t i = 1; i < timers.size(); ++i)
      if (timers[i].deadline_ms < timers[best].deadline_ms
          || (timers[i].deadline_ms == timers[best].deadline_ms
              && timers[i].seq < timers[best].seq))
        best = i;
    return best;
  }

protected:
  uint64_t new_ask(std::unique_ptr<detail::ask_callbacks>) override {
    fail("new_ask() called");
    return 0;
  }

  std::unique_ptr<detail::ask_callbacks> take_ask(uint64_t) override {
    fail("take_ask() called");
    return nullptr;
  }

  void ask_done() override {
    fail("ask_done() called");
  }

  uint64_t new_request(uint64_t) override {
    fail("new_request() called");
    return 0;
  }

  void send_request(uint64_t, const caf::actor&, caf::timespan, caf::message,
                    caf::behavior) override {
    fail("send_request() called");
  }

  void reply_arrived(uint64_t, caf::expected<caf::message>) override {
    fail("reply_arrived() called");
  }

private:
  uint64_t next_seq_ = 0;
};

} // namespace quiesce::fuzz
