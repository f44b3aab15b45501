#include "actors/timer_relay.hpp"

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
      [](caf::actor_addr& target, caf::message& msg) {
        if (auto dest = caf::actor_cast<caf::actor>(target))
          caf::anon_send(dest, std::move(msg));
      },
    };
  }
};

} // namespace

timer_relay spawn_timer_relay(caf::actor_system& sys) {
  return sys.spawn<relay_actor, caf::hidden>();
}

void send_later(const timer_relay& relay, caf::timespan delay,
                const caf::actor_addr& target, caf::message msg) {
  caf::delayed_anon_send(relay, delay, target, std::move(msg));
}

} // namespace quiesce
