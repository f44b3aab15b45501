#include "actors/process.hpp"

#include <cerrno>
#include <cstring>
#include <iostream>

#include "actors/server_config.hpp"
#include <sched.h>

namespace quiesce {

/// The I/O thread does the work that the clients wait for; the other
/// threads (CAF's workers running the supervisor and the timer relay, its
/// clock, the log writer) get short jobs: a `done` or a down message per
/// connection, a timer. As ordinary threads each of those wake-ups preempts
/// the I/O thread when they share a CPU (a context switch there and back:
/// at a stop with 10,000 connections, tens of thousands of them). As
/// SCHED_BATCH threads they never preempt on wake-up: they run when the I/O
/// thread waits, or at the next scheduler tick. Lowering one's own policy
/// needs no privilege.
void run_helpers_as_batch() {
  sched_param param{};
  if (sched_setscheduler(0, SCHED_BATCH, &param) != 0)
    log::debug("main", std::string{"SCHED_BATCH: "} + std::strerror(errno));
}

void favour_io_thread(caf::io::middleman& mm) {
  mm.backend().dispatch([] {
    sched_param param{};
    if (sched_setscheduler(0, SCHED_OTHER, &param) != 0)
      log::debug("main", std::string{"SCHED_OTHER: "} + std::strerror(errno));
  });
}

std::optional<int> start_services(caf::scoped_actor& self,
                                  const services_actor& services) {
  std::string error;
  self->request(services, caf::infinite, start_atom_v)
    .receive([&](std::string& err) { error = std::move(err); },
             [&](caf::error& err) { error = to_string(err); });
  if (error.empty())
    return std::nullopt;
  std::cerr << "quiesce: " << error << std::endl;
  self->request(services, caf::infinite, stop_atom_v)
    .receive([](services_report&) {}, [](caf::error&) {});
  return exit_cannot_run;
}

std::string signal_name(int sig) {
  if (auto* abbrev = ::sigabbrev_np(sig))
    return std::string{"SIG"} + abbrev;
  return "signal " + std::to_string(sig);
}

} // namespace quiesce
