#pragma once

/// @file
/// Services: actors that live as long as the server (a store, a cache, a
/// pool of backend connections), declared next to the protocols and owned
/// by the server's supervision tree. A server binary declares them before
/// `run_server`, as it registers its protocols (registry.hpp):
///
///     caf::actor spawn_store(caf::actor_system& sys) {
///       return sys.spawn(store); // handles quiesce::stop_atom: quit
///     }
///
///     quiesce::add_service("store", spawn_store);
///     quiesce::add_service("cache", spawn_cache,  // a typed handle works too
///                          {std::chrono::seconds(1),
///                           quiesce::crash_policy::stop_server});
///
/// A behaviour then finds one by name, for each request:
/// `io.service("store")` (a `caf::actor`) or `io.service<store_actor>("store")`
/// (the typed handle it was declared with); see behaviour.hpp.
///
/// What the server does with them (docs/architecture.md has the whole
/// sequence):
/// - start: every service is spawned, in the order declared, once the actor
///   system exists and before the first connection is accepted and the
///   `listening on` line is printed. A spawn function that throws or returns
///   an invalid handle is an error: the services started so far are
///   stopped, and the process exits 1 without listening.
/// - crash: a service that ends before the server asked it to (an exception,
///   an exit with an error, even a normal `quit`) is handled by its
///   `crash_policy`, with a log line either way.
/// - stop: the listener closes and the connections drain first (requests to
///   services are still answered then); then each service, one at a time in
///   the reverse order of the declarations, gets `stop_atom` and has its own
///   `stop_deadline` to exit (`self->quit()`). One that has not exited by
///   then is forced: an exit message with `user_shutdown`, and 250 ms later,
///   if it still runs (it traps exits), `kill`. One line per service is
///   logged: "stopped in N ms" or "forced at its deadline". A service forced
///   makes the exit code 3, like a forced connection.
///
/// Services are never put in `system().registry()`. Not thread-safe: call
/// `add_service` from `main`, before the server starts.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_cast.hpp"
#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/timespan.hpp"

namespace quiesce {

/// What the server does when a service ends on its own.
enum class crash_policy {
  /// Spawn it again (logged as a warning). More than `max_restarts`
  /// restarts within `restart_window` is a failure: the server stops as
  /// with `stop_server`.
  restart,
  /// Stop the server gracefully (the connections drain, the other services
  /// stop), logged as an error; the process exits 1.
  stop_server,
};

/// How the server treats one service. The defaults: a 5 s stop deadline,
/// restarted on a crash, at most 5 restarts within 10 s.
struct service_options {
  /// From its `stop_atom` to the forced exit.
  caf::timespan stop_deadline = std::chrono::seconds(5);
  crash_policy on_crash = crash_policy::restart;
  /// With `crash_policy::restart`: the crash that would be restart number
  /// `max_restarts + 1` within `restart_window` stops the server instead
  /// (exit code 1).
  size_t max_restarts = 5;
  caf::timespan restart_window = std::chrono::seconds(10);
  /// With `--workers` of 2 or more: the service runs once, in the master
  /// process, instead of once in every worker, and the behaviours of every
  /// worker reach that one actor through the same `io.service(...)` and
  /// `io.ask(...)` (over the control plane, CAF's BASP: every type in its
  /// messages other than atoms must be announced with
  /// `announce_message_type`). A lone process runs it as any other.
  /// A request to it from a worker is forwarded by a local stand-in; if the
  /// service dies holding it, the request ends at its own timeout (the
  /// stand-in cannot tell), and requests made while it restarts wait for
  /// the new one.
  bool shared = false;
};

/// Announces `T`, a type in the messages of a shared service, to CAF under
/// `name` in every process of the server (master and workers must agree;
/// CAF 0.17 sends a type it does not know as an empty message). Call it
/// from `main`, before `run_server`, like `add_service`.
void announce_message_type(
  std::function<void(caf::actor_system_config&)> announce);

template <class T>
void announce_message_type(std::string name) {
  announce_message_type(
    [name](caf::actor_system_config& cfg) { cfg.add_message_type<T>(name); });
}

/// Applies every announcement (run_server does, on its configuration).
void apply_message_types(caf::actor_system_config& cfg);

/// Spawns a service's actor on the server's actor system. Called once at
/// the start and again for each restart.
using service_spawn = std::function<caf::actor(caf::actor_system&)>;

/// A declared service.
struct service_declaration {
  std::string name;
  service_spawn spawn;
  /// The handle type the declared spawn function returns (`caf::actor` or a
  /// `caf::typed_actor<...>`): typed look-ups must name the same.
  std::type_index handle_type = typeid(caf::actor);
  service_options options;
};

/// Declares a service (replacing one of that name, which keeps its place in
/// the order). `spawn` is any function `caf::actor_system& -> handle` whose
/// handle is a `caf::actor` or a typed one; the service's actor must accept
/// `quiesce::stop_atom` (messages.hpp) and quit on it once it has done what
/// it must before the process ends (a flush, a snapshot).
template <class Spawn>
void add_service(std::string name, Spawn spawn, service_options opts = {});

/// Declares `decl` (what the template above builds).
void add_service(service_declaration decl);

/// Every declared service, in the order declared.
const std::vector<service_declaration>& declared_services();

/// The running actor of each service by name, for `connection_io::service`.
/// The server's services actor writes it (at the start and at each
/// restart); connection actors read it from the I/O thread, so it is locked.
class service_directory {
public:
  /// Records `handle` as the actor of `name`, declared as `type`.
  void set(const std::string& name, caf::actor handle, std::type_index type);

  /// The actor of `name`, or an invalid handle if there is none. With
  /// `type`, also invalid unless `name` was declared with that handle type
  /// (`caf::actor` matches any).
  caf::actor find(std::string_view name) const;
  caf::actor find(std::string_view name, std::type_index type) const;

  /// Forgets every handle (before the actor system goes away).
  void clear();

private:
  struct entry {
    std::string name;
    caf::actor handle;
    std::type_index type;
  };
  mutable std::mutex mtx_;
  std::vector<entry> entries_;
};

template <class Spawn>
void add_service(std::string name, Spawn spawn, service_options opts) {
  using handle_type
    = std::decay_t<std::invoke_result_t<Spawn&, caf::actor_system&>>;
  service_declaration decl{
    std::move(name),
    [f = std::move(spawn)](caf::actor_system& sys) mutable {
      return caf::actor_cast<caf::actor>(f(sys));
    },
    typeid(handle_type), opts};
  add_service(std::move(decl));
}

} // namespace quiesce
