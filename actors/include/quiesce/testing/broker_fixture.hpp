#pragma once

/// @file
/// A fixture for CAF's test framework (`caf/test/io_dsl.hpp`): the real
/// acceptor and connection brokers on CAF's fake multiplexer, under the test
/// coordinator (virtual time), with a supervisor that records what it is
/// told. Installed with the library, header-only but for `spawn_acceptor`
/// (spawn_acceptor.hpp), which the library compiles. The conformance kit
/// (conformance.hpp) runs on it, and a behaviour's own tests may too.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <vector>

#include "caf/test/io_dsl.hpp"

#include "quiesce/behaviour.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/service.hpp"
#include "quiesce/testing/spawn_acceptor.hpp"

namespace quiesce::testing {

/// What the supervisor was told.
struct supervisor_record {
  std::vector<connection_actor> connected;
  /// Who reported `done`, in order.
  std::vector<caf::actor_addr> done_by;
  int done = 0;
};

/// Stands in for the supervisor: records connections and `done`.
inline supervisor_actor::behavior_type
recording_supervisor(supervisor_actor::pointer self,
                     std::shared_ptr<supervisor_record> rec) {
  return {
    [rec](connected_atom, connection_actor& conn) {
      rec->connected.push_back(conn);
    },
    [self, rec](done_atom) {
      ++rec->done;
      rec->done_by.push_back(self->current_sender()
                               ? self->current_sender()->address()
                               : caf::actor_addr{});
    },
    [](stop_atom) { return shutdown_report{}; },
    [](force_atom) {},
    [](drain_timeout_atom) {},
    [](retire_atom) { return shutdown_report{}; },
    [](metrics_atom) { return metrics_snapshot{}; },
    [](closing_atom) {},
    [rec](connections_atom) {
      return static_cast<uint32_t>(rec->connected.size() - rec->done_by.size());
    },
  };
}

/// A real acceptor broker on a fake listening socket, a recording supervisor,
/// and helpers to accept connections and move bytes. Brokers run in the fake
/// network layer; tests assert on recorded messages and output bytes.
class broker_fixture : public test_node_fixture<> {
public:
  using connection_handle = caf::io::connection_handle;
  using accept_handle = caf::io::accept_handle;

  std::shared_ptr<supervisor_record> rec
    = std::make_shared<supervisor_record>();
  supervisor_actor sup;
  acceptor_actor acc;
  accept_handle acc_hdl = accept_handle::from_int(1);
  int64_t next_id = 100;
  /// Makes the behaviour of each new connection (set it before connecting).
  behaviour_factory make_behaviour;
  /// The services the connections find (`connection_io::service`): none
  /// until a test gives one with `set_service`.
  std::shared_ptr<service_directory> services
    = std::make_shared<service_directory>();

  /// `idle_timeout` is the connections' (`connection_config`): zero, the
  /// default, turns the framework's idle close off, so that firing every
  /// timer (as the kit does) never closes a connection for idling.
  explicit broker_fixture(behaviour_factory make = {},
                          size_t max_connections = 1024,
                          caf::timespan idle_timeout = caf::timespan{0})
      : make_behaviour(std::move(make)) {
    sup = sys.spawn(recording_supervisor, rec);
    acc = spawn_acceptor(
      mm, mpx.new_doorman(acc_hdl, 8080), sup,
      [this] { return new_behaviour(); }, max_connections, idle_timeout,
      services);
    exhaust();
  }

  broker_fixture(const broker_fixture&) = delete;

  broker_fixture& operator=(const broker_fixture&) = delete;

  ~broker_fixture() override {
    // Drop the timers still pending (a linger timer of a connection that
    // ended when its peer closed): the test clock would keep their actors
    // alive past the test, which LeakSanitizer reports. The real clock drops
    // them at shutdown.
    sched.clock().cancel_all();
    exhaust();
    services->clear();
    for (auto& conn : rec->connected)
      caf::anon_send_exit(conn, caf::exit_reason::kill);
    caf::anon_send_exit(acc, caf::exit_reason::kill);
    caf::anon_send_exit(sup, caf::exit_reason::kill);
    exhaust();
  }

  /// Makes the behaviour of a new connection.
  virtual std::unique_ptr<behaviour> new_behaviour() {
    return make_behaviour();
  }

  /// Makes `handle` the server's service `name` for every connection, as if
  /// declared with `add_service` (quiesce/service.hpp) and a spawn function
  /// returning the handle type `type` (what a typed look-up must name): a
  /// stand-in that the test controls. Look-ups happen at each request, so
  /// it may be set or replaced at any time. The test ends the actor.
  void set_service(const std::string& name, caf::actor handle,
                   std::type_index type = typeid(caf::actor)) {
    services->set(name, std::move(handle), type);
  }

  /// Runs every message and I/O event; fires no timer.
  void exhaust() {
    while (sched.try_run_once() || mpx.try_exec_runnable() || mpx.read_data())
      ; // repeat
  }

  /// Fires timers (the earliest first, running everything after each) until
  /// `done()` holds or `max_timers` have fired; returns `done()`.
  template <class Predicate>
  bool fire_timers_until(Predicate done, size_t max_timers = 10000) {
    exhaust();
    for (size_t i = 0; !done() && i < max_timers; ++i) {
      if (!sched.trigger_timeout())
        break;
      exhaust();
    }
    return done();
  }

  /// A client connects; returns the server side's handle.
  connection_handle connect_client() {
    auto hdl = connection_handle::from_int(next_id++);
    mpx.add_pending_connect(acc_hdl, hdl);
    mpx.accept_connection(acc_hdl);
    exhaust();
    return hdl;
  }

  void client_sends(connection_handle hdl, std::string_view bytes) {
    if (bytes.empty())
      return;
    mpx.virtual_send(hdl, std::vector<char>(bytes.begin(), bytes.end()));
    exhaust();
  }

  /// Everything the server has written to `hdl` so far.
  std::string output(connection_handle hdl) {
    auto& buf = mpx.output_buffer(hdl);
    return std::string(buf.begin(), buf.end());
  }

  /// The peer closes its end (after reading the FIN, or on its own).
  void peer_closes(const connection_actor& conn, connection_handle hdl) {
    caf::anon_send(conn, caf::io::connection_closed_msg{hdl});
    exhaust();
  }

  /// `conn` has reported `done`.
  bool reported_done(const connection_actor& conn) const {
    auto& by = rec->done_by;
    return std::find(by.begin(), by.end(), conn.address()) != by.end();
  }

  bool terminated(const caf::actor_addr& x) {
    auto ptr = caf::actor_cast<caf::strong_actor_ptr>(x);
    return ptr == nullptr
           || ptr->get()->getf(caf::abstract_actor::is_terminated_flag);
  }

  template <class Handle>
  bool terminated(const Handle& x) {
    return terminated(x.address());
  }
};

} // namespace quiesce::testing
