#include "actors/master_process.hpp"

#include <csignal>

#include "actors/process.hpp"
#include "quiesce/log.hpp"

/// @file
/// The master process's signals and the beginning of its stop: the stop
/// delay, the graceful stop and the force (stop_sequence.hpp has the
/// rules; master_process.hpp the rest of the process).

namespace quiesce {

namespace {

constexpr const char* component = "master";

} // namespace

void master_process::begin_stop(const std::string& why) {
  if (stopping_)
    return;
  seq_.on_other_stop(why); // the stop begins, unless the delay began it
  stopping_ = true;
  reload_pending_ = false;
  log::info(component, why + ": stopping every worker");
  if (master_alive_)
    self_->send(master_, stop_atom_v);
}

void master_process::begin_stop_delay(const std::string& name) {
  // The workers serve on in the closing mode; one started or restarted
  // during the delay registers and gets it from the control plane too.
  reload_pending_ = false;
  if (master_alive_)
    self_->send(master_, closing_atom_v);
  self_->delayed_send(self_, seq_.delay(), timer_atom_v,
                      timer_token(stop_delay_timer, 0));
  log::info(component, name + " received: " + stop_delay_line(seq_));
}

void master_process::on_stop_delay_over() {
  if (seq_.on_delay_over() == stop_sequence::step::stop)
    begin_stop("the stop delay is over");
}

void master_process::on_signal(int sig) {
  auto name = signal_name(sig);
  if (sig == SIGHUP) {
    if (stopping_) {
      log::info(component, name + " received during the stop: ignored");
    } else if (seq_.delaying()) {
      log::info(component, name + " received during the stop delay: ignored");
    } else if (!announced_) {
      log::warning(component, name
                                + " received while the workers start: "
                                  "ignored (nothing to reload yet)");
    } else if (reload_) {
      reload_pending_ = true;
      log::info(component, name
                             + " received during a reload: another "
                               "reload follows this one");
    } else {
      log::info(component, name + " received: reloading");
      reload();
    }
    return;
  }
  if (sig == SIGUSR1) {
    log::warning(component, name
                              + " received: ignored (the log goes to "
                                "standard error: no file to reopen)");
    return;
  }
  auto delaying = seq_.delaying();
  switch (seq_.on_signal(name + " received")) {
    case stop_sequence::step::delay:
      begin_stop_delay(name);
      return;
    case stop_sequence::step::stop:
      begin_stop(
        name
        + (delaying ? " received again during the stop delay" : " received"));
      return;
    case stop_sequence::step::already:
      log::info(component, name
                             + " received: stopping already (a second "
                               "signal forces the stop)");
      return;
    case stop_sequence::step::none:
      return;
    case stop_sequence::step::force:
      break;
  }
  forced_ = true;
  log::warning(component, name + " received again: forcing the stop");
  if (master_alive_)
    self_->send(master_, force_atom_v);
  if (services_stop_sent_ && services_alive_)
    self_->send(services_, force_atom_v);
  // A worker that answered but does not exit (a service that outlasts its
  // own teardown limit) is ended once that limit would have passed; one
  // that cannot answer is ended sooner (`given_up`, on_event).
  self_->delayed_send(self_, std::chrono::seconds(3) + std::chrono::seconds(5),
                      timer_atom_v, timer_token(straggler_timer, 1));
}

} // namespace quiesce
