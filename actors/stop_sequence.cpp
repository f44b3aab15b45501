#include "actors/stop_sequence.hpp"

#include <chrono>
#include <utility>

namespace quiesce {

stop_sequence::stop_sequence(caf::timespan delay) : delay_(delay) {
  // A negative delay is refused by its option rule; none here either.
  if (delay_.count() < 0)
    delay_ = caf::timespan{0};
}

void stop_sequence::begin(const std::string& why) {
  if (began())
    return;
  for (auto& f : on_begin_)
    f(why);
}

stop_sequence::step stop_sequence::on_signal(const std::string& why) {
  ++signals_;
  switch (phase_) {
    case phase::serving:
      begin(why);
      if (delay_.count() > 0) {
        phase_ = phase::delaying;
        return step::delay;
      }
      phase_ = phase::stopping;
      return step::stop;
    case phase::delaying:
      // A second signal ends the delay: the graceful stop, now.
      phase_ = phase::stopping;
      return step::stop;
    case phase::stopping:
      break;
  }
  return signals_ >= 2 ? step::force : step::already;
}

stop_sequence::step stop_sequence::on_delay_over() {
  if (phase_ != phase::delaying)
    return step::none;
  phase_ = phase::stopping;
  return step::stop;
}

stop_sequence::step stop_sequence::on_other_stop(const std::string& why) {
  if (phase_ == phase::stopping)
    return step::none;
  begin(why);
  phase_ = phase::stopping;
  return step::stop;
}

void stop_sequence::on_stop_begins(
  std::function<void(const std::string& why)> f) {
  on_begin_.push_back(std::move(f));
}

std::string stop_sequence::describe(caf::timespan x) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(x).count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string stop_delay_line(const stop_sequence& seq) {
  return "stopping in " + stop_sequence::describe(seq.delay())
         + " (stop delay: still serving, HTTP responses carry Connection: "
           "close; a second signal stops now)";
}

} // namespace quiesce
