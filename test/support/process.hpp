#pragma once

/// @file
/// Helpers for the real-socket tests of the built binary: a child process
/// with its standard output and error captured, and blocking-style client
/// operations on loopback sockets. Every wait has a watchdog: a test waits
/// on an event (a line, a byte, an exit) and fails instead of hanging when
/// the event does not come.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace quiesce::test {

/// How long any single wait may take before it counts as failed. Generous:
/// the tests must pass on a loaded machine, and waits end at the event.
constexpr std::chrono::milliseconds default_timeout{30'000};

/// `process::wait_exit` result when the watchdog passed before the exit.
constexpr int exit_timeout = -1;

/// `process::wait_exit` result for a child killed by signal `sig` is
/// `exit_by_signal + sig`: out of the range of real exit codes.
constexpr int exit_by_signal = 1000;

/// Renders a `wait_exit` result for messages: "0", "timeout", "SIGKILL".
std::string describe_exit(int code);

/// Owns a file descriptor and closes it.
class unique_fd {
public:
  unique_fd() noexcept = default;

  explicit unique_fd(int fd) noexcept : fd_(fd) {
    // nop
  }

  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {
    // nop
  }

  unique_fd& operator=(unique_fd&& other) noexcept;

  unique_fd(const unique_fd&) = delete;

  unique_fd& operator=(const unique_fd&) = delete;

  ~unique_fd();

  int get() const noexcept {
    return fd_;
  }

  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }

  /// Gives up ownership without closing.
  int release() noexcept;

  /// Closes the current descriptor (if any) and owns `fd`.
  void reset(int fd = -1) noexcept;

private:
  int fd_ = -1;
};

/// Options of a child process beyond its command line.
struct process_options {
  /// Sets RLIMIT_NOFILE, soft and hard, in the child before the exec: the
  /// program cannot raise it (an unprivileged process cannot raise its hard
  /// limit), so it runs with at most this many descriptors.
  std::optional<uint64_t> open_files;
  /// The child's working directory (where the server looks for
  /// caf-application.ini); the test's own if not set.
  std::optional<std::string> working_directory = std::nullopt;
  /// Starts the child as the leader of a process group of its own (pgid =
  /// its pid), so that a test can signal it and its children at once, as a
  /// terminal's Ctrl-C or systemd's `KillMode=control-group` do.
  bool own_process_group = false;
  /// Added to the child's environment (`NAME=VALUE` each).
  std::vector<std::string> environment = {};
  /// systemd's socket activation: these descriptors become the child's 3,
  /// 4, ... and the child gets LISTEN_FDS=<count> and LISTEN_PID=<its own
  /// pid> (set between fork and exec, as systemd does).
  std::vector<int> listen_fds = {};
};

/// A child process running a program with its output captured.
///
/// Standard input reads from /dev/null; standard output and error go to
/// pipes that a reader thread drains at once, so the child never blocks on
/// a full pipe. The child starts with default signal dispositions and an
/// unblocked signal mask, inherits none of the test's own descriptors, and
/// receives SIGKILL should the test process die (e.g. a failed
/// `CAF_REQUIRE` aborts it). The destructor kills and reaps a child that
/// still runs; only this child, by its pid.
class process {
public:
  /// Starts `program` with `args` (without argv[0]).
  process(const std::string& program, const std::vector<std::string>& args);

  /// Starts `program` with `args` (without argv[0]) and `options`.
  process(const std::string& program, const std::vector<std::string>& args,
          const process_options& options);

  /// The process id while the child runs (or until it is reaped), for
  /// reading /proc/<pid>; -1 if it never started.
  pid_t pid() const noexcept {
    return pid_;
  }

  process(const process&) = delete;

  process& operator=(const process&) = delete;

  ~process();

  /// Whether the program was started (fork and exec succeeded). If not,
  /// `stderr_text` says why.
  bool started() const noexcept {
    return pid_ > 0;
  }

  /// The command line, for messages.
  const std::string& command() const noexcept {
    return command_;
  }

  /// Waits for the `listening on HOST:PORT` line on standard output and
  /// returns PORT; nothing if the child exits first, the line does not
  /// parse, or the watchdog passes.
  std::optional<uint16_t> wait_listening(std::chrono::milliseconds timeout
                                         = default_timeout);

  /// Waits until standard error contains `text` at least `count` times.
  /// Returns false if the child exits first or the watchdog passes.
  bool wait_stderr(std::string_view text, size_t count = 1,
                   std::chrono::milliseconds timeout = default_timeout);

  /// How often `text` occurs in standard error so far.
  size_t stderr_count(std::string_view text) const;

  /// Everything read from standard output so far.
  std::string stdout_text() const;

  /// Everything read from standard error so far.
  std::string stderr_text() const;

  /// Sends `sig` to the child; false if it has exited already.
  bool signal(int sig);

  /// Whether the child has exited (and was reaped).
  bool exited() const;

  /// Waits for the exit and returns the exit code, `exit_by_signal + sig`
  /// for a death by signal, or `exit_timeout`. Waits again after a timeout
  /// are allowed.
  int wait_exit(std::chrono::milliseconds timeout = default_timeout);

private:
  void read_output();

  std::string command_;
  pid_t pid_ = -1;
  unique_fd out_;
  unique_fd err_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::string out_text_;
  std::string err_text_;
  bool exited_ = false;
  int exit_code_ = exit_timeout;
  std::thread reader_;
};

// -- clients ------------------------------------------------------------------

/// Result of `connect_loopback`.
struct connect_result {
  /// The connected socket, or none.
  unique_fd fd;
  /// `errno` of the failed connect (e.g. ECONNREFUSED); 0 on success.
  int error = 0;
};

/// Connects to 127.0.0.1:`port` with a blocking connect. A nonzero
/// `receive_buffer` sets SO_RCVBUF before the connect (the kernel doubles
/// it and turns off autotuning), which bounds what the socket accepts
/// while the test does not read.
connect_result connect_loopback(uint16_t port, int receive_buffer = 0);

/// Connects to [::1]:`port` (IPv6 loopback) with a blocking connect.
connect_result connect_loopback_v6(uint16_t port);

/// Connects to 127.0.0.1:`port` with a small receive buffer, asking for
/// small segments (MSS 536): Linux sizes the server's send buffer from the
/// segment size (on loopback 64 KiB otherwise, which makes it megabytes),
/// so a response of 100 KiB leaves part of it waiting in the server.
connect_result connect_small_segments(uint16_t port);

/// The children of process `pid`, from the children lists of all its
/// threads, sorted.
std::vector<pid_t> children_of(pid_t pid);

/// Switches `fd` to non-blocking mode; false on error.
bool set_nonblocking(int fd);

/// How a read ended.
enum class read_status {
  /// `read_exactly` got every byte asked for.
  complete,
  /// The peer closed cleanly: recv returned 0.
  eof,
  /// recv failed, e.g. ECONNRESET: the peer reset the connection.
  error,
  /// The watchdog passed with no progress.
  timeout,
};

/// Bytes read plus how the reading ended.
struct read_result {
  std::string bytes;
  read_status status = read_status::timeout;
  /// `errno` when `status` is `error`.
  int error = 0;

  /// "complete", "clean EOF", "timeout" or "error: <strerror>".
  std::string ending() const;
};

/// Sends all of `bytes`; works on blocking and non-blocking sockets. Fails
/// on an error (reported in `errno`) or when no byte could be sent for
/// `timeout`.
bool send_all(int fd, std::string_view bytes,
              std::chrono::milliseconds timeout = default_timeout);

/// Reads exactly `n` bytes; `timeout` applies to each wait for input.
read_result read_exactly(int fd, size_t n,
                         std::chrono::milliseconds timeout = default_timeout);

/// Reads until the stream ends; `status` tells a clean EOF from an error
/// such as a reset. `timeout` applies to each wait for input.
read_result read_until_eof(int fd,
                           std::chrono::milliseconds timeout = default_timeout);

/// Reads until the bytes read end with `delimiter`, the stream ends, or
/// `timeout` passes without progress. Reads one byte at a time, so nothing
/// after the delimiter is consumed (e.g. the body after an HTTP header
/// section, or the next pipelined response). `status` is `complete` once
/// the delimiter has arrived.
read_result read_through(int fd, std::string_view delimiter,
                         std::chrono::milliseconds timeout = default_timeout);

/// Sends `data` and reads its echo at the same time (polling, so neither
/// side stalls the other) until the echo has as many bytes as `data`, the
/// stream ends, or `timeout` passes without progress. `fd` must be
/// non-blocking.
read_result exchange(int fd, std::string_view data,
                     std::chrono::milliseconds timeout = default_timeout);

/// Waits until `fd` has input (or the peer's EOF or an error to read);
/// false when `timeout` passes first. A poll error fails the test (abort,
/// with the error's text): it is never taken for a timeout.
bool wait_readable(int fd, std::chrono::milliseconds timeout = default_timeout);

/// Sends the bytes `next` gives (an empty string: no more) without reading,
/// until the connection takes nothing for `quiet` (the server has stopped
/// reading) or `next` has no more. Returns the number of bytes sent, or
/// nothing on an error (in `errno`; ETIMEDOUT when the connection still
/// took bytes after `timeout`). `fd` must be non-blocking.
std::optional<size_t>
send_until_stuck(int fd, const std::function<std::string()>& next,
                 std::chrono::milliseconds quiet,
                 std::chrono::milliseconds timeout = default_timeout);

/// Sends the pattern without reading until the connection takes no more:
/// the server's echo fills this side's receive buffer, the server stops
/// reading, and sending would block for `quiet`. Returns the number of
/// bytes sent, or nothing on an error. `fd` must be non-blocking.
std::optional<size_t> flood(int fd, std::chrono::milliseconds quiet);

/// Result of `stream_echo`.
struct stream_result {
  /// The echo received, and how the stream ended: EOF, an error (recv's or
  /// poll's, in `echo.error`), or the timeout (never `complete`).
  read_result echo;
  size_t sent = 0;
  /// `errno` of a failed send, 0 if none. Reading goes on after it: how
  /// the stream ended says why.
  int send_error = 0;
};

/// Streams the pattern from `base` on in sends of up to `chunk` bytes, at
/// most `window` bytes ahead of the echo, and reads the echo until the
/// stream ends or `timeout` passes without an event. Calls `progress`
/// with the state so far before each wait (e.g. to signal the server once
/// enough has come back). `fd` must be non-blocking.
stream_result
stream_echo(int fd, size_t base, size_t chunk, size_t window,
            const std::function<void(const stream_result&)>& progress,
            std::chrono::milliseconds timeout = default_timeout);

/// A deterministic byte sequence that does not repeat with a short period:
/// bytes [offset, offset + n) of it.
std::string pattern(size_t offset, size_t n);

/// Index of the first byte in which `x` and `y` differ, or the length of
/// the shorter one if it is a prefix of the other.
size_t first_difference(std::string_view x, std::string_view y);

/// How often `text` occurs in `haystack`.
size_t count_occurrences(std::string_view haystack, std::string_view text);

} // namespace quiesce::test
