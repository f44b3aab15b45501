#pragma once

/// @file
/// Opening the listening socket and sizing the process for it. The socket is
/// opened in the caller's thread, before any actor runs, so that a bind error
/// is reported at once with the OS's own reason.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quiesce {

/// A listening socket, or why there is none.
struct listener {
  /// The socket, -1 on failure.
  int fd = -1;
  /// The bound port (the chosen one when asked for port 0).
  uint16_t port = 0;
  /// The bound address as HOST:PORT ([HOST]:PORT for IPv6).
  std::string address;
  /// On failure: what failed, naming the address and the OS error.
  std::string error;
  /// Other processes hold the socket too (workers over one socket, a socket
  /// passed by systemd): it must never be `shutdown()`, and the clients in
  /// its backlog are theirs as much as ours (shared_listener.hpp).
  bool shared = false;
  /// Passed by systemd (socket activation, activation.hpp): shared, and its
  /// fresh connections get a grace at the stop.
  bool passed = false;
};

/// Listen backlog asked of the kernel (it caps it at net.core.somaxconn).
constexpr int listen_backlog = 4096;

/// The address to resolve for `--host=text`: `text` itself, or the IPv6
/// address inside brackets (`[::1]` -> `::1`, the form the `listening on`
/// line prints). Nothing for an empty text, a malformed bracketed one
/// (`[::1`, `[127.0.0.1]`, `[]`), or one with a colon that is no IPv6
/// address (`127.0.0.1:80`: no host name has one).
std::optional<std::string> host_address(std::string_view text);

/// Opens a TCP socket listening on `host`:`port` (SO_REUSEADDR, non-blocking,
/// close-on-exec). `host` may be in brackets (see `host_address`).
listener open_listener(const std::string& host, uint16_t port);

/// Takes `fd`, a listening TCP socket this process was handed (a worker
/// inherits its master's), as a shared listener: checked, made non-blocking
/// and close-on-exec. On failure `fd` is left open and the error says why.
listener adopt_listener(int fd);

/// Descriptors kept back from connections for the process itself (stdio,
/// epoll, CAF's pipe, the listener, logs).
constexpr size_t reserved_fds = 64;

/// Raises the soft limit on open files to the hard limit and returns the soft
/// limit now in force.
size_t raise_fd_limit();

/// The connection bound that keeps accept() clear of EMFILE: the fd limit
/// less `reserved_fds`, at least 1.
size_t max_connections_for(size_t fd_limit);

} // namespace quiesce
