#pragma once

/// @file
/// systemd's socket activation: a listening socket handed to the process
/// (`LISTEN_FDS`/`LISTEN_PID`, read with libsystemd's `sd_listen_fds`)
/// instead of one it binds itself.
///
/// - One passed socket, a listening TCP socket: the server serves on it;
///   `--host` and `--port` are ignored (run_server logs that).
/// - It is a shared listener (listener::shared, shared_listener.hpp): never
///   `shutdown()`, its backlog left at the stop, for the next server
///   systemd starts on it (systemd holds it across restarts).
/// - Its connections that have received nothing when the stop begins get
///   `fresh_grace` to send their first request (connection_config).
/// - Anything else passed (more than one descriptor, not a listening TCP
///   socket) is an error: the process cannot run (exit 1). More than one is
///   refused rather than the first taken: a unit that passes several
///   expects each to be served, and quiesce serves one.

#include <optional>

#include "caf/timespan.hpp"

#include "actors/listener.hpp"

namespace quiesce {

/// The environment variable a master sets for its workers when its socket
/// was passed by systemd (the workers treat it as such too).
constexpr const char* passed_socket_environment = "QUIESCE_PASSED_SOCKET";

/// The socket systemd passed to this process, taken as its listener (the
/// `LISTEN_*` variables are unset: no child inherits them); nothing if none
/// was passed. On an unusable one, `fd` is -1 and `error` says why.
std::optional<listener> take_passed_socket();

/// How long a connection of a passed socket that has received nothing may
/// wait for its first request once the stop begins: 300 ms, at most half the
/// drain timeout.
caf::timespan fresh_grace(caf::timespan drain_timeout);

} // namespace quiesce
