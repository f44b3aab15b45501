#pragma once

/// @file
/// The services actor: the supervisor of the declared services
/// (quiesce/service.hpp), a sibling of the connections' supervisor under
/// main. It monitors every service (never links to one) and:
///
/// - `start`: spawns every service in the order declared and records each in
///   the directory; answers an empty text, or the error of the first one
///   that failed to start (the ones before it keep running until `stop`).
/// - a service that ends before its stop: its crash policy. `restart`
///   spawns it again and records the new actor in the directory; a crash
///   that would be restart `max_restarts + 1` within `restart_window`, a
///   `stop_server` policy or a failed respawn calls `on_failure` (main stops
///   the server and exits 1). Also during the drain and during the stop of
///   other services: until its own turn comes, a service is needed.
/// - `stop` (main sends it once the connections have drained): one service
///   at a time, the last declared first, gets `stop_atom`; at its
///   `stop_deadline` it is forced with an exit message (`user_shutdown`),
///   `kill_after` later killed if it still runs (it traps exits), and
///   `give_up_after` after that given up on (an actor stuck in a blocking
///   call takes no message at all: the process's teardown guard then ends
///   the process). Answers `services_report` when none is left, clears the
///   directory and quits.
/// - `force` (second signal): the service being stopped, and every one
///   after it, is forced at once instead of at its deadline.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_clock.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "caf/typed_response_promise.hpp"

#include "quiesce/messages.hpp"
#include "quiesce/service.hpp"

namespace quiesce {

struct services_config {
  std::vector<service_declaration> services;
  /// Where connections look services up; kept current by the actor.
  std::shared_ptr<service_directory> directory;
  /// A crash policy gave up (the argument says why, logged already).
  std::function<void(const std::string&)> on_failure;
  /// From the forced exit (`user_shutdown`) to `kill`.
  caf::timespan kill_after = std::chrono::milliseconds(250);
  /// From `kill` to giving up on the service.
  caf::timespan give_up_after = std::chrono::seconds(1);
};

/// The steps of one service's stop (`service_timer_atom`'s second element).
enum class service_step : uint8_t {
  /// Its stop deadline passed: force it.
  deadline,
  /// It survived the forced exit: kill it.
  kill,
  /// It survived the kill: give up on it.
  give_up,
};

struct services_state {
  static inline const char* name = "quiesce.services";

  enum class phase : uint8_t {
    not_started,
    running,
    /// Got `stop_atom`, has until its deadline.
    stopping,
    /// Got the forced exit.
    forced,
    /// Got `kill`.
    killed,
    /// Exited (or given up on).
    gone,
  };

  struct entry {
    service_declaration decl;
    caf::actor handle;
    phase state = phase::not_started;
    /// Restarts within the window, oldest first.
    std::deque<caf::actor_clock::time_point> restarts;
    caf::actor_clock::time_point stop_began;
  };

  services_config cfg;
  std::vector<entry> entries;
  bool stopping = false;
  bool forcing = false;
  /// The entry being stopped (entries are stopped from the back).
  std::optional<size_t> current;
  services_report report;
  std::vector<caf::typed_response_promise<services_report>> waiting;
};

using services_pointer = services_actor::stateful_pointer<services_state>;

services_actor::behavior_type services_main(services_pointer self,
                                            services_config cfg);

} // namespace quiesce
