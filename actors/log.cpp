#include "quiesce/log.hpp"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>

namespace quiesce::log {

namespace {

std::atomic<int> threshold_{static_cast<int>(level::info)};

/// Set once, before the threads that log exist (set_origin).
std::string origin_;

const char* level_name(level x) {
  switch (x) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warning:
      return "warning";
    case level::error:
      return "error";
    case level::off:
      break;
  }
  return "off";
}

} // namespace

bool parse_level(std::string_view text, level& out) {
  for (auto x :
       {level::debug, level::info, level::warning, level::error, level::off}) {
    if (text == level_name(x)) {
      out = x;
      return true;
    }
  }
  return false;
}

void set_threshold(level x) {
  threshold_.store(static_cast<int>(x), std::memory_order_relaxed);
}

level threshold() {
  return static_cast<level>(threshold_.load(std::memory_order_relaxed));
}

namespace {

/// Lines go through a bounded queue to a writer thread: the I/O thread never
/// blocks on a standard error that nobody reads (a full pipe). When the queue
/// is full, lines are dropped and counted; the count is logged once the
/// writer catches up.
class sink {
public:
  static constexpr size_t max_queued = 10000;

  void push(std::string line) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!started_) {
      started_ = true;
      std::thread{[this] { run(); }}.detach();
    }
    if (queue_.size() >= max_queued) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(line));
    cv_.notify_all();
  }

  bool flush(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, limit,
                        [this] { return queue_.empty() && !writing_; });
  }

private:
  void run() {
    std::unique_lock<std::mutex> guard{mtx_};
    for (;;) {
      cv_.wait(guard, [this] { return !queue_.empty() || dropped_ > 0; });
      std::deque<std::string> batch;
      batch.swap(queue_);
      auto dropped = dropped_;
      dropped_ = 0;
      writing_ = true;
      guard.unlock();
      if (dropped > 0)
        write_all("quiesce: " + std::to_string(dropped)
                  + " log lines dropped: standard error did not keep up\n");
      for (auto& line : batch)
        write_all(line);
      guard.lock();
      writing_ = false;
      cv_.notify_all();
    }
  }

  static void write_all(const std::string& line) {
    // A log that cannot be written (closed stderr, full disk) must not stop
    // the server.
    const char* p = line.data();
    auto left = line.size();
    while (left > 0) {
      auto res = ::write(STDERR_FILENO, p, left);
      if (res < 0) {
        if (errno == EINTR)
          continue;
        return;
      }
      p += res;
      left -= static_cast<size_t>(res);
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t dropped_ = 0;
  bool started_ = false;
  bool writing_ = false;
};

sink& the_sink() {
  // Never destroyed: the detached writer thread may still use it at exit.
  static auto* instance = new sink;
  return *instance;
}

} // namespace

void set_origin(std::string origin) {
  origin_ = std::move(origin);
}

void write(level lvl, std::string_view component, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto millis
    = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[32];
  auto n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ",
                static_cast<int>(millis));
  std::string line;
  line.reserve(64 + origin_.size() + component.size() + message.size());
  line += stamp;
  line += ' ';
  line += level_name(lvl);
  line += ' ';
  if (!origin_.empty()) {
    line += origin_;
    line += ' ';
  }
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  the_sink().push(std::move(line));
}

std::string millis(std::chrono::nanoseconds x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1fms",
                std::chrono::duration<double, std::milli>(x).count());
  return buf;
}

std::string span(std::chrono::nanoseconds x) {
  using namespace std::chrono;
  if (x < milliseconds{1})
    return millis(x);
  auto ms = duration_cast<milliseconds>(x).count();
  if (ms >= 1000 && ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

bool flush(std::chrono::milliseconds limit) {
  return the_sink().flush(limit);
}

} // namespace quiesce::log
