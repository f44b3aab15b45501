#pragma once

/// @file
/// A worker process's stand-in for a shared service (service_options::
/// shared), which runs once, in the master process. The worker's service
/// directory holds the stand-in under the service's name: behaviours use it
/// as they would the service itself.
///
/// - At its start, and whenever the service's actor it knows ends (a crash
///   and restart in the master), it asks the master for the current one
///   (`service(secret, name)` over the control plane), again every
///   `retry_interval` until it gets a live one.
/// - Every other message is forwarded as it is: sender, request id and
///   content, so the service answers the original sender directly. Messages
///   that arrive while no service is known wait (at most `max_waiting`;
///   past that a request is answered with an error at once).

#include <chrono>
#include <string>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"

#include "quiesce/messages.hpp"

namespace quiesce {

struct service_proxy_config {
  std::string name;
  master_actor master;
  std::string secret;
  caf::timespan retry_interval = std::chrono::milliseconds(100);
  size_t max_waiting = 10000;
};

/// Spawns the stand-in for `cfg.name`.
caf::actor spawn_service_proxy(caf::actor_system& sys,
                               service_proxy_config cfg);

} // namespace quiesce
