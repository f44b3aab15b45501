#pragma once

/// @file
/// The few socket operations CAF 0.17's broker API does not offer: a FIN
/// after the last byte, a local end of reading, an abortive close, the
/// kernel's view of a socket (unread input, acknowledged output). They act
/// only on real sockets; under CAF's test multiplexer (fake handles, no fds)
/// `native_fd` returns nothing and the callers take their fake-network path.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "caf/io/abstract_broker.hpp"
#include "caf/io/accept_handle.hpp"
#include "caf/io/connection_handle.hpp"

namespace quiesce::socket_ops {

/// The native socket behind `hdl` when `self` runs on CAF's default
/// multiplexer (where a handle's id is its fd), nothing otherwise.
std::optional<int> native_fd(caf::io::abstract_broker* self,
                             caf::io::connection_handle hdl);

std::optional<int> native_fd(caf::io::abstract_broker* self,
                             caf::io::accept_handle hdl);

/// Bytes the peer has sent that the kernel holds and nobody has read yet.
size_t unread_bytes(int fd);

/// Hands `size` bytes to the kernel without waiting: the number it took
/// (0 when its send buffer is full), or nothing after an error (the peer
/// reset or closed; the caller leaves the bytes to CAF, which reports the
/// error as usual). Never raises SIGPIPE.
std::optional<size_t> send_now(int fd, const char* data, size_t size);

/// Sends FIN after the bytes the kernel already has; reading goes on.
void shutdown_write(int fd);

/// Ends reading locally: the multiplexer then reads end-of-stream and drops
/// the socket; nothing is sent to the peer.
void shutdown_read(int fd);

/// After end-of-stream: true if the peer closed with a FIN and the socket can
/// still send to it (TCP state CLOSE_WAIT), false after a reset (or an
/// error).
bool peer_sent_fin(int fd);

/// Abortive close: the peer gets a reset (RST) now, never a FIN first, so
/// that it cannot take a connection cut off for a clean end (its next read
/// fails with ECONNRESET). Unsent output is dropped, and the socket's later
/// reads and writes fail at once: no pending write can keep the socket in
/// the event loop (CAF's stream sees the error and drops it).
void abort(int fd);

/// The kernel's account of a socket's output at one moment.
struct output_sample {
  /// Bytes the peer has acknowledged over the connection's life.
  uint64_t acked = 0;
  /// Bytes the peer can take beyond `acked` without its application
  /// reading: its advertised receive window (bytes in flight included).
  uint64_t window = 0;
};

/// Samples the output of the TCP socket `fd` (TCP_INFO and SIOCOUTQ), or
/// nothing if the kernel does not say.
std::optional<output_sample> sample_output(int fd);

/// True if the peer has read since `before` was sampled: it acknowledged
/// bytes beyond its receive window then, which it can only take once its
/// application has made room.
bool peer_read_since(const output_sample& before, const output_sample& now);

/// Stops a listening socket at once: new connection attempts are refused,
/// and clients still waiting in its backlog are reset.
void stop_listening(int fd);

/// Whether `fd` is a socket still listening (SO_ACCEPTCONN); false on any
/// error.
bool listening(int fd);

/// Accepts a client waiting in the backlog of the listening socket `fd`
/// without blocking: its descriptor (non-blocking, close-on-exec), or -1
/// when none waits or accept failed (logged).
int accept_waiting(int fd);

} // namespace quiesce::socket_ops
