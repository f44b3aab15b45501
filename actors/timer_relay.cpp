#include "actors/timer_relay.hpp"

#include <map>
#include <set>
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
        timers_.emplace(at, entry{std::move(target), std::move(msg)});
        arm(at);
      },
      [this](relay_tick_atom) {
        // Wake-ups come in the order of their times: this one is the
        // earliest under way.
        if (!wakeups_.empty())
          wakeups_.erase(wakeups_.begin());
        auto now = clock().now();
        while (!timers_.empty() && timers_.begin()->first <= now) {
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

  std::multimap<time_point, entry> timers_;
  /// The times of the wake-ups under way.
  std::set<time_point> wakeups_;
};

} // namespace

timer_relay spawn_timer_relay(caf::actor_system& sys) {
  return sys.spawn<relay_actor, caf::hidden>();
}

void send_later(const timer_relay& relay, caf::timespan delay,
                const caf::actor_addr& target, caf::message msg) {
  caf::anon_send(relay, delay, target, std::move(msg));
}

} // namespace quiesce
