#pragma once

/// @file
/// The fixture of the actor tests: the conformance kit's `broker_fixture`
/// (real acceptor and connection brokers under CAF's fake multiplexer, a
/// recording supervisor) with a test line protocol.

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "quiesce/behaviour.hpp"
#include "quiesce/echo.hpp"
#include "quiesce/testing/conformance.hpp"

CAF_ADD_ATOM(quiesce_test, quiesce::testing, release_atom, "release")

namespace quiesce::testing {

/// A backend that holds every request until it gets `release`: the test
/// decides when the reply arrives. (A class: CAF 0.17 spawns a function
/// actor without arguments through a null pointer, which UBSan reports.)
class held_backend : public caf::event_based_actor {
public:
  using caf::event_based_actor::event_based_actor;

  caf::behavior make_behavior() override {
    return {
      [this](const std::string&) -> caf::result<std::string> {
        waiting_.push_back(make_response_promise());
        return caf::delegated<std::string>{};
      },
      [this](release_atom) {
        for (auto& rp : waiting_)
          rp.deliver(std::string("value"));
        waiting_.clear();
      },
    };
  }

  void on_exit() override {
    // A held promise refers to this actor: dropped at its end, as by a
    // crash (CAF 0.17 sends no error for it).
    waiting_.clear();
  }

private:
  std::vector<caf::response_promise> waiting_;
};

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

/// The kit's broker fixture with the echo protocol, or the line protocol
/// above when `use_line_protocol` is set, unless `make_behaviour` is set.
struct io_fixture : broker_fixture {
  bool use_line_protocol = false;

  explicit io_fixture(size_t max_connections = 16,
                      caf::timespan idle_timeout = caf::timespan{0})
      : broker_fixture({}, max_connections, idle_timeout) {}

  std::unique_ptr<behaviour> new_behaviour() override {
    if (make_behaviour)
      return make_behaviour();
    if (use_line_protocol)
      return std::make_unique<line_behaviour>();
    return std::make_unique<behaviours::echo>();
  }
};

} // namespace quiesce::testing
