#pragma once

/// @file
/// The seam between the framework and a protocol. A connection actor owns the
/// socket, FIN/close, `done`, forced exits and accounting; a behaviour only
/// turns bytes into bytes and says whether it has work in flight.
///
/// The framework's rules, which every behaviour can rely on:
/// - `on_data` gets the peer's bytes in order, as they arrive, in pieces of
///   any size (a message may be split at any byte).
/// - Bytes passed to `connection_io::write` are sent in order; they are
///   flushed when the callback returns.
/// - `on_stop` is called once, when the server stops. After it, the framework
///   closes the connection (FIN after every written byte) as soon as `idle()`
///   is true; until then it keeps delivering input, so a busy behaviour can
///   finish what is in flight. Input that arrives once the behaviour is idle
///   after the stop is read and discarded.
/// - `on_stop` is pure virtual: a protocol cannot forget to drain.

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "caf/timespan.hpp"

namespace quiesce {

/// What a behaviour may do to its connection.
class connection_io {
public:
  virtual ~connection_io();

  /// Queues `bytes` for the peer. They are flushed when the current callback
  /// returns, and all of them reach the peer before the FIN.
  virtual void write(std::string_view bytes) = 0;

  /// Calls the behaviour's `on_timer(token)` after `delay`: waiting is a
  /// message, never a blocked thread (all connections share one I/O thread).
  /// Timers keep firing after `on_stop`; they end with the connection.
  virtual void start_timer(caf::timespan delay, uint64_t token) = 0;

  /// Closes the connection once every byte written so far has left: FIN,
  /// then the same linger as a stop. For a protocol that ends a connection
  /// itself (an HTTP `Connection: close`, a malformed request).
  virtual void close() = 0;

  /// Stops reading the socket while `hold` is true: a behaviour with enough
  /// work queued makes the client wait (TCP flow control) instead of
  /// buffering without bound. The framework also pauses reading on its own
  /// while too much output waits to be sent.
  virtual void hold_input(bool hold) = 0;
};

/// A protocol, run by one connection actor for one connection.
class behaviour {
public:
  virtual ~behaviour();

  /// Bytes from the peer arrived.
  virtual void on_data(std::string_view bytes, connection_io& io) = 0;

  /// The server is stopping: finish in-flight work, accept nothing new.
  virtual void on_stop(connection_io& io) = 0;

  /// True when nothing is in flight, so that closing now loses nothing. A
  /// connection that has sent nothing yet is idle.
  virtual bool idle() const = 0;

  /// A timer started with `connection_io::start_timer` fired.
  virtual void on_timer(uint64_t token, connection_io& io);
};

/// Makes the behaviour of one new connection.
using behaviour_factory = std::function<std::unique_ptr<behaviour>()>;

} // namespace quiesce
