#define CAF_SUITE binary.limits

#include <chrono>
#include <csignal>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "caf/test/unit_test.hpp"

#include "support/binary_fixture.hpp"

using namespace quiesce::test;

namespace {

struct fixture : binary_fixture {};

/// A round trip proves the server has accepted the connection.
void round_trip(int fd, const std::string& text) {
  CAF_REQUIRE(send_all(fd, text));
  CAF_REQUIRE_EQUAL(read_exactly(fd, text.size()).bytes, text);
}

/// CPU time (user + system) that process `pid` has used so far, from
/// /proc/<pid>/stat; nothing if it cannot be read.
std::optional<std::chrono::milliseconds> cpu_time(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text{std::istreambuf_iterator<char>{in},
                   std::istreambuf_iterator<char>{}};
  // The command name may hold spaces: fields are counted after its ')'.
  auto paren = text.rfind(')');
  if (paren == std::string::npos)
    return std::nullopt;
  std::istringstream fields{text.substr(paren + 1)};
  std::string field;
  long long utime = -1;
  long long stime = -1;
  // Fields 3 (state) onwards; utime is field 14, stime field 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14)
      utime = std::stoll(field);
    else if (i == 15)
      stime = std::stoll(field);
  }
  if (utime < 0 || stime < 0)
    return std::nullopt;
  auto ticks = ::sysconf(_SC_CLK_TCK);
  return std::chrono::milliseconds{(utime + stime) * 1000 / ticks};
}

/// The share of one core that process `pid` used over `window`: a
/// measurement over a fixed window, not a wait for an event. Negative if
/// /proc could not be read.
double cpu_share(pid_t pid, std::chrono::milliseconds window) {
  auto before = cpu_time(pid);
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(window);
  auto after = cpu_time(pid);
  auto wall = std::chrono::steady_clock::now() - start;
  if (!before || !after)
    return -1;
  return static_cast<double>((*after - *before).count())
         / static_cast<double>(
           std::chrono::duration_cast<std::chrono::milliseconds>(wall).count());
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(limits_tests, fixture)

CAF_TEST(at max connections clients wait in the backlog until one ends) {
  // One process: the limit and its backlog are per process (with workers
  // another worker may accept c).
  auto port
    = start_echo({"--max-connections=2", "--log-level=debug", "--workers=1"});
  CAF_REQUIRE_NOT_EQUAL(port, 0);
  auto a = connect_loopback(port);
  auto b = connect_loopback(port);
  CAF_REQUIRE(a.fd && b.fd);
  round_trip(a.fd.get(), "a");
  round_trip(b.fd.get(), "b");
  CAF_REQUIRE(server().wait_stderr("paused accepting"));
  CAF_REQUIRE(server().wait_stderr("opened", 2));
  // The kernel completes the handshake (backlog); the server does not accept.
  auto c = connect_loopback(port);
  CAF_REQUIRE(c.fd);
  CAF_REQUIRE(send_all(c.fd.get(), "c"));
  // Another round trip on b: the I/O thread has run since c arrived.
  round_trip(b.fd.get(), "b2");
  char byte;
  CAF_CHECK_LESS(::recv(c.fd.get(), &byte, 1, MSG_DONTWAIT), 0);
  CAF_CHECK_EQUAL(server().stderr_count("opened"), 2u);
  // One ends: accepting resumes and c is served, its early byte included.
  a.fd.reset();
  CAF_REQUIRE(server().wait_stderr("accepting again"));
  CAF_CHECK_EQUAL(read_exactly(c.fd.get(), 1).bytes, "c");
  CAF_CHECK(server().wait_stderr("opened", 3));
  CAF_REQUIRE(server().signal(SIGTERM));
  CAF_CHECK_EQUAL(read_until_eof(b.fd.get()).ending(), "clean EOF");
  CAF_CHECK_EQUAL(read_until_eof(c.fd.get()).ending(), "clean EOF");
  b.fd.reset();
  c.fd.reset();
  CAF_CHECK_EQUAL(server().wait_exit(), 0);
}

CAF_TEST(at a stop clients waiting in the backlog are served then closed) {
  for (auto protocol : {"echo", "http"}) {
    auto http = std::string{protocol} == "http";
    // One process: with workers another one would accept b (see the
    // variant below).
    auto port = start_server(protocol, {"--max-connections=1", "--workers=1"});
    CAF_REQUIRE_NOT_EQUAL(port, 0);
    auto a = connect_loopback(port);
    CAF_REQUIRE(a.fd);
    auto request = http ? std::string{"GET / HTTP/1.1\r\nHost: t\r\n\r\n"}
                        : std::string{"a"};
    CAF_REQUIRE(send_all(a.fd.get(), request));
    auto answer = http ? std::string{"quiesce: hello\n"} : std::string{"a"};
    auto first = read_through(a.fd.get(), answer);
    CAF_REQUIRE(first.bytes.size() >= answer.size()
                && first.bytes.compare(first.bytes.size() - answer.size(),
                                       answer.size(), answer)
                     == 0);
    CAF_REQUIRE(server().wait_stderr("paused accepting"));
    // b's handshake completes in the backlog; its request waits there.
    auto b = connect_loopback(port);
    CAF_REQUIRE(b.fd);
    auto b_request = http ? std::string{"GET / HTTP/1.1\r\nHost: b\r\n\r\n"}
                          : std::string{"from the backlog"};
    CAF_REQUIRE(send_all(b.fd.get(), b_request));
    CAF_REQUIRE(server().signal(SIGTERM));
    CAF_CHECK_EQUAL(read_until_eof(a.fd.get()).ending(), "clean EOF");
    // Not a reset: b was accepted at the stop, its request answered.
    auto got = read_until_eof(b.fd.get());
    CAF_CHECK_EQUAL(got.ending(), "clean EOF");
    if (http) {
      // One whole response, then the FIN. (`Connection: close` only if the
      // stop reached the new connection before it read the request.)
      CAF_CHECK(got.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      CAF_CHECK(
        got.bytes.size() >= 15
        && got.bytes.compare(got.bytes.size() - 15, 15, "quiesce: hello\n")
             == 0);
    } else {
      CAF_CHECK_EQUAL(got.bytes, b_request);
    }
    a.fd.reset();
    b.fd.reset();
    CAF_CHECK_EQUAL(server().wait_exit(), 0);
    CAF_CHECK(server().wait_stderr("waiting in the backlog at the stop"));
  }
}

CAF_TEST(at a stop of two workers clients in the backlog are served) {
  // Two workers of one connection each: a is served, b is served or waits,
  // c waits in the backlog (no third place). From outside, at the stop,
  // every one gets its answer and a clean EOF, and the exit code is 0.
  auto port
    = start_echo({"--max-connections=2", "--workers=2", "--log-level=debug"});
  CAF_REQUIRE_NOT_EQUAL(port, 0);
  auto a = connect_loopback(port);
  CAF_REQUIRE(a.fd);
  round_trip(a.fd.get(), "a");
  std::vector<unique_fd> waiting;
  for (auto text : {"from b", "from c"}) {
    auto conn = connect_loopback(port);
    CAF_REQUIRE(conn.fd);
    CAF_REQUIRE(send_all(conn.fd.get(), text));
    waiting.push_back(std::move(conn.fd));
  }
  CAF_REQUIRE(server().signal(SIGTERM));
  CAF_CHECK_EQUAL(read_until_eof(a.fd.get()).ending(), "clean EOF");
  for (size_t i = 0; i < waiting.size(); ++i) {
    auto got = read_until_eof(waiting[i].get());
    CAF_CHECK_EQUAL(got.ending(), "clean EOF");
    CAF_CHECK_EQUAL(got.bytes, i == 0 ? "from b" : "from c");
  }
  a.fd.reset();
  waiting.clear();
  CAF_CHECK_EQUAL(server().wait_exit(), 0);
  CAF_CHECK_EQUAL(server().stderr_count("stopped: drained="), 1u);
}

CAF_TEST(the write timeout is an option with a checked value) {
  // Listed with its default.
  auto& help = run({"--help"});
  CAF_CHECK_EQUAL(help.wait_exit(), 0);
  auto text = help.stdout_text();
  auto at = text.find("--write-timeout");
  CAF_REQUIRE_NOT_EQUAL(at, std::string::npos);
  auto line = text.substr(at, text.find('\n', at) - at);
  CAF_CHECK(line.find("(default: 60s)") != std::string::npos);
  // A negative value is a usage error naming the option.
  auto& bad = run({"--protocol=echo", "--port=0", "--write-timeout=-1s"});
  CAF_CHECK_EQUAL(describe_exit(bad.wait_exit()), describe_exit(2));
  CAF_CHECK(bad.stderr_text().find("--write-timeout") != std::string::npos);
  // 0s turns it off: the server runs.
  auto port = start_echo({"--write-timeout=0s"});
  CAF_REQUIRE_NOT_EQUAL(port, 0);
  CAF_REQUIRE(server().signal(SIGTERM));
  CAF_CHECK_EQUAL(server().wait_exit(), 0);
}

CAF_TEST(max connections above the open file limit is capped) {
  auto port = start_echo({"--max-connections=1000000000"});
  CAF_REQUIRE_NOT_EQUAL(port, 0);
  CAF_CHECK(server().wait_stderr("exceeds what the open-file limit allows"));
  CAF_REQUIRE(server().signal(SIGTERM));
  CAF_CHECK_EQUAL(server().wait_exit(), 0);
}

CAF_TEST(with few descriptors clients wait and the server does not spin) {
  // RLIMIT_NOFILE 128, soft and hard: the server cannot raise it and keeps
  // 64 descriptors for itself, so it takes 64 connections. 140 clients
  // come, more than the limit: 76 wait in the backlog. A server that went on
  // accepting would meet EMFILE, which CAF's doorman swallows while epoll
  // keeps reporting the listener readable: a core at 100%.
  constexpr uint64_t fd_limit = 128;
  constexpr size_t capacity = 64;
  constexpr size_t waiting = 76;
  // One process: the descriptor limit and the capacity are per process
  // (two workers would take 128 connections).
  auto& srv
    = run({"--protocol=echo", "--host=127.0.0.1", "--port=0", "--workers=1"},
          process_options{fd_limit});
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  CAF_REQUIRE(
    srv.wait_stderr("max connections " + std::to_string(capacity) + ")"));
  std::vector<unique_fd> clients;
  for (size_t i = 0; i < capacity + waiting; ++i) {
    auto conn = connect_loopback(*port);
    CAF_REQUIRE_EQUAL(conn.error, 0);
    CAF_REQUIRE(send_all(conn.fd.get(), "client " + std::to_string(i) + ";"));
    clients.push_back(std::move(conn.fd));
  }
  // The backlog is first in, first out: the first `capacity` are served.
  for (size_t i = 0; i < capacity; ++i) {
    auto text = "client " + std::to_string(i) + ";";
    CAF_REQUIRE_EQUAL(read_exactly(clients[i].get(), text.size()).bytes, text);
  }
  CAF_REQUIRE(srv.wait_stderr("paused accepting"));
  // Exhausted: measure the server's CPU while clients wait.
  auto share = cpu_share(srv.pid(), std::chrono::milliseconds{1000});
  CAF_MESSAGE("server CPU while "
              << waiting << " clients wait: " << static_cast<int>(share * 100)
              << "% of one core");
  CAF_CHECK_GREATER_OR_EQUAL(share, 0.0);
  CAF_CHECK_LESS(share, 0.2);
  // Still serving, and nobody waiting was served.
  round_trip(clients[0].get(), "alive");
  for (size_t i = capacity; i < capacity + waiting; ++i) {
    char byte;
    CAF_CHECK_LESS(::recv(clients[i].get(), &byte, 1, MSG_DONTWAIT), 0);
  }
  CAF_CHECK(!srv.exited());
  // Descriptors free up: all but one of the served clients end, and each
  // waiting client, once served, ends too, making room for the next.
  for (size_t i = 1; i < capacity; ++i)
    clients[i].reset();
  CAF_CHECK(srv.wait_stderr("accepting again"));
  for (size_t i = capacity; i < capacity + waiting; ++i) {
    auto text = "client " + std::to_string(i) + ";";
    CAF_CHECK_EQUAL(read_exactly(clients[i].get(), text.size()).bytes, text);
    clients[i].reset();
  }
  // And the stop is clean: every client still open gets a clean EOF.
  CAF_REQUIRE(srv.signal(SIGTERM));
  for (auto& fd : clients) {
    if (!fd)
      continue;
    CAF_CHECK_EQUAL(read_until_eof(fd.get()).ending(), "clean EOF");
    fd.reset();
  }
  CAF_CHECK_EQUAL(describe_exit(srv.wait_exit()), describe_exit(0));
  CAF_CHECK(srv.stderr_text().find("forced=0") != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
