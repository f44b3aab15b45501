// Data integrity under a stop: SIGTERM lands in the middle of sustained echo
// and HTTP load on real loopback sockets. Every client must end with correct
// data followed by a clean EOF: never a corrupted or truncated byte stream,
// never a reset, and nothing the server owed missing.
//
// What the server owes at the stop: the bytes (echo) or the complete
// requests (HTTP) it had received by then; it reads what waited in its
// socket at the stop before it acts on the stop. A client cannot see that
// moment, but it can bound it from below: the bytes its TCP stack has
// transmitted (sent minus SIOCOUTQNSD, which leaves out bytes held back by
// Nagle or flow control) before the test sends SIGTERM. On loopback a
// transmitted segment is in the receiving socket when the sending call
// returns, so those bytes were in the server's socket before the signal and
// are owed. (Acknowledged bytes would be a weaker bound: loopback ACKs ride
// on the echo, so they come back with it.) Bytes sent later may or may not
// be served; whatever comes back must still be exact.
//
// Each test starts a fresh server per round, and the rounds stop it at
// different moments: after a count of echoed bytes or answered requests,
// never after a timer. One thread drives every client with poll(): each
// wait ends at an event or fails after the watchdog.

#define CAF_SUITE binary.integrity

#include "caf/test/unit_test.hpp"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"

namespace qt = quiesce::test;

namespace {

/// What `sent` (bytes handed to send() on `fd`) minus those still waiting in
/// the local send queue untransmitted leaves: the bytes on their way to, or
/// in, the server's socket. Loopback delivers within the send call.
size_t transmitted(int fd, size_t sent) {
  int unsent = 0;
  if (::ioctl(fd, SIOCOUTQNSD, &unsent) != 0 || unsent < 0) {
    CAF_ERROR("ioctl(SIOCOUTQNSD) failed: " << std::strerror(errno));
    return 0;
  }
  return static_cast<size_t>(unsent) > sent
           ? 0
           : sent - static_cast<size_t>(unsent);
}

/// How a client's stream ended, for messages.
std::string describe_end(qt::read_status status, int error) {
  qt::read_result r;
  r.status = status;
  r.error = error;
  return r.ending();
}

/// Polls `fds` once; fails the test when the watchdog passes with no event.
bool poll_clients(std::vector<pollfd>& fds) {
  for (;;) {
    auto rc = ::poll(fds.data(), fds.size(),
                     static_cast<int>(qt::default_timeout.count()));
    if (rc > 0)
      return true;
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc == 0)
      CAF_ERROR("no client made progress for " << qt::default_timeout.count()
                                               << " ms");
    else
      CAF_ERROR("poll failed: " << std::strerror(errno));
    return false;
  }
}

// -- echo ---------------------------------------------------------------------

/// A client that streams `pattern` bytes and checks every echoed byte.
struct echo_client {
  qt::unique_fd fd;
  /// Where this client's bytes start in `pattern`: distinct per client, so
  /// bytes from another connection would not match.
  size_t base = 0;
  /// Bytes per send.
  size_t chunk = 0;
  /// Pushes back: reads nothing before the stop and sends until its socket
  /// takes no more. The server's output to it then waits, the server pauses
  /// reading it, and its bytes wait unread in the server's socket at the
  /// stop. Those are owed too: the server must read them before it acts on
  /// the stop.
  bool pushes_back = false;
  /// The last send found the socket full (it took a part or nothing).
  bool blocked = false;
  size_t sent = 0;
  /// Bytes echoed so far, all checked.
  size_t received = 0;
  /// Bytes owed at the stop (transmitted before SIGTERM).
  size_t owed = 0;
  size_t received_at_stop = 0;
  int send_error = 0;
  bool ended = false;
  qt::read_status end = qt::read_status::timeout;
  int end_error = 0;
  /// The first wrong byte's position in the stream, if any.
  size_t corrupt_at = std::string::npos;
};

/// The window of most echo clients: small enough that the server never
/// has to pause reading them.
constexpr size_t echo_window = size_t{32} * 1024;

struct echo_round_result {
  size_t clients_mid_stream = 0; // echo still under way at the stop
};

// -- http ---------------------------------------------------------------------

constexpr std::string_view hello = "quiesce: hello\n";

/// A request sent and the response it must get.
struct http_expect {
  /// Offsets in the client's byte stream of the request's first byte and
  /// just after its last.
  size_t begin = 0;
  size_t end = 0;
  bool head = false;
  std::string body;
};

/// A client that sends a deterministic sequence of requests, up to `depth`
/// at a time (1: plain keep-alive, more: pipelining), and checks every
/// response: status, length, body, order, `Connection`.
struct http_client {
  qt::unique_fd fd;
  size_t id = 0;
  size_t depth = 1;
  /// Requests generated so far.
  size_t generated = 0;
  /// Bytes not sent yet, and bytes sent in all.
  std::string out;
  size_t queued = 0;
  size_t sent = 0;
  std::deque<http_expect> pending;
  std::string in;
  size_t answered = 0;
  /// Requests owed at the stop: the ones the server had whole, and one it
  /// had only a part of (`partial_at_stop`): the README promises to finish
  /// that one if the rest arrives in time, and the client sends the rest.
  size_t owed = 0;
  bool partial_at_stop = false;
  size_t answered_at_stop = 0;
  /// Whether the last response said `Connection: close`.
  bool closed_by_response = false;
  int send_error = 0;
  bool ended = false;
  qt::read_status end = qt::read_status::timeout;
  int end_error = 0;
  /// The first thing wrong, if any.
  std::string problem;

  /// Queues requests until `depth` are outstanding.
  void generate() {
    while (pending.size() < depth) {
      auto k = generated++;
      http_expect ex;
      std::string req;
      switch ((id * 7 + k) % 5) {
        case 0:
          req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
          ex.body = std::string{hello};
          break;
        case 1:
        case 4: {
          // Bodies from empty to 60 KB: some are still arriving at the stop.
          auto size = (k * 7919 + id * 104729) % ((k % 5 == 4) ? 60000 : 3000);
          ex.body = qt::pattern(id * 1'000'000'007 + k * 65'537, size);
          req = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                + std::to_string(size) + "\r\n\r\n" + ex.body;
          break;
        }
        case 2:
          req = "HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
          ex.head = true;
          ex.body = std::string{hello}; // its length is the Content-Length
          break;
        default: {
          // A timer: the answer is not ready at once.
          auto ms = k % 3;
          req = "GET /delay/" + std::to_string(ms)
                + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
          ex.body = "delayed " + std::to_string(ms) + " ms\n";
          break;
        }
      }
      out += req;
      ex.begin = queued;
      queued += req.size();
      ex.end = queued;
      pending.push_back(std::move(ex));
    }
  }

  /// Records the first problem only: later ones follow from it.
  void flag(std::string what) {
    if (problem.empty())
      problem = "request " + std::to_string(answered) + ": " + std::move(what);
  }

  /// Takes every complete response out of `in` and checks it.
  void parse() {
    while (problem.empty()) {
      if (in.find("\r\n\r\n") == std::string::npos)
        return;
      if (pending.empty()) {
        flag("a response to no request");
        return;
      }
      auto& ex = pending.front();
      auto parsed = qt::parse_response(in, ex.head);
      if (parsed.status == qt::parse_status::malformed) {
        flag(parsed.error);
        return;
      }
      if (parsed.status == qt::parse_status::incomplete)
        return; // the rest is still on its way
      auto& r = parsed.value;
      auto length = r.content_length().value_or(0);
      auto connection = r.header("Connection");
      if (closed_by_response)
        flag("a response after `Connection: close`");
      else if (r.status_line != "HTTP/1.1 200 OK")
        flag("status line `" + r.status_line + "`");
      else if (length != ex.body.size())
        flag("Content-Length " + std::to_string(length) + ", expected "
             + std::to_string(ex.body.size()));
      else if (!ex.head && r.body != ex.body)
        flag("body differs at byte "
             + std::to_string(qt::first_difference(r.body, ex.body)));
      else if (connection != "keep-alive" && connection != "close")
        flag("Connection: " + connection);
      if (!problem.empty())
        return;
      closed_by_response = connection == "close";
      in.erase(0, parsed.size);
      pending.pop_front();
      ++answered;
    }
  }
};

struct fixture : qt::binary_fixture {
  /// `--workers` of the rounds: each test runs its rounds in one process,
  /// then over a master and two workers.
  std::string workers = "--workers=1";

  /// The end of every round: the server exits 0 with nothing forced.
  void expect_clean_exit() {
    expect_exit(0);
    if (server().stderr_count(" forced=0 ") != 1)
      CAF_ERROR("no `forced=0` summary line");
  }

  /// One echo round: `clients` clients stream until `stop_after` bytes have
  /// come back in all, then SIGTERM; every client reads to its EOF.
  echo_round_result echo_round(size_t clients, size_t stop_after) {
    echo_round_result result;
    auto port
      = start_echo({"--log-level=debug", "--drain-timeout=30s", workers});
    if (port == 0)
      return result;
    std::vector<echo_client> cs(clients);
    for (size_t i = 0; i < clients; ++i) {
      // The last two push back, with a small receive buffer that fills soon.
      cs[i].pushes_back = i + 2 >= clients;
      cs[i].fd = connect_client(port, cs[i].pushes_back ? 4096 : 0);
      if (!cs[i].fd || !qt::set_nonblocking(cs[i].fd.get()))
        return result;
      // Every chunk leaves at once (no Nagle delay): the chunk sent just
      // before the stop is owed.
      int one = 1;
      CAF_CHECK_EQUAL(::setsockopt(cs[i].fd.get(), IPPROTO_TCP, TCP_NODELAY,
                                   &one, sizeof(one)),
                      0);
      cs[i].base = i * 1'000'000'007;
      // Sizes that cut the stream at different places.
      const size_t chunks[] = {1000, 4096, 16384, 777, 9000};
      cs[i].chunk = chunks[i % 5];
    }
    if (!await_opened(clients))
      return result;
    bool stopped = false;
    size_t total = 0;
    size_t open = clients;
    std::vector<char> buf(64 * 1024);
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    auto stop = [&] {
      // The owed bytes: transmitted before the signal.
      for (auto& c : cs) {
        c.owed = transmitted(c.fd.get(), c.sent);
        c.received_at_stop = c.received;
      }
      stopped = true;
      CAF_REQUIRE(server().signal(SIGTERM));
    };
    while (open > 0) {
      fds.clear();
      index.clear();
      for (size_t i = 0; i < clients; ++i) {
        auto& c = cs[i];
        if (c.ended)
          continue;
        short events = 0;
        if (!c.pushes_back || stopped)
          events |= POLLIN;
        if (c.send_error == 0
            && (c.pushes_back || c.sent - c.received < echo_window))
          events |= POLLOUT;
        fds.push_back({c.fd.get(), events, 0});
        index.push_back(i);
      }
      if (!poll_clients(fds))
        return result;
      for (size_t j = 0; j < fds.size(); ++j) {
        auto& c = cs[index[j]];
        auto revents = fds[j].revents;
        if ((revents & POLLOUT) != 0) {
          // The pattern is a function of the position: a short send just
          // continues where it ended. A client that pushes back before the
          // stop sends until its socket is full.
          ssize_t n = 0;
          do {
            auto bytes = qt::pattern(c.base + c.sent, c.chunk);
            n = ::send(c.fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n > 0)
              c.sent += static_cast<size_t>(n);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
              c.send_error = errno; // reading on tells how the stream ended
            c.blocked = n < static_cast<ssize_t>(bytes.size());
          } while (c.pushes_back && !stopped && !c.blocked);
          // Right after a send: this client has echo owed that it has not
          // read yet, so the stop lands in the middle of a stream; the
          // clients that push back have filled their sockets.
          if (n > 0 && !stopped && total >= stop_after
              && std::all_of(cs.begin(), cs.end(), [](const echo_client& x) {
                   return !x.pushes_back || x.blocked;
                 }))
            stop();
        }
        if ((revents & (POLLIN | POLLHUP | POLLERR)) == 0)
          continue;
        auto n = ::recv(c.fd.get(), buf.data(), buf.size(), 0);
        if (n > 0) {
          std::string_view got{buf.data(), static_cast<size_t>(n)};
          auto expected = qt::pattern(c.base + c.received, got.size());
          auto diff = qt::first_difference(got, expected);
          if (diff != got.size() && c.corrupt_at == std::string::npos)
            c.corrupt_at = c.received + diff;
          c.received += got.size();
          total += got.size();
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
          continue;
        c.ended = true;
        c.end = n == 0 ? qt::read_status::eof : qt::read_status::error;
        c.end_error = n == 0 ? 0 : errno;
        c.fd.reset(); // read to the end: the close sends FIN, no reset
        --open;
      }
    }
    for (size_t i = 0; i < clients; ++i) {
      auto& c = cs[i];
      CAF_MESSAGE("echo client " << i << ": sent " << c.sent << ", owed "
                                 << c.owed << ", echoed " << c.received << " ("
                                 << c.received_at_stop
                                 << " before the stop), then "
                                 << describe_end(c.end, c.end_error));
      if (c.end != qt::read_status::eof)
        CAF_ERROR("echo client " << i << ": the stream ended with "
                                 << describe_end(c.end, c.end_error)
                                 << ", not a clean EOF");
      if (c.corrupt_at != std::string::npos)
        CAF_ERROR("echo client " << i << ": wrong byte at offset "
                                 << c.corrupt_at);
      if (c.received < c.owed)
        CAF_ERROR("echo client " << i << ": EOF after " << c.received
                                 << " bytes, but " << c.owed
                                 << " were owed at the stop");
      if (c.received > c.sent)
        CAF_ERROR("echo client " << i << ": more echo than sent");
      if (c.send_error != 0)
        CAF_ERROR("echo client "
                  << i << ": send failed: " << std::strerror(c.send_error));
      if (c.owed > c.received_at_stop)
        ++result.clients_mid_stream;
    }
    CAF_CHECK(stopped);
    expect_clean_exit();
    return result;
  }

  /// One HTTP round: clients with the given pipelining depths send requests
  /// until `stop_after` responses have come in all, then SIGTERM; every
  /// client reads to its EOF. Returns how many clients had their last
  /// response carry `Connection: close` (a request in flight at the stop).
  size_t http_round(const std::vector<size_t>& depths, size_t stop_after) {
    size_t closed_by_response = 0;
    auto port
      = start_http({"--log-level=debug", "--drain-timeout=30s", workers});
    if (port == 0)
      return 0;
    auto clients = depths.size();
    std::vector<http_client> cs(clients);
    for (size_t i = 0; i < clients; ++i) {
      cs[i].fd = connect_client(port);
      if (!cs[i].fd || !qt::set_nonblocking(cs[i].fd.get()))
        return 0;
      cs[i].id = i;
      cs[i].depth = depths[i];
      cs[i].generate();
    }
    if (!await_opened(clients))
      return 0;
    bool stopped = false;
    size_t total = 0;
    size_t open = clients;
    std::vector<char> buf(64 * 1024);
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    while (open > 0) {
      if (!stopped && total >= stop_after) {
        for (auto& c : cs) {
          // Answered ones, plus pending ones the server has whole.
          auto in_server = transmitted(c.fd.get(), c.sent);
          c.owed = c.answered;
          for (auto& ex : c.pending) {
            if (ex.end <= in_server) {
              ++c.owed;
            } else {
              c.partial_at_stop = in_server > ex.begin;
              break;
            }
          }
          c.owed += c.partial_at_stop ? 1 : 0;
          c.answered_at_stop = c.answered;
        }
        stopped = true;
        CAF_REQUIRE(server().signal(SIGTERM));
      }
      fds.clear();
      index.clear();
      for (size_t i = 0; i < clients; ++i) {
        auto& c = cs[i];
        if (c.ended)
          continue;
        short events = POLLIN;
        if (c.send_error == 0 && !c.out.empty())
          events |= POLLOUT;
        fds.push_back({c.fd.get(), events, 0});
        index.push_back(i);
      }
      if (!poll_clients(fds))
        return 0;
      for (size_t j = 0; j < fds.size(); ++j) {
        auto& c = cs[index[j]];
        auto revents = fds[j].revents;
        if ((revents & POLLOUT) != 0 && !c.out.empty()) {
          auto n
            = ::send(c.fd.get(), c.out.data(),
                     std::min(c.out.size(), size_t{64} * 1024), MSG_NOSIGNAL);
          if (n > 0) {
            c.out.erase(0, static_cast<size_t>(n));
            c.sent += static_cast<size_t>(n);
          } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            c.send_error = errno;
          }
        }
        if ((revents & (POLLIN | POLLHUP | POLLERR)) == 0)
          continue;
        auto n = ::recv(c.fd.get(), buf.data(), buf.size(), 0);
        if (n > 0) {
          c.in.append(buf.data(), static_cast<size_t>(n));
          auto before = c.answered;
          c.parse();
          total += c.answered - before;
          // A client goes on like a real one until the server closes: a
          // new request for each answer.
          if (c.problem.empty() && !c.closed_by_response)
            c.generate();
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
          continue;
        c.ended = true;
        c.end = n == 0 ? qt::read_status::eof : qt::read_status::error;
        c.end_error = n == 0 ? 0 : errno;
        c.fd.reset();
        --open;
      }
    }
    for (size_t i = 0; i < clients; ++i) {
      auto& c = cs[i];
      CAF_MESSAGE("http client "
                  << i << " (depth " << c.depth << "): " << c.generated
                  << " requests, " << c.owed << " owed at the stop"
                  << (c.partial_at_stop ? " (one in part)" : "") << ", "
                  << c.answered << " answered (" << c.answered_at_stop
                  << " before the stop), last response "
                  << (c.closed_by_response ? "close" : "keep-alive")
                  << ", then " << describe_end(c.end, c.end_error));
      if (!c.problem.empty())
        CAF_ERROR("http client " << i << ": " << c.problem);
      if (c.end != qt::read_status::eof)
        CAF_ERROR("http client " << i << ": the stream ended with "
                                 << describe_end(c.end, c.end_error)
                                 << ", not a clean EOF");
      if (c.problem.empty() && !c.in.empty())
        CAF_ERROR("http client " << i << ": EOF inside a response after "
                                 << c.in.size() << " bytes of it");
      if (c.answered < c.owed)
        CAF_ERROR("http client " << i << ": " << c.answered << " answered, but "
                                 << c.owed
                                 << " requests were owed at the stop");
      if (c.send_error != 0)
        CAF_ERROR("http client "
                  << i << ": send failed: " << std::strerror(c.send_error));
      if (c.closed_by_response)
        ++closed_by_response;
    }
    CAF_CHECK(stopped);
    expect_clean_exit();
    return closed_by_response;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(integrity_tests, fixture)

CAF_TEST(echo streams stopped mid flow get every owed byte then eof) {
  // Stops after the first echoed bytes, in the middle, and late.
  // The clients that push back must have filled their sockets too; by the
  // last stop the server has long paused reading them.
  const size_t stops[] = {1, size_t{1024} * 1024, size_t{64} * 1024 * 1024};
  size_t mid_stream = 0;
  for (auto w : {"--workers=1", "--workers=2"}) {
    workers = w;
    for (auto stop_after : stops) {
      CAF_MESSAGE("round: " << w << ", SIGTERM after " << stop_after
                            << " echoed bytes");
      mid_stream += echo_round(5, stop_after).clients_mid_stream;
      if (caf::test::engine::current_test()->bad() > 0)
        return;
    }
  }
  // The stop landed mid-stream: echo was owed at the stop (at least to the
  // client that had just sent) and came after it.
  CAF_CHECK_GREATER(mid_stream, 0u);
}

CAF_TEST(http clients stopped mid flow get every owed response then eof) {
  // Two keep-alive clients (one request at a time) and three pipelining
  // ones; stops after the first answer, in the middle, and late.
  const std::vector<size_t> depths{1, 1, 4, 8, 16};
  const size_t stops[] = {1, 150, 1500};
  size_t closed = 0;
  for (auto w : {"--workers=1", "--workers=2"}) {
    workers = w;
    for (auto stop_after : stops) {
      CAF_MESSAGE("round: " << w << ", SIGTERM after " << stop_after
                            << " responses");
      closed += http_round(depths, stop_after);
      if (caf::test::engine::current_test()->bad() > 0)
        return;
    }
  }
  // Some connection had a request in flight at the stop: answered with
  // `Connection: close`, not just closed idle.
  CAF_CHECK_GREATER(closed, 0u);
}

CAF_TEST_FIXTURE_SCOPE_END()
