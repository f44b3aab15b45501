// conn_rate: how many new connections per second a server accepts and serves.
//
// --connections connectors run side by side from one epoll loop. Each one
// repeats a cycle: connect (non-blocking, TCP_NODELAY), send one request,
// read and check the whole answer, then end the connection the way a
// normal client does, and start over at once.
//
// - echo: the request is 8..64 bytes derived from (connector, cycle); every
//   echoed byte is compared with what was sent. Then the client shuts down
//   its side (FIN) and waits for the server's EOF before it closes.
// - http: `GET / HTTP/1.1` with `Connection: close`; the response (length,
//   chunked or up to the close) must be a 200, and the server's EOF must
//   follow it with nothing after the response.
//
// A cycle counts when it completes (the server's EOF was read and the socket
// closed) inside the measurement window [warmup, warmup + duration).
// Latency is from the connect() call to the last byte of the answer (steady
// clock). The client never resets a connection (no SO_LINGER 0); it only
// closes a socket with unread data after an error.
//
// Exit codes: 0 no error, 1 any error (a refused or failed connect, a wrong
// byte, a bad response, a reset, an EOF too early, no answer within
// --timeout), 2 bad options.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using namespace bench;
using namespace std::chrono_literals;

constexpr char program[] = "conn_rate";

/// After a failed cycle, a connector waits this long before the next one, so
/// that a server that refuses connections does not make the client spin.
constexpr auto retry_pause = 10ms;

constexpr char http_request[] = "GET / HTTP/1.1\r\nHost: bench\r\n"
                                "Connection: close\r\n\r\n";

// ---------------------------------------------------------------- options

struct options {
  std::string host = "127.0.0.1";
  long port = -1;
  std::string protocol = "echo";
  long connections = 50;
  double duration_s = 10.0;
  double warmup_s = 1.0;
  double timeout_s = 5.0;
};

void usage(std::FILE* out) {
  std::fprintf(
    out, "usage: conn_rate --port=N [--host=127.0.0.1] [--protocol=echo|http]\n"
         "                 [--connections=50] [--duration=10s] [--warmup=1s]\n"
         "                 [--timeout=5s]\n"
         "durations: a number with an optional unit us, ms, s or m "
         "(default s)\n");
}

[[noreturn]] void bad_option(const std::string& arg, const std::string& why) {
  bench::bad_option(program, usage, arg, why);
}

options parse_options(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    handle_help(arg, usage);
    std::string key;
    std::string value;
    if (!split_option(arg, key, value))
      bad_option(arg, "expected --key=value");
    if (key == "host") {
      in_addr probe{};
      if (inet_pton(AF_INET, value.c_str(), &probe) != 1)
        bad_option(arg, "expected a numeric IPv4 address");
      opts.host = value;
    } else if (key == "port") {
      if (!parse_long(value, 1, 65535, opts.port))
        bad_option(arg, "expected a port in 1..65535");
    } else if (key == "protocol") {
      if (value != "echo" && value != "http")
        bad_option(arg, "expected echo or http");
      opts.protocol = value;
    } else if (key == "connections") {
      if (!parse_long(value, 1, 100000, opts.connections))
        bad_option(arg, "expected an integer in 1..100000");
    } else if (key == "duration") {
      if (!parse_duration(value, opts.duration_s) || opts.duration_s <= 0)
        bad_option(arg, "expected a positive duration such as 10s or 500ms");
    } else if (key == "warmup") {
      if (!parse_duration(value, opts.warmup_s))
        bad_option(arg, "expected a duration such as 1s or 0");
    } else if (key == "timeout") {
      if (!parse_duration(value, opts.timeout_s) || opts.timeout_s <= 0)
        bad_option(arg, "expected a positive duration such as 5s");
    } else {
      bad_option(arg, "unknown option");
    }
  }
  if (opts.port < 0)
    bad_option("--port", "missing (required)");
  return opts;
}

// ---------------------------------------------------------------- the load

enum class phase {
  waiting,    // between cycles (after an error: until retry_at)
  connecting, // connect() in progress
  sending,    // the request is not all handed to the kernel yet
  receiving,  // the answer is not complete yet
  closing,    // the answer is complete; waiting for the server's EOF
};

struct connector {
  int fd = -1;
  uint32_t id = 0;
  phase ph = phase::waiting;
  uint64_t cycle = 0; // cycles started
  time_point started; // the connect() call
  time_point answered;
  time_point retry_at;
  std::string out; // the request (echo: also what must come back)
  size_t out_off = 0;
  std::string in; // what came back so far
};

class load {
public:
  explicit load(const options& opts) : opts_(opts) {}

  ~load() {
    for (auto& c : conns_)
      if (c.fd >= 0)
        ::close(c.fd);
    if (ep_ >= 0)
      ::close(ep_);
  }

  int run() {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      std::fprintf(stderr, "%s: epoll_create1: %s\n", program,
                   std::strerror(errno));
      return exit_failed;
    }
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(opts_.port));
    inet_pton(AF_INET, opts_.host.c_str(), &addr_.sin_addr);
    conns_.resize(static_cast<size_t>(opts_.connections));
    auto now = clock_type::now();
    measure_start_ = now + to_duration(opts_.warmup_s);
    measure_end_ = measure_start_ + to_duration(opts_.duration_s);
    for (size_t i = 0; i < conns_.size(); ++i) {
      conns_[i].id = static_cast<uint32_t>(i);
      start_cycle(conns_[i]);
    }
    loop(measure_end_);
    // No new cycles; those under way may finish (their own timeout bounds
    // this), then anything still open is an error.
    issuing_ = false;
    loop(clock_type::now() + to_duration(opts_.timeout_s) + 1s);
    for (auto& c : conns_)
      if (c.fd >= 0)
        fail(c, "still open after the run");
    return report();
  }

private:
  // --- one cycle

  void start_cycle(connector& c) {
    c.ph = phase::connecting;
    ++c.cycle;
    c.in.clear();
    c.out_off = 0;
    if (opts_.protocol == "http") {
      c.out = http_request;
    } else {
      // 8..64 bytes, each derived from (connector, cycle, offset).
      auto seed = mix64((uint64_t{c.id} << 40) ^ c.cycle);
      c.out.resize(8 + seed % 57);
      for (size_t k = 0; k < c.out.size(); ++k)
        c.out[k] = static_cast<char>(mix64(seed + k) & 0xff);
    }
    c.started = clock_type::now();
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      fail(c, std::string{"socket: "} + std::strerror(errno));
      return;
    }
    int on = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_),
                  sizeof(addr_))
          != 0
        && errno != EINPROGRESS) {
      fail(c, std::string{"connect: "} + std::strerror(errno));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = c.id;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0)
      fail(c, std::string{"epoll_ctl: "} + std::strerror(errno));
  }

  void handle(connector& c, uint32_t events) {
    if (c.ph == phase::connecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
      if (err != 0) {
        fail(c, std::string{"connect: "} + std::strerror(err));
        return;
      }
      if (!(events & EPOLLOUT))
        return;
      c.ph = phase::sending;
    }
    if (c.ph == phase::sending) {
      send_some(c);
      return;
    }
    receive(c);
  }

  void send_some(connector& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off,
                         c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return; // EPOLLOUT is still registered
      fail(c, std::string{"send: "} + std::strerror(errno));
      return;
    }
    c.ph = phase::receiving;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = c.id;
    if (::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) != 0)
      fail(c, std::string{"epoll_ctl: "} + std::strerror(errno));
  }

  void receive(connector& c) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        if (!take(c, buf, static_cast<size_t>(n)))
          return;
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n < 0) {
        fail(c, errno == ECONNRESET
                  ? "reset by the server"
                  : std::string{"recv: "} + std::strerror(errno));
        return;
      }
      end_of_stream(c);
      return;
    }
  }

  /// Checks `n` more bytes of the answer; false after an error.
  bool take(connector& c, const char* data, size_t n) {
    auto now = clock_type::now();
    if (opts_.protocol == "echo") {
      if (c.ph == phase::closing)
        return fail(c, "bytes after the echo");
      if (c.in.size() + n > c.out.size()
          || c.out.compare(c.in.size(), n, data, n) != 0)
        return fail(c, "wrong bytes in the echo");
      c.in.append(data, n);
      if (c.in.size() == c.out.size()) {
        c.answered = now;
        c.ph = phase::closing;
        if (::shutdown(c.fd, SHUT_WR) != 0)
          return fail(c, std::string{"shutdown: "} + std::strerror(errno));
      }
      return true;
    }
    c.in.append(data, n);
    auto r = parse_http_reply(c.in, false);
    if (r.st == http_reply::state::bad)
      return fail(c, r.error);
    if (r.st == http_reply::state::complete) {
      if (r.status != 200)
        return fail(c,
                    "status " + std::to_string(r.status) + " instead of 200");
      if (c.in.size() > r.size)
        return fail(c, "bytes after the response");
      if (c.ph == phase::receiving) {
        c.answered = now;
        c.ph = phase::closing;
      }
    }
    return true;
  }

  void end_of_stream(connector& c) {
    auto now = clock_type::now();
    if (opts_.protocol == "echo") {
      if (c.ph != phase::closing) {
        fail(c, "EOF before the whole echo");
        return;
      }
    } else {
      auto r = parse_http_reply(c.in, true);
      if (r.st != http_reply::state::complete) {
        fail(c, r.error.empty() ? "EOF inside the response" : r.error);
        return;
      }
      if (r.status != 200) {
        fail(c, "status " + std::to_string(r.status) + " instead of 200");
        return;
      }
      if (c.ph == phase::receiving)
        c.answered = now; // a response delimited by the close
    }
    // Everything was read: this close sends a FIN, never a reset.
    ::close(c.fd);
    c.fd = -1;
    c.ph = phase::waiting;
    if (now >= measure_start_ && now < measure_end_) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
        c.answered - c.started);
      hist_.record(static_cast<uint64_t>(std::max<int64_t>(ns.count(), 0)));
    }
    if (issuing_)
      start_cycle(c);
  }

  /// Counts an error for `c`, ends its connection and schedules its next
  /// cycle after a pause; returns false.
  bool fail(connector& c, const std::string& what) {
    ++errors_;
    ++error_kinds_[what];
    if (c.fd >= 0) {
      ::close(c.fd);
      c.fd = -1;
    }
    c.ph = phase::waiting;
    c.retry_at = clock_type::now() + retry_pause;
    return false;
  }

  // --- the loop

  /// Runs until `until`, or until every connector is waiting once no new
  /// cycles are issued.
  void loop(time_point until) {
    std::vector<epoll_event> events(1024);
    auto timeout = to_duration(opts_.timeout_s);
    for (;;) {
      auto now = clock_type::now();
      if (now >= until)
        return;
      // Timeouts and retries: a scan of the connectors is cheap next to
      // the connections they make.
      auto wake = until;
      bool busy = false;
      for (auto& c : conns_) {
        if (c.ph == phase::waiting) {
          if (!issuing_)
            continue;
          if (c.retry_at <= now)
            start_cycle(c);
          else
            wake = std::min(wake, c.retry_at);
        }
        if (c.ph != phase::waiting) {
          busy = true;
          if (now - c.started >= timeout)
            fail(c, c.ph == phase::connecting ? "connect timed out"
                    : c.ph == phase::closing  ? "no EOF after the answer"
                                              : "no answer in time");
          else
            wake = std::min(wake, c.started + timeout);
        }
      }
      if (!busy && !issuing_)
        return;
      int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                           ms_until(now, wake));
      if (n < 0 && errno != EINTR) {
        std::fprintf(stderr, "%s: epoll_wait: %s\n", program,
                     std::strerror(errno));
        ++errors_;
        return;
      }
      for (int k = 0; k < n; ++k) {
        auto& ev = events[static_cast<size_t>(k)];
        auto& c = conns_[ev.data.u32];
        if (c.fd >= 0)
          handle(c, ev.events);
      }
    }
  }

  int report() {
    for (auto& [what, count] : error_kinds_)
      std::fprintf(stderr, "%s: error: %s (%" PRIu64 "x)\n", program,
                   what.c_str(), count);
    auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    std::printf("conn_rate: protocol=%s connections=%ld duration=%.1fs "
                "conns=%" PRIu64 " conns_per_s=%.0f p50_us=%.1f p90_us=%.1f "
                "p99_us=%.1f max_us=%.1f mean_us=%.1f errors=%" PRIu64 "\n",
                opts_.protocol.c_str(), opts_.connections, opts_.duration_s,
                hist_.count(),
                static_cast<double>(hist_.count()) / opts_.duration_s,
                us(hist_.quantile(0.5)), us(hist_.quantile(0.9)),
                us(hist_.quantile(0.99)), us(hist_.max()),
                hist_.mean() / 1000.0, errors_);
    std::fflush(stdout);
    return errors_ == 0 ? exit_ok : exit_failed;
  }

  const options& opts_;
  int ep_ = -1;
  sockaddr_in addr_{};
  std::vector<connector> conns_;
  histogram hist_;
  bool issuing_ = true;
  time_point measure_start_;
  time_point measure_end_;
  uint64_t errors_ = 0;
  std::map<std::string, uint64_t> error_kinds_;
};

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  auto opts = parse_options(argc, argv);
  // Beyond the connections: standard streams and the epoll descriptor.
  if (!raise_fd_limit(program, opts.connections, 16))
    return exit_failed;
  load l{opts};
  return l.run();
}
