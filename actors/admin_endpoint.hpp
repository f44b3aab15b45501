#pragma once

/// @file
/// The admin endpoint (`--admin=HOST:PORT`) as the server process sees it:
/// its listener, opened with the client listener before anything runs, and
/// the handle the process keeps while it serves. What it answers is
/// actors/admin.hpp's (its own library, quiesce::admin: HTTP and
/// prometheus-cpp, which this core library does without); a server binary
/// that offers it calls `add_admin_endpoint()` (admin.hpp) at its start.
///
/// `/readyz` is 503 ("starting") until `ready()`, called with the
/// `listening on` line.
///
/// The order at a stop (docs/architecture.md): `stopping()` when a stop
/// begins (`/readyz` 503 at once, one message), the client connections
/// drain, `stopped(report)`, then `close()`, last before the process ends:
/// the admin listener answers throughout the drain.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "caf/actor_system.hpp"
#include "caf/expected.hpp"

#include "actors/listener.hpp"
#include "quiesce/messages.hpp"

namespace quiesce {

struct process_counters;

/// What the admin endpoint serves from.
struct admin_setup {
  /// The admin listener, open already.
  listener lst;
  /// One process: its counters (metrics.hpp).
  process_counters* counters = nullptr;
  /// With workers: the master, asked for the sum of the workers' counters
  /// (master.hpp).
  master_actor master;
  /// Worker processes serving (1: this process alone).
  uint32_t workers = 1;
};

/// The actors of a running admin endpoint.
struct admin_actors {
  /// Answers the admin requests (admin.hpp).
  admin_actor actor;
  /// The admin listener's own supervisor (supervisor.hpp), with its own
  /// acceptor: its stop closes the listener and drains its connections.
  supervisor_actor supervisor;
};

/// Starts the admin endpoint on `setup.lst` (admin.hpp's `start_admin`).
using admin_starter
  = std::function<caf::expected<admin_actors>(caf::actor_system&, admin_setup)>;

/// Registers the function that starts the admin endpoint.
void set_admin_starter(admin_starter fn);

/// Whether a starter is registered (else `--admin` is a usage error).
bool has_admin_starter();

/// `--admin`'s value split: the host (in brackets for IPv6, as `--host`
/// takes it) and the port; nothing if it is no `HOST:PORT`.
std::optional<std::pair<std::string, uint16_t>>
parse_admin_address(const std::string& text);

/// Opens `--admin`'s listener into `lst` if `admin` (the option's value) is
/// set; the exit code if it cannot be: 2 without an admin endpoint in the
/// server, 1 if the address cannot be bound (standard error names the
/// address and the OS error).
std::optional<int> open_admin_listener(const std::string& admin, listener& lst);

/// A running admin endpoint, kept by the process until it ends. Every call
/// is one message (none blocks but `close`); a default-constructed one (no
/// `--admin`) does nothing.
class admin_endpoint {
public:
  admin_endpoint() = default;

  admin_endpoint(admin_endpoint&&) = delete;

  /// Closes it if `close` was not called.
  ~admin_endpoint();

  /// Starts it on `setup.lst`; false with `error` set if it cannot start.
  bool start(caf::actor_system& sys, admin_setup setup, std::string& error);

  /// The server accepts connections (with workers: all of them serve):
  /// `/readyz` answers 200 from now on until `stopping`.
  void ready();

  /// A stop begins: `/readyz` answers 503 from now on (idempotent).
  void stopping();

  /// The stop is over: its report (`quiesce_last_stop_duration_seconds`).
  void stopped(const shutdown_report& report);

  /// The worker processes serving, and the restarts so far.
  void workers(uint32_t count, uint64_t restarts);

  /// Closes the admin listener, lets its connections finish (at most a
  /// second) and ends its actors; waits for that.
  void close();

  /// The admin address as HOST:PORT; empty if there is none.
  const std::string& address() const {
    return address_;
  }

private:
  caf::actor_system* sys_ = nullptr;
  admin_actors actors_;
  std::string address_;
};

} // namespace quiesce
