#include "actors/lean_scheduler.hpp"

#include <mutex>
#include <thread>
#include <unordered_set>

#include "caf/abstract_actor.hpp"
#include "caf/actor_system.hpp"
#include "caf/atom.hpp"
#include "caf/defaults.hpp"
#include "caf/detail/set_thread_name.hpp"
#include "caf/detail/thread_safe_actor_clock.hpp"
#include "caf/policy/work_sharing.hpp"
#include "caf/policy/work_stealing.hpp"
#include "caf/scheduler/coordinator.hpp"

namespace quiesce {

namespace {

/// CAF's clock, except that the cancellation of an ended actor's timeouts
/// is passed on only for an actor that set one (see the file's comment).
class lean_clock : public caf::detail::thread_safe_actor_clock {
public:
  using super = caf::detail::thread_safe_actor_clock;

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self,
                            caf::atom_value type, uint64_t id) override {
    note(self);
    super::set_ordinary_timeout(t, self, type, id);
  }

  void set_request_timeout(time_point t, caf::abstract_actor* self,
                           caf::message_id id) override {
    note(self);
    super::set_request_timeout(t, self, id);
  }

  void set_multi_timeout(time_point t, caf::abstract_actor* self,
                         caf::atom_value type, uint64_t id) override {
    note(self);
    super::set_multi_timeout(t, self, type, id);
  }

  void cancel_timeouts(caf::abstract_actor* self) override {
    // Called once per actor, at its end: the note goes with it.
    bool any = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      any = timed_.erase(self->id()) > 0;
    }
    if (any)
      super::cancel_timeouts(self);
  }

private:
  void note(caf::abstract_actor* self) {
    std::lock_guard<std::mutex> guard{mtx_};
    timed_.insert(self->id());
  }

  std::mutex mtx_;
  /// The actors that have set a timeout the clock keeps by actor.
  std::unordered_set<caf::actor_id> timed_;
};

/// CAF's coordinator for `Policy` with the lean clock and a thread of its
/// own for it. The coordinator's built-in clock stays unused: its thread
/// waits without a deadline until the coordinator stops it.
template <class Policy>
class lean_coordinator : public caf::scheduler::coordinator<Policy> {
public:
  using super = caf::scheduler::coordinator<Policy>;

  using super::super;

  lean_clock& clock() noexcept override {
    return clock_;
  }

protected:
  void start() override {
    // Before the coordinator's start-up, which spawns actors that may set
    // timers already.
    clock_thread_ = std::thread{[this] {
      caf::detail::set_thread_name("caf.clock");
      this->system().thread_started();
      clock_.run_dispatch_loop();
      this->system().thread_terminates();
    }};
    super::start();
  }

  void stop() override {
    // Every worker and utility actor has ended in there.
    super::stop();
    clock_.cancel_dispatch_loop();
    clock_thread_.join();
  }

private:
  lean_clock clock_;
  std::thread clock_thread_;
};

template <class Policy>
caf::actor_system::module* make_coordinator(caf::actor_system& sys) {
  return new lean_coordinator<Policy>(sys);
}

} // namespace

bool uses_lean_clock(caf::actor_system& sys) {
  return dynamic_cast<lean_clock*>(&sys.clock()) != nullptr;
}

void use_lean_scheduler(caf::actor_system_config& cfg) {
  namespace defaults = caf::defaults::scheduler;
  if (caf::get_or(cfg, "scheduler.enable-profiling", false))
    return;
  auto policy = caf::get_or(cfg, "scheduler.policy", defaults::policy);
  if (policy == caf::atom("stealing"))
    cfg.module_factories.push_back(
      make_coordinator<caf::policy::work_stealing>);
  else if (policy == caf::atom("sharing"))
    cfg.module_factories.push_back(make_coordinator<caf::policy::work_sharing>);
}

} // namespace quiesce
