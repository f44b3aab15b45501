#pragma once

/// @file
/// The fixture of the actor tests: the conformance kit's `broker_fixture`
/// (real acceptor and connection brokers under CAF's fake multiplexer, a
/// recording supervisor) with a test line protocol.

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/behaviour.hpp"
#include "actors/behaviours/echo.hpp"
#include "actors/testing/conformance.hpp"

namespace quiesce::testing {

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

  explicit io_fixture(size_t max_connections = 16)
    : broker_fixture({}, max_connections) {
  }

  std::unique_ptr<behaviour> new_behaviour() override {
    if (make_behaviour)
      return make_behaviour();
    if (use_line_protocol)
      return std::make_unique<line_behaviour>();
    return std::make_unique<behaviours::echo>();
  }
};

} // namespace quiesce::testing
