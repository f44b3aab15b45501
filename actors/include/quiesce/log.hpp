#pragma once

/// @file
/// quiesce's own logger (Debian's CAF is built without its logger): one line
/// per event on standard error. A writer thread does the writing, so that no
/// actor (least of all the I/O thread) ever blocks on standard error; if it
/// falls more than 10,000 lines behind, lines are dropped and counted.
///
///   2026-11-27T22:04:06.123Z info acceptor: listener closed 127.0.0.1:8080

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

namespace quiesce::log {

enum class level : int { debug = 0, info = 1, warning = 2, error = 3, off = 4 };

/// Parses "debug", "info", "warning", "error" or "off".
bool parse_level(std::string_view text, level& out);

/// The lowest level that is written; `info` unless changed.
void set_threshold(level x);

level threshold();

inline bool enabled(level x) {
  return static_cast<int>(x) >= static_cast<int>(threshold());
}

/// A duration for a log line, in milliseconds with one decimal: "12.5ms".
std::string millis(std::chrono::nanoseconds x);

/// A configured duration for a log line: "5s", "250ms" (whole seconds or
/// milliseconds; below 1ms as `millis`).
std::string span(std::chrono::nanoseconds x);

/// Names the process in every later line, before the component: a worker
/// process sets "worker 2" (its lines share the master's standard error).
/// Call it before any other thread logs.
void set_origin(std::string origin);

/// Queues one line: timestamp, level, origin (if set), component and
/// message.
void write(level lvl, std::string_view component, std::string_view message);

/// Waits until every queued line is written, at most `limit`; false if the
/// time ran out (standard error blocks).
bool flush(std::chrono::milliseconds limit);

inline void debug(std::string_view component, std::string_view message) {
  if (enabled(level::debug))
    write(level::debug, component, message);
}

inline void info(std::string_view component, std::string_view message) {
  if (enabled(level::info))
    write(level::info, component, message);
}

inline void warning(std::string_view component, std::string_view message) {
  if (enabled(level::warning))
    write(level::warning, component, message);
}

inline void error(std::string_view component, std::string_view message) {
  if (enabled(level::error))
    write(level::error, component, message);
}

} // namespace quiesce::log
