#pragma once

/// @file
/// A fixture for the brokers under CAF's fake multiplexer: a real acceptor
/// broker on a fake listening socket, a recording supervisor, and helpers to
/// accept connections and move bytes. Brokers run in the fake network layer,
/// so tests assert on recorded messages and on output bytes.

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "caf/test/io_dsl.hpp"

#include "actors/acceptor.hpp"
#include "actors/behaviour.hpp"
#include "actors/behaviours/echo.hpp"
#include "actors/messages.hpp"

namespace quiesce::testing {

/// What the supervisor was told.
struct supervisor_record {
  std::vector<connection_actor> connected;
  int done = 0;
};

inline supervisor_actor::behavior_type
recording_supervisor(supervisor_actor::pointer,
                     std::shared_ptr<supervisor_record> rec) {
  return {
    [rec](connected_atom, connection_actor& conn) {
      rec->connected.push_back(conn);
    },
    [rec](done_atom) { ++rec->done; },
    [](stop_atom) { return shutdown_report{}; },
    [](force_atom) {},
    [](drain_timeout_atom) {},
  };
}

/// A line protocol for tests of the busy path: answers each `\n`-terminated
/// line with `line:<text>\n`; busy while part of a line is buffered. The
/// line `wait` is answered by a timer 100 ms later (`waited\n`), busy until
/// then. Input `boom` makes it throw.
class line_behaviour final : public behaviour {
public:
  void on_data(std::string_view bytes, connection_io& io) override {
    if (bytes == "boom")
      throw std::runtime_error("boom");
    for (auto c : bytes) {
      if (c != '\n') {
        buf_ += c;
      } else if (buf_ == "wait") {
        buf_.clear();
        ++timers_;
        io.start_timer(std::chrono::milliseconds(100), 42);
      } else {
        io.write("line:" + buf_ + "\n");
        buf_.clear();
      }
    }
  }

  void on_timer(uint64_t token, connection_io& io) override {
    if (token == 42 && timers_ > 0) {
      --timers_;
      io.write("waited\n");
    }
  }

  void on_stop(connection_io&) override {
    // A partial line or a timer is in flight: finish it first.
  }

  bool idle() const override {
    return buf_.empty() && timers_ == 0;
  }

private:
  std::string buf_;
  int timers_ = 0;
};

struct io_fixture : test_node_fixture<> {
  using connection_handle = caf::io::connection_handle;
  using accept_handle = caf::io::accept_handle;

  std::shared_ptr<supervisor_record> rec
    = std::make_shared<supervisor_record>();
  supervisor_actor sup;
  acceptor_actor acc;
  accept_handle acc_hdl = accept_handle::from_int(1);
  int64_t next_id = 100;
  bool use_line_protocol = false;
  /// When set, makes the behaviour of each new connection instead of the
  /// echo or line protocol (set it before connecting).
  behaviour_factory make_behaviour;

  explicit io_fixture(size_t max_connections = 16) {
    sup = sys.spawn(recording_supervisor, rec);
    auto door = mpx.new_doorman(acc_hdl, 8080);
    acceptor_config acc_cfg;
    acc_cfg.connection.make_behaviour = [this]() -> std::unique_ptr<behaviour> {
      if (make_behaviour)
        return make_behaviour();
      if (use_line_protocol)
        return std::make_unique<line_behaviour>();
      return std::make_unique<behaviours::echo>();
    };
    acc_cfg.connection.supervisor = sup;
    acc_cfg.max_connections = max_connections;
    acc_cfg.address = "test:8080";
    acc = mm.spawn_broker(acceptor_main, door, acc_cfg);
    exhaust();
  }

  ~io_fixture() override {
    // Drop the timers still pending (a linger timer of a connection that
    // ended when its peer closed): the test clock would keep their actors
    // alive past the test, which LeakSanitizer reports. The real clock drops
    // them at shutdown; the sanitizer runs of the binary check that.
    sched.clock().cancel_all();
    exhaust();
    for (auto& conn : rec->connected)
      caf::anon_send_exit(conn, caf::exit_reason::kill);
    caf::anon_send_exit(acc, caf::exit_reason::kill);
    caf::anon_send_exit(sup, caf::exit_reason::kill);
    exhaust();
  }

  /// Runs every message and I/O event; fires no timer.
  void exhaust() {
    while (sched.try_run_once() || mpx.try_exec_runnable() || mpx.read_data())
      ; // repeat
  }

  /// A client connects; returns the server side's handle.
  connection_handle connect_client() {
    auto hdl = connection_handle::from_int(next_id++);
    mpx.add_pending_connect(acc_hdl, hdl);
    mpx.accept_connection(acc_hdl);
    exhaust();
    return hdl;
  }

  void client_sends(connection_handle hdl, const std::string& bytes) {
    mpx.virtual_send(hdl, std::vector<char>(bytes.begin(), bytes.end()));
    exhaust();
  }

  std::string output(connection_handle hdl) {
    auto& buf = mpx.output_buffer(hdl);
    return std::string(buf.begin(), buf.end());
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
