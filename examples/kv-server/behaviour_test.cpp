// The RESP behaviour where the conformance kit cannot reach yet: a stop
// while a command waits for the store (the kit's own scenarios let the store
// answer first), QUIT and malformed input, which close the connection.

#define CAF_SUITE behaviours.kv
#include "caf/test/unit_test_impl.hpp"

#include <memory>
#include <string>

#include "quiesce/testing/broker_fixture.hpp"

#include "kv.hpp"

namespace {

struct fixture : quiesce::testing::broker_fixture {
  connection_handle hdl;
  quiesce::connection_actor conn;

  fixture()
      : broker_fixture([] {
          // The store on the scheduler: run_io_only holds its replies.
          return std::make_unique<kv_protocol>(
            std::make_shared<kv::store_locator>(kv::placement::scheduler));
        }) {
    hdl = connect_client();
    conn = rec->connected.back();
  }

  /// Runs the connection (brokers run in the fake multiplexer) but not the
  /// store (a scheduled actor): its replies wait.
  void run_io_only() {
    while (mpx.try_exec_runnable() || mpx.read_data())
      ; // repeat
  }

  void client_sends_unanswered(std::string_view bytes) {
    mpx.virtual_send(hdl, std::vector<char>(bytes.begin(), bytes.end()));
    run_io_only();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(kv_behaviour, fixture)

CAF_TEST(a stop while commands wait for the store writes their replies) {
  client_sends_unanswered("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                          "PING\r\n"
                          "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  caf::anon_send(conn, quiesce::stop_atom_v);
  run_io_only();
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_CHECK(!reported_done(conn));
  exhaust(); // the store answers
  CAF_CHECK_EQUAL(output(hdl), "+OK\r\n+PONG\r\n$1\r\nv\r\n");
  CAF_CHECK(reported_done(conn));
}

CAF_TEST(a stop while a command is half received finishes it) {
  client_sends(hdl, "*2\r\n$4\r\nINCR\r\n$1\r");
  caf::anon_send(conn, quiesce::stop_atom_v);
  exhaust();
  CAF_CHECK(!reported_done(conn));
  // Its rest, a whole command with it and the start of another: the first
  // two are answered, the third is not read.
  client_sends(hdl, "\nn\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*1\r\n$4\r\nPI");
  CAF_CHECK_EQUAL(output(hdl), ":1\r\n:2\r\n");
  CAF_CHECK(reported_done(conn));
}

CAF_TEST(quit answers after the replies owed then closes) {
  client_sends_unanswered("*2\r\n$4\r\nINCR\r\n$1\r\nn\r\nQUIT\r\nPING\r\n");
  CAF_CHECK_EQUAL(output(hdl), "");
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), ":1\r\n+OK\r\n");
  client_sends(hdl, "PING\r\n");
  CAF_CHECK_EQUAL(output(hdl), ":1\r\n+OK\r\n");
}

CAF_TEST(malformed input is answered with an error then closes) {
  client_sends(hdl, "PING\r\n*1\r\n$99999999999\r\nPING\r\n");
  CAF_CHECK_EQUAL(output(hdl),
                  "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
  client_sends(hdl, "PING\r\n");
  CAF_CHECK_EQUAL(output(hdl),
                  "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
}

CAF_TEST(reading stops while 1024 replies are owed and resumes below) {
  // The store is not run: its replies wait. 100 commands per read.
  std::string hundred;
  for (int i = 0; i < 100; ++i)
    hundred += "INCR n\r\n";
  for (int i = 0; i < 10; ++i)
    client_sends_unanswered(hundred);
  CAF_CHECK(!mpx.passive_mode(hdl)); // 1,000 owed
  client_sends_unanswered(hundred);
  CAF_CHECK(mpx.passive_mode(hdl)); // 1,100 owed
  exhaust();                        // the store answers
  CAF_CHECK(!mpx.passive_mode(hdl));
  std::string expected;
  for (int i = 1; i <= 1100; ++i)
    expected += ":" + std::to_string(i) + "\r\n";
  CAF_CHECK_EQUAL(output(hdl), expected);
}

CAF_TEST(a batch the store never answers gets one error per command) {
  // Commands on keys in a row are one request to the store; a command
  // answered here splits them, so this read is two requests.
  auto stores = std::make_shared<kv::store_locator>(kv::placement::scheduler);
  make_behaviour = [stores] { return std::make_unique<kv_protocol>(stores); };
  auto client = connect_client();
  std::string_view input = "SET k v\r\nGET k\r\nPING\r\nINCR k\r\n";
  mpx.virtual_send(client, std::vector<char>(input.begin(), input.end()));
  run_io_only();
  CAF_CHECK_EQUAL(output(client), "");
  // Ahead of the requests in its mailbox: CAF answers them with an error.
  auto store = caf::actor_cast<caf::actor>(stores->find(sys));
  caf::anon_send<caf::message_priority::high>(
    store, caf::exit_msg{store.address(), caf::exit_reason::kill});
  exhaust();
  CAF_CHECK_EQUAL(output(client), "-ERR the receiver is gone\r\n"
                                  "-ERR the receiver is gone\r\n"
                                  "+PONG\r\n"
                                  "-ERR the receiver is gone\r\n");
}

CAF_TEST(keys outlive the connection that set them) {
  auto stores = std::make_shared<kv::store_locator>();
  make_behaviour = [stores] { return std::make_unique<kv_protocol>(stores); };
  auto first = connect_client();
  client_sends(first, "SET k v\r\n");
  auto first_conn = rec->connected.back();
  peer_closes(first_conn, first);
  CAF_CHECK(terminated(first_conn));
  auto second = connect_client();
  client_sends(second, "GET k\r\n");
  CAF_CHECK_EQUAL(output(first), "+OK\r\n");
  CAF_CHECK_EQUAL(output(second), "$1\r\nv\r\n");
}

CAF_TEST_FIXTURE_SCOPE_END()
