#define CAF_SUITE actors.services

#include "actors/services.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "caf/test/dsl.hpp"

#include "quiesce/behaviour.hpp"

using namespace quiesce;

namespace {

using namespace std::chrono_literals;

/// How a fake service answers `stop`.
enum class on_stop { quit, ignore, ignore_and_trap };

/// What the fake services saw, in order: "NAME#GEN:stop",
/// "NAME#GEN:exit".
using journal = std::shared_ptr<std::vector<std::string>>;

caf::behavior fake_service(caf::event_based_actor* self, std::string id,
                           on_stop mode, journal seen) {
  if (mode == on_stop::ignore_and_trap)
    self->set_exit_handler(
      [id, seen](caf::exit_msg&) { seen->push_back(id + ":exit"); });
  return {
    [self, id, mode, seen](stop_atom) {
      seen->push_back(id + ":stop");
      if (mode == on_stop::quit)
        self->quit();
    },
    [id](std::string& cmd) -> std::string {
      if (cmd == "crash")
        throw std::runtime_error("crash requested");
      return id;
    },
  };
}

/// A typed service, for the typed look-up.
using store_actor = caf::typed_actor<caf::reacts_to<stop_atom>>;
using other_actor = caf::typed_actor<caf::reacts_to<force_atom>>;

// An argument, though it needs none: CAF 0.17 spawns an argument-less
// function actor through a null reference (UBSan reports it).
store_actor::behavior_type fake_store(store_actor::pointer self, int) {
  return {[self](stop_atom) { self->quit(); }};
}

/// A connection_io with nothing behind it but the services: what a
/// behaviour sees of them.
class services_io : public connection_io {
public:
  services_io(caf::actor_system& sys, const service_directory* dir)
      : sys_(sys), dir_(dir) {}
  void write(std::string_view) override {}
  void start_timer(caf::timespan, uint64_t) override {}
  void close() override {}
  void hold_input(bool) override {}
  bool stop_requested() const override {
    return false;
  }
  connection_actor handle() const override {
    return {};
  }
  caf::actor_system& system() const override {
    return sys_;
  }

protected:
  const service_directory* services() const override {
    return dir_;
  }
  uint64_t new_ask(std::unique_ptr<detail::ask_callbacks>) override {
    return 0;
  }
  std::unique_ptr<detail::ask_callbacks> take_ask(uint64_t) override {
    return nullptr;
  }
  void ask_done() override {}
  uint64_t new_request(uint64_t) override {
    return 0;
  }
  void send_request(uint64_t, const caf::actor&, caf::timespan, caf::message,
                    caf::behavior) override {}
  void reply_arrived(uint64_t, caf::expected<caf::message>) override {}

private:
  caf::actor_system& sys_;
  const service_directory* dir_;
};

/// The same without services: connection_io's default.
class bare_io : public services_io {
public:
  using services_io::services_io;

protected:
  const service_directory* services() const override {
    return connection_io::services();
  }
};

struct fixture : test_coordinator_fixture<> {
  journal seen = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<service_directory> dir
    = std::make_shared<service_directory>();
  std::vector<std::string> failures;
  services_actor svcs;

  /// A declaration of a fake service; its actors are NAME#1, NAME#2, ...
  service_declaration fake(const std::string& name, on_stop mode,
                           service_options opts = {}) {
    auto spawns = std::make_shared<int>(0);
    return {name,
            [this, name, mode, spawns](caf::actor_system& host) {
              return host.spawn(fake_service,
                                name + "#" + std::to_string(++*spawns), mode,
                                seen);
            },
            typeid(caf::actor), opts};
  }

  /// Spawns the services actor with `decls` and starts them; returns the
  /// reply to `start` (empty: all started).
  std::string start(std::vector<service_declaration> decls) {
    services_config svc_cfg;
    svc_cfg.services = std::move(decls);
    svc_cfg.directory = dir;
    svc_cfg.on_failure
      = [this](const std::string& why) { failures.push_back(why); };
    svcs = sys.spawn(services_main, std::move(svc_cfg));
    self->send(svcs, start_atom_v);
    sched.run();
    std::string result = "no reply";
    self->receive([&](std::string& x) { result = x; }, caf::after(0s) >> [] {});
    return result;
  }

  void stop() {
    self->send(svcs, stop_atom_v);
    sched.run();
  }

  /// The report the services actor sent (99 stopped and forced if none).
  services_report report() {
    services_report result;
    result.stopped = result.forced = 99;
    self->receive([&](services_report& x) { result = x; },
                  caf::after(0s) >> [] {});
    return result;
  }

  /// The service `name` answers with its id ("NAME#GEN").
  std::string ask(const std::string& name) {
    auto svc = dir->find(name);
    if (!svc)
      return "no service";
    self->send(svc, std::string{"ask"});
    sched.run();
    std::string result = "no reply";
    self->receive([&](std::string& x) { result = x; }, caf::after(0s) >> [] {});
    return result;
  }

  void crash(const std::string& name) {
    caf::anon_send(dir->find(name), std::string{"crash"});
    sched.run();
  }

  bool alive(const caf::actor& x) {
    return x && !x->getf(caf::abstract_actor::is_terminated_flag);
  }

  ~fixture() {
    // Nothing may outlive the test: the system would wait for it.
    for (auto& name : {"a", "b", "c", "t"})
      if (auto x = dir->find(name))
        caf::anon_send_exit(x, caf::exit_reason::kill);
    if (svcs)
      caf::anon_send_exit(svcs, caf::exit_reason::kill);
    sched.run();
  }
};

services_report make_report(uint32_t stopped, uint32_t forced, bool failed) {
  services_report x;
  x.stopped = stopped;
  x.forced = forced;
  x.failed = failed;
  return x;
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(services_tests, fixture)

CAF_TEST(start spawns in order and stop goes in reverse) {
  CAF_CHECK_EQUAL(start({fake("a", on_stop::quit), fake("b", on_stop::quit),
                         fake("c", on_stop::quit)}),
                  "");
  CAF_CHECK_EQUAL(ask("a"), "a#1");
  CAF_CHECK_EQUAL(ask("c"), "c#1");
  CAF_CHECK(!dir->find("nope"));
  stop();
  CAF_CHECK_EQUAL(
    *seen, (std::vector<std::string>{"c#1:stop", "b#1:stop", "a#1:stop"}));
  CAF_CHECK_EQUAL(report(), make_report(3, 0, false));
  CAF_CHECK(!alive(caf::actor_cast<caf::actor>(svcs)));
  // Cleared: no handle outlives the actor system.
  CAF_CHECK(!dir->find("a"));
}

CAF_TEST(a service slow to stop is forced at its deadline and not before) {
  service_options opts;
  opts.stop_deadline = 300ms;
  start({fake("a", on_stop::quit), fake("b", on_stop::ignore, opts)});
  auto b = dir->find("b");
  stop();
  CAF_CHECK_EQUAL(*seen, (std::vector<std::string>{"b#1:stop"}));
  sched.advance_time(299ms);
  sched.run();
  CAF_CHECK(alive(b));
  CAF_CHECK(alive(caf::actor_cast<caf::actor>(svcs)));
  sched.advance_time(1ms);
  sched.run();
  CAF_CHECK(!alive(b));
  // Then the next one, which stops in time.
  CAF_CHECK_EQUAL(*seen, (std::vector<std::string>{"b#1:stop", "a#1:stop"}));
  CAF_CHECK_EQUAL(report(), make_report(1, 1, false));
}

CAF_TEST(a service that traps the forced exit is killed) {
  service_options opts;
  opts.stop_deadline = 1s;
  start({fake("t", on_stop::ignore_and_trap, opts)});
  auto t = dir->find("t");
  stop();
  sched.advance_time(1s);
  sched.run();
  CAF_CHECK_EQUAL(*seen, (std::vector<std::string>{"t#1:stop", "t#1:exit"}));
  CAF_CHECK(alive(t));
  sched.advance_time(250ms);
  sched.run();
  CAF_CHECK(!alive(t));
  CAF_CHECK_EQUAL(report(), make_report(0, 1, false));
}

CAF_TEST(a second signal forces the service being stopped at once) {
  start({fake("a", on_stop::ignore), fake("b", on_stop::ignore)});
  auto a = dir->find("a");
  auto b = dir->find("b");
  stop();
  self->send(svcs, force_atom_v);
  sched.run();
  CAF_CHECK(!alive(a));
  CAF_CHECK(!alive(b));
  CAF_CHECK_EQUAL(report(), make_report(0, 2, false));
}

CAF_TEST(a crashed service is restarted and found by later lookups) {
  start({fake("a", on_stop::quit)});
  auto old = dir->find("a");
  CAF_CHECK_EQUAL(ask("a"), "a#1");
  crash("a");
  CAF_CHECK(!alive(old));
  CAF_CHECK(alive(dir->find("a")));
  CAF_CHECK(dir->find("a") != old);
  CAF_CHECK_EQUAL(ask("a"), "a#2");
  CAF_CHECK(failures.empty());
  stop();
  CAF_CHECK_EQUAL(report(), make_report(1, 0, false));
}

CAF_TEST(more than five restarts within ten seconds fail) {
  start({fake("a", on_stop::quit)});
  for (int i = 0; i < 5; ++i) {
    crash("a");
    CAF_CHECK(failures.empty());
  }
  CAF_CHECK_EQUAL(ask("a"), "a#6");
  crash("a");
  CAF_REQUIRE_EQUAL(failures.size(), 1u);
  CAF_CHECK_NOT_EQUAL(failures[0].find("after 5 restarts within 10s"),
                      std::string::npos);
  CAF_CHECK(!alive(dir->find("a")));
  stop();
  CAF_CHECK_EQUAL(report(), make_report(0, 0, true));
}

CAF_TEST(restarts older than the window do not count) {
  start({fake("a", on_stop::quit)});
  for (int i = 0; i < 5; ++i)
    crash("a");
  sched.advance_time(10s);
  crash("a");
  CAF_CHECK(failures.empty());
  CAF_CHECK_EQUAL(ask("a"), "a#7");
}

CAF_TEST(a crash under the stop_server policy fails without a restart) {
  service_options opts;
  opts.on_crash = crash_policy::stop_server;
  start({fake("a", on_stop::quit, opts), fake("b", on_stop::quit)});
  crash("a");
  CAF_REQUIRE_EQUAL(failures.size(), 1u);
  CAF_CHECK_NOT_EQUAL(failures[0].find("its crash policy stops the server"),
                      std::string::npos);
  CAF_CHECK_EQUAL(ask("a"), "no reply");
  stop();
  CAF_CHECK_EQUAL(*seen, (std::vector<std::string>{"b#1:stop"}));
  CAF_CHECK_EQUAL(report(), make_report(1, 0, true));
}

CAF_TEST(a service crashing while another stops is restarted and stopped) {
  start({fake("a", on_stop::quit), fake("b", on_stop::ignore)});
  stop();
  crash("a");
  CAF_CHECK_EQUAL(ask("a"), "a#2");
  CAF_CHECK(sched.trigger_timeout()); // b's deadline
  sched.run();
  CAF_CHECK_EQUAL(*seen, (std::vector<std::string>{"b#1:stop", "a#2:stop"}));
  CAF_CHECK_EQUAL(report(), make_report(1, 1, false));
}

CAF_TEST(a service that cannot start is an error and the others stop) {
  service_declaration broken{"b",
                             [](caf::actor_system&) -> caf::actor {
                               throw std::runtime_error("no backend");
                             },
                             typeid(caf::actor),
                             {}};
  service_declaration none{"c",
                           [](caf::actor_system&) { return caf::actor{}; },
                           typeid(caf::actor),
                           {}};
  CAF_CHECK_EQUAL(start({fake("a", on_stop::quit), broken, none}),
                  "service 'b' failed to start: its spawn function threw: "
                  "no backend");
  CAF_CHECK(!dir->find("b"));
  stop();
  CAF_CHECK_EQUAL(*seen, (std::vector<std::string>{"a#1:stop"}));
  CAF_CHECK_EQUAL(report(), make_report(1, 0, false));
}

CAF_TEST(a spawn function returning no actor is an error) {
  service_declaration none{"c",
                           [](caf::actor_system&) { return caf::actor{}; },
                           typeid(caf::actor),
                           {}};
  CAF_CHECK_EQUAL(start({none}),
                  "service 'c' failed to start: its spawn function returned "
                  "no actor");
}

CAF_TEST(typed lookups check the declared handle type) {
  service_declaration typed{"t",
                            [](caf::actor_system& host) {
                              return caf::actor_cast<caf::actor>(
                                host.spawn(fake_store, 0));
                            },
                            typeid(store_actor),
                            {}};
  start({typed});
  CAF_CHECK(dir->find("t"));
  CAF_CHECK(dir->find("t", typeid(store_actor)));
  CAF_CHECK(dir->find("t", typeid(caf::actor)));
  CAF_CHECK(!dir->find("t", typeid(other_actor)));
  // As a behaviour looks them up.
  services_io io{sys, dir.get()};
  CAF_CHECK(io.service("t") == dir->find("t"));
  CAF_CHECK(io.service<store_actor>("t"));
  CAF_CHECK(!io.service<other_actor>("t"));
  CAF_CHECK(!io.service("nope"));
  bare_io bare{sys, dir.get()};
  CAF_CHECK(!bare.service("t"));
  stop();
  CAF_CHECK_EQUAL(report(), make_report(1, 0, false));
}

CAF_TEST_FIXTURE_SCOPE_END()
