#define CAF_SUITE actors.idle

// The framework's idle timeout (`connection_config::idle_timeout`, the
// server's `--idle-timeout`) under the fake network and virtual time: a
// connection with nothing in flight and no activity for that long is closed
// (FIN, `done`, the linger), whatever its behaviour; a busy one is not.

#include "actors/connection.hpp"

#include <chrono>
#include <string>
#include <vector>

#include "test/actors/io_fixture.hpp"

using namespace quiesce;
using namespace quiesce::testing;
using namespace std::chrono_literals;

namespace {

/// Asks the backend (timeout: an hour) for every input and writes the reply.
/// Says idle throughout: only the framework counts the request.
class asking_behaviour final : public behaviour {
public:
  explicit asking_behaviour(caf::actor backend)
      : backend_(std::move(backend)) {}

  void on_data(std::string_view, connection_io& io) override {
    io.request<std::string>(backend_, 1h, 1, std::string("key"));
  }

  void on_reply(uint64_t, caf::message& reply, connection_io& io) override {
    io.write("reply:" + reply.get_as<std::string>(0) + "\n");
  }

  void on_stop(connection_io&) override {}

  bool idle() const override {
    return true;
  }

private:
  caf::actor backend_;
};

constexpr caf::timespan idle_timeout = 60s;

struct fixture : io_fixture {
  connection_handle hdl;
  connection_actor conn;
  caf::actor backend;

  fixture() : io_fixture(16, idle_timeout) {}

  ~fixture() override {
    if (backend)
      caf::anon_send_exit(backend, caf::exit_reason::kill);
  }

  void open() {
    hdl = connect_client();
    CAF_REQUIRE_EQUAL(rec->connected.size(), 1u);
    conn = rec->connected.back();
  }

  caf::actor_clock::time_point now() {
    return sched.clock().current_time;
  }

  /// Fires the next timer (the earliest) and runs what follows.
  void fire() {
    CAF_REQUIRE(sched.trigger_timeout());
    exhaust();
  }

  size_t timers() {
    return sched.clock().schedule().size();
  }
};

} // namespace

CAF_TEST(without an idle timeout no timer runs for an idle connection) {
  io_fixture f; // idle_timeout zero: the kit's default
  f.connect_client();
  CAF_CHECK(!f.sched.has_pending_timeout());
  CAF_CHECK_EQUAL(f.rec->done, 0);
}

CAF_TEST_FIXTURE_SCOPE(idle_tests, fixture)

CAF_TEST(a connection that sends nothing is closed after the idle timeout) {
  auto opened = now();
  open();
  CAF_CHECK_EQUAL(timers(), 1u);
  fire();
  CAF_CHECK_EQUAL(now() - opened, idle_timeout);
  // FIN and done, as after a stop, nothing written; then the linger.
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_CHECK(!terminated(conn));
  peer_closes(conn, hdl);
  CAF_CHECK(terminated(conn));
}

CAF_TEST(input postpones the idle close without a timer of its own) {
  open();
  auto opened = now();
  sched.clock().current_time += 30s;
  client_sends(hdl, "ping");
  CAF_CHECK_EQUAL(output(hdl), "ping");
  // Input only notes the time: still the one timer armed at the open.
  CAF_CHECK_EQUAL(timers(), 1u);
  // It fires, finds the input 30 s old and waits for the rest.
  fire();
  CAF_CHECK_EQUAL(now() - opened, idle_timeout);
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(timers(), 1u);
  fire();
  CAF_CHECK_EQUAL(now() - opened, idle_timeout + 30s);
  CAF_CHECK_EQUAL(rec->done, 1);
  // Input after the idle close is read and dropped, as after a stop.
  client_sends(hdl, "late");
  CAF_CHECK_EQUAL(output(hdl), "ping");
}

CAF_TEST(a busy behaviour keeps the connection from idling) {
  use_line_protocol = true;
  open();
  // Half a line: the behaviour has work in flight.
  client_sends(hdl, "half a li");
  fire();
  CAF_CHECK_EQUAL(rec->done, 0);
  // No timer runs while it is busy, however long.
  CAF_CHECK(!sched.has_pending_timeout());
  sched.clock().current_time += 2h;
  client_sends(hdl, "ne\n");
  CAF_CHECK_EQUAL(output(hdl), "line:half a line\n");
  // Idle again: closed a whole idle timeout from now.
  auto idle_since = now();
  fire();
  CAF_CHECK_EQUAL(now() - idle_since, idle_timeout);
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(the idle time counts from the end of the work in flight) {
  use_line_protocol = true;
  open();
  auto opened = now();
  // Answered by a behaviour timer 100 ms later; busy meanwhile.
  client_sends(hdl, "wait\n");
  fire();
  CAF_CHECK_EQUAL(output(hdl), "waited\n");
  // The idle timer armed at the open fires after 60 s, finds 59.9 s of
  // idling, and waits for the rest.
  fire();
  CAF_CHECK_EQUAL(rec->done, 0);
  fire();
  CAF_CHECK_EQUAL(now() - opened, idle_timeout + 100ms);
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a pending request keeps the connection from idling) {
  backend = sys.spawn<held_backend>();
  make_behaviour
    = [b = backend] { return std::make_unique<asking_behaviour>(b); };
  open();
  client_sends(hdl, "x");
  // The idle timer comes first (the request's timeout is an hour): the
  // behaviour says idle, but a reply is owed.
  fire();
  CAF_CHECK_EQUAL(rec->done, 0);
  sched.clock().current_time += 10min;
  caf::anon_send(backend, release_atom_v);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "reply:value\n");
  auto answered = now();
  // The next timer is a new idle timer, before the request's timeout.
  fire();
  CAF_CHECK_EQUAL(now() - answered, idle_timeout);
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(an idle timer during the linger after a stop is harmless) {
  open();
  auto opened = now();
  // Stopped 40 s after the open, before the idle timer's time.
  sched.clock().current_time += 40s;
  caf::anon_send(conn, stop_atom_v);
  exhaust();
  CAF_CHECK_EQUAL(rec->done, 1);
  // Input late in the linger (within its 30 s limit) keeps it going past
  // the idle timer's time.
  sched.clock().current_time += 19500ms;
  client_sends(hdl, "late");
  fire(); // the linger timer, re-armed
  fire(); // the idle timer: the connection is no longer open
  CAF_CHECK_EQUAL(now() - opened, idle_timeout);
  CAF_CHECK(!terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 1);
  fire(); // the linger ends the connection
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(output(hdl), "");
}

CAF_TEST(a connection that ends leaves no timer behind to hold its memory) {
  open();
  // The idle timer is pending at the relay; the peer closes.
  caf::actor_addr addr = conn.address();
  caf::anon_send(conn, caf::io::connection_closed_msg{hdl});
  exhaust();
  // Every other reference goes: ours, the recorder's (it keeps the handle
  // and the address that reported done).
  conn = nullptr;
  rec->connected.clear();
  rec->done_by.clear();
  exhaust();
  CAF_CHECK(!caf::actor_cast<caf::actor>(addr));
  // CAF frees an ended actor's memory once no address of it is left: the
  // relay dropped the idle timer's (one weak reference left: `addr`).
  CAF_CHECK_EQUAL(addr.get()->weak_refs.load(), 1u);
}

CAF_TEST_FIXTURE_SCOPE_END()
