#include "actors/notify.hpp"

#include <cstdlib>
#include <ctime>
#include <systemd/sd-daemon.h>

#include "quiesce/log.hpp"

namespace quiesce::notify {

namespace {

/// What the STATUS line is about.
enum class phase { starting, serving, reloading, stopping, finished };

/// The module's state; one per process.
struct board {
  std::mutex mtx;
  bool enabled = false;
  std::chrono::microseconds watchdog{0};
  phase now = phase::starting;
  std::string address;
  size_t workers = 0;
  std::string why;
  std::string last_status;
};

board& the_board() {
  static board instance;
  return instance;
}

/// Sends `text` (one or more `KEY=VALUE` lines). Called with the lock held:
/// the messages leave in the order of the calls.
void send(const std::string& text) {
  // Errors (no one listens any more) change nothing for the server.
  ::sd_notify(0, text.c_str());
}

std::string workers_text(size_t workers) {
  if (workers == 0)
    return "";
  return " (" + std::to_string(workers) + " workers)";
}

/// The STATUS line for `open` connections in the current phase.
std::string status_line(const board& b, uint32_t open) {
  auto n = std::to_string(open) + (open == 1 ? " connection" : " connections");
  switch (b.now) {
    case phase::serving:
      return "serving on " + b.address + ": " + n + " open"
             + workers_text(b.workers);
    case phase::reloading:
      return "reloading: starting new workers; " + n + " open";
    case phase::stopping:
      return "stopping (" + b.why + "): " + n + " draining";
    default:
      return {};
  }
}

/// Sends `extra` (may be empty) and `STATUS=status` if the status changed.
void send_with_status(board& b, const std::string& extra,
                      const std::string& status) {
  std::string text = extra;
  if (!status.empty() && status != b.last_status) {
    b.last_status = status;
    if (!text.empty())
      text += "\n";
    text += "STATUS=" + status;
  }
  if (!text.empty())
    send(text);
}

} // namespace

void init(bool notifies) {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (!notifies) {
    // A worker: whatever it inherited is its master's to use.
    for (auto* name : own_variables)
      ::unsetenv(name);
    b.enabled = false;
    return;
  }
  b.enabled = std::getenv("NOTIFY_SOCKET") != nullptr;
  uint64_t usec = 0;
  // Checks WATCHDOG_PID against this process too.
  if (b.enabled && ::sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    b.watchdog = std::chrono::microseconds{usec / 2};
}

bool enabled() {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  return b.enabled;
}

std::chrono::microseconds watchdog_interval() {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  return b.watchdog;
}

void ready(const std::string& address, size_t workers) {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (!b.enabled || b.now != phase::starting)
    return;
  b.now = phase::serving;
  b.address = address;
  b.workers = workers;
  send_with_status(b, "READY=1", status_line(b, 0));
}

void connections(uint32_t open) {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (!b.enabled)
    return;
  send_with_status(b, "", status_line(b, open));
}

void stopping(const std::string& why) {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (!b.enabled || b.now == phase::stopping || b.now == phase::finished)
    return;
  b.now = phase::stopping;
  b.why = why;
  send_with_status(b, "STOPPING=1", "stopping (" + why + ")");
}

void reloading() {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (!b.enabled || b.now != phase::serving)
    return;
  b.now = phase::reloading;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  auto usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u
              + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  send_with_status(b, "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec),
                   "reloading: starting new workers");
}

void reloaded(const std::string& status, size_t workers) {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (!b.enabled || b.now != phase::reloading)
    return;
  b.now = phase::serving;
  b.workers = workers;
  send_with_status(b, "READY=1", status);
}

void finished(const shutdown_report& report) {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (!b.enabled)
    return;
  b.now = phase::finished;
  send_with_status(b, "",
                   "stopped: " + std::to_string(report.drained) + " drained, "
                     + std::to_string(report.forced) + " forced, in "
                     + log::millis(report.duration));
}

void watchdog() {
  auto& b = the_board();
  std::lock_guard<std::mutex> guard{b.mtx};
  if (b.enabled && b.watchdog.count() > 0)
    send("WATCHDOG=1");
}

// -- watchdog_pinger ----------------------------------------------------------

watchdog_pinger::watchdog_pinger(caf::io::network::multiplexer& mpx,
                                 std::function<bool()> healthy)
    : state_(std::make_shared<shared_state>()) {
  state_->healthy = std::move(healthy);
  auto interval = watchdog_interval();
  if (interval.count() > 0)
    thread_ = std::thread([this, &mpx, interval] { run(mpx, interval); });
}

watchdog_pinger::~watchdog_pinger() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void watchdog_pinger::run(caf::io::network::multiplexer& mpx,
                          std::chrono::microseconds interval) {
  std::unique_lock<std::mutex> guard{mtx_};
  uint64_t pinged_at = 0;
  for (;;) {
    // The ping leaves from this thread (sd_notify may block): the loop only
    // counts its turns. A turn since the last ping earns the next one, so a
    // loop that does not turn sends none.
    auto turns = state_->turns.load();
    if (turns != pinged_at) {
      pinged_at = turns;
      watchdog();
    }
    // One probe in the loop at a time: a loop that does not turn lets the
    // posted one wait, and no other is posted meanwhile.
    if (!state_->pending.exchange(true)) {
      mpx.post([st = state_] {
        st->pending = false;
        if (!st->healthy || st->healthy())
          ++st->turns;
      });
    }
    if (cv_.wait_for(guard, interval, [this] { return done_; }))
      return;
  }
}

} // namespace quiesce::notify
