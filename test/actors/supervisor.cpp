#define CAF_SUITE actors.supervisor

#include "actors/supervisor.hpp"

#include <memory>
#include <vector>

#include "caf/test/dsl.hpp"

using namespace quiesce;

namespace {

using namespace std::chrono_literals;

/// What a fake connection or acceptor saw.
struct probe {
  int stops = 0;
  int retires = 0;
  /// The closing mode of the stop delay (the `closing` tag).
  int closings = 0;
  bool forced = false;
};

using probe_ptr = std::shared_ptr<probe>;

/// How a fake connection answers `stop`: report `done` and end, report
/// `done` but linger (wait for a peer that never closes), or hang (work in
/// flight that never finishes).
enum class on_stop { report_done, linger, hang };

/// Stands in for a connection broker: same interface, scripted answer to
/// `stop`. A `connection_closed_msg` makes it end on its own (peer close).
/// The forced exit (`user_shutdown`) as the real one answers it: with work
/// in flight (`hang`, before its stop's answer) it aborts and ends with the
/// exit's reason, without `done`; with nothing in flight it closes cleanly,
/// reports `done` unless it has, and ends normally.
connection_actor::behavior_type fake_connection(connection_actor::pointer self,
                                                supervisor_actor sup,
                                                on_stop mode, probe_ptr seen) {
  auto done = std::make_shared<bool>(false);
  self->set_exit_handler([self, sup, mode, seen, done](caf::exit_msg& msg) {
    seen->forced = msg.reason == caf::exit_reason::user_shutdown;
    if (msg.reason != caf::exit_reason::user_shutdown
        || mode == on_stop::hang) {
      self->quit(msg.reason);
      return;
    }
    if (!*done)
      self->send(sup, done_atom_v);
    self->quit();
  });
  return {
    [](caf::io::new_data_msg&) {},
    [](caf::io::data_transferred_msg&) {},
    [self](caf::io::connection_closed_msg&) { self->quit(); },
    [self, sup, mode, seen, done](stop_atom) {
      ++seen->stops;
      if (mode != on_stop::hang) {
        *done = true;
        self->send(sup, done_atom_v);
      }
      if (mode == on_stop::report_done)
        self->quit();
    },
    [seen](lifecycle_timer_atom, uint8_t tag) {
      if (tag == static_cast<uint8_t>(lifecycle_timer::closing))
        ++seen->closings;
    },
    [](timer_atom, uint64_t) {},
    [](deliver_atom, caf::message&) {},
    [](request_timeout_atom) {},
    [seen](retire_atom) { ++seen->retires; },
  };
}

/// Stands in for the acceptor broker: `stop` takes the terminal path at once;
/// an `acceptor_closed_msg` before any stop is a socket failure.
acceptor_actor::behavior_type fake_acceptor(acceptor_actor::pointer self,
                                            probe_ptr seen) {
  return {
    [](caf::io::new_connection_msg&) {},
    [self](caf::io::acceptor_closed_msg&) {
      self->quit(caf::sec::socket_operation_failed);
    },
    [self, seen](stop_atom) {
      ++seen->stops;
      self->quit();
    },
    [](caf::close_atom) {},
    [seen](closing_atom) { ++seen->closings; },
    [self, seen](retire_atom) {
      ++seen->retires;
      self->quit();
    },
  };
}

struct fixture : test_coordinator_fixture<> {
  probe_ptr acceptor_seen = std::make_shared<probe>();
  acceptor_actor acc;
  supervisor_actor sup;
  /// With `hold_broadcast` set before the supervisor starts: the stops of
  /// the broadcast, not yet delivered (as when the I/O event loop has not
  /// got to them).
  std::vector<connection_actor> held_stops;

  explicit fixture(bool hold_broadcast = false) {
    supervisor_config sup_cfg;
    sup_cfg.drain_timeout = 5s;
    if (hold_broadcast)
      sup_cfg.broadcast_stop
        = [this](std::vector<connection_actor> conns, connection_order) {
            held_stops.insert(held_stops.end(), conns.begin(), conns.end());
          };
    sup_cfg.start_acceptor = [this](supervisor_actor) {
      acc = sys.spawn(fake_acceptor, acceptor_seen);
      return acc;
    };
    sup = sys.spawn(supervisor_main, sup_cfg);
    sched.run();
    CAF_REQUIRE(acc != nullptr);
  }

  /// Starts a fake connection and announces it, as the acceptor would.
  connection_actor connect(on_stop mode, probe_ptr seen) {
    auto conn = sys.spawn(fake_connection, sup, mode, seen);
    self->send(sup, connected_atom_v, conn);
    sched.run();
    return conn;
  }

  /// Delivers every message, but fires no timer.
  void deliver_all() {
    sched.run();
  }

  void request_stop() {
    self->send(sup, stop_atom_v);
    deliver_all();
  }

  shutdown_report expect_report() {
    shutdown_report result;
    self->receive([&](shutdown_report& x) { result = x; },
                  caf::after(std::chrono::seconds(0)) >>
                    [] { CAF_FAIL("the supervisor sent no shutdown_report"); });
    return result;
  }

  bool supervisor_alive() {
    return !sup->getf(caf::abstract_actor::is_terminated_flag);
  }
};

shutdown_report make_report(uint32_t open, uint32_t drained, uint32_t forced,
                            caf::timespan duration) {
  shutdown_report x;
  x.open_at_stop = open;
  x.drained = drained;
  x.forced = forced;
  x.duration = duration;
  return x;
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(supervisor_tests, fixture)

CAF_TEST(stop with no connections ends at once) {
  self->send(sup, stop_atom_v);
  expect((stop_atom), from(self).to(sup));
  expect((stop_atom), from(sup).to(acc));
  deliver_all();
  CAF_CHECK_EQUAL(acceptor_seen->stops, 1);
  CAF_CHECK_EQUAL(expect_report(), make_report(0, 0, 0, 0s));
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(the broadcast reaches the acceptor and every connection) {
  std::vector<probe_ptr> seen;
  for (int i = 0; i < 3; ++i) {
    seen.push_back(std::make_shared<probe>());
    connect(on_stop::hang, seen.back());
  }
  request_stop();
  CAF_CHECK_EQUAL(acceptor_seen->stops, 1);
  for (auto& x : seen)
    CAF_CHECK_EQUAL(x->stops, 1);
  // Nobody reported done: the supervisor waits for them.
  CAF_CHECK(supervisor_alive());
}

CAF_TEST(done from every connection ends the stop cleanly) {
  std::vector<probe_ptr> seen;
  for (int i = 0; i < 3; ++i) {
    seen.push_back(std::make_shared<probe>());
    connect(on_stop::report_done, seen.back());
  }
  request_stop();
  for (auto& x : seen) {
    CAF_CHECK_EQUAL(x->stops, 1);
    CAF_CHECK(!x->forced);
  }
  CAF_CHECK_EQUAL(expect_report(), make_report(3, 3, 0, 0s));
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(the drain timeout forces stuck connections and reports them) {
  auto quick = std::make_shared<probe>();
  auto stuck = std::make_shared<probe>();
  connect(on_stop::report_done, quick);
  connect(on_stop::hang, stuck);
  request_stop();
  CAF_CHECK(supervisor_alive());
  CAF_CHECK(!stuck->forced);
  // The only timer is the drain timeout, 5 s after the stop.
  CAF_REQUIRE(sched.trigger_timeout());
  expect((drain_timeout_atom), from(sup).to(sup));
  deliver_all();
  CAF_CHECK(stuck->forced);
  CAF_CHECK(!quick->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(2, 1, 1, 5s));
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(lingering connections at the deadline are closed but drained) {
  auto lingering = std::make_shared<probe>();
  auto stuck = std::make_shared<probe>();
  connect(on_stop::linger, lingering);
  connect(on_stop::hang, stuck);
  request_stop();
  // The lingering one is done: it owes nothing, only its peer has not closed.
  CAF_CHECK(supervisor_alive());
  CAF_REQUIRE(sched.trigger_timeout());
  deliver_all();
  CAF_CHECK(lingering->forced);
  CAF_CHECK(stuck->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(2, 1, 1, 5s));
}

CAF_TEST(a second signal forces at once) {
  auto stuck = std::make_shared<probe>();
  connect(on_stop::hang, stuck);
  request_stop();
  self->send(sup, force_atom_v);
  deliver_all();
  CAF_CHECK(stuck->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(1, 0, 1, 0s));
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(force without a prior stop stops and forces) {
  auto stuck = std::make_shared<probe>();
  connect(on_stop::hang, stuck);
  self->send(sup, force_atom_v);
  deliver_all();
  CAF_CHECK_EQUAL(acceptor_seen->stops, 1);
  CAF_CHECK(stuck->forced);
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(stop twice is harmless and both askers get the report) {
  auto seen = std::make_shared<probe>();
  connect(on_stop::hang, seen);
  request_stop();
  request_stop();
  CAF_CHECK_EQUAL(acceptor_seen->stops, 1);
  CAF_CHECK_EQUAL(seen->stops, 1);
  // The second stop armed no second timer.
  CAF_REQUIRE(sched.trigger_timeout());
  CAF_CHECK(!sched.trigger_timeout());
  deliver_all();
  auto expected = make_report(1, 0, 1, 5s);
  CAF_CHECK_EQUAL(expect_report(), expected);
  CAF_CHECK_EQUAL(expect_report(), expected);
}

CAF_TEST(a connection closing on its own mid drain counts as drained) {
  auto leaving = std::make_shared<probe>();
  auto conn = connect(on_stop::hang, leaving);
  request_stop();
  CAF_CHECK(supervisor_alive());
  // The peer closes: the connection ends without `done`.
  caf::anon_send(conn, caf::io::connection_closed_msg{});
  deliver_all();
  CAF_CHECK(!leaving->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(1, 1, 0, 0s));
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(a connection failing mid drain counts as forced) {
  auto failing = std::make_shared<probe>();
  auto conn = connect(on_stop::hang, failing);
  request_stop();
  // A behaviour threw: the actor ends with an error, its socket aborted.
  caf::anon_send_exit(conn, caf::exit_reason::unhandled_exception);
  deliver_all();
  CAF_CHECK_EQUAL(expect_report(), make_report(1, 0, 1, 0s));
}

CAF_TEST(connections that end before the stop are not counted) {
  auto early = std::make_shared<probe>();
  auto conn = connect(on_stop::hang, early);
  caf::anon_send(conn, caf::io::connection_closed_msg{});
  deliver_all();
  request_stop();
  CAF_CHECK_EQUAL(early->stops, 0);
  CAF_CHECK_EQUAL(expect_report(), make_report(0, 0, 0, 0s));
}

CAF_TEST(a connection announced after the stop drains with the rest) {
  auto first = std::make_shared<probe>();
  connect(on_stop::hang, first);
  request_stop();
  auto late = std::make_shared<probe>();
  connect(on_stop::report_done, late);
  CAF_CHECK_EQUAL(late->stops, 1);
  CAF_REQUIRE(sched.trigger_timeout());
  deliver_all();
  CAF_CHECK(first->forced);
  CAF_CHECK(!late->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(2, 1, 1, 5s));
}

CAF_TEST(force before an idle connection reports done does not count it) {
  // Two signals back to back: the supervisor takes `stop` and `force` before
  // the connection has answered its stop, so its `done` comes after the
  // force went out. It had nothing in flight: drained, not forced.
  auto idle = std::make_shared<probe>();
  connect(on_stop::linger, idle);
  self->send(sup, stop_atom_v);
  self->send(sup, force_atom_v);
  expect((stop_atom), from(self).to(sup));
  expect((force_atom), from(self).to(sup));
  deliver_all();
  CAF_CHECK_EQUAL(idle->stops, 1);
  CAF_CHECK(idle->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(1, 1, 0, 0s));
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(a busy connection at a force right after the stop counts as forced) {
  auto busy = std::make_shared<probe>();
  connect(on_stop::hang, busy);
  self->send(sup, stop_atom_v);
  self->send(sup, force_atom_v);
  deliver_all();
  CAF_CHECK(busy->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(1, 0, 1, 0s));
}

CAF_TEST_FIXTURE_SCOPE_END()

namespace {

/// The broadcast of the stop held back, as when the I/O event loop has not
/// delivered it yet.
struct held_broadcast_fixture : fixture {
  held_broadcast_fixture() : fixture(true) {}
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(held_broadcast_tests, held_broadcast_fixture)

CAF_TEST(force before an idle connection got its stop does not count it) {
  // The forced exit reaches the connection before the broadcast's stop: it
  // has nothing in flight, closes cleanly and reports done.
  auto idle = std::make_shared<probe>();
  auto busy = std::make_shared<probe>();
  connect(on_stop::linger, idle);
  connect(on_stop::hang, busy);
  request_stop();
  CAF_CHECK_EQUAL(held_stops.size(), 2u);
  CAF_CHECK_EQUAL(idle->stops, 0);
  self->send(sup, force_atom_v);
  deliver_all();
  CAF_CHECK(idle->forced);
  CAF_CHECK(busy->forced);
  CAF_CHECK_EQUAL(expect_report(), make_report(2, 1, 1, 0s));
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST(connections announced during the force count as what they do) {
  auto first = std::make_shared<probe>();
  connect(on_stop::hang, first);
  request_stop();
  self->send(sup, force_atom_v);
  // Two more accepted from the backlog at the stop, announced after the
  // force: one with a request in flight, one that sent nothing.
  auto late_busy = std::make_shared<probe>();
  auto late_idle = std::make_shared<probe>();
  auto busy_conn = sys.spawn(fake_connection, sup, on_stop::hang, late_busy);
  auto idle_conn = sys.spawn(fake_connection, sup, on_stop::linger, late_idle);
  self->send(sup, connected_atom_v, busy_conn);
  self->send(sup, connected_atom_v, idle_conn);
  deliver_all();
  CAF_CHECK(late_busy->forced);
  CAF_CHECK(late_idle->forced);
  CAF_CHECK_EQUAL(late_idle->stops, 0);
  CAF_CHECK_EQUAL(expect_report(), make_report(3, 1, 2, 0s));
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(supervisor_more_tests, fixture)

CAF_TEST(closing reaches the acceptor every connection and later ones) {
  auto before = std::make_shared<probe>();
  connect(on_stop::report_done, before);
  self->send(sup, closing_atom_v);
  deliver_all();
  CAF_CHECK_EQUAL(acceptor_seen->closings, 1);
  CAF_CHECK_EQUAL(before->closings, 1);
  CAF_CHECK_EQUAL(before->stops, 0);
  // One the acceptor started before it took its `closing`.
  auto during = std::make_shared<probe>();
  connect(on_stop::report_done, during);
  CAF_CHECK_EQUAL(during->closings, 1);
  // A second `closing` changes nothing; the stop after it is the usual one.
  self->send(sup, closing_atom_v);
  deliver_all();
  CAF_CHECK_EQUAL(acceptor_seen->closings, 1);
  CAF_CHECK_EQUAL(before->closings, 1);
  CAF_CHECK(supervisor_alive());
  request_stop();
  CAF_CHECK_EQUAL(acceptor_seen->stops, 1);
  CAF_CHECK_EQUAL(before->stops, 1);
  CAF_CHECK_EQUAL(during->stops, 1);
  CAF_CHECK_EQUAL(expect_report(), make_report(2, 2, 0, 0s));
}

CAF_TEST(closing during a stop changes nothing) {
  auto first = std::make_shared<probe>();
  connect(on_stop::hang, first);
  request_stop();
  self->send(sup, closing_atom_v);
  deliver_all();
  CAF_CHECK_EQUAL(acceptor_seen->closings, 0);
  CAF_CHECK_EQUAL(first->closings, 0);
  // One announced now gets its stop, not the closing mode.
  auto late = std::make_shared<probe>();
  connect(on_stop::report_done, late);
  CAF_CHECK_EQUAL(late->closings, 0);
  CAF_CHECK_EQUAL(late->stops, 1);
}

CAF_TEST(an acceptor failure starts the stop by itself) {
  auto seen = std::make_shared<probe>();
  connect(on_stop::report_done, seen);
  caf::anon_send(acc, caf::io::acceptor_closed_msg{});
  deliver_all();
  CAF_CHECK_EQUAL(seen->stops, 1);
  CAF_CHECK(!supervisor_alive());
}

CAF_TEST_FIXTURE_SCOPE_END()
