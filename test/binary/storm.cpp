// Stop storms: many cycles of start -> clients -> SIGTERM/SIGINT against the
// built binary on real loopback sockets, the stop landing at a different
// moment each cycle: right after the `listening on` line (before the first
// accept), in the middle of a storm of connects, with a request half sent or
// an echo stream under way, while a large response is being written to a
// client that does not read yet, and during the drain (a second signal, or a
// short drain timeout with a client that never reads).
//
// Every cycle must end with the expected exit code (0, or 3 when the stop had
// to be forced) within drain-timeout + 1 s of the first signal, never by a
// signal and never by the watchdog; a client whose complete request was sent
// before the stop must get its complete answer and a clean EOF; no client may
// see truncated or corrupted data followed by a clean EOF.
//
// The moments and the clients come from a seeded PRNG. The seed is printed;
// QUIESCE_STORM_SEED repeats a run, QUIESCE_STORM_CYCLES sets the number of
// cycles (default 40) and QUIESCE_STORM_FIRST the first cycle (to replay one
// failing cycle: the seed and the cycle index determine everything the test
// chooses). test/stress/stop_storm.sh runs hundreds of cycles.

#define CAF_SUITE binary.storm

#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <poll.h>
#include <random>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"
#include "support/strings.hpp"

namespace qt = quiesce::test;

using namespace std::chrono_literals;

namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

/// Any single wait of a client: far above what a cycle needs, so a hanging
/// server shows up as a missed exit deadline first.
constexpr milliseconds client_timeout{15'000};

/// How long a cycle waits for its clients to reach the moment of the stop.
constexpr milliseconds ready_timeout{20'000};

enum class moment {
  /// Right after the `listening on` line; clients connect meanwhile.
  before_accept,
  /// While a storm of clients connects and sends requests.
  mid_accept,
  /// HTTP: requests half sent; echo: streams under way.
  mid_request,
  /// Large responses (HTTP) or echoes being written to clients that do not
  /// read until the stop is under way.
  mid_write,
  /// A client that never reads keeps the drain going; a second signal
  /// forces the stop: exit 3.
  second_signal,
  /// A client that never reads and a short drain timeout: exit 3.
  drain_timeout,
};

constexpr moment all_moments[]
  = {moment::before_accept, moment::mid_accept,    moment::mid_request,
     moment::mid_write,     moment::second_signal, moment::drain_timeout};

const char* to_string(moment x) {
  switch (x) {
    case moment::before_accept:
      return "before-accept";
    case moment::mid_accept:
      return "mid-accept";
    case moment::mid_request:
      return "mid-request";
    case moment::mid_write:
      return "mid-write";
    case moment::second_signal:
      return "second-signal";
    case moment::drain_timeout:
      return "drain-timeout";
  }
  return "?";
}

uint64_t env_number(const char* name, uint64_t fallback) {
  auto* text = std::getenv(name);
  if (text == nullptr || *text == '\0')
    return fallback;
  return std::strtoull(text, nullptr, 10);
}

// -- HTTP requests ------------------------------------------------------------

std::string post_echo(std::string_view body) {
  return "POST /echo HTTP/1.1\r\nHost: quiesce\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + std::string{body};
}

// -- one cycle ----------------------------------------------------------------

/// What the server and the clients of one cycle share.
class cycle_state {
public:
  cycle_state(qt::process& server, bool http, bool forced)
      : server_(server), http_(http), forced_(forced) {
    // nop
  }

  qt::process& server() {
    return server_;
  }

  bool http() const {
    return http_;
  }

  /// Whether the stop may be forced (exit 3): resets are then allowed, and
  /// unfinished answers.
  bool forced() const {
    return forced_;
  }

  /// Set just before the first signal is sent: a client that sees it unset
  /// after its request went out sent the request before the stop.
  std::atomic<bool> stop_sent{false};

  void mark_ready() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      ++ready_;
    }
    cv_.notify_all();
  }

  bool wait_ready(size_t n) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, ready_timeout, [&] { return ready_ >= n; });
  }

  /// The server has exited (or was killed): clients holding their sockets
  /// open to keep the drain from finishing may let go.
  void mark_finished() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      finished_ = true;
    }
    cv_.notify_all();
  }

  void wait_finished() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_for(guard, 2 * client_timeout, [&] { return finished_; });
  }

  /// Waits until the server has logged the stop.
  bool wait_stop_logged() {
    return server_.wait_stderr("stop requested", 1, client_timeout);
  }

  /// Connects `who` to the server (`receive_buffer` as in
  /// `connect_loopback`). A failed connect is a problem, and `who` counts
  /// as ready (the cycle must not wait for it): no socket comes back.
  qt::unique_fd connect(const std::string& who, uint16_t port,
                        int receive_buffer = 0) {
    auto conn = qt::connect_loopback(port, receive_buffer);
    if (!conn.fd) {
      mark_ready();
      problem(who + ": connect failed: " + std::strerror(conn.error));
    }
    return std::move(conn.fd);
  }

  void problem(const std::string& what) {
    std::lock_guard<std::mutex> guard{mtx_};
    problems_.push_back(what);
  }

  std::vector<std::string> problems() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return problems_;
  }

  /// Checks what a client that sent one request (`expected`: the echo, or
  /// the HTTP response body) got. `before_stop`: the request was complete
  /// before the stop. `need_close`: the response must say
  /// `Connection: close` (it was made during the stop).
  void check_answer(const std::string& who, const std::string& expected,
                    const qt::read_result& got, bool before_stop,
                    bool need_close = false) {
    auto fail = [&](const std::string& what) {
      problem(who + " (request complete " + (before_stop ? "before" : "after")
              + " the stop): " + what + "; got "
              + std::to_string(got.bytes.size()) + " bytes, then "
              + got.ending());
    };
    if (got.status == qt::read_status::timeout) {
      fail("no EOF");
      return;
    }
    bool complete = false;
    if (http_) {
      auto parsed = qt::parse_response(got.bytes);
      if (parsed.status == qt::parse_status::complete) {
        auto& rsp = parsed.value;
        complete = true;
        if (rsp.status != 200)
          fail("status " + std::to_string(rsp.status));
        if (rsp.body != expected)
          fail("wrong body (first difference at byte "
               + std::to_string(qt::first_difference(rsp.body, expected))
               + ")");
        // The test sends one request per connection.
        auto extra = got.bytes.size() - parsed.size;
        if (extra != 0)
          fail(std::to_string(extra) + " bytes after the response");
        if (need_close && !qt::iequals(rsp.header("Connection"), "close"))
          fail("no `Connection: close` on a response made during the stop");
      }
    } else {
      if (got.bytes.size() > expected.size()
          || qt::first_difference(got.bytes, expected) != got.bytes.size())
        fail("echo is not a prefix of what was sent");
      complete = got.bytes == expected;
    }
    if (got.status == qt::read_status::eof && !got.bytes.empty() && !complete)
      fail("truncated answer followed by a clean EOF");
    if (forced_)
      return; // a forced stop may reset anyone
    if (before_stop && !(complete && got.status == qt::read_status::eof))
      fail("a request sent before the stop must be answered, then EOF");
    if (!before_stop && got.status == qt::read_status::error
        && !got.bytes.empty())
      fail("reset after part of the answer");
  }

private:
  qt::process& server_;
  bool http_;
  bool forced_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  size_t ready_ = 0;
  bool finished_ = false;
  std::vector<std::string> problems_;
};

using job = std::function<void(cycle_state&, uint16_t)>;

/// A request and what must come back for it.
struct exchange_spec {
  std::string request;
  std::string expected;
};

exchange_spec small_request(bool http, uint64_t id, size_t size) {
  auto body = qt::pattern(id * 4096, size);
  if (http)
    return {post_echo(body), body};
  return {body, body};
}

/// Sends one complete request and reads until the end of the stream.
/// Marks itself ready once the request is out when `ready_after_send`.
job request_client(uint64_t id, size_t size, bool ready_after_send) {
  return [=](cycle_state& cs, uint16_t port) {
    auto who = "client " + std::to_string(id);
    auto spec = small_request(cs.http(), id, size);
    auto conn = qt::connect_loopback(port);
    auto before_stop = !cs.stop_sent.load();
    if (!conn.fd) {
      if (before_stop)
        cs.problem(who + ": connect before the stop failed: "
                   + std::strerror(conn.error));
      if (ready_after_send)
        cs.mark_ready();
      return;
    }
    auto sent = qt::send_all(conn.fd.get(), spec.request, client_timeout);
    auto err = errno;
    before_stop = !cs.stop_sent.load();
    if (ready_after_send)
      cs.mark_ready();
    if (!sent) {
      if (before_stop || err == ETIMEDOUT)
        cs.problem(who + ": send failed: " + std::strerror(err));
      return;
    }
    auto got = qt::read_until_eof(conn.fd.get(), client_timeout);
    cs.check_answer(who, spec.expected, got, sent && before_stop);
  };
}

/// Connects `n` clients one after another, each sending a complete request
/// (reading comes after the storm); ready after `ready_at` of them (0: at
/// once). Connects after the stop may be refused.
job storm(uint64_t first_id, size_t n, size_t ready_at, size_t size) {
  return [=](cycle_state& cs, uint16_t port) {
    struct client {
      qt::unique_fd fd;
      exchange_spec spec;
      bool before_stop = false;
    };
    std::vector<client> clients;
    if (ready_at == 0)
      cs.mark_ready();
    for (size_t i = 0; i < n; ++i) {
      auto id = first_id + i;
      auto who = "storm client " + std::to_string(id);
      auto conn = qt::connect_loopback(port);
      if (!conn.fd) {
        if (!cs.stop_sent.load())
          cs.problem(who + ": connect before the stop failed: "
                     + std::strerror(conn.error));
      } else {
        client c{std::move(conn.fd), small_request(cs.http(), id, size), false};
        auto sent = qt::send_all(c.fd.get(), c.spec.request, client_timeout);
        auto err = errno;
        c.before_stop = !cs.stop_sent.load();
        if (sent)
          clients.push_back(std::move(c));
        else if (c.before_stop || err == ETIMEDOUT)
          cs.problem(who + ": send failed: " + std::strerror(err));
      }
      if (i + 1 == ready_at)
        cs.mark_ready();
    }
    if (ready_at > n)
      cs.mark_ready();
    for (auto& c : clients) {
      auto got = qt::read_until_eof(c.fd.get(), client_timeout);
      c.fd.reset();
      cs.check_answer("storm client", c.spec.expected, got, c.before_stop);
    }
  };
}

/// Connects and sends nothing: idle, it must get a clean EOF at the stop.
job idle_client() {
  return [](cycle_state& cs, uint16_t port) {
    auto conn = qt::connect_loopback(port);
    cs.mark_ready();
    if (!conn.fd) {
      cs.problem(std::string{"idle client: connect failed: "}
                 + std::strerror(conn.error));
      return;
    }
    auto got = qt::read_until_eof(conn.fd.get(), client_timeout);
    if (got.status == qt::read_status::timeout
        || (!cs.forced()
            && !(got.status == qt::read_status::eof && got.bytes.empty())))
      cs.problem("idle client: " + std::to_string(got.bytes.size())
                 + " bytes, then " + got.ending());
  };
}

/// HTTP: sends the first `split` bytes of a request, is ready, waits until
/// the server has logged the stop, sends the rest: the request must be
/// finished, then EOF.
job half_request(uint64_t id, size_t size, double split_at) {
  return [=](cycle_state& cs, uint16_t port) {
    auto who = "half-request client " + std::to_string(id);
    auto spec = small_request(true, id, size);
    auto split = std::clamp<size_t>(
      static_cast<size_t>(split_at * static_cast<double>(spec.request.size())),
      1, spec.request.size() - 1);
    auto conn = cs.connect(who, port);
    if (!conn)
      return;
    auto fd = conn.get();
    auto sent = qt::send_all(
      fd, std::string_view{spec.request}.substr(0, split), client_timeout);
    cs.mark_ready();
    if (!sent) {
      cs.problem(who + ": send failed: " + std::strerror(errno));
      return;
    }
    if (!cs.wait_stop_logged()) {
      cs.problem(who + ": the server never logged the stop");
      return;
    }
    if (!qt::send_all(fd, std::string_view{spec.request}.substr(split),
                      client_timeout)
        && !cs.forced()) {
      cs.problem(who + ": sending the rest after the stop failed: "
                 + std::strerror(errno) + " (split at byte "
                 + std::to_string(split) + ")");
      return;
    }
    auto got = qt::read_until_eof(fd, client_timeout);
    // The rest may reach the connection before its stop message does (the
    // log line comes from the supervisor): `Connection: close` is not
    // required.
    cs.check_answer(who + " split at byte " + std::to_string(split),
                    spec.expected, got, true);
  };
}

/// Echo: streams the pattern while reading its echo (at most `window` bytes
/// ahead); ready once `before_ready` bytes came back; goes on until EOF.
/// Must end in a clean EOF with a prefix of what it sent.
job echo_stream(uint64_t id, size_t before_ready) {
  return [=](cycle_state& cs, uint16_t port) {
    auto who = "echo stream " + std::to_string(id);
    constexpr size_t chunk = 1024;
    constexpr size_t window = size_t{32} * 1024;
    auto conn = cs.connect(who, port);
    if (!conn)
      return;
    if (!qt::set_nonblocking(conn.get())) {
      cs.mark_ready();
      cs.problem(
        who + ": cannot make the socket non-blocking: " + std::strerror(errno));
      return;
    }
    auto base = id * (size_t{1} << 32);
    bool ready = false;
    auto stream = qt::stream_echo(
      conn.get(), base, chunk, window,
      [&](const qt::stream_result& so_far) {
        if (!ready && so_far.echo.bytes.size() >= before_ready) {
          ready = true;
          cs.mark_ready();
        }
      },
      client_timeout);
    auto& received = stream.echo.bytes;
    auto& end = stream.echo;
    auto sent = stream.sent;
    auto send_error = stream.send_error;
    if (!ready)
      cs.mark_ready();
    auto fail = [&](const std::string& what) {
      cs.problem(who + ": " + what + "; sent " + std::to_string(sent)
                 + ", received " + std::to_string(received.size()) + ", then "
                 + end.ending());
    };
    if (end.status == qt::read_status::timeout)
      fail("no EOF");
    if (qt::first_difference(received, qt::pattern(base, received.size()))
        != received.size())
      fail("the echo is not a prefix of the stream");
    if (cs.forced())
      return;
    if (end.status != qt::read_status::eof)
      fail("no clean EOF");
    if (send_error != 0)
      fail(std::string{"send failed: "} + std::strerror(send_error));
  };
}

/// Sends a request with a large answer (HTTP: POST /echo of `size` bytes;
/// echo: `size` bytes) with a small receive buffer and without reading; once
/// the first byte of the answer is in, it is ready; it reads only after the
/// server has logged the stop: the stop lands while the answer is being
/// written. The whole answer must arrive, then EOF.
job slow_reader(uint64_t id, size_t size) {
  return [=](cycle_state& cs, uint16_t port) {
    auto who = "slow reader " + std::to_string(id) + " (" + std::to_string(size)
               + " bytes)";
    auto spec = small_request(cs.http(), id, size);
    auto conn = cs.connect(who, port, 4096);
    if (!conn)
      return;
    auto fd = conn.get();
    if (!qt::send_all(fd, spec.request, client_timeout)) {
      cs.mark_ready();
      cs.problem(who + ": send failed: " + std::strerror(errno));
      return;
    }
    auto answering = qt::wait_readable(fd, client_timeout);
    cs.mark_ready();
    if (!answering) {
      cs.problem(who + ": no answer began");
      return;
    }
    if (!cs.wait_stop_logged()) {
      cs.problem(who + ": the server never logged the stop");
      return;
    }
    auto got = qt::read_until_eof(fd, client_timeout);
    cs.check_answer(who, spec.expected, got, true);
  };
}

/// Sends pipelined `POST /echo` requests of 1 MiB each without reading
/// until the server stops reading, and at least 6 MiB have gone out: more
/// answer than the kernel's buffers on both sides take (the send buffer
/// grows to 4 MiB at most, tcp_wmem), so the server holds the rest.
bool flood_requests(int fd) {
  constexpr size_t requests = 16;
  constexpr size_t enough = size_t{6} << 20;
  auto one = post_echo(qt::pattern(0, size_t{1} << 20));
  std::string all;
  for (size_t i = 0; i < requests; ++i)
    all += one;
  if (!qt::set_nonblocking(fd))
    return false;
  size_t sent = 0;
  auto deadline = steady::now() + client_timeout;
  while (sent < all.size()) {
    auto left
      = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    auto pos = sent;
    auto next = [&] {
      auto piece = all.substr(pos, size_t{64} * 1024);
      pos += piece.size();
      return piece;
    };
    auto more = qt::send_until_stuck(fd, next, 300ms, left);
    if (!more)
      return false; // an error, or the deadline
    sent += *more;
    if (sent >= enough)
      return true; // the server has stopped reading (or took it all)
  }
  return true;
}

/// A client whose work cannot finish: HTTP `GET /delay` of ten minutes, or
/// pipelined large answers it never reads; echo: a flood it never reads.
/// Holds its socket until the server has exited. Ready once it is stuck.
job stuck_client(uint64_t id, bool delay) {
  return [=](cycle_state& cs, uint16_t port) {
    auto who = "stuck client " + std::to_string(id);
    auto conn = cs.connect(who, port, 4096);
    if (!conn)
      return;
    auto fd = conn.get();
    bool ok = true;
    if (cs.http() && delay) {
      ok = qt::send_all(fd, "GET /delay/600000 HTTP/1.1\r\nHost: q\r\n\r\n",
                        client_timeout);
    } else if (cs.http()) {
      ok = flood_requests(fd);
    } else {
      ok = qt::set_nonblocking(fd) && qt::flood(fd, 500ms).has_value();
    }
    cs.mark_ready();
    if (!ok) {
      cs.problem(who + ": could not get stuck: " + std::strerror(errno));
      return;
    }
    cs.wait_finished();
  };
}

struct cycle_result {
  moment when = moment::before_accept;
  bool http = false;
  int exit_code = qt::exit_timeout;
  /// From the first signal to the observed exit.
  milliseconds exit_time{0};
  std::string description;
  std::vector<std::string> problems;
  std::string server_output;
};

/// Runs cycle `index` of the storm with `seed`: everything it does follows
/// from these two numbers.
cycle_result run_cycle(uint64_t seed, uint64_t index) {
  std::seed_seq seq{static_cast<uint32_t>(seed),
                    static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(index)};
  std::mt19937_64 rng{seq};
  auto uniform = [&](size_t lo, size_t hi) { // [lo, hi]
    return std::uniform_int_distribution<size_t>{lo, hi}(rng);
  };
  auto chance = [&](double p) { return std::bernoulli_distribution{p}(rng); };
  cycle_result res;
  res.when = all_moments[uniform(0, std::size(all_moments) - 1)];
  // Every other cycle a master over two workers (outside the random draws,
  // so that a seed's other choices stay as they were).
  auto workers = index % 2 == 0 ? 1 : 2;
  res.http = chance(0.5);
  auto forced
    = res.when == moment::second_signal || res.when == moment::drain_timeout;
  auto drain = res.when == moment::drain_timeout
                 ? milliseconds{uniform(100, 500)}
                 : milliseconds{uniform(2, 3) * 1000};
  auto first_signal = chance(0.8) ? SIGTERM : SIGINT;
  auto second_signal = chance(0.5) ? SIGTERM : SIGINT;
  std::vector<job> jobs;
  size_t ready_needed = 0;
  uint64_t id = 1;
  auto add = [&](job j, bool counts) {
    jobs.push_back(std::move(j));
    if (counts)
      ++ready_needed;
  };
  auto request_size = [&] { return uniform(1, 4000); };
  switch (res.when) {
    case moment::before_accept: {
      // Signal right after the line; a few requests may already be out.
      auto early = uniform(0, 2);
      for (size_t i = 0; i < early; ++i)
        add(request_client(id++, request_size(), true), true);
      auto n = uniform(0, 20);
      add(storm(id, n, 0, request_size()), true);
      id += n;
      break;
    }
    case moment::mid_accept: {
      auto idle = uniform(0, 2);
      for (size_t i = 0; i < idle; ++i)
        add(idle_client(), true);
      auto n = uniform(10, 60);
      add(storm(id, n, uniform(1, n - 1), request_size()), true);
      id += n;
      break;
    }
    case moment::mid_request: {
      auto k = uniform(1, 3);
      for (size_t i = 0; i < k; ++i) {
        if (res.http)
          add(half_request(id++, uniform(0, 6000),
                           std::uniform_real_distribution<double>{0, 1}(rng)),
              true);
        else
          add(echo_stream(id++, uniform(1, 256) * 1024), true);
      }
      auto r = uniform(0, 10);
      for (size_t i = 0; i < r; ++i)
        add(request_client(id++, request_size(), true), true);
      if (chance(0.5))
        add(idle_client(), true);
      break;
    }
    case moment::mid_write: {
      auto k = uniform(1, 3);
      for (size_t i = 0; i < k; ++i)
        add(slow_reader(id++, res.http ? uniform(64, 1024) * 1024
                                       : uniform(8, 48) * 1024),
            true);
      auto r = uniform(0, 5);
      for (size_t i = 0; i < r; ++i)
        add(request_client(id++, request_size(), true), true);
      break;
    }
    case moment::second_signal:
    case moment::drain_timeout: {
      add(stuck_client(id++, chance(0.5)), true);
      auto r = uniform(0, 5);
      for (size_t i = 0; i < r; ++i)
        add(request_client(id++, request_size(), true), true);
      if (chance(0.5))
        add(idle_client(), true);
      if (!res.http && chance(0.3))
        add(echo_stream(id++, uniform(1, 64) * 1024), true);
      break;
    }
  }
  std::ostringstream desc;
  desc << "cycle " << index << ": " << to_string(res.when) << ", "
       << (res.http ? "http" : "echo") << ", " << jobs.size()
       << " client jobs, drain-timeout " << drain.count() << "ms, "
       << (first_signal == SIGTERM ? "SIGTERM" : "SIGINT") << ", " << workers
       << (workers == 1 ? " process" : " workers");
  if (res.when == moment::second_signal)
    desc << " then " << (second_signal == SIGTERM ? "SIGTERM" : "SIGINT");
  res.description = desc.str();
  qt::process server{qt::server_binary(),
                     {std::string{"--protocol="} + (res.http ? "http" : "echo"),
                      "--host=127.0.0.1", "--port=0",
                      "--drain-timeout=" + std::to_string(drain.count()) + "ms",
                      "--workers=" + std::to_string(workers)}};
  cycle_state cs{server, res.http, forced};
  auto port = server.wait_listening();
  if (!port) {
    res.problems.push_back("no `listening on` line");
    res.server_output = server.stderr_text();
    return res;
  }
  std::vector<std::thread> threads;
  for (auto& j : jobs)
    threads.emplace_back([&cs, &j, p = *port] { j(cs, p); });
  if (!cs.wait_ready(ready_needed))
    cs.problem("the clients did not reach the moment of the stop");
  cs.stop_sent = true;
  auto t0 = steady::now();
  if (!server.signal(first_signal))
    cs.problem("the server had exited before the stop");
  if (res.when == moment::second_signal) {
    if (!cs.wait_stop_logged())
      cs.problem("the server never logged the stop");
    server.signal(second_signal);
  }
  auto deadline = t0 + drain + 1s;
  auto left
    = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
  res.exit_code = server.wait_exit(std::max(left, milliseconds{0}));
  res.exit_time = std::chrono::duration_cast<milliseconds>(steady::now() - t0);
  if (res.exit_code == qt::exit_timeout) {
    cs.problem("no exit within drain-timeout + 1 s ("
               + std::to_string((drain + 1s).count()) + " ms)");
    server.signal(SIGKILL);
    server.wait_exit();
  } else {
    auto expected = forced ? 3 : 0;
    if (res.exit_code != expected)
      cs.problem(qt::describe_exit(res.exit_code) + ", expected "
                 + std::to_string(expected));
  }
  cs.mark_finished();
  for (auto& t : threads)
    t.join();
  res.problems = cs.problems();
  res.server_output = server.stderr_text();
  return res;
}

struct storm_stats {
  size_t cycles = 0;
  size_t failed = 0;
  std::map<std::string, size_t> exits;
  std::map<std::string, size_t> moments;
  milliseconds worst{0};
  std::string worst_cycle;
  milliseconds total{0};

  void add(const cycle_result& res) {
    ++cycles;
    if (!res.problems.empty())
      ++failed;
    ++exits[qt::describe_exit(res.exit_code)];
    ++moments[std::string{to_string(res.when)} + "/"
              + (res.http ? "http" : "echo")];
    total += res.exit_time;
    if (res.exit_time >= worst) {
      worst = res.exit_time;
      worst_cycle = res.description;
    }
  }

  std::string summary() const {
    std::ostringstream out;
    out << "stop storm: " << cycles << " cycles, " << failed
        << " failed; exits:";
    for (auto& [what, n] : exits)
      out << " [" << what << "] x" << n;
    out << "; worst exit " << worst.count() << " ms after the first signal ("
        << worst_cycle << "); mean "
        << (cycles > 0 ? total.count() / static_cast<long>(cycles) : 0)
        << " ms; moments:";
    for (auto& [what, n] : moments)
      out << " " << what << "=" << n;
    return out.str();
  }
};

} // namespace

CAF_TEST(stop storm) {
  auto seed = env_number("QUIESCE_STORM_SEED", std::random_device{}());
  auto cycles = env_number("QUIESCE_STORM_CYCLES", 40);
  auto first = env_number("QUIESCE_STORM_FIRST", 0);
  auto header = "stop storm: seed " + std::to_string(seed) + ", cycles "
                + std::to_string(first) + ".."
                + std::to_string(first + cycles - 1)
                + " (repeat with QUIESCE_STORM_SEED=" + std::to_string(seed)
                + " QUIESCE_STORM_FIRST=<cycle> QUIESCE_STORM_CYCLES=<n>)";
  CAF_MESSAGE(header);
  std::cout << header << std::endl;
  storm_stats stats;
  for (auto i = first; i < first + cycles; ++i) {
    auto res = run_cycle(seed, i);
    stats.add(res);
    if (res.problems.empty())
      continue;
    std::string text;
    for (auto& p : res.problems)
      text += "\n  - " + p;
    CAF_ERROR("seed " << seed << ", " << res.description << " failed ("
                      << qt::describe_exit(res.exit_code) << " after "
                      << res.exit_time.count() << " ms):" << text
                      << "\n--- server stderr ---\n"
                      << res.server_output << "--- end ---");
    if (stats.failed >= 5) {
      CAF_ERROR("giving up after 5 failed cycles");
      break;
    }
  }
  CAF_MESSAGE(stats.summary());
  std::cout << stats.summary() << std::endl;
  CAF_CHECK_EQUAL(stats.failed, 0u);
}
