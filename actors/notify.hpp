#pragma once

/// @file
/// systemd's notification protocol (sd_notify, libsystemd) and its
/// watchdog: what the server tells its service manager. Everything here does
/// nothing unless `NOTIFY_SOCKET` was set when the process started (and the
/// process is no worker: with workers only the master notifies, systemd's
/// `NotifyAccess=main` drops the rest).
///
/// - `READY=1` once the server accepts connections (`ready`): with workers,
///   when the master prints its `listening on` line.
/// - `STATUS=...` for a person (`systemctl status`): while serving, the
///   connections open; during a stop, the connections still draining; at the
///   end, the summary. Sent only when the text changes.
/// - `STOPPING=1` when a stop begins (`stopping`): one call, at the first
///   signal (or whatever begins the stop).
/// - `RELOADING=1` then `READY=1` around a reload (`reloading`,
///   `reloaded`), with a STATUS saying how it went.
/// - `WATCHDOG=1` every half of `WATCHDOG_USEC` (`watchdog_pinger`), sent
///   only if the I/O event loop turned since the last one: a wedged loop
///   stops the pings and systemd restarts the service.
///
/// Safe to call from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "caf/io/network/multiplexer.hpp"

#include "quiesce/messages.hpp"

namespace quiesce::notify {

/// The environment variables of systemd's protocols that belong to this
/// process alone: a child (a worker) must not inherit them.
inline constexpr const char* own_variables[]
  = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};

/// Reads the environment once, at the start. `notifies`: false in a worker
/// process, which then never notifies (and drops the variables).
void init(bool notifies);

/// Whether notifications go out (`NOTIFY_SOCKET` set, not a worker).
bool enabled();

/// Half of `WATCHDOG_USEC` if systemd's watchdog is on for this process,
/// else zero.
std::chrono::microseconds watchdog_interval();

/// `READY=1`, with the serving status: the server accepts connections on
/// `address`; `workers` is 0 for a single process.
void ready(const std::string& address, size_t workers);

/// The connections open now (while serving) or still draining (during a
/// stop), for the STATUS line; sent only when the line changes.
void connections(uint32_t open);

/// `STOPPING=1`: a stop begins. `why` is for the STATUS line ("SIGTERM
/// received").
void stopping(const std::string& why);

/// `RELOADING=1` (with `MONOTONIC_USEC`, as systemd wants it).
void reloading();

/// `READY=1` after a reload; `status` says how it went.
void reloaded(const std::string& status, size_t workers);

/// The last STATUS line: the stop's summary ("stopped: N drained, N forced,
/// in T").
void finished(const shutdown_report& report);

/// `WATCHDOG=1`.
void watchdog();

/// Pings systemd's watchdog every `watchdog_interval()` for as long as it
/// lives, while the I/O event loop of `mpx` turns: a timer thread posts a
/// probe into the loop (no other until that one has run), the probe counts
/// the turn, and the thread sends the ping itself (never the loop: sd_notify
/// may block) when the loop turned since the last one. A loop that does not
/// turn gets none. `healthy`, if set, is asked in the loop too (a master's
/// workers that stopped answering: no ping either). Does nothing without
/// the watchdog. Destroy it before the actor system.
class watchdog_pinger {
public:
  watchdog_pinger(caf::io::network::multiplexer& mpx,
                  std::function<bool()> healthy = nullptr);

  ~watchdog_pinger();

  watchdog_pinger(const watchdog_pinger&) = delete;

  watchdog_pinger& operator=(const watchdog_pinger&) = delete;

private:
  struct shared_state {
    std::atomic<bool> pending{false};
    /// The loop's turns (probes run and found healthy).
    std::atomic<uint64_t> turns{0};
    std::function<bool()> healthy;
  };

  void run(caf::io::network::multiplexer& mpx,
           std::chrono::microseconds interval);

  std::shared_ptr<shared_state> state_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

} // namespace quiesce::notify
