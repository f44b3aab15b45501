#define CAF_SUITE actors.stop_sequence

#include "actors/stop_sequence.hpp"

#include <string>
#include <vector>

#include "caf/test/unit_test.hpp"

using namespace quiesce;
using namespace std::chrono_literals;

namespace {

using step = stop_sequence::step;

std::string to_string(step x) {
  switch (x) {
    case step::none:
      return "none";
    case step::delay:
      return "delay";
    case step::stop:
      return "stop";
    case step::already:
      return "already";
    case step::force:
      return "force";
  }
  return "?";
}

/// A sequence that counts how often the stop began, and keeps why.
struct fixture {
  int began = 0;
  std::string why;

  stop_sequence make(caf::timespan delay) {
    stop_sequence seq{delay};
    seq.on_stop_begins([this](const std::string& x) {
      ++began;
      why = x;
    });
    return seq;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(stop_sequence_tests, fixture)

CAF_TEST(without a delay the first signal stops and the second forces) {
  auto seq = make(0s);
  CAF_CHECK(!seq.began());
  auto first = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(first, "stop");
  CAF_CHECK_EQUAL(began, 1);
  CAF_CHECK(seq.stopping());
  auto second = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(second, "force");
  auto third = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(third, "force");
  CAF_CHECK_EQUAL(began, 1);
  // No delay ran: its timer (none was armed) changes nothing.
  auto late = to_string(seq.on_delay_over());
  CAF_CHECK_EQUAL(late, "none");
}

CAF_TEST(with a delay signals go delay then stop then force) {
  auto seq = make(5s);
  auto first = to_string(seq.on_signal("SIGTERM received"));
  CAF_CHECK_EQUAL(first, "delay");
  CAF_CHECK_EQUAL(why, "SIGTERM received");
  CAF_CHECK(seq.delaying());
  CAF_CHECK(!seq.stopping());
  // The stop begins at the delay's start, not at its end.
  CAF_CHECK_EQUAL(began, 1);
  auto second = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(second, "stop");
  CAF_CHECK(seq.stopping());
  auto third = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(third, "force");
  // The delay's timer, after a second signal ended the delay: nothing.
  auto late = to_string(seq.on_delay_over());
  CAF_CHECK_EQUAL(late, "none");
  CAF_CHECK_EQUAL(began, 1);
}

CAF_TEST(the end of the delay stops and the next signal forces) {
  auto seq = make(1500ms);
  auto first = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(first, "delay");
  auto over = to_string(seq.on_delay_over());
  CAF_CHECK_EQUAL(over, "stop");
  auto again = to_string(seq.on_delay_over());
  CAF_CHECK_EQUAL(again, "none");
  // Outside the delay the count is as without one: a second signal forces.
  auto second = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(second, "force");
  CAF_CHECK_EQUAL(began, 1);
}

CAF_TEST(another stop cuts the delay and a signal after it forces) {
  auto seq = make(5s);
  auto first = to_string(seq.on_signal("SIGINT received"));
  CAF_CHECK_EQUAL(first, "delay");
  auto other = to_string(seq.on_other_stop("a service failed"));
  CAF_CHECK_EQUAL(other, "stop");
  // The stop began with the delay: its reason stays the signal's.
  CAF_CHECK_EQUAL(why, "SIGINT received");
  auto twice = to_string(seq.on_other_stop());
  CAF_CHECK_EQUAL(twice, "none");
  auto second = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(second, "force");
  CAF_CHECK_EQUAL(began, 1);
}

CAF_TEST(a first signal during another stop does not force) {
  for (auto delay : {caf::timespan{0}, caf::timespan{5s}}) {
    began = 0;
    auto seq = make(delay);
    auto other = to_string(seq.on_other_stop());
    CAF_CHECK_EQUAL(other, "stop");
    CAF_CHECK_EQUAL(began, 1);
    auto first = to_string(seq.on_signal());
    CAF_CHECK_EQUAL(first, "already");
    auto second = to_string(seq.on_signal());
    CAF_CHECK_EQUAL(second, "force");
    CAF_CHECK_EQUAL(began, 1);
  }
}

CAF_TEST(a new delay applies only before the stop begins) {
  auto seq = make(0s);
  seq.set_delay(2s); // a reload read it
  auto first = to_string(seq.on_signal());
  CAF_CHECK_EQUAL(first, "delay");
  seq.set_delay(0s); // too late: the delay runs
  CAF_CHECK(seq.delay() == caf::timespan{2s});
  CAF_CHECK(seq.delaying());
}

CAF_TEST(the delay is described in seconds or milliseconds) {
  auto s = stop_sequence::describe(5s);
  CAF_CHECK_EQUAL(s, "5s");
  auto ms = stop_sequence::describe(1500ms);
  CAF_CHECK_EQUAL(ms, "1500ms");
  stop_sequence seq{60s};
  auto line = stop_delay_line(seq);
  CAF_CHECK_EQUAL(line.rfind("stopping in 60s (stop delay", 0), 0u);
}

CAF_TEST_FIXTURE_SCOPE_END()
