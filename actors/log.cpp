#include "quiesce/log.hpp"

#include <cerrno>
#include <cinttypes>
#include <cmath>
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

std::atomic<int> format_{static_cast<int>(format::text)};

/// Set once, before the threads that log exist (set_worker).
uint32_t worker_ = 0;

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

bool parse_format(std::string_view text, format& out) {
  if (text == "text")
    out = format::text;
  else if (text == "json")
    out = format::json;
  else
    return false;
  return true;
}

void set_format(format x) {
  format_.store(static_cast<int>(x), std::memory_order_relaxed);
}

format current_format() {
  return static_cast<format>(format_.load(std::memory_order_relaxed));
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
        write_all(dropped_line(dropped));
      for (auto& line : batch)
        write_all(line);
      guard.lock();
      writing_ = false;
      cv_.notify_all();
    }
  }

  /// The line that counts the lines dropped, in the format of the others.
  static std::string dropped_line(size_t dropped) {
    auto text = std::to_string(dropped)
                + " log lines dropped: standard error did not keep up";
    if (current_format() == format::text)
      return "quiesce: " + text + "\n";
    record x;
    x.time = std::chrono::system_clock::now();
    x.lvl = level::warning;
    x.worker = worker_;
    x.component = "log";
    x.message = text;
    x.fields.emplace_back("dropped", dropped);
    return format_line(format::json, x);
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

void set_worker(uint32_t id) {
  worker_ = id;
}

namespace {

/// "2026-11-27T22:04:06.123Z" (RFC 3339, UTC, milliseconds).
void append_time(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto secs = system_clock::to_time_t(t);
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[32];
  auto n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ", static_cast<int>(ms));
  out += stamp;
}

/// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong
/// form, no surrogate, nothing past U+10FFFF) at the start of `x`, or 0.
size_t utf8_sequence(std::string_view x) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(x[i]); };
  auto lead = byte(0);
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead < 0x80)
    return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0)
      lo = 0xA0;
    else if (lead == 0xED)
      hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0)
      lo = 0x90;
    else if (lead == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (x.size() < len || byte(1) < lo || byte(1) > hi)
    return 0;
  for (size_t i = 2; i < len; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF)
      return 0;
  return len;
}

void append_field(std::string& out, const field& x) {
  out += ',';
  append_json_string(out, x.key);
  out += ':';
  char buf[64];
  if (x.is_integer)
    std::snprintf(buf, sizeof(buf), "%" PRId64, x.integer);
  else if (std::isfinite(x.real))
    std::snprintf(buf, sizeof(buf), "%.3f", x.real);
  else
    std::snprintf(buf, sizeof(buf), "null"); // JSON has no NaN or infinity
  out += buf;
}

} // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else if (c < 0x80) {
          out += static_cast<char>(c);
        } else if (auto len = utf8_sequence(text.substr(i)); len > 0) {
          out.append(text.data() + i, len);
          i += len;
          continue;
        } else {
          out += "\\ufffd";
        }
    }
    ++i;
  }
  out += '"';
}

std::string format_line(format fmt, const record& x) {
  std::string line;
  line.reserve(96 + x.component.size() + x.message.size()
               + 24 * x.fields.size());
  if (fmt == format::text) {
    append_time(line, x.time);
    line += ' ';
    line += level_name(x.lvl);
    line += ' ';
    if (x.worker != 0) {
      line += "worker ";
      line += std::to_string(x.worker);
      line += ' ';
    }
    line += x.component;
    line += ": ";
    line += x.message;
    line += '\n';
    return line;
  }
  line += "{\"time\":\"";
  append_time(line, x.time);
  line += "\",\"level\":\"";
  line += level_name(x.lvl);
  line += '"';
  if (x.worker != 0) {
    line += ",\"worker\":";
    line += std::to_string(x.worker);
  }
  line += ",\"component\":";
  append_json_string(line, x.component);
  line += ",\"message\":";
  append_json_string(line, x.message);
  for (auto& f : x.fields)
    append_field(line, f);
  line += "}\n";
  return line;
}

void write(level lvl, std::string_view component, std::string_view message,
           std::vector<field> fields) {
  record x;
  x.time = std::chrono::system_clock::now();
  x.lvl = lvl;
  x.worker = worker_;
  x.component = component;
  x.message = message;
  x.fields = std::move(fields);
  the_sink().push(format_line(current_format(), x));
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
