#define CAF_SUITE conformance.kit

// The kit's own tests: it passes a behaviour that keeps the promise and
// catches each way of breaking it.

#include "quiesce/testing/conformance.hpp"

#include <memory>
#include <string>

#include "test/actors/io_fixture.hpp"

using namespace quiesce;
using namespace quiesce::testing;

namespace {

/// A line protocol with a defect switched on.
class broken_line final : public behaviour {
public:
  enum class defect {
    /// Claims idle with half a line buffered: the line is lost at a stop.
    idle_with_partial_line,
    /// Answers on a timer but claims idle meanwhile.
    idle_with_timer_pending,
    /// Takes each piece of input for a whole line.
    pieces_are_lines,
    /// Writes a goodbye when stopped idle.
    writes_at_stop,
  };

  explicit broken_line(defect d) : defect_(d) {}

  void on_data(std::string_view bytes, connection_io& io) override {
    if (defect_ == defect::pieces_are_lines) {
      io.write("> " + std::string{bytes});
      return;
    }
    for (auto c : bytes) {
      partial_ += c;
      if (c != '\n')
        continue;
      if (defect_ == defect::idle_with_timer_pending) {
        io.start_timer(std::chrono::milliseconds(10), 1);
        answer_ = "> " + partial_;
      } else {
        io.write("> " + partial_);
      }
      partial_.clear();
    }
  }

  void on_timer(uint64_t, connection_io& io) override {
    io.write(answer_);
  }

  void on_stop(connection_io& io) override {
    if (defect_ == defect::writes_at_stop)
      io.write("bye\n");
  }

  bool idle() const override {
    switch (defect_) {
      case defect::idle_with_partial_line:
      case defect::idle_with_timer_pending:
        return true;
      default:
        return partial_.empty();
    }
  }

private:
  defect defect_;
  std::string partial_;
  std::string answer_;
};

conformance_case broken(broken_line::defect d) {
  conformance_case c;
  c.make = [d] { return std::make_unique<broken_line>(d); };
  c.request = "hello\n";
  c.response = "> hello\n";
  return c;
}

} // namespace

CAF_TEST(a behaviour that keeps the promise passes every check) {
  conformance_case c;
  c.make = [] { return std::make_unique<line_behaviour>(); };
  c.request = "wait\n";
  c.response = "waited\n";
  collect_verdicts verdicts;
  check_conformance(c);
  CAF_CHECK_EQUAL(verdicts.failures, std::vector<std::string>{});
  CAF_CHECK_GREATER(verdicts.passed, 40u);
}

CAF_TEST(idle with half a request buffered is caught) {
  collect_verdicts verdicts;
  check_conformance(broken(broken_line::defect::idle_with_partial_line));
  CAF_CHECK(verdicts.failed_with("stop after 3 of 6 bytes: a request half "
                                 "received at the stop is in flight"));
}

CAF_TEST(idle with an answer still owed is caught) {
  collect_verdicts verdicts;
  check_conformance(broken(broken_line::defect::idle_with_timer_pending));
  CAF_CHECK(verdicts.failed_with("stop after 6 of 6 bytes (idle): output \"\" "
                                 "but want \"> hello\\n\""));
}

CAF_TEST(a behaviour that depends on how input is split is caught) {
  collect_verdicts verdicts;
  check_conformance(broken(broken_line::defect::pieces_are_lines));
  CAF_CHECK(verdicts.failed_with("request split at byte 2: output"));
  CAF_CHECK(verdicts.failed_with("request sent one byte at a time: output"));
}

CAF_TEST(writing when stopped idle is caught) {
  collect_verdicts verdicts;
  check_conformance(broken(broken_line::defect::writes_at_stop));
  CAF_CHECK(verdicts.failed_with("stop before any input: output \"bye\\n\""));
}
