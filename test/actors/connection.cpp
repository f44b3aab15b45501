#define CAF_SUITE actors.connection

#include "actors/connection.hpp"

#include "test/actors/io_fixture.hpp"

using namespace quiesce;
using namespace quiesce::testing;

namespace {

struct fixture : io_fixture {
  connection_handle hdl;
  connection_actor conn;

  /// Accepts one client and returns its actor.
  void open() {
    hdl = connect_client();
    CAF_REQUIRE_EQUAL(rec->connected.size(), 1u);
    conn = rec->connected.back();
    self->monitor(conn);
  }

  void stop() {
    caf::anon_send(conn, stop_atom_v);
    exhaust();
  }

  /// The peer reads the FIN and closes its end.
  void peer_closes() {
    caf::anon_send(conn, caf::io::connection_closed_msg{hdl});
    exhaust();
  }

  caf::error exit_reason() {
    caf::error result;
    self->receive([&](caf::down_msg& msg) { result = msg.reason; },
                  caf::after(std::chrono::seconds(0)) >>
                    [] { CAF_FAIL("the connection actor did not end"); });
    return result;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(connection_tests, fixture)

CAF_TEST(echo writes back every byte in order) {
  open();
  client_sends(hdl, "hello ");
  client_sends(hdl, "world");
  CAF_CHECK_EQUAL(output(hdl), "hello world");
}

CAF_TEST(stop while idle reports done at once and lingers for the peer) {
  open();
  stop();
  // FIN is out and nothing is owed: done. The actor lingers for the peer.
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK(!terminated(conn));
  peer_closes();
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(exit_reason(), caf::exit_reason::normal);
}

CAF_TEST(a peer that never closes is closed after the linger) {
  open();
  stop();
  CAF_CHECK(!terminated(conn));
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK(terminated(conn));
}

CAF_TEST(input during the linger is discarded and extends it) {
  open();
  stop();
  auto stopped_at = sched.clock().current_time;
  // Half a linger later the client still sends.
  sched.clock().current_time += std::chrono::milliseconds(500);
  client_sends(hdl, "late bytes");
  CAF_CHECK_EQUAL(output(hdl), "");
  // The first timer finds input younger than a linger: it waits on.
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(!terminated(conn));
  // The re-armed timer fires a whole quiet linger after the late bytes.
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(terminated(conn));
  CAF_CHECK(sched.clock().current_time - stopped_at
            >= std::chrono::milliseconds(1500));
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(echo answers bytes read before the stop but not bytes after it) {
  open();
  client_sends(hdl, "before");
  stop();
  client_sends(hdl, "after");
  CAF_CHECK_EQUAL(output(hdl), "before");
  peer_closes();
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(stop while busy finishes the work before the FIN) {
  use_line_protocol = true;
  open();
  client_sends(hdl, "first\nsec");
  CAF_CHECK_EQUAL(output(hdl), "line:first\n");
  stop();
  // Half a line is in flight: no FIN, no done, no linger timer yet.
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK(!sched.trigger_timeout());
  client_sends(hdl, "ond\n");
  CAF_CHECK_EQUAL(output(hdl), "line:first\nline:second\n");
  CAF_CHECK_EQUAL(rec->done, 1);
  // Now idle: FIN, linger; the peer closes.
  peer_closes();
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK(terminated(conn));
}

CAF_TEST(stop while a timer is pending waits for it before the FIN) {
  use_line_protocol = true;
  open();
  client_sends(hdl, "wait\n");
  CAF_CHECK_EQUAL(output(hdl), "");
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  // The behaviour's timer fires: its answer goes out, then the FIN.
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "waited\n");
  CAF_CHECK_EQUAL(rec->done, 1);
  peer_closes();
  CAF_CHECK(terminated(conn));
}

CAF_TEST(the peer closing before any stop reports done) {
  open();
  peer_closes();
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(exit_reason(), caf::exit_reason::normal);
}

CAF_TEST(stop twice is harmless) {
  open();
  stop();
  stop();
  peer_closes();
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a forced exit ends the actor at once without done) {
  use_line_protocol = true;
  open();
  client_sends(hdl, "never finished");
  stop();
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  exhaust();
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(exit_reason(), caf::exit_reason::user_shutdown);
}

CAF_TEST(a throwing behaviour ends its connection with an error) {
  use_line_protocol = true;
  open();
  client_sends(hdl, "boom");
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(exit_reason(), caf::sec::runtime_error);
}

CAF_TEST_FIXTURE_SCOPE_END()
