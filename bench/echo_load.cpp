// echo_load: a closed-loop load generator for an echo server.
//
// Opens --connections TCP connections (non-blocking, TCP_NODELAY) and drives
// them from one epoll loop. Each connection keeps --depth messages of --size
// bytes in flight: when the echo of one message is complete, the next one is
// sent. Every message carries a pattern derived from (connection, sequence),
// and every echoed byte is checked against it. Round trips completed during
// the --duration after the --warmup are counted, and their latency (steady
// clock, from handing the message to send() to receiving its last byte) goes
// into a log-linear histogram.
//
// Exit codes: 0 success, 1 a wrong byte / unexpected EOF / socket error /
// stall, 2 bad options.

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
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using namespace bench;

constexpr char program[] = "echo_load";

// Bounds on the phases around the measurement.
constexpr auto connect_limit = std::chrono::seconds{10};
constexpr auto stall_limit = std::chrono::seconds{5};
constexpr auto drain_limit = std::chrono::seconds{10};

// ---------------------------------------------------------------- options

struct options {
  std::string host = "127.0.0.1";
  long port = -1;
  long connections = 50;
  long size = 64;
  long depth = 1;
  double duration_s = 10.0;
  double warmup_s = 1.0;
};

void usage(std::FILE* out) {
  std::fprintf(
    out, "usage: echo_load --port=N [--host=127.0.0.1] [--connections=50]\n"
         "                 [--size=64] [--depth=1] [--duration=10s] "
         "[--warmup=1s]\n"
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
    } else if (key == "connections") {
      if (!parse_long(value, 1, 1000000, opts.connections))
        bad_option(arg, "expected an integer in 1..1000000");
    } else if (key == "size") {
      if (!parse_long(value, 1, 64L * 1024 * 1024, opts.size))
        bad_option(arg, "expected a byte count in 1..67108864");
    } else if (key == "depth") {
      if (!parse_long(value, 1, 4096, opts.depth))
        bad_option(arg, "expected an integer in 1..4096");
    } else if (key == "duration") {
      if (!parse_duration(value, opts.duration_s) || opts.duration_s <= 0)
        bad_option(arg, "expected a positive duration such as 10s or 500ms");
    } else if (key == "warmup") {
      if (!parse_duration(value, opts.warmup_s))
        bad_option(arg, "expected a duration such as 1s or 0");
    } else {
      bad_option(arg, "unknown option");
    }
  }
  if (opts.port < 0)
    bad_option("--port", "missing (required)");
  if (static_cast<double>(opts.size) * static_cast<double>(opts.depth)
        * static_cast<double>(opts.connections)
      > 4.0 * 1024 * 1024 * 1024)
    bad_option("--size/--depth/--connections",
               "more than 4 GiB would be in flight");
  return opts;
}

// ---------------------------------------------------------------- pattern

uint64_t message_seed(uint32_t conn, uint64_t seq) {
  return mix64((uint64_t{conn} << 40) ^ seq ^ 0x5157455343450000ull);
}

/// Writes bytes [offset, offset + len) of the message with `seed` to `out`.
void fill_pattern(uint64_t seed, size_t offset, size_t len,
                  unsigned char* out) {
  size_t pos = offset;
  size_t end = offset + len;
  while (pos < end) {
    uint64_t word = mix64(seed + pos / 8);
    for (size_t k = pos % 8; k < 8 && pos < end; ++k, ++pos)
      *out++ = static_cast<unsigned char>(word >> (8 * k));
  }
}

// ---------------------------------------------------------------- load

struct connection {
  int fd = -1;
  uint32_t id = 0;
  bool connected = false;
  bool want_out = false;          // EPOLLOUT is registered
  std::vector<unsigned char> out; // bytes not yet handed to the kernel
  size_t out_off = 0;
  uint64_t next_send = 0; // sequence number of the next message to send
  uint64_t next_recv = 0; // sequence number of the message being echoed
  size_t recv_off = 0;    // bytes of message next_recv received so far
  std::vector<time_point> sent_at; // indexed by seq % depth
};

class load {
public:
  explicit load(const options& opts) : opts_(opts) {}

  ~load() {
    close_all();
    if (ep_ >= 0)
      ::close(ep_);
  }

  int run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      fail_errno("epoll_create1");
      return report();
    }
    if (!connect_all())
      return report();
    start();
    loop();
    if (error_.empty())
      drain();
    close_all();
    return report();
  }

private:
  // --- setup

  bool connect_all() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(opts_.port));
    inet_pton(AF_INET, opts_.host.c_str(), &addr.sin_addr);
    conns_.resize(static_cast<size_t>(opts_.connections));
    for (size_t i = 0; i < conns_.size(); ++i) {
      auto& c = conns_[i];
      c.id = static_cast<uint32_t>(i);
      c.sent_at.resize(static_cast<size_t>(opts_.depth));
      c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0)
        return fail_errno("socket");
      int on = 1;
      if (::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        return fail_errno("setsockopt(TCP_NODELAY)");
      if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
          && errno != EINPROGRESS)
        return fail_conn(c, std::string{"connect: "} + std::strerror(errno));
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.u32 = c.id;
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0)
        return fail_errno("epoll_ctl(ADD)");
      c.want_out = true;
    }
    size_t pending = conns_.size();
    auto deadline = clock_type::now() + connect_limit;
    std::vector<epoll_event> events(1024);
    while (pending > 0) {
      auto now = clock_type::now();
      if (now >= deadline) {
        error_ = std::to_string(pending) + " of "
                 + std::to_string(conns_.size())
                 + " connections not established within 10s";
        return false;
      }
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                         ms_until(now, deadline));
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return fail_errno("epoll_wait");
      }
      for (int k = 0; k < n; ++k) {
        auto& c = conns_[events[static_cast<size_t>(k)].data.u32];
        if (c.connected)
          continue;
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
          err = errno;
        if (err != 0)
          return fail_conn(c, std::string{"connect: "} + std::strerror(err));
        if (!(events[static_cast<size_t>(k)].events & EPOLLOUT))
          continue;
        c.connected = true;
        --pending;
        set_out(c, false);
        if (!error_.empty())
          return false;
      }
    }
    return true;
  }

  void start() {
    auto now = clock_type::now();
    measure_start_ = now + to_duration(opts_.warmup_s);
    measure_end_ = measure_start_ + to_duration(opts_.duration_s);
    last_progress_ = now;
    for (auto& c : conns_) {
      for (long k = 0; k < opts_.depth; ++k)
        enqueue(c, now);
      flush(c);
      if (!error_.empty())
        return;
    }
  }

  // --- the loop

  void loop() {
    std::vector<epoll_event> events(1024);
    while (error_.empty()) {
      auto now = clock_type::now();
      if (now >= measure_end_)
        return;
      if (now - last_progress_ >= stall_limit) {
        error_ = "stalled: no echo completed for 5s";
        return;
      }
      auto wake = std::min(measure_end_, last_progress_ + stall_limit);
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                         ms_until(now, wake));
      if (n < 0) {
        if (errno == EINTR)
          continue;
        fail_errno("epoll_wait");
        return;
      }
      for (int k = 0; k < n && error_.empty(); ++k)
        handle(events[static_cast<size_t>(k)]);
    }
  }

  /// After the measurement: no new messages; wait for those in flight.
  void drain() {
    issuing_ = false;
    auto deadline = clock_type::now() + drain_limit;
    std::vector<epoll_event> events(1024);
    while (error_.empty()) {
      size_t outstanding = 0;
      for (auto& c : conns_)
        if (c.next_recv != c.next_send)
          ++outstanding;
      if (outstanding == 0)
        return;
      auto now = clock_type::now();
      if (now >= deadline) {
        error_ = std::to_string(outstanding)
                 + " connections still awaiting echoes 10s after the run";
        return;
      }
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                         ms_until(now, deadline));
      if (n < 0) {
        if (errno == EINTR)
          continue;
        fail_errno("epoll_wait");
        return;
      }
      for (int k = 0; k < n && error_.empty(); ++k)
        handle(events[static_cast<size_t>(k)]);
    }
  }

  void handle(const epoll_event& ev) {
    auto& c = conns_[ev.data.u32];
    if (c.fd < 0)
      return;
    if (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR))
      read_some(c);
    if (error_.empty() && (ev.events & EPOLLOUT))
      flush(c);
  }

  void read_some(connection& c) {
    ssize_t n = ::recv(c.fd, buf_.data(), buf_.size(), 0);
    if (n == 0) {
      fail_conn(c, "unexpected EOF from the server ("
                     + std::to_string(c.next_send - c.next_recv)
                     + " messages in flight)");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
      fail_conn(c, std::string{"recv: "} + std::strerror(errno));
      return;
    }
    auto now = clock_type::now();
    const unsigned char* data = buf_.data();
    auto left = static_cast<size_t>(n);
    auto size = static_cast<size_t>(opts_.size);
    while (left > 0) {
      if (c.next_recv == c.next_send) {
        fail_conn(c, std::to_string(left)
                       + " bytes received beyond everything sent");
        return;
      }
      size_t take = std::min(left, size - c.recv_off);
      if (!verify(c, data, take))
        return;
      data += take;
      left -= take;
      c.recv_off += take;
      if (c.recv_off == size)
        complete(c, now);
    }
    flush(c);
  }

  bool verify(connection& c, const unsigned char* data, size_t len) {
    auto seed = message_seed(c.id, c.next_recv);
    unsigned char expected[4096];
    size_t done = 0;
    while (done < len) {
      size_t chunk = std::min(len - done, sizeof(expected));
      fill_pattern(seed, c.recv_off + done, chunk, expected);
      if (std::memcmp(expected, data + done, chunk) != 0) {
        size_t at = 0;
        while (expected[at] == data[done + at])
          ++at;
        char msg[256];
        std::snprintf(msg, sizeof(msg),
                      "wrong byte in message seq=%" PRIu64
                      " at offset %zu: expected 0x%02x, got 0x%02x",
                      c.next_recv, c.recv_off + done + at, expected[at],
                      data[done + at]);
        fail_conn(c, msg);
        return false;
      }
      done += chunk;
    }
    return true;
  }

  void complete(connection& c, time_point now) {
    auto slot = static_cast<size_t>(c.next_recv % c.sent_at.size());
    auto latency = now - c.sent_at[slot];
    ++c.next_recv;
    c.recv_off = 0;
    ++completed_;
    last_progress_ = now;
    if (now >= measure_start_ && now < measure_end_) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(latency);
      hist_.record(static_cast<uint64_t>(std::max<int64_t>(ns.count(), 0)));
    }
    if (issuing_ && now < measure_end_)
      enqueue(c, now);
  }

  void enqueue(connection& c, time_point now) {
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    }
    auto size = static_cast<size_t>(opts_.size);
    auto old = c.out.size();
    c.out.resize(old + size);
    fill_pattern(message_seed(c.id, c.next_send), 0, size, c.out.data() + old);
    c.sent_at[static_cast<size_t>(c.next_send % c.sent_at.size())] = now;
    ++c.next_send;
  }

  void flush(connection& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off,
                         c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_out(c, true);
        return;
      }
      fail_conn(c, std::string{"send: "} + std::strerror(errno));
      return;
    }
    c.out.clear();
    c.out_off = 0;
    set_out(c, false);
  }

  void set_out(connection& c, bool on) {
    if (c.want_out == on)
      return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u32 = c.id;
    if (epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
      fail_errno("epoll_ctl(MOD)");
      return;
    }
    c.want_out = on;
  }

  // --- teardown and report

  void close_all() {
    for (auto& c : conns_) {
      if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
      }
    }
  }

  int report() {
    if (!error_.empty())
      std::fprintf(stderr, "echo_load: error: %s\n", error_.c_str());
    uint64_t msgs = hist_.count();
    double rate = static_cast<double>(msgs) / opts_.duration_s;
    auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    std::printf("echo_load: connections=%ld size=%ld depth=%ld duration=%.1fs "
                "msgs=%" PRIu64 " msgs_per_s=%.0f p50_us=%.1f p90_us=%.1f "
                "p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f errors=%d\n",
                opts_.connections, opts_.size, opts_.depth, opts_.duration_s,
                msgs, rate, us(hist_.quantile(0.5)), us(hist_.quantile(0.9)),
                us(hist_.quantile(0.99)), us(hist_.quantile(0.999)),
                us(hist_.max()), hist_.mean() / 1000.0, error_.empty() ? 0 : 1);
    std::fflush(stdout);
    return error_.empty() ? exit_ok : exit_failed;
  }

  // --- helpers

  /// Records the first error (with errno's text); returns false.
  bool fail_errno(const char* what) {
    if (error_.empty())
      error_ = std::string{what} + ": " + std::strerror(errno);
    return false;
  }

  /// Records the first error, naming the connection; returns false.
  bool fail_conn(const connection& c, const std::string& what) {
    if (error_.empty())
      error_ = "connection " + std::to_string(c.id) + ": " + what;
    return false;
  }

  const options& opts_;
  int ep_ = -1;
  std::vector<connection> conns_;
  std::vector<unsigned char> buf_ = std::vector<unsigned char>(256 * 1024);
  histogram hist_;
  bool issuing_ = true;
  uint64_t completed_ = 0;
  time_point measure_start_;
  time_point measure_end_;
  time_point last_progress_;
  std::string error_;
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
