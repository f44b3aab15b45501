#define CAF_SUITE actors.connection

#include "actors/connection.hpp"

#include "test/actors/io_fixture.hpp"

using namespace quiesce;
using namespace quiesce::testing;

namespace {

/// Asks the backend for each line and writes the reply; writes each pushed
/// string. It never calls itself busy: the framework counts the requests.
class backend_behaviour final : public behaviour {
public:
  explicit backend_behaviour(caf::actor backend)
      : backend_(std::move(backend)) {}

  void on_data(std::string_view bytes, connection_io& io) override {
    for (auto c : bytes) {
      if (c != '\n') {
        line_ += c;
        continue;
      }
      io.request<std::string>(backend_, std::chrono::seconds(5), ++token_,
                              line_);
      line_.clear();
    }
  }

  void on_reply(uint64_t token, caf::message& reply,
                connection_io& io) override {
    io.write("reply " + std::to_string(token) + ":"
             + reply.get_as<std::string>(0) + "\n");
  }

  void on_reply_error(uint64_t token, const caf::error& err,
                      connection_io& io) override {
    auto what = err == caf::sec::request_timeout         ? "timeout"
                : err == caf::sec::request_receiver_down ? "gone"
                                                         : "other";
    io.write("error " + std::to_string(token) + ":" + what + "\n");
  }

  void on_message(caf::message& msg, connection_io& io) override {
    if (msg.match_elements<std::string>())
      io.write("push:" + msg.get_as<std::string>(0) + "\n");
  }

  void on_stop(connection_io&) override {}

  bool idle() const override {
    return true;
  }

private:
  caf::actor backend_;
  std::string line_;
  uint64_t token_ = 0;
};

struct fixture : io_fixture {
  connection_handle hdl;
  connection_actor conn;
  /// The held backend of the request tests.
  caf::actor backend;

  ~fixture() override {
    if (backend)
      caf::anon_send_exit(backend, caf::exit_reason::kill);
  }

  /// Accepts one client running `backend_behaviour` on a held backend.
  void open_with_backend() {
    backend = sys.spawn<held_backend>();
    make_behaviour
      = [b = backend] { return std::make_unique<backend_behaviour>(b); };
    open();
  }

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

CAF_TEST(
  reads switch between the small and the large buffer without losing a byte) {
  // Records the size of every piece it gets and echoes it.
  struct recorder final : behaviour {
    std::vector<size_t>* sizes;
    explicit recorder(std::vector<size_t>* xs) : sizes(xs) {}
    void on_data(std::string_view bytes, connection_io& io) override {
      sizes->push_back(bytes.size());
      io.write(bytes);
    }
    void on_stop(connection_io&) override {}
    bool idle() const override {
      return true;
    }
  };
  std::vector<size_t> sizes;
  make_behaviour = [&sizes] { return std::make_unique<recorder>(&sizes); };
  open();
  std::string big(5000, 'a');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>('a' + i % 26);
  // The first read fills the 512-byte buffer; the rest comes in one large
  // read. One short read keeps the large buffer (it is often the rest of a
  // burst: 600 bytes read as 512 + 88), so 600 bytes then come in one read;
  // two short reads in a row switch back: 2,000 bytes then take 512 + 1,488.
  std::string burst(600, 'p');
  client_sends(hdl, big);
  client_sends(hdl, "x");
  client_sends(hdl, burst);
  client_sends(hdl, "y");
  client_sends(hdl, "z");
  client_sends(hdl, big.substr(0, 2000));
  CAF_CHECK_EQUAL(output(hdl), big + "x" + burst + "yz" + big.substr(0, 2000));
  CAF_CHECK_EQUAL(sizes,
                  (std::vector<size_t>{512, 4488, 1, 600, 1, 1, 512, 1488}));
}

CAF_TEST(the closing mode of a stop delay leaves an echo connection serving) {
  // Echo has no way to tell its client to go elsewhere: it serves on, open
  // and accepted during the delay alike, until the stop.
  open();
  client_sends(hdl, "before ");
  caf::anon_send(conn, lifecycle_timer_atom_v,
                 static_cast<uint8_t>(lifecycle_timer::closing));
  caf::anon_send(acc, closing_atom_v);
  exhaust();
  client_sends(hdl, "after");
  CAF_CHECK_EQUAL(output(hdl), "before after");
  auto later = connect_client();
  client_sends(later, "new");
  CAF_CHECK_EQUAL(output(later), "new");
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK(!terminated(conn));
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a connection accepted during the stop delay is told closing once) {
  // Created in the closing mode, it may still get the supervisor's `closing`
  // (sent to every connection announced after the supervisor's own, for one
  // created before the acceptor took the mode): the behaviour hears it once.
  struct counter final : behaviour {
    int* calls;
    explicit counter(int* n) : calls(n) {}
    void on_data(std::string_view bytes, connection_io& io) override {
      io.write(bytes);
    }
    void on_closing(connection_io&) override {
      ++*calls;
    }
    void on_stop(connection_io&) override {}
    bool idle() const override {
      return true;
    }
  };
  int calls = 0;
  make_behaviour = [&calls] { return std::make_unique<counter>(&calls); };
  caf::anon_send(acc, closing_atom_v);
  exhaust();
  open();
  CAF_CHECK_EQUAL(calls, 1);
  caf::anon_send(conn, lifecycle_timer_atom_v,
                 static_cast<uint8_t>(lifecycle_timer::closing));
  exhaust();
  CAF_CHECK_EQUAL(calls, 1);
  client_sends(hdl, "still");
  CAF_CHECK_EQUAL(output(hdl), "still");
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
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

CAF_TEST(a forced exit ends the actor on the next loop turn without done) {
  use_line_protocol = true;
  open();
  client_sends(hdl, "never finished");
  stop();
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  exhaust();
  // The socket is aborted at once; the actor ends on a 1 ms timer, and
  // ignores everything else meanwhile.
  CAF_CHECK(!terminated(conn));
  client_sends(hdl, "\n");
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(exit_reason(), caf::exit_reason::user_shutdown);
}

CAF_TEST(an idle connection given the forced exit closes cleanly with done) {
  // A keep-alive connection whose request is answered: nothing in flight.
  // The forced exit may reach it before the stop (the broadcast goes through
  // the event loop): it closes as the stop would have (FIN) and reports
  // done, so it is not counted as forced.
  open();
  client_sends(hdl, "ping");
  CAF_CHECK_EQUAL(output(hdl), "ping");
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  exhaust();
  CAF_CHECK_EQUAL(rec->done, 1);
  // It ends on the next loop turn, normally, and writes nothing more.
  CAF_CHECK(!terminated(conn));
  client_sends(hdl, "late");
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(output(hdl), "ping");
  CAF_CHECK_EQUAL(exit_reason(), caf::exit_reason::normal);
}

CAF_TEST(a lingering connection given the forced exit ends without a new done) {
  open();
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  exhaust();
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(exit_reason(), caf::exit_reason::normal);
}

CAF_TEST(a busy connection given the forced exit aborts without done) {
  // Half a line in flight, no stop yet.
  use_line_protocol = true;
  open();
  client_sends(hdl, "half");
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  exhaust();
  CAF_CHECK_EQUAL(rec->done, 0);
  client_sends(hdl, " a line\n");
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_CHECK_EQUAL(exit_reason(), caf::exit_reason::user_shutdown);
}

CAF_TEST(a linger ends at the linger time limit however the peer trickles) {
  // A peer that sends a byte every 500 ms after the FIN never leaves the
  // linger a second without input: only the total limit (30 s, nginx's
  // lingering_time) ends it. Upper bound of the test: 120 s.
  open();
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
  auto fin = sched.clock().current_time;
  size_t sent = 0;
  while (!terminated(conn)
         && sched.clock().current_time - fin < std::chrono::seconds(120)) {
    sched.clock().advance_time(std::chrono::milliseconds(500));
    exhaust();
    if (terminated(conn))
      break;
    client_sends(hdl, "x");
    ++sent;
  }
  auto lingered = sched.clock().current_time - fin;
  CAF_MESSAGE(
    "sent "
    << sent << " bytes over "
    << std::chrono::duration_cast<std::chrono::milliseconds>(lingered).count()
    << " ms of virtual time");
  CAF_CHECK(terminated(conn));
  CAF_CHECK_GREATER_OR_EQUAL(lingered, std::chrono::seconds(30));
  CAF_CHECK_LESS_OR_EQUAL(lingered, std::chrono::milliseconds(30500));
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(output(hdl), "");
}

CAF_TEST(discarded input past the limit stops reading and ends the linger) {
  // After the FIN a peer uploads 64 KiB every 100 ms. Past 1 MiB discarded
  // the connection reads no more; the peer gets one linger (1 s) more, then
  // the connection closes, long before the 30 s limit. Upper bound: 20 s.
  open();
  stop();
  auto fin = sched.clock().current_time;
  const std::string chunk(64 * 1024, 'u');
  size_t sent = 0;
  while (!terminated(conn)
         && sched.clock().current_time - fin < std::chrono::seconds(20)) {
    client_sends(hdl, chunk);
    sent += chunk.size();
    sched.clock().advance_time(std::chrono::milliseconds(100));
    exhaust();
  }
  auto took = sched.clock().current_time - fin;
  CAF_MESSAGE(
    "the peer sent "
    << sent << " bytes in "
    << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
    << " ms of virtual time");
  CAF_CHECK(terminated(conn));
  // 1 MiB is 16 chunks (1.6 s), then one linger.
  CAF_CHECK_LESS_OR_EQUAL(took, std::chrono::milliseconds(2800));
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(output(hdl), "");
}

CAF_TEST(a throwing behaviour ends its connection with an error) {
  use_line_protocol = true;
  open();
  client_sends(hdl, "boom");
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(exit_reason(), caf::sec::runtime_error);
}

CAF_TEST(the reply to a request reaches the behaviour) {
  open_with_backend();
  client_sends(hdl, "key\n");
  CAF_CHECK_EQUAL(output(hdl), "");
  caf::anon_send(backend, release_atom_v);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "reply 1:value\n");
}

CAF_TEST(a pending request keeps the connection busy through a stop) {
  open_with_backend();
  client_sends(hdl, "key\n");
  stop();
  // The behaviour says idle, but its request has no reply yet: no FIN.
  CAF_CHECK_EQUAL(rec->done, 0);
  caf::anon_send(backend, release_atom_v);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "reply 1:value\n");
  CAF_CHECK_EQUAL(rec->done, 1);
  peer_closes();
  CAF_CHECK(terminated(conn));
}

CAF_TEST(a request that times out reaches the behaviour as an error) {
  open_with_backend();
  client_sends(hdl, "key\n");
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  // The only timer is the request's timeout.
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error 1:timeout\n");
  CAF_CHECK_EQUAL(rec->done, 1);
  // The late reply finds the connection after its FIN: dropped.
  caf::anon_send(backend, release_atom_v);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error 1:timeout\n");
  peer_closes();
  CAF_CHECK(terminated(conn));
}

CAF_TEST(a request to an actor that is gone reaches the behaviour as an error) {
  open_with_backend();
  caf::anon_send_exit(backend, caf::exit_reason::kill);
  exhaust();
  client_sends(hdl, "key\n");
  CAF_CHECK_EQUAL(output(hdl), "error 1:gone\n");
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(requests held by an actor that ends fail at once
         and not at the timeout) {
  open_with_backend();
  client_sends(hdl, "a\nb\n");
  CAF_CHECK_EQUAL(output(hdl), "");
  // The backend holds both in response promises: CAF 0.17 answers neither
  // when it ends. The connection's monitor fails both, no timer fired.
  caf::anon_send_exit(backend, caf::exit_reason::kill);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error 1:gone\nerror 2:gone\n");
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
  peer_closes();
  CAF_CHECK(terminated(conn));
}

CAF_TEST(messages pushed by other actors reach the behaviour until the FIN) {
  open_with_backend();
  caf::anon_send(conn, deliver_atom_v, caf::make_message(std::string("news")));
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "push:news\n");
  stop();
  caf::anon_send(conn, deliver_atom_v, caf::make_message(std::string("late")));
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "push:news\n");
}

CAF_TEST(a behaviour that makes requests without handling replies is aborted) {
  struct careless final : behaviour {
    caf::actor backend;
    void on_data(std::string_view, connection_io& io) override {
      io.request<std::string>(backend, std::chrono::seconds(5), 7,
                              std::string("key"));
    }
    void on_stop(connection_io&) override {}
    bool idle() const override {
      return true;
    }
  };
  backend = sys.spawn<held_backend>();
  make_behaviour = [b = backend] {
    auto result = std::make_unique<careless>();
    result->backend = b;
    return result;
  };
  open();
  client_sends(hdl, "x");
  caf::anon_send(backend, release_atom_v);
  exhaust();
  CAF_CHECK(terminated(conn));
  CAF_CHECK_EQUAL(exit_reason(), caf::sec::runtime_error);
}

CAF_TEST_FIXTURE_SCOPE_END()
