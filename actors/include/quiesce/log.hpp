#pragma once

/// @file
/// quiesce's own logger (Debian's CAF is built without its logger): one line
/// per event on standard error. A writer thread does the writing, so that no
/// actor (least of all the I/O thread) ever blocks on standard error; if it
/// falls more than 10,000 lines behind, lines are dropped and counted.
///
///   2026-11-27T22:04:06.123Z info acceptor: listener closed 127.0.0.1:8080
///
/// With `--log-format=json`, one JSON object per line instead, for log
/// shippers: `time`, `level`, `worker` (in a worker process), `component`,
/// `message`, and a line's numeric fields (the stop summary's counts) as
/// JSON numbers:
///
///   {"time":"2026-11-27T22:04:06.123Z","level":"info","component":
///    "supervisor","message":"stopped: drained=3 forced=0 duration=3.8ms",
///    "drained":3,"forced":0,"duration_ms":3.812,"open_at_stop":3}
///
/// Strings are escaped as JSON requires: `"`, `\`, and every control
/// character (`\n`, `\t`, ..., else `\u00XX`, DEL included); each byte
/// that is not part of a well-formed UTF-8 sequence becomes `\ufffd`.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace quiesce::log {

enum class level : int { debug = 0, info = 1, warning = 2, error = 3, off = 4 };

/// Parses "debug", "info", "warning", "error" or "off".
bool parse_level(std::string_view text, level& out);

/// How lines are written (`--log-format`).
enum class format : int { text = 0, json = 1 };

/// Parses "text" or "json".
bool parse_format(std::string_view text, format& out);

/// The format of every later line; `text` unless changed.
void set_format(format x);

format current_format();

/// A number a line carries besides its message: in the JSON format a
/// member of its object (the text format shows only the message, which
/// says the same). `key` must outlive the call that logs it.
struct field {
  template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
  field(std::string_view k, T v)
      : key(k), integer(static_cast<int64_t>(v)), is_integer(true) {}

  field(std::string_view k, double v) : key(k), real(v) {}

  std::string_view key;
  int64_t integer = 0;
  /// Written with three decimals (a duration in ms: to the microsecond).
  double real = 0;
  bool is_integer = false;
};

/// Everything one line says.
struct record {
  std::chrono::system_clock::time_point time;
  level lvl = level::info;
  /// The worker process's id; 0 in any other process.
  uint32_t worker = 0;
  std::string_view component;
  std::string_view message;
  std::vector<field> fields;
};

/// The line (with its newline) that `write` queues for `x` in format `fmt`.
std::string format_line(format fmt, const record& x);

/// Appends `text` to `out` as a JSON string, quotes included.
void append_json_string(std::string& out, std::string_view text);

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

/// Names the worker process in every later line, before the component:
/// "worker 2" (its lines share the master's standard error); `"worker":2`
/// in JSON. Call it before any other thread logs.
void set_worker(uint32_t id);

/// Queues one line: timestamp, level, worker (if set), component, message
/// and `fields`.
void write(level lvl, std::string_view component, std::string_view message,
           std::vector<field> fields = {});

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

/// An info line with numeric fields (the stop summary).
inline void info(std::string_view component, std::string_view message,
                 std::vector<field> fields) {
  if (enabled(level::info))
    write(level::info, component, message, std::move(fields));
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
