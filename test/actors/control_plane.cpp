// The control plane between a master and its workers over BASP
// (actors/master.hpp, actors/control_plane.hpp). Real actor systems in one
// test process, each with CAF's real middleman, talking over loopback TCP:
// one plays the master process, the others worker processes, each with a
// stand-in supervisor that answers `stop` with a given report.
//
// Every wait is on a message (a reply, an observer event, a down message)
// or a socket's end, with a watchdog that fails the test instead of
// hanging. Each test ends with every actor exited (~actor_system blocks
// while one lives): the master quits after its stop, each stand-in after
// answering one, and the ones that never get a stop are ended by the test.

#define CAF_SUITE actors.control_plane

#include "caf/test/unit_test.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"
#include "caf/send.hpp"

#include "actors/control_plane.hpp"
#include "actors/master.hpp"
#include "support/process.hpp"

using namespace quiesce;
namespace qt = quiesce::test;

namespace {

using namespace std::chrono_literals;

/// The watchdog of every wait: generous, a wait ends at its event.
constexpr auto patience = 30s;

/// A stand-in supervisor received `stop` (stand-in -> probe).
using got_stop_atom = caf::atom_constant<caf::atom("got_stop")>;
/// A stand-in supervisor received `force` (stand-in -> probe).
using got_force_atom = caf::atom_constant<caf::atom("got_force")>;
/// A stand-in supervisor received `retire` (stand-in -> probe).
using got_retire_atom = caf::atom_constant<caf::atom("got_retir")>;
/// A stand-in supervisor received `closing` (stand-in -> probe).
using got_closing_atom = caf::atom_constant<caf::atom("got_closng")>;
/// A stand-in supervisor answered `connections` (stand-in -> probe).
using got_conns_atom = caf::atom_constant<caf::atom("got_conns")>;

/// One process: an actor system with the middleman and the control
/// plane's types.
struct node {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  node() : sys{prepared(cfg)} {
    // nop
  }

  static caf::actor_system_config& prepared(caf::actor_system_config& cfg) {
    cfg.load<caf::io::middleman>();
    add_control_plane_types(cfg);
    return cfg;
  }
};

struct stand_in_config {
  uint32_t id = 0;
  /// What it answers to `stop`.
  shutdown_report report;
  /// Answer `stop` only once `force` has come (a drain that needs the
  /// second signal); the answer then counts one forced connection more.
  bool hold_until_force = false;
  /// Never answer `stop` (a worker that hangs until it dies).
  bool never_answer = false;
  /// Told `got_stop`/`got_force`/`got_retir`/`got_conns` with the id.
  caf::actor probe;
  /// Quit after answering `retire` (a retired worker that has drained).
  bool quit_after_retire = true;
  /// What it answers to `connections`.
  uint32_t connections = 0;
};

struct stand_in_state {
  static inline const char* name = "test.stand_in";
  stand_in_config cfg;
  bool forced = false;
  caf::typed_response_promise<shutdown_report> pending;
  bool holding = false;
};

using stand_in_pointer = supervisor_actor::stateful_pointer<stand_in_state>;

void answer(stand_in_pointer self,
            caf::typed_response_promise<shutdown_report> rp) {
  auto report = self->state.cfg.report;
  if (self->state.forced && self->state.cfg.hold_until_force)
    ++report.forced;
  rp.deliver(report);
  self->quit();
}

/// A worker's supervisor as the master sees it, without connections.
supervisor_actor::behavior_type stand_in(stand_in_pointer self,
                                         stand_in_config cfg) {
  self->state.cfg = std::move(cfg);
  return {
    [](connected_atom, connection_actor&) {},
    [](done_atom) {},
    [self](stop_atom) {
      auto& st = self->state;
      caf::anon_send(st.cfg.probe, got_stop_atom::value, st.cfg.id);
      auto rp = self->make_response_promise<shutdown_report>();
      if (st.cfg.never_answer || (st.cfg.hold_until_force && !st.forced)) {
        st.pending = rp;
        st.holding = true;
      } else {
        answer(self, rp);
      }
      return rp;
    },
    [self](force_atom) {
      auto& st = self->state;
      st.forced = true;
      caf::anon_send(st.cfg.probe, got_force_atom::value, st.cfg.id);
      if (st.holding && !st.cfg.never_answer) {
        st.holding = false;
        answer(self, st.pending);
      }
    },
    [](drain_timeout_atom) {},
    [self](closing_atom) {
      caf::anon_send(self->state.cfg.probe, got_closing_atom::value,
                     self->state.cfg.id);
    },
    [self](connections_atom) {
      auto& st = self->state;
      caf::anon_send(st.cfg.probe, got_conns_atom::value, st.cfg.id);
      return st.cfg.connections;
    },
    [self](retire_atom) {
      auto& st = self->state;
      caf::anon_send(st.cfg.probe, got_retire_atom::value, st.cfg.id);
      auto rp = self->make_response_promise<shutdown_report>();
      rp.deliver(st.cfg.report);
      if (st.cfg.quit_after_retire)
        self->quit();
      return rp;
    },
    [self](metrics_atom) {
      metrics_snapshot x;
      x.accepted = self->state.cfg.id;
      return x;
    },
  };
}

stand_in_config plain(uint32_t id, shutdown_report report) {
  stand_in_config x;
  x.id = id;
  x.report = report;
  return x;
}

/// A stand-in that answers `stop` only once forced.
stand_in_config holding(uint32_t id, shutdown_report report) {
  auto x = plain(id, report);
  x.hold_until_force = true;
  return x;
}

bool is_registered(const master_event& x) {
  return x.what == master_event::kind::registered;
}

/// The master's process with its observer and the test's own actors.
struct fixture {
  node master_node;
  /// Receives the master's observer events.
  caf::scoped_actor events{master_node.sys};
  /// Receives the stand-ins' `got_stop`/`got_force`.
  caf::scoped_actor probe{master_node.sys};
  /// Sends requests to the master.
  caf::scoped_actor client{master_node.sys};
  /// Monitors the actors that must be gone at the end.
  caf::scoped_actor watcher{master_node.sys};
  std::string secret = make_secret();
  published_master master;

  fixture() {
    start(patience);
  }

  ~fixture() {
    // Only after a failed check is it still running: the actor system
    // could not end with it.
    caf::anon_send_exit(master.handle, caf::exit_reason::kill);
  }

  /// Starts a master with `stop_deadline` (the fixture's, at first) and
  /// `poll_interval` (master_config's default if not set).
  void start(caf::timespan stop_deadline,
             std::optional<caf::timespan> poll_interval = std::nullopt) {
    master_config cfg;
    cfg.secret = secret;
    cfg.expected = {1, 2, 3};
    cfg.stop_deadline = stop_deadline;
    if (poll_interval)
      cfg.poll_interval = *poll_interval;
    cfg.observer = [ev = caf::actor{events}](const master_event& x) {
      caf::anon_send(ev, x);
    };
    auto started = start_master(master_node.sys, std::move(cfg));
    CAF_REQUIRE(started);
    master = *started;
    CAF_REQUIRE_NOT_EQUAL(master.port, 0u);
    watcher->monitor(master.handle);
  }

  /// A stand-in supervisor in `w`, monitored by the watcher.
  supervisor_actor spawn_stand_in(node& w, stand_in_config cfg) {
    cfg.probe = caf::actor{probe};
    auto sup = w.sys.spawn(stand_in, std::move(cfg));
    watcher->monitor(sup);
    return sup;
  }

  /// Registers `sup` from `w` with `key` as worker `id`; the error text, or
  /// empty on success.
  std::string register_as(node& w, const supervisor_actor& sup, uint32_t id,
                          const std::string& key) {
    auto res = register_with_master(w.sys, master.port, key, id, sup);
    return res ? std::string{} : to_string(res.error());
  }

  /// Registers `sup` from `w` as worker `id` with the right secret and
  /// waits for the master's `registered` event.
  void join(node& w, const supervisor_actor& sup, uint32_t id) {
    CAF_CHECK_EQUAL(register_as(w, sup, id, secret), "");
    CAF_CHECK_EQUAL(wait_event(is_registered).worker, id);
  }

  /// The next observer event that `pred` accepts; earlier ones are skipped.
  template <class Predicate>
  master_event wait_event(Predicate pred) {
    master_event found;
    bool done = false;
    while (!done) {
      events->receive(
        [&](master_event& x) {
          if (pred(x)) {
            found = x;
            done = true;
          }
        },
        caf::after(patience) >> [&] { CAF_FAIL("no master event in time"); });
    }
    return found;
  }

  uint32_t worker_count() {
    uint32_t result = 0;
    client->request(master.handle, patience, workers_atom_v)
      .receive([&](uint32_t n) { result = n; },
               [&](caf::error& err) { CAF_FAIL(to_string(err)); });
    return result;
  }

  shutdown_report stop() {
    shutdown_report result;
    client->request(master.handle, patience, stop_atom_v)
      .receive([&](shutdown_report& x) { result = x; },
               [&](caf::error& err) { CAF_FAIL(to_string(err)); });
    return result;
  }

  /// The answer to the `stop` that the client sent before.
  shutdown_report stop_answer() {
    shutdown_report result;
    client->receive([&](shutdown_report& x) { result = x; },
                    caf::after(patience) >>
                      [] { CAF_FAIL("the stop did not complete"); });
    return result;
  }

  /// Waits for `what` (got_stop or got_force) from each of `ids`.
  template <class Atom>
  void wait_probe(Atom what, std::set<uint32_t> ids) {
    while (!ids.empty()) {
      probe->receive(
        [&](Atom, uint32_t id) { CAF_CHECK_EQUAL(ids.erase(id), 1u); },
        caf::after(patience) >>
          [&] {
            CAF_FAIL("not every stand-in was told " << to_string(what.value));
          });
    }
  }

  /// Waits for `got_stop` from each of `ids` and fails on any other word of
  /// a stand-in before it (`got_force`, `got_retir`, a second `got_stop`):
  /// a stand-in tells the probe in the order it got its messages. Answers
  /// to the poll (`got_conns`) do not count.
  void expect_only_stops(std::set<uint32_t> ids) {
    while (!ids.empty()) {
      probe->receive(
        [&](got_stop_atom, uint32_t id) {
          if (ids.erase(id) == 0)
            CAF_ERROR("worker " << id << " got stop twice");
        },
        [&](got_force_atom, uint32_t id) {
          CAF_ERROR("worker " << id << " got force");
        },
        [&](got_retire_atom, uint32_t id) {
          CAF_ERROR("worker " << id << " got retire");
        },
        [&](got_closing_atom, uint32_t id) {
          CAF_ERROR("worker " << id << " got closing");
        },
        [&](got_conns_atom, uint32_t) {
          // a poll
        },
        caf::after(patience) >>
          [&] { CAF_FAIL("not every stand-in was told stop"); });
    }
  }

  /// Waits until every actor the watcher monitors has ended.
  void wait_all_gone(size_t count) {
    for (size_t i = 0; i < count; ++i)
      watcher->receive([](caf::down_msg&) {},
                       caf::after(patience) >>
                         [] { CAF_FAIL("an actor did not end"); });
  }
};

/// Shuts down (both ways) every TCP socket of this process whose peer is
/// 127.0.0.1:`port`: the worker's end of its BASP connection to the master,
/// as the kernel closes it when a worker process dies (`kill -9`) while its
/// actors still "run". Returns how many it found.
int cut_connections_to(uint16_t port) {
  int found = 0;
  auto* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr)
    return 0;
  while (auto* entry = ::readdir(dir)) {
    auto fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == ::dirfd(dir))
      continue;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0
        || peer.sin_family != AF_INET || ntohs(peer.sin_port) != port)
      continue;
    if (::shutdown(fd, SHUT_RDWR) == 0)
      ++found;
  }
  ::closedir(dir);
  return found;
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(control_plane_tests, fixture)

CAF_TEST(a secret has 32 hex digits and differs each time) {
  auto a = make_secret();
  CAF_CHECK_EQUAL(a.size(), 32u);
  CAF_CHECK_EQUAL(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  CAF_CHECK_NOT_EQUAL(a, make_secret());
  CAF_CHECK(same_secret(a, a));
  CAF_CHECK(!same_secret(a.substr(0, 31), a));
  CAF_CHECK(!same_secret(a + "0", a));
  CAF_CHECK(!same_secret(std::string(32, '0'), a));
  // Ends the master of the fixture.
  stop();
  wait_all_gone(1);
}

CAF_TEST(a stop sums the reports of every registered worker) {
  node w1;
  node w2;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{3, 2, 1, 40ms}));
  auto s2 = spawn_stand_in(w2, plain(2, shutdown_report{5, 5, 0, 70ms}));
  join(w1, s1, 1);
  join(w2, s2, 2);
  CAF_CHECK_EQUAL(worker_count(), 2u);
  auto sum = stop();
  CAF_CHECK_EQUAL(sum, (shutdown_report{8, 7, 1, 70ms}));
  CAF_CHECK(sum.forced > 0);
  wait_probe(got_stop_atom::value, {1, 2});
  // The master and both stand-ins end after the stop.
  wait_all_gone(3);
}

CAF_TEST(a stop with no worker answers an empty report) {
  CAF_CHECK_EQUAL(stop(), (shutdown_report{}));
  wait_all_gone(1);
}

CAF_TEST(registrations without the secret or an expected id are refused) {
  node w1;
  node intruder;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{1, 1, 0, 10ms}));
  auto other
    = spawn_stand_in(intruder, plain(9, shutdown_report{0, 0, 0, 0ms}));
  join(w1, s1, 1);
  auto refused = [](const master_event& x) {
    return x.what == master_event::kind::refused;
  };
  struct attempt {
    std::string key;
    uint32_t id;
    bool own_supervisor;
    std::string why;
  };
  auto wrong = secret;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  std::vector<attempt> attempts{
    {wrong, 2, false, "wrong secret"},
    {"", 2, false, "wrong secret"},
    {secret, 9, false, "unknown worker id"},
    {secret, 1, false, "worker id registered already"},
    {secret, 2, true, "supervisor registered already as worker 1"},
  };
  for (auto& x : attempts) {
    CAF_MESSAGE("attempt: " << x.why);
    auto err = x.own_supervisor ? register_as(w1, s1, x.id, x.key)
                                : register_as(intruder, other, x.id, x.key);
    // The worker's side says clearly that it was not registered.
    CAF_CHECK_NOT_EQUAL(err.find("did not register worker"), std::string::npos);
    auto ev = wait_event(refused);
    CAF_CHECK_EQUAL(ev.detail, x.why);
    CAF_CHECK_EQUAL(ev.worker, x.id);
    CAF_CHECK_EQUAL(worker_count(), 1u);
  }
  // The master still works: a proper worker registers, a stop sums both.
  node w2;
  auto s2 = spawn_stand_in(w2, plain(2, shutdown_report{2, 1, 1, 20ms}));
  join(w2, s2, 2);
  CAF_CHECK_EQUAL(worker_count(), 2u);
  CAF_CHECK_EQUAL(stop(), (shutdown_report{3, 2, 1, 20ms}));
  // The intruder's stand-in was never stopped: the test ends it.
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
  wait_all_gone(4);
}

CAF_TEST(garbage on the BASP port leaves the master working) {
  // At least a BASP header's worth of bytes that are no handshake: CAF
  // drops the connection.
  const std::vector<std::string> dropped{
    std::string(64, '\xff'),
    std::string(200, '\0'),
    "GET / HTTP/1.1\r\nHost: x\r\n" + std::string(100, 'x') + "\r\n\r\n",
  };
  for (auto& bytes : dropped) {
    auto conn = qt::connect_loopback(master.port);
    CAF_REQUIRE_EQUAL(conn.error, 0);
    CAF_REQUIRE(qt::send_all(conn.fd.get(), bytes));
    auto rest = qt::read_until_eof(conn.fd.get());
    CAF_CHECK_NOT_EQUAL(rest.ending(), "timeout");
  }
  // Less than a header, or nothing at all: CAF waits for the rest. They
  // stay open while a worker registers and the stop runs.
  auto short_garbage = qt::connect_loopback(master.port);
  CAF_REQUIRE_EQUAL(short_garbage.error, 0);
  CAF_REQUIRE(qt::send_all(short_garbage.fd.get(), "GET / HTTP/1.1\r\n\r\n"));
  auto silent = qt::connect_loopback(master.port);
  CAF_REQUIRE_EQUAL(silent.error, 0);
  CAF_CHECK_EQUAL(worker_count(), 0u);
  node w1;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{4, 4, 0, 15ms}));
  join(w1, s1, 1);
  CAF_CHECK_EQUAL(stop(), (shutdown_report{4, 4, 0, 15ms}));
  wait_all_gone(2);
  // The test's connections close here.
}

CAF_TEST(a worker that ends is dropped and no longer holds a stop up) {
  node w1;
  node w2;
  auto w3 = std::make_unique<node>();
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{2, 2, 0, 30ms}));
  auto hung = plain(2, shutdown_report{9, 9, 9, 999ms});
  hung.never_answer = true;
  auto s2 = spawn_stand_in(w2, hung);
  auto s3 = spawn_stand_in(*w3, plain(3, shutdown_report{7, 7, 7, 777ms}));
  for (auto [w, s, id] : {std::tuple{&w1, &s1, 1u}, std::tuple{&w2, &s2, 2u},
                          std::tuple{w3.get(), &s3, 3u}}) {
    join(*w, *s, id);
  }
  CAF_CHECK_EQUAL(worker_count(), 3u);
  auto gone = [](uint32_t id) {
    return [id](const master_event& x) {
      return x.what == master_event::kind::gone && x.worker == id;
    };
  };
  // Worker 3's supervisor dies (an exit that is not a clean one) and its
  // whole process goes away: the master drops it, tells the observer.
  caf::anon_send_exit(s3, caf::exit_reason::kill);
  auto ev3 = wait_event(gone(3));
  CAF_CHECK(!ev3.stopping);
  CAF_MESSAGE("worker 3 gone: " << ev3.detail);
  wait_all_gone(1);
  w3.reset();
  CAF_CHECK_EQUAL(worker_count(), 2u);
  // A stop: worker 1 answers, worker 2 hangs until it dies mid-stop.
  client->send(master.handle, stop_atom_v);
  wait_probe(got_stop_atom::value, {1, 2});
  caf::anon_send_exit(s2, caf::exit_reason::kill);
  auto ev2 = wait_event(gone(2));
  CAF_CHECK(ev2.stopping);
  // Worker 1's report only: worker 2 never answered.
  // The worker that ended before it answered was cut off: one forced.
  CAF_CHECK_EQUAL(stop_answer(), (shutdown_report{2, 2, 1, 30ms}));
  // The master, and worker 1 and 2's supervisors.
  wait_all_gone(3);
}

CAF_TEST(a worker whose connection is lost is dropped as after kill - 9) {
  node w1;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{1, 1, 0, 1ms}));
  join(w1, s1, 1);
  // The only connection to the master's port is worker 1's.
  CAF_REQUIRE_EQUAL(cut_connections_to(master.port), 1);
  auto ev = wait_event(
    [](const master_event& x) { return x.what == master_event::kind::gone; });
  CAF_CHECK_EQUAL(ev.worker, 1u);
  CAF_CHECK_EQUAL(ev.detail, to_string(caf::make_error(
                               caf::exit_reason::remote_link_unreachable)));
  CAF_CHECK(!ev.stopping);
  CAF_CHECK_EQUAL(worker_count(), 0u);
  // Its id is free again: a restarted worker 1 registers.
  node w1_again;
  auto s1_again
    = spawn_stand_in(w1_again, plain(1, shutdown_report{2, 2, 0, 2ms}));
  join(w1_again, s1_again, 1);
  CAF_CHECK_EQUAL(stop(), (shutdown_report{2, 2, 0, 2ms}));
  // The first stand-in lives on, cut off: the test ends it.
  caf::anon_send_exit(s1, caf::exit_reason::user_shutdown);
  wait_all_gone(3);
}

CAF_TEST(a worker that lets its stop deadline pass no longer holds it up) {
  // The fixture's master, with its long deadline, ends; this one has a
  // short one (long enough for worker 1's answer on a loaded machine). The
  // wait is for the deadline, an event of the master's.
  stop();
  wait_all_gone(1);
  start(2s);
  node w1;
  node w2;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{3, 3, 0, 9ms}));
  auto hung = plain(2, shutdown_report{9, 9, 9, 999ms});
  hung.never_answer = true;
  auto s2 = spawn_stand_in(w2, hung);
  join(w1, s1, 1);
  join(w2, s2, 2);
  // The worker given up on at its deadline counts one forced.
  CAF_CHECK_EQUAL(stop(), (shutdown_report{3, 3, 1, 9ms}));
  wait_probe(got_stop_atom::value, {1, 2});
  caf::anon_send_exit(s2, caf::exit_reason::user_shutdown);
  wait_all_gone(3);
}

CAF_TEST(force reaches every worker supervisor) {
  node w1;
  node w2;
  auto c1 = holding(1, shutdown_report{4, 3, 0, 100ms});
  auto c2 = holding(2, shutdown_report{6, 5, 0, 200ms});
  auto s1 = spawn_stand_in(w1, c1);
  auto s2 = spawn_stand_in(w2, c2);
  join(w1, s1, 1);
  join(w2, s2, 2);
  // A stop that the workers cannot finish, then the second signal.
  client->send(master.handle, stop_atom_v);
  wait_probe(got_stop_atom::value, {1, 2});
  client->send(master.handle, force_atom_v);
  wait_probe(got_force_atom::value, {1, 2});
  // Each stand-in counts one forced connection once forced.
  CAF_CHECK_EQUAL(stop_answer(), (shutdown_report{10, 8, 2, 200ms}));
  wait_all_gone(3);
}

CAF_TEST(a worker that registers during a stop drains with the others) {
  node w1;
  node w2;
  auto c1 = holding(1, shutdown_report{1, 1, 0, 10ms});
  auto c2 = holding(2, shutdown_report{2, 1, 0, 20ms});
  auto s1 = spawn_stand_in(w1, c1);
  join(w1, s1, 1);
  client->send(master.handle, stop_atom_v);
  wait_probe(got_stop_atom::value, {1});
  // Worker 2 comes in mid-stop (a restart, later): it is told stop at once
  // and the second signal reaches it too.
  auto s2 = spawn_stand_in(w2, c2);
  join(w2, s2, 2);
  wait_probe(got_stop_atom::value, {2});
  client->send(master.handle, force_atom_v);
  wait_probe(got_force_atom::value, {1, 2});
  CAF_CHECK_EQUAL(stop_answer(), (shutdown_report{3, 2, 2, 20ms}));
  wait_all_gone(3);
}

CAF_TEST(a worker that cannot reach the master says so) {
  // A port bound but not listening: the connect is refused, and no other
  // program can take the port meanwhile.
  qt::unique_fd bound{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  CAF_REQUIRE(bound);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CAF_REQUIRE_EQUAL(
    ::bind(bound.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  CAF_REQUIRE_EQUAL(
    ::getsockname(bound.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  node w1;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{}));
  auto res = register_with_master(w1.sys, ntohs(addr.sin_port), secret, 1, s1);
  CAF_REQUIRE(!res);
  CAF_MESSAGE(to_string(res.error()));
  CAF_CHECK_NOT_EQUAL(to_string(res.error()).find("cannot reach the master"),
                      std::string::npos);
  caf::anon_send_exit(s1, caf::exit_reason::user_shutdown);
  stop();
  wait_all_gone(2);
}

CAF_TEST(force without a stop stops and forces every worker) {
  node w1;
  auto c1 = holding(1, shutdown_report{1, 0, 0, 5ms});
  auto s1 = spawn_stand_in(w1, c1);
  join(w1, s1, 1);
  client->send(master.handle, force_atom_v);
  wait_probe(got_stop_atom::value, {1});
  wait_probe(got_force_atom::value, {1});
  // The master ends once the forced worker has answered.
  wait_all_gone(2);
}

CAF_TEST(stop force retire and workers from another node are ignored) {
  node w1;
  node w2;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{3, 3, 0, 30ms}));
  auto s2 = spawn_stand_in(w2, plain(2, shutdown_report{4, 4, 0, 40ms}));
  join(w1, s1, 1);
  join(w2, s2, 2);
  // A process that reaches the BASP port: here worker 1's, with the
  // master's handle from remote_actor (it needs no registration).
  auto remote
    = w1.sys.middleman().remote_actor<master_actor>("127.0.0.1", master.port);
  CAF_REQUIRE(remote);
  caf::scoped_actor intruder{w1.sys};
  std::string stop_error;
  intruder->request(*remote, patience, stop_atom_v)
    .receive(
      [&](shutdown_report& x) {
        CAF_ERROR(
          "a stop from another node was answered: " << caf::deep_to_string(x));
      },
      [&](caf::error& err) { stop_error = to_string(err); });
  CAF_MESSAGE("stop from another node: " << stop_error);
  CAF_CHECK_NOT_EQUAL(stop_error.find("only the master's own process"),
                      std::string::npos);
  intruder->send(*remote, force_atom_v);
  intruder->send(*remote, closing_atom_v);
  intruder->send(*remote, retire_atom_v, 1u);
  intruder->send(*remote, retire_atom_v, 2u);
  // Taken after the three above (one sender, one connection, in order).
  std::string workers_error;
  intruder->request(*remote, patience, workers_atom_v)
    .receive(
      [&](uint32_t n) {
        CAF_ERROR("workers from another node was answered: " << n);
      },
      [&](caf::error& err) { workers_error = to_string(err); });
  CAF_MESSAGE("workers from another node: " << workers_error);
  CAF_CHECK_NOT_EQUAL(workers_error.find("only the master's own process"),
                      std::string::npos);
  // Nothing changed: both still registered, no stop began.
  CAF_CHECK_EQUAL(worker_count(), 2u);
  // The master's own stop: each stand-in's first word to the probe is this
  // stop (nothing reached them before it), and both reports count.
  CAF_CHECK_EQUAL(stop(), (shutdown_report{7, 7, 0, 40ms}));
  expect_only_stops({1, 2});
  wait_all_gone(3);
}

CAF_TEST(closing reaches every worker now and one that registers later) {
  node w1;
  node w2;
  node w3;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{1, 1, 0, 10ms}));
  auto s2 = spawn_stand_in(w2, plain(2, shutdown_report{2, 2, 0, 20ms}));
  join(w1, s1, 1);
  join(w2, s2, 2);
  client->send(master.handle, closing_atom_v);
  wait_probe(got_closing_atom::value, {1, 2});
  // A worker started (or restarted) during the stop delay registers into
  // the closing mode.
  auto s3 = spawn_stand_in(w3, plain(3, shutdown_report{3, 3, 0, 30ms}));
  join(w3, s3, 3);
  wait_probe(got_closing_atom::value, {3});
  // A second `closing` reaches nobody again; the stop is the usual one:
  // each stand-in's next word is its stop.
  client->send(master.handle, closing_atom_v);
  CAF_CHECK_EQUAL(stop(), (shutdown_report{6, 6, 0, 30ms}));
  expect_only_stops({1, 2, 3});
  wait_all_gone(4);
}

CAF_TEST(retire reaches a worker now or when it registers) {
  node w1;
  node w2;
  node w3;
  auto s1 = spawn_stand_in(w1, plain(1, shutdown_report{2, 2, 0, 20ms}));
  auto s2 = spawn_stand_in(w2, plain(2, shutdown_report{5, 5, 0, 50ms}));
  join(w1, s1, 1);
  join(w2, s2, 2);
  // Worker 1 is retired: it answers and ends (a drained old worker). Its
  // end is no stop it held: the master goes on with worker 2.
  client->send(master.handle, retire_atom_v, 1u);
  wait_probe(got_retire_atom::value, {1});
  auto ev = wait_event([](const master_event& x) {
    return x.what == master_event::kind::gone && x.worker == 1;
  });
  CAF_CHECK(!ev.stopping);
  CAF_CHECK_EQUAL(worker_count(), 1u);
  // Worker 3 is told to retire before it registers (a failed reload's new
  // worker): the master keeps it for when it does. `workers` after it, from
  // the same sender, is taken after it.
  client->send(master.handle, retire_atom_v, 3u);
  CAF_CHECK_EQUAL(worker_count(), 1u);
  auto c3 = plain(3, shutdown_report{7, 6, 1, 70ms});
  c3.quit_after_retire = false;
  auto s3 = spawn_stand_in(w3, c3);
  join(w3, s3, 3);
  wait_probe(got_retire_atom::value, {3});
  CAF_CHECK_EQUAL(worker_count(), 2u);
  // A stop reaches the retiring worker 3 as well as worker 2; worker 1,
  // gone after its retire, holds nothing up.
  CAF_CHECK_EQUAL(stop(), (shutdown_report{12, 11, 1, 70ms}));
  wait_probe(got_stop_atom::value, {2, 3});
  // The master and the three stand-ins.
  wait_all_gone(4);
}

CAF_TEST(a worker that is gone is reported with its connections at the poll) {
  // This master polls often; the fixture's ends first.
  stop();
  wait_all_gone(1);
  start(patience, 50ms);
  node w1;
  auto c1 = plain(1, shutdown_report{});
  c1.connections = 7;
  auto s1 = spawn_stand_in(w1, c1);
  join(w1, s1, 1);
  // Three answers to the poll: the stand-in tells the probe before each.
  // The master took at least one of them before the down message, which
  // comes after them on the same BASP connection.
  size_t polls = 0;
  while (polls < 3) {
    probe->receive(
      [&](got_conns_atom, uint32_t id) {
        CAF_CHECK_EQUAL(id, 1u);
        ++polls;
      },
      caf::after(patience) >>
        [] { CAF_FAIL("the master did not poll worker 1"); });
  }
  caf::anon_send_exit(s1, caf::exit_reason::kill);
  auto ev = wait_event(
    [](const master_event& x) { return x.what == master_event::kind::gone; });
  CAF_CHECK_EQUAL(ev.worker, 1u);
  CAF_CHECK_EQUAL(ev.connections, 7u);
  CAF_CHECK(!ev.stopping);
  CAF_CHECK_EQUAL(stop(), (shutdown_report{}));
  wait_all_gone(2);
}

CAF_TEST_FIXTURE_SCOPE_END()
