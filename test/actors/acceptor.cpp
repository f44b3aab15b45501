#define CAF_SUITE actors.acceptor

#include "actors/acceptor.hpp"

#include "test/actors/io_fixture.hpp"

using namespace quiesce;
using namespace quiesce::testing;

namespace {

struct fixture : io_fixture {
  fixture() : io_fixture(2) {
    // Two connections at most, so that the pause is reachable.
  }

  /// Sends `stop` and lets the acceptor's delayed close happen.
  void stop_acceptor() {
    caf::anon_send(acc, stop_atom_v);
    exhaust();
    // Not closed yet: the close comes one event-loop turn later.
    CAF_CHECK(!terminated(acc));
    CAF_CHECK(sched.trigger_timeout());
    exhaust();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(acceptor_tests, fixture)

CAF_TEST(
  each accepted connection gets its own actor and the supervisor hears of it) {
  connect_client();
  connect_client();
  CAF_REQUIRE_EQUAL(rec->connected.size(), 2u);
  CAF_CHECK_NOT_EQUAL(rec->connected[0], rec->connected[1]);
}

CAF_TEST(the connection actors serve their own bytes) {
  auto a = connect_client();
  auto b = connect_client();
  client_sends(a, "to a");
  client_sends(b, "to b");
  CAF_CHECK_EQUAL(output(a), "to a");
  CAF_CHECK_EQUAL(output(b), "to b");
}

CAF_TEST(at the limit accepting pauses and resumes when one ends) {
  connect_client();
  auto b = connect_client();
  CAF_REQUIRE_EQUAL(rec->connected.size(), 2u);
  // Paused: the fake listener is out of the event loop, a third client waits.
  CAF_CHECK(mpx.passive_mode(acc_hdl));
  // One connection ends (the peer closes).
  caf::anon_send(rec->connected[1], caf::io::connection_closed_msg{b});
  exhaust();
  CAF_CHECK(!mpx.passive_mode(acc_hdl));
  connect_client();
  CAF_CHECK_EQUAL(rec->connected.size(), 3u);
}

CAF_TEST(stop closes the listener and ends the acceptor normally) {
  self->monitor(acc);
  stop_acceptor();
  CAF_CHECK(terminated(acc));
  self->receive(
    [&](caf::down_msg& msg) {
      CAF_CHECK_EQUAL(msg.source, acc.address());
      CAF_CHECK_EQUAL(msg.reason, caf::exit_reason::normal);
    },
    caf::after(std::chrono::seconds(0)) >>
      [] { CAF_FAIL("no down message from the acceptor"); });
}

CAF_TEST(stop twice is harmless) {
  self->monitor(acc);
  caf::anon_send(acc, stop_atom_v);
  stop_acceptor();
  CAF_CHECK(terminated(acc));
  // One close only: no second timer.
  CAF_CHECK(!sched.trigger_timeout());
}

CAF_TEST(stop leaves open connections to the supervisor) {
  auto a = connect_client();
  stop_acceptor();
  CAF_CHECK(terminated(acc));
  // The connection still serves until the supervisor stops it.
  client_sends(a, "still here");
  CAF_CHECK_EQUAL(output(a), "still here");
}

CAF_TEST(a stop on a shared listener leaves the event loop before it closes) {
  // A second acceptor, on a listener other processes share: its stop takes
  // no backlog and shuts nothing down (test/actors/shared_listener.cpp has
  // the real socket); one turn later the doorman leaves the event loop, a
  // turn after that it closes.
  auto hdl = caf::io::accept_handle::from_int(2);
  acceptor_config acc_cfg;
  acc_cfg.connection.make_behaviour = make_behaviour;
  acc_cfg.connection.supervisor = sup;
  acc_cfg.address = "shared";
  acc_cfg.shared_listener = true;
  auto shared = mm.spawn_broker(acceptor_main, mpx.new_doorman(hdl, 8081),
                                std::move(acc_cfg));
  exhaust();
  CAF_REQUIRE(!mpx.passive_mode(hdl));
  caf::anon_send(shared, stop_atom_v);
  exhaust();
  CAF_CHECK(!mpx.passive_mode(hdl));
  CAF_CHECK(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(mpx.passive_mode(hdl));
  CAF_CHECK(!terminated(shared));
  CAF_CHECK(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(terminated(shared));
}

CAF_TEST(a failed listening socket ends the acceptor with an error) {
  self->monitor(acc);
  // What CAF delivers when the listening socket fails.
  caf::anon_send(acc, caf::io::acceptor_closed_msg{acc_hdl});
  exhaust();
  self->receive(
    [&](caf::down_msg& msg) {
      CAF_CHECK_EQUAL(msg.reason,
                      caf::make_error(caf::sec::socket_operation_failed));
    },
    caf::after(std::chrono::seconds(0)) >>
      [] { CAF_FAIL("no down message from the acceptor"); });
}

CAF_TEST_FIXTURE_SCOPE_END()
