#define CAF_SUITE actors.lean_scheduler

#include "actors/lean_scheduler.hpp"

#include <chrono>
#include <vector>

#include "caf/all.hpp"
#include "caf/test/unit_test.hpp"

using namespace quiesce;

namespace {

using namespace std::chrono_literals;

/// Never answers: its requests can only end by their timeout.
struct silent_state {
  std::vector<caf::response_promise> held;
};

caf::behavior silent(caf::stateful_actor<silent_state>* self) {
  return {
    [self](int) -> caf::result<int> {
      self->state.held.push_back(self->make_response_promise());
      return self->state.held.back();
    },
  };
}

/// Quits on its receive timeout, telling `observer`.
caf::behavior waits_then_quits(caf::event_based_actor* self,
                               caf::actor observer) {
  return {
    [](int) {},
    caf::after(std::chrono::milliseconds(10)) >>
      [self, observer] {
        self->send(observer, caf::atom("timedout"));
        self->quit();
      },
  };
}

/// Runs `body` in a real actor system built from `cfg` with the lean
/// scheduler; the system ends (and must not hang) after it.
template <class Body>
void with_system(caf::actor_system_config& cfg, Body body) {
  use_lean_scheduler(cfg);
  caf::actor_system sys{cfg};
  body(sys);
}

/// The clock's timeouts and delayed messages, through the lean clock.
void check_timers(caf::actor_system& sys) {
  CAF_REQUIRE(uses_lean_clock(sys));
  caf::scoped_actor self{sys};
  // A request timeout (set_request_timeout).
  auto quiet = sys.spawn(silent);
  bool timed_out = false;
  self->request(quiet, 20ms, 1)
    .receive(
      [](int) { CAF_FAIL("a silent actor answered"); },
      [&](caf::error& err) { timed_out = err == caf::sec::request_timeout; });
  CAF_CHECK(timed_out);
  // A receive timeout (set_ordinary_timeout) fires, and the actor's end
  // passes its cancellation on.
  sys.spawn(waits_then_quits, caf::actor{self});
  bool fired = false;
  self->receive([&](caf::atom_value x) { fired = x == caf::atom("timedout"); });
  CAF_CHECK(fired);
  // A delayed message (not kept by actor).
  self->delayed_send(self, 5ms, caf::atom("later"));
  bool later = false;
  self->receive([&](caf::atom_value x) { later = x == caf::atom("later"); });
  CAF_CHECK(later);
  // Actors without any timer end in numbers without the clock.
  for (int i = 0; i < 1000; ++i)
    sys.spawn([](caf::event_based_actor* a) { a->quit(); });
  self->send_exit(quiet, caf::exit_reason::user_shutdown);
}

} // namespace

CAF_TEST(work stealing keeps every timer) {
  caf::actor_system_config cfg;
  with_system(cfg, check_timers);
}

CAF_TEST(work sharing keeps every timer) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  with_system(cfg, check_timers);
}

CAF_TEST(another scheduler stays as CAF makes it) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("testing"));
  use_lean_scheduler(cfg);
  CAF_CHECK(cfg.module_factories.empty());
}
