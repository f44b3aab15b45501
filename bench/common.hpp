#pragma once

/// @file
/// What echo_load and stop_time share: exit codes, the clock, the parsing of
/// `--key=value` options and raising the open-file limit. Header-only, so
/// that each tool still builds from its one .cpp file with a plain compiler
/// call (see README.md).

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bench {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

/// Prints a tool's usage text to `out`.
using usage_printer = void (*)(std::FILE* out);

/// Reports `arg` as bad, with `why` and the usage, on standard error and
/// exits: a tool never runs with an option it did not understand.
[[noreturn]] inline void bad_option(const char* program, usage_printer usage,
                                    const std::string& arg,
                                    const std::string& why) {
  std::fprintf(stderr, "%s: bad option '%s': %s\n", program, arg.c_str(),
               why.c_str());
  usage(stderr);
  std::exit(exit_usage);
}

/// Prints the usage on standard output and exits 0 if `arg` asks for help.
inline void handle_help(const std::string& arg, usage_printer usage) {
  if (arg == "--help" || arg == "-h") {
    usage(stdout);
    std::exit(exit_ok);
  }
}

/// Splits `--key=value` into its key and value; false for any other form.
inline bool split_option(const std::string& arg, std::string& key,
                         std::string& value) {
  auto eq = arg.find('=');
  if (arg.rfind("--", 0) != 0 || eq == std::string::npos)
    return false;
  key = arg.substr(2, eq - 2);
  value = arg.substr(eq + 1);
  return true;
}

/// Parses all of `text` as a decimal integer in [lo, hi]; leaves `out`
/// alone and returns false otherwise, so a default survives a bad value.
inline bool parse_long(const std::string& text, long lo, long hi, long& out) {
  if (text.empty())
    return false;
  errno = 0;
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value < lo || value > hi)
    return false;
  out = value;
  return true;
}

/// The epoll_wait timeout from `now` until `when`. Rounded up, so that a
/// wait does not end just before the deadline and spin; at most a second,
/// so that the loops recheck their state at least that often.
inline int ms_until(time_point now, time_point when) {
  if (when <= now)
    return 0;
  auto ms
    = std::chrono::duration_cast<std::chrono::milliseconds>(when - now).count();
  return static_cast<int>(std::min<int64_t>(ms + 1, 1000));
}

/// Raises the soft RLIMIT_NOFILE to the hard limit: the default soft limit
/// (often 1024) is too low for a few thousand connections. Returns false,
/// after a message prefixed by `program`, when `needed` connections plus
/// `reserve` other descriptors still do not fit.
inline bool raise_fd_limit(const char* program, long needed, long reserve) {
  auto prefix = std::string{program} + ": ";
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    std::perror((prefix + "getrlimit(RLIMIT_NOFILE)").c_str());
    return false;
  }
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
      std::perror((prefix + "setrlimit(RLIMIT_NOFILE)").c_str());
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY
      && static_cast<rlim_t>(needed + reserve) > lim.rlim_cur) {
    std::fprintf(stderr,
                 "%s: %ld connections need more descriptors than the "
                 "open-file limit (%llu) allows\n",
                 program, needed,
                 static_cast<unsigned long long>(lim.rlim_cur));
    return false;
  }
  return true;
}

} // namespace bench
