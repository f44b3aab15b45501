// close_floor: the kernel's own cost of closing N idle loopback connections.
//
// No server is involved: this process plays a server that makes nothing but
// the system calls a graceful stop needs, so the time it takes is the floor
// under every server's "SIGTERM to exit" on this machine. The "server" runs
// on --server-cpu, a forked client on --client-cpu (as compare.py pins the
// servers and the load).
//
// Each round opens --connections loopback connections twice and measures,
// from the first system call to the last server socket closed:
//
//   graceful  shutdown(SHUT_WR) on every server socket (the FIN), then wait
//             for each client's FIN (the client closes when it reads
//             end-of-stream) and close() it: what quiesce does with an idle
//             connection (its linger waits for the client's FIN, so that a
//             client still sending never gets a reset)
//   close     close() on every server socket at once (the FIN comes from
//             close(); a client still sending would get a reset): what nginx
//             does with an idle keep-alive connection
//
// Output: one line per round, then
//   close_floor: connections=N rounds=R graceful_ms=... close_ms=...
// (medians). Exit 0, 1 on a failure, 2 on a bad option.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using namespace bench;

constexpr char program[] = "close_floor";

struct options {
  long connections = 10000;
  long rounds = 3;
  long server_cpu = 0;
  long client_cpu = 1;
};

void usage(std::FILE* out) {
  std::fprintf(out, "usage: close_floor [--connections=10000] [--rounds=3] "
                    "[--server-cpu=0] [--client-cpu=1]\n");
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s: %s: %s\n", program, what, std::strerror(errno));
  std::exit(exit_failed);
}

options parse_options(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    handle_help(arg, usage);
    std::string key;
    std::string value;
    if (!split_option(arg, key, value))
      bad_option(program, usage, arg, "expected --key=value");
    if (key == "connections") {
      if (!parse_long(value, 1, 1000000, opts.connections))
        bad_option(program, usage, arg, "expected an integer in 1..1000000");
    } else if (key == "rounds") {
      if (!parse_long(value, 1, 1000, opts.rounds))
        bad_option(program, usage, arg, "expected an integer in 1..1000");
    } else if (key == "server-cpu") {
      if (!parse_long(value, 0, CPU_SETSIZE - 1, opts.server_cpu))
        bad_option(program, usage, arg, "expected a CPU number");
    } else if (key == "client-cpu") {
      if (!parse_long(value, 0, CPU_SETSIZE - 1, opts.client_cpu))
        bad_option(program, usage, arg, "expected a CPU number");
    } else {
      bad_option(program, usage, arg, "unknown option");
    }
  }
  return opts;
}

void pin(long cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpu), &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    fail("sched_setaffinity");
}

/// Waits on `ep` until `n` of its sockets have read end-of-stream (or a
/// reset), closing each then; input before it is read and dropped. Fails
/// with `what` after 10 s without an event.
void close_each_at_eof(int ep, long n, const char* what) {
  std::vector<epoll_event> events(256);
  char buf[512];
  while (n > 0) {
    int k
      = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 10000);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      fail(what);
    for (int i = 0; i < k; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      if (recv(fd, buf, sizeof(buf), 0) > 0)
        continue; // nobody sends data here; not expected
      close(fd);  // also leaves the epoll set
      --n;
    }
  }
}

/// The client: connects n times, says so on `ready`, closes each socket
/// when it reads end-of-stream, and exits once all are closed.
[[noreturn]] void run_client(uint16_t port, long n, int ready, long cpu) {
  pin(cpu);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    fail("epoll_create1");
  for (long i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      fail("socket");
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      fail("connect");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
      fail("epoll_ctl");
  }
  char r = 'r';
  if (write(ready, &r, 1) != 1)
    fail("write");
  close_each_at_eof(ep, n, "waiting for the server's FIN");
  _exit(0);
}

/// One way of closing n fresh connections; returns its milliseconds.
double measure(int listener, uint16_t port, long n, long client_cpu,
               bool graceful) {
  int pipefd[2];
  if (pipe(pipefd) != 0)
    fail("pipe");
  auto pid = fork();
  if (pid < 0)
    fail("fork");
  if (pid == 0) {
    close(listener);
    close(pipefd[0]);
    run_client(port, n, pipefd[1], client_cpu);
  }
  close(pipefd[1]);
  std::vector<int> conns;
  conns.reserve(static_cast<size_t>(n));
  for (long i = 0; i < n; ++i) {
    int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      fail("accept");
    conns.push_back(fd);
  }
  char r = 0;
  if (read(pipefd[0], &r, 1) != 1)
    fail("the client did not connect");
  close(pipefd[0]);
  auto start = clock_type::now();
  if (!graceful) {
    for (int fd : conns)
      close(fd);
  } else {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
      fail("epoll_create1");
    for (int fd : conns) {
      if (shutdown(fd, SHUT_WR) != 0)
        fail("shutdown");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        fail("epoll_ctl");
    }
    close_each_at_eof(ep, n, "waiting for the client's FIN");
    close(ep);
  }
  auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - start)
              .count();
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
      || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "%s: the client failed\n", program);
    std::exit(exit_failed);
  }
  return ms;
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

} // namespace

int main(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  if (!raise_fd_limit(program, opts.connections, 64))
    return exit_failed;
  pin(opts.server_cpu);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0)
    fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || listen(listener, 4096) != 0
      || getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail("listen");
  auto port = ntohs(addr.sin_port);
  std::vector<double> graceful;
  std::vector<double> closing;
  for (long r = 1; r <= opts.rounds; ++r) {
    graceful.push_back(
      measure(listener, port, opts.connections, opts.client_cpu, true));
    closing.push_back(
      measure(listener, port, opts.connections, opts.client_cpu, false));
    std::printf("round %ld/%ld: graceful_ms=%.1f close_ms=%.1f\n", r,
                opts.rounds, graceful.back(), closing.back());
    std::fflush(stdout);
  }
  std::printf("close_floor: connections=%ld rounds=%ld graceful_ms=%.1f "
              "close_ms=%.1f\n",
              opts.connections, opts.rounds, median(graceful), median(closing));
  return exit_ok;
}
