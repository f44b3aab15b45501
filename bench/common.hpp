#pragma once

/// @file
/// What the bench tools share: exit codes, the clock, the parsing of
/// `--key=value` options and durations, raising the open-file limit, the
/// latency histogram, a bit mixer for test patterns and a parser for HTTP
/// responses. Header-only, so that each tool still builds from its one .cpp
/// file with a plain compiler call (see README.md).

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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

/// Parses a duration: a number with an optional unit `us`, `ms`, `s` or `m`
/// (a bare number is seconds), at most a day. Leaves `seconds` alone and
/// returns false otherwise.
inline bool parse_duration(const std::string& text, double& seconds) {
  if (text.empty())
    return false;
  errno = 0;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || !std::isfinite(value) || value < 0)
    return false;
  std::string unit{end};
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1.0;
  else if (unit == "ms")
    scale = 1e-3;
  else if (unit == "us")
    scale = 1e-6;
  else if (unit == "m" || unit == "min")
    scale = 60.0;
  else
    return false;
  if (value * scale > 24.0 * 3600.0)
    return false;
  seconds = value * scale;
  return true;
}

/// `seconds` as the clock's duration.
inline clock_type::duration to_duration(double seconds) {
  return std::chrono::duration_cast<clock_type::duration>(
    std::chrono::duration<double>{seconds});
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

/// splitmix64's finaliser: every input bit affects every output bit. The
/// tools derive the bytes they send from it, so that every byte that comes
/// back can be checked.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Log-linear histogram of nanosecond values: 128 linear sub-buckets per
/// power of two, so a reported value is within 0.4% of the true one.
class histogram {
public:
  histogram() : counts_(bucket_count, 0) {}

  void record(uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    sum_ += static_cast<double>(ns);
    max_ = std::max(max_, ns);
    min_ = std::min(min_, ns);
  }

  uint64_t count() const {
    return total_;
  }
  uint64_t max() const {
    return total_ ? max_ : 0;
  }
  uint64_t min() const {
    return total_ ? min_ : 0;
  }
  double mean() const {
    return total_ ? sum_ / static_cast<double>(total_) : 0;
  }

  /// The value at quantile q in [0, 1] (bucket midpoint, clamped to max).
  uint64_t quantile(double q) const {
    if (total_ == 0)
      return 0;
    auto rank
      = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
    rank = std::max<uint64_t>(rank, 1);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank)
        return std::min(std::max(midpoint(i), min_), max_);
    }
    return max_;
  }

private:
  static constexpr unsigned sub_bits = 7;
  static constexpr uint64_t sub = uint64_t{1} << sub_bits;
  static constexpr size_t bucket_count = sub + (64 - sub_bits) * sub;

  static size_t index(uint64_t v) {
    if (v < sub)
      return static_cast<size_t>(v);
    unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v));
    unsigned shift = e - sub_bits;
    uint64_t mantissa = v >> shift; // in [sub, 2 * sub)
    return static_cast<size_t>(sub + shift * sub + (mantissa - sub));
  }

  static uint64_t midpoint(size_t i) {
    if (i < sub)
      return i;
    uint64_t shift = (i - sub) / sub;
    uint64_t mantissa = sub + (i - sub) % sub;
    uint64_t lower = mantissa << shift;
    return lower + ((uint64_t{1} << shift) >> 1);
  }

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  double sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

// ------------------------------------------------------------ HTTP responses

/// What the bytes received so far say about one HTTP/1.x response.
struct http_reply {
  enum class state { partial, complete, bad };
  state st = state::partial;
  int status = 0;
  /// The server keeps the connection open after this response: HTTP/1.1
  /// without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
  bool keep_alive = false;
  /// Once complete: the response's length in bytes (what follows is not
  /// part of it).
  size_t size = 0;
  /// Why the response is bad.
  std::string error;
};

namespace detail {

inline std::string lower(std::string text) {
  for (auto& ch : text)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

inline std::string trim(const std::string& text) {
  auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos)
    return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

/// True if the comma-separated header value holds `token` (lower case).
inline bool has_token(const std::string& value, const std::string& token) {
  size_t start = 0;
  for (;;) {
    auto comma = value.find(',', start);
    auto item = trim(value.substr(
      start, comma == std::string::npos ? std::string::npos : comma - start));
    if (lower(item) == token)
      return true;
    if (comma == std::string::npos)
      return false;
    start = comma + 1;
  }
}

/// Where the chunked body starting at `pos` ends (past its last CRLF), 0 if
/// it is not complete yet; `error` is set if it is malformed.
inline size_t chunked_end(const std::string& data, size_t pos,
                          std::string& error) {
  for (;;) {
    auto eol = data.find("\r\n", pos);
    if (eol == std::string::npos)
      return 0;
    auto line = data.substr(pos, eol - pos);
    auto semi = line.find(';');
    auto digits = trim(line.substr(0, semi));
    errno = 0;
    char* end = nullptr;
    unsigned long long size = std::strtoull(digits.c_str(), &end, 16);
    if (digits.empty() || *end != '\0' || errno != 0 || size > (1u << 30)) {
      error = "a bad chunk size line '" + line + "'";
      return 0;
    }
    pos = eol + 2;
    if (size == 0) {
      // Trailer fields, then an empty line.
      for (;;) {
        auto next = data.find("\r\n", pos);
        if (next == std::string::npos)
          return 0;
        if (next == pos)
          return pos + 2;
        pos = next + 2;
      }
    }
    if (data.size() < pos + size + 2)
      return 0;
    if (data.compare(pos + size, 2, "\r\n") != 0) {
      error = "a chunk not followed by CRLF";
      return 0;
    }
    pos += size + 2;
  }
}

} // namespace detail

/// Parses the response to a GET at the start of `data`; `eof` says whether
/// the server has closed its side (which ends a response without a length).
/// Handles Content-Length, chunked bodies and bodies delimited by the close.
inline http_reply parse_http_reply(const std::string& data, bool eof) {
  http_reply r;
  auto bad = [&r](std::string why) {
    r.st = http_reply::state::bad;
    r.error = std::move(why);
    return r;
  };
  auto head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (data.size() > 16 * 1024)
      return bad("an endless response header");
    if (eof)
      return bad(data.empty() ? "EOF instead of a response"
                              : "EOF inside the response header");
    return r;
  }
  auto body_at = head_end + 4;
  auto eol = data.find("\r\n");
  auto status_line = data.substr(0, eol);
  int minor = -1;
  if (status_line.compare(0, 7, "HTTP/1.") == 0 && status_line.size() >= 12
      && std::isdigit(static_cast<unsigned char>(status_line[7]))
      && status_line[8] == ' ')
    minor = status_line[7] - '0';
  long status = 0;
  if (minor < 0 || !parse_long(status_line.substr(9, 3), 100, 599, status))
    return bad("a bad status line '" + status_line + "'");
  r.status = static_cast<int>(status);
  bool has_length = false;
  bool chunked = false;
  bool close = false;
  bool keep_alive = false;
  long length = 0;
  for (auto pos = eol + 2; pos < head_end + 2;) {
    auto next = data.find("\r\n", pos);
    auto line = data.substr(pos, next - pos);
    pos = next + 2;
    auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      return bad("a bad header line '" + line + "'");
    auto name = detail::lower(line.substr(0, colon));
    auto value = detail::trim(line.substr(colon + 1));
    if (name == "content-length") {
      if (has_length || !parse_long(value, 0, 1L << 30, length))
        return bad("a bad Content-Length '" + value + "'");
      has_length = true;
    } else if (name == "transfer-encoding") {
      chunked = detail::has_token(value, "chunked");
    } else if (name == "connection") {
      close = close || detail::has_token(value, "close");
      keep_alive = keep_alive || detail::has_token(value, "keep-alive");
    }
  }
  r.keep_alive = !close && (minor >= 1 || keep_alive);
  if (r.status < 200 || r.status == 204 || r.status == 304) {
    r.size = body_at;
  } else if (chunked) {
    std::string error;
    r.size = detail::chunked_end(data, body_at, error);
    if (!error.empty())
      return bad(error);
    if (r.size == 0) {
      if (eof)
        return bad("EOF inside the chunked body");
      return r;
    }
  } else if (has_length) {
    r.size = body_at + static_cast<size_t>(length);
    if (data.size() < r.size) {
      if (eof)
        return bad("EOF inside the body");
      return r;
    }
  } else {
    // The body ends with the connection.
    r.keep_alive = false;
    if (!eof)
      return r;
    r.size = data.size();
  }
  r.st = http_reply::state::complete;
  return r;
}

} // namespace bench
