#pragma once

/// @file
/// How a process's stop begins: the stop signals (TERM, INT, QUIT), the
/// stop delay (`--stop-delay`) and the moment the stop begins. A pure core:
/// no actor, no clock, no signal; the process's main loop (server.cpp for
/// one process, master_process for a master) feeds it events and carries
/// out the step it answers.
///
/// - Delay 0: the first signal stops (graceful), the second forces.
/// - Delay > 0: the first signal begins the delay (the server stays up,
///   answering with `Connection: close`); the delay's end, or a second
///   signal, stops (graceful); a signal after that forces.
/// - Anything else that stops the process (a failed service, a lost master,
///   workers that cannot start) stops at once, also during a delay; the
///   next signal then still counts as the first (it does not force), as it
///   did before the delay existed.
///
/// **The stop begins** once per process, at the first of: the delay's
/// start, the stop without a delay, any other stop. That is the moment at
/// which a process stops being ready (an admin endpoint's `/readyz` turns
/// 503, systemd is told `STOPPING=1`): hook it with `on_stop_begins`.

#include <functional>
#include <string>
#include <vector>

#include "caf/timespan.hpp"

namespace quiesce {

class stop_sequence {
public:
  /// What the main loop does for an event.
  enum class step {
    /// Nothing (a late event: the delay's timer after the stop began).
    none,
    /// Begin the delay: keep serving, in the closing mode; arm the delay's
    /// timer.
    delay,
    /// Begin the graceful stop (the listener closes, connections drain).
    stop,
    /// A signal while the stop runs, but the first signal the process got:
    /// nothing more to do (say so in the log).
    already,
    /// Force the stop.
    force,
  };

  explicit stop_sequence(caf::timespan delay = caf::timespan{0});

  /// A stop signal arrived; `why` (e.g. "SIGTERM received") goes to the
  /// hooks if the stop begins now.
  step on_signal(const std::string& why = {});

  /// The delay's timer fired.
  step on_delay_over();

  /// Something other than a signal stops the process now (cuts a delay);
  /// `why` as for `on_signal`.
  step on_other_stop(const std::string& why = {});

  /// Adds a function called once, when the stop begins (see above), with
  /// the reason, in the main loop's thread, before the step is carried out.
  /// It must not block.
  void on_stop_begins(std::function<void(const std::string& why)> f);

  /// The stop has begun (a delay or a stop).
  bool began() const {
    return phase_ != phase::serving;
  }

  /// The delay runs: still serving, in the closing mode.
  bool delaying() const {
    return phase_ == phase::delaying;
  }

  /// The graceful stop runs (or is forced).
  bool stopping() const {
    return phase_ == phase::stopping;
  }

  caf::timespan delay() const {
    return delay_;
  }

  /// A new delay (a reload read the configuration again); none once the
  /// stop has begun: the delay under way, if any, keeps its length.
  void set_delay(caf::timespan x) {
    if (!began())
      delay_ = x.count() < 0 ? caf::timespan{0} : x;
  }

  /// "5s", "1500ms": the delay for a log line.
  static std::string describe(caf::timespan x);

private:
  enum class phase { serving, delaying, stopping };

  void begin(const std::string& why);

  caf::timespan delay_;
  phase phase_ = phase::serving;
  int signals_ = 0;
  std::vector<std::function<void(const std::string&)>> on_begin_;
};

/// The log line's text after "SIGTERM received: " when the delay begins.
std::string stop_delay_line(const stop_sequence& seq);

} // namespace quiesce
