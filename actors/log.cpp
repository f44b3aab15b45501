#include "actors/log.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace quiesce::log {

namespace {

std::atomic<int> threshold_{static_cast<int>(level::info)};

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
  line.reserve(64 + component.size() + message.size());
  line += stamp;
  line += ' ';
  line += level_name(lvl);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  // One write per line: lines from several threads never interleave. A log
  // that cannot be written (closed stderr, full disk) must not stop the server.
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

} // namespace quiesce::log
