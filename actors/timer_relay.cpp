#include "actors/timer_relay.hpp"

#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "caf/actor_cast.hpp"
#include "caf/actor_system.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "caf/send.hpp"
#include "caf/spawn_options.hpp"

namespace quiesce {

namespace {

/// A class, not a function: CAF 0.17 spawns an argument-less function actor
/// through a null pointer (UBSan reports it).
class relay_actor : public timer_relay::base {
public:
  using timer_relay::base::base;

  behavior_type make_behavior() override {
    return {
      [this](caf::timespan delay, caf::actor_addr& target, caf::message& msg) {
        auto at = clock().now() + delay;
        auto i = timers_.emplace(at, entry{target, std::move(msg)});
        by_target_.emplace(std::move(target), i);
        arm(at);
      },
      [this](relay_cancel_atom, const caf::actor_addr& target) {
        auto range = by_target_.equal_range(target);
        for (auto j = range.first; j != range.second; ++j)
          timers_.erase(j->second);
        by_target_.erase(range.first, range.second);
        // A wake-up under way may now find nothing due: harmless.
      },
      [this](relay_tick_atom) {
        // Wake-ups come in the order of their times: this one is the
        // earliest under way.
        if (!wakeups_.empty())
          wakeups_.erase(wakeups_.begin());
        auto now = clock().now();
        while (!timers_.empty() && timers_.begin()->first <= now) {
          forget(timers_.begin());
          auto node = timers_.extract(timers_.begin());
          auto& due = node.mapped();
          if (auto dest = caf::actor_cast<caf::actor>(due.target))
            caf::anon_send(dest, std::move(due.msg));
        }
        if (!timers_.empty())
          arm(timers_.begin()->first);
      },
    };
  }

private:
  struct entry {
    caf::actor_addr target;
    caf::message msg;
  };

  using time_point = caf::actor_clock::time_point;

  /// Makes sure a wake-up comes by `at`. One under way for `at` or earlier
  /// covers it; one for later stays under way (a timer is waiting for it:
  /// nothing cancels timers). So every wake-up has a timer to deliver, and
  /// a test clock fires exactly one wake-up per distinct deadline.
  void arm(time_point at) {
    if (!wakeups_.empty() && *wakeups_.begin() <= at)
      return;
    wakeups_.insert(at);
    delayed_send(this, std::max(at - clock().now(), caf::timespan{0}),
                 relay_tick_atom::value);
  }

  using timer_map = std::multimap<time_point, entry>;

  /// Removes the index entry of the timer at `i`.
  void forget(timer_map::iterator i) {
    auto range = by_target_.equal_range(i->second.target);
    for (auto j = range.first; j != range.second; ++j) {
      if (j->second == i) {
        by_target_.erase(j);
        return;
      }
    }
  }

  timer_map timers_;
  /// The timers of each target (a few at most), for cancel_timers.
  std::unordered_multimap<caf::actor_addr, timer_map::iterator> by_target_;
  /// The times of the wake-ups under way.
  std::set<time_point> wakeups_;
};

} // namespace

timer_relay spawn_timer_relay(caf::actor_system& sys) {
  return sys.spawn<relay_actor, caf::hidden>();
}

void cancel_timers(const timer_relay& relay, const caf::actor_addr& target) {
  caf::anon_send(relay, relay_cancel_atom::value, target);
}

void send_later(const timer_relay& relay, caf::timespan delay,
                const caf::actor_addr& target, caf::message msg) {
  caf::anon_send(relay, delay, target, std::move(msg));
}

} // namespace quiesce
