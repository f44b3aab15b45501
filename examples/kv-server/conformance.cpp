// The conformance kit run on the RESP protocol: pipelines of commands that
// ask the store (a stop while idle closes at once, a stop while a command is
// half received or waits for the store finishes it and every complete one
// before it, in order; a forced exit aborts; input split anywhere gets the
// same answers), and the store as a service that holds a command across a
// stop.

#define CAF_SUITE conformance.kv
#include "caf/test/unit_test_impl.hpp"

#include <typeindex>

#include "quiesce/testing/conformance.hpp"

#include "kv.hpp"

namespace {

using quiesce::testing::exchange;

/// Runs the kit on `pipeline`. Each scenario runs one connection in a fresh
/// actor system, with a store of its own (a locator per connection), so
/// that no key is left from the last one.
void check(std::vector<exchange> pipeline) {
  quiesce::testing::conformance_case c;
  c.make = [] {
    return std::make_unique<kv_protocol>(std::make_shared<kv::store_locator>());
  };
  c.pipeline = std::move(pipeline);
  quiesce::testing::check_conformance(c);
}

} // namespace

CAF_TEST(one command waiting for the store keeps the shutdown promise) {
  check({{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n41\r\n", "+OK\r\n", ""}});
}

CAF_TEST(a pipeline keeps the shutdown promise) {
  check({
    {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n41\r\n", "+OK\r\n", ""},
    {"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n", ":42\r\n", ""},
    {"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$2\r\n42\r\n", ""},
    {"*3\r\n$3\r\nDEL\r\n$1\r\nk\r\n$1\r\nx\r\n", ":1\r\n", ""},
    {"PING\r\n", "+PONG\r\n", ""},
  });
}

CAF_TEST(answers and errors as redis gives them) {
  check({
    {"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", "$2\r\nhi\r\n", ""},
    {"*1\r\n$3\r\nGET\r\n",
     "-ERR wrong number of arguments for 'get' command\r\n", ""},
    {"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n",
     "-ERR syntax error\r\n", ""},
    {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n", ""},
    {"*2\r\n$4\r\nincr\r\n$1\r\nk\r\n",
     "-ERR value is not an integer or out of range\r\n", ""},
    {"*2\r\n$3\r\nget\r\n$1\r\nz\r\n", "$-1\r\n", ""},
    {"*3\r\n$5\r\nHELLO\r\n$1\r\na\r\n$1\r\nb\r\n",
     "-ERR unknown command 'HELLO', with args beginning with: 'a' 'b' \r\n",
     ""},
  });
}

CAF_TEST(a command the store service holds at the stop is answered first) {
  // The behaviour as the server runs it: it asks the service "store"
  // (main.cpp). The kit plays the store: it answers every INCR with 7, and
  // holds one across a stop (and, in another scenario, never answers it).
  quiesce::testing::conformance_case c;
  c.make = [] { return std::make_unique<kv_protocol>(); };
  c.service.name = "store";
  c.service.handle_type = typeid(kv::store_actor);
  c.service.reply = [](const caf::message& request) {
    // One reply per command of the batch (kv::exec_atom, commands).
    auto n = request.get_as<std::vector<kv::command>>(1).size();
    std::string replies;
    for (size_t i = 0; i < n; ++i)
      replies += ":7\r\n";
    return caf::make_message(std::move(replies));
  };
  c.service.asking = {"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n", ":7\r\n", ""};
  c.pipeline = {{"PING\r\n", "+PONG\r\n", ""},
                {"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n", ":7\r\n", ""}};
  quiesce::testing::check_conformance(c);
}
