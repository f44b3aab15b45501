// stop_time: how long a server takes to stop gracefully with many idle
// connections open, whether every client gets a clean FIN, and how much
// memory each idle connection costs the server.
//
// Each round starts the server (quiesce by default: `--protocol=P --port=N
// --log-level=warning` plus the arguments after `--`; with --raw exactly the
// arguments after `--`, for any server that prints a `listening on
// 127.0.0.1:PORT` line), optionally pinned to --server-cpus, and reads its
// listening line. One warm-up connection does one probe round trip and
// closes; the server's memory (VmRSS summed over its process tree) is then
// the base. Then it opens --connections connections and proves the server
// accepted each one with one probe round trip (echo: 8 bytes echoed; http:
// one `GET /` answered with a 200 that keeps the connection open, leaving an
// idle keep-alive connection), and samples the memory again. Then it sends
// SIGTERM and measures the wall time from kill() to waitpid() returning (a
// thread blocks in waitpid). In the meantime an epoll loop reads every
// client socket and closes it as soon as it reads end-of-stream, as a normal
// client does; it tells a clean EOF from a reset (ECONNRESET). The server's
// stdout and stderr are drained all along.
//
// Exit codes: 0 every round exited 0 and every client saw a clean EOF;
// 1 otherwise (including a server that had to be SIGKILLed after 30 s);
// 2 bad options.

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using namespace bench;
using namespace std::chrono_literals;

constexpr char program[] = "stop_time";

constexpr auto listen_limit = 10s; // start-up until the listening line
constexpr auto setup_limit = 30s;  // connecting and the echo round trips
constexpr auto stop_limit = 30s;   // SIGTERM until the server has exited
constexpr auto eof_grace = 2s;     // after the exit, for the last clients
constexpr auto rss_settle = 200ms; // before each memory sample
constexpr size_t probe_size = 8;
constexpr size_t stderr_keep = 64 * 1024;

// Epoll tags beyond the client indexes.
constexpr uint64_t tag_stdout = UINT64_MAX - 1;
constexpr uint64_t tag_stderr = UINT64_MAX - 2;
constexpr uint64_t tag_exited = UINT64_MAX - 3;
constexpr uint64_t tag_warmup = UINT64_MAX - 4;

double ms_between(time_point from, time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// ---------------------------------------------------------------- options

struct options {
  std::string server;
  long connections = 1000;
  long rounds = 3;
  std::string protocol = "echo";
  /// The arguments after `--` are the server's whole argument list.
  bool raw = false;
  long port = 0;
  /// --server-cpus, as given and as a set; empty: no pinning.
  std::string server_cpus;
  cpu_set_t cpus{};
  std::vector<std::string> extra;
};

void usage(std::FILE* out) {
  std::fprintf(
    out,
    "usage: stop_time --server=PATH [--connections=1000] [--rounds=3]\n"
    "                 [--protocol=echo|http] [--server-cpus=LIST]\n"
    "                 [--port=N] [-- extra server args...]\n"
    "       stop_time --raw --server=PATH [options] -- server args...\n"
    "By default the server runs as PATH --protocol=P --port=N "
    "--log-level=warning\n"
    "followed by the args after --; with --raw as PATH followed by exactly "
    "the args\n"
    "after -- (the port is then the caller's business). --protocol is the "
    "probe's\n"
    "protocol. --server-cpus pins the server (e.g. 0 or 0,2-3).\n");
}

/// Parses a CPU list such as `0`, `0,2` or `1-3` into `set`.
bool parse_cpu_list(const std::string& text, cpu_set_t& set) {
  CPU_ZERO(&set);
  if (text.empty())
    return false;
  size_t start = 0;
  for (;;) {
    auto comma = text.find(',', start);
    auto item = text.substr(
      start, comma == std::string::npos ? std::string::npos : comma - start);
    auto dash = item.find('-');
    long lo = 0;
    long hi = 0;
    if (!parse_long(item.substr(0, dash), 0, CPU_SETSIZE - 1, lo))
      return false;
    hi = lo;
    if (dash != std::string::npos
        && !parse_long(item.substr(dash + 1), lo, CPU_SETSIZE - 1, hi))
      return false;
    for (long cpu = lo; cpu <= hi; ++cpu)
      CPU_SET(static_cast<int>(cpu), &set);
    if (comma == std::string::npos)
      return true;
    start = comma + 1;
  }
}

[[noreturn]] void bad_option(const std::string& arg, const std::string& why) {
  bench::bad_option(program, usage, arg, why);
}

options parse_options(int argc, char** argv) {
  options opts;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    handle_help(arg, usage);
    if (arg == "--raw") {
      opts.raw = true;
      continue;
    }
    std::string key;
    std::string value;
    if (!split_option(arg, key, value))
      bad_option(arg, "expected --key=value (server arguments go after --)");
    if (key == "server") {
      if (value.empty())
        bad_option(arg, "expected the path of the quiesce binary");
      opts.server = value;
    } else if (key == "connections") {
      if (!parse_long(value, 1, 1000000, opts.connections))
        bad_option(arg, "expected an integer in 1..1000000");
    } else if (key == "protocol") {
      if (value != "echo" && value != "http")
        bad_option(arg, "expected echo or http");
      opts.protocol = value;
    } else if (key == "rounds") {
      if (!parse_long(value, 1, 1000, opts.rounds))
        bad_option(arg, "expected an integer in 1..1000");
    } else if (key == "port") {
      if (!parse_long(value, 0, 65535, opts.port))
        bad_option(arg, "expected a port in 0..65535");
    } else if (key == "server-cpus") {
      if (!parse_cpu_list(value, opts.cpus))
        bad_option(arg, "expected a CPU list such as 0 or 0,2-3");
      opts.server_cpus = value;
    } else {
      bad_option(arg, "unknown option");
    }
  }
  for (; i < argc; ++i)
    opts.extra.emplace_back(argv[i]);
  if (opts.server.empty())
    bad_option("--server", "missing (required)");
  if (opts.raw && opts.port != 0)
    bad_option("--port=" + std::to_string(opts.port),
               "with --raw, put the port in the server's arguments");
  if (::access(opts.server.c_str(), X_OK) != 0)
    bad_option("--server=" + opts.server,
               std::string{"not an executable: "} + std::strerror(errno));
  return opts;
}

// ---------------------------------------------------------------- memory

/// The contents of a small file such as /proc/PID/stat; "" if unreadable.
std::string read_small_file(const std::string& path) {
  std::string text;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0)
    text.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return text;
}

/// `root` and all its descendants, from the parent ids in /proc/PID/stat.
std::vector<pid_t> process_tree(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> parents; // (pid, ppid)
  if (DIR* dir = ::opendir("/proc")) {
    while (auto* entry = ::readdir(dir)) {
      long pid = 0;
      if (!parse_long(entry->d_name, 1, INT32_MAX, pid))
        continue;
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      auto stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
      auto close = stat.rfind(')');
      if (close == std::string::npos || close + 4 > stat.size())
        continue;
      auto ppid = std::atol(stat.c_str() + close + 4);
      parents.emplace_back(static_cast<pid_t>(pid), static_cast<pid_t>(ppid));
    }
    ::closedir(dir);
  }
  std::vector<pid_t> tree{root};
  for (size_t i = 0; i < tree.size(); ++i)
    for (auto& [pid, ppid] : parents)
      if (ppid == tree[i])
        tree.push_back(pid);
  return tree;
}

/// The resident memory of `root` and all its descendants in KiB: the sum of
/// VmRSS from /proc/PID/status (pages shared between the processes count
/// once per process). -1 if /proc does not know `root`.
long tree_rss_kb(pid_t root) {
  long total = 0;
  for (auto pid : process_tree(root)) {
    auto status = read_small_file("/proc/" + std::to_string(pid) + "/status");
    auto at = status.find("\nVmRSS:");
    if (at == std::string::npos) {
      if (pid == root)
        return -1;
      continue; // a descendant that just ended, or a kernel thread
    }
    total += std::atol(status.c_str() + at + 7);
  }
  return total;
}

// ---------------------------------------------------------------- the server

/// The server child: pipes for its output and a thread blocked in waitpid().
class server_process {
public:
  server_process() = default;
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  ~server_process() {
    if (pid_ > 0 && waiter_.joinable()) {
      // Only reached on an error path: never leave our child behind.
      kill_hard();
    }
    if (waiter_.joinable())
      waiter_.join();
    for (int fd : {out_fd_, err_fd_, exit_fd_})
      if (fd >= 0)
        ::close(fd);
  }

  bool start(const options& opts, std::string& error) {
    std::vector<std::string> args{opts.server};
    if (!opts.raw) {
      args.emplace_back("--protocol=" + opts.protocol);
      args.emplace_back("--port=" + std::to_string(opts.port));
      args.emplace_back("--log-level=warning");
    }
    args.insert(args.end(), opts.extra.begin(), opts.extra.end());
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      error = std::string{"pipe2: "} + std::strerror(errno);
      return false;
    }
    if (::pipe2(err, O_CLOEXEC) != 0) {
      error = std::string{"pipe2: "} + std::strerror(errno);
      ::close(out[0]);
      ::close(out[1]);
      return false;
    }
    exit_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (exit_fd_ < 0) {
      error = std::string{"eventfd: "} + std::strerror(errno);
      return false;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      error = std::string{"fork: "} + std::strerror(errno);
      for (int fd : {out[0], out[1], err[0], err[1]})
        ::close(fd);
      return false;
    }
    if (pid == 0) {
      // The child: only async-signal-safe calls until exec.
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      ::sigaction(SIGPIPE, &dfl, nullptr);
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      if (!opts.server_cpus.empty()
          && ::sched_setaffinity(0, sizeof(opts.cpus), &opts.cpus) != 0) {
        const char msg[] = "stop_time: sched_setaffinity of the server "
                           "failed\n";
        ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)ignored;
        ::_exit(127);
      }
      ::execv(argv[0], argv.data());
      const char msg[] = "stop_time: execv of the server failed\n";
      ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
      (void)ignored;
      ::_exit(127);
    }
    pid_ = pid;
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
    ::fcntl(err_fd_, F_SETFL, ::fcntl(err_fd_, F_GETFL) | O_NONBLOCK);
    waiter_ = std::thread{[this] {
      int status = 0;
      pid_t rc;
      do {
        rc = ::waitpid(pid_, &status, 0);
      } while (rc < 0 && errno == EINTR);
      exited_at_ = clock_type::now();
      status_ = rc == pid_ ? status : -1;
      uint64_t one = 1;
      ssize_t ignored = ::write(exit_fd_, &one, sizeof(one));
      (void)ignored;
    }};
    return true;
  }

  pid_t pid() const {
    return pid_;
  }
  int out_fd() const {
    return out_fd_;
  }
  int err_fd() const {
    return err_fd_;
  }
  int exit_fd() const {
    return exit_fd_;
  }

  /// Called once the eventfd fired: joins the waiter; the child is reaped.
  void reaped() {
    if (waiter_.joinable())
      waiter_.join();
    pid_ = -1;
  }
  bool has_exited() const {
    return pid_ < 0;
  }
  time_point exited_at() const {
    return exited_at_;
  }

  /// "0", "3", "sig9", ...
  std::string exit_code() const {
    if (status_ < 0)
      return "unknown";
    if (WIFEXITED(status_))
      return std::to_string(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_))
      return "sig" + std::to_string(WTERMSIG(status_));
    return "status" + std::to_string(status_);
  }
  bool exited_zero() const {
    return status_ >= 0 && WIFEXITED(status_) && WEXITSTATUS(status_) == 0;
  }

  /// Reads what is available on fd (stdout or stderr); false at EOF.
  bool drain(int fd) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) {
        auto& into = fd == out_fd_ ? stdout_ : stderr_;
        into.append(buf, static_cast<size_t>(n));
        if (fd == err_fd_ && stderr_.size() > stderr_keep)
          stderr_.erase(0, stderr_.size() - stderr_keep);
        if (fd == out_fd_ && stdout_.size() > stderr_keep)
          stdout_.erase(0, stdout_.size() - stderr_keep);
        continue;
      }
      if (n == 0)
        return false;
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }

  const std::string& stdout_text() const {
    return stdout_;
  }
  const std::string& stderr_text() const {
    return stderr_;
  }

  /// Sends SIGKILL to the child, if it has not been reaped yet, and to its
  /// descendants (a wrapper script's server must not outlive it).
  void kill_hard() {
    if (pid_ > 0)
      for (auto pid : process_tree(pid_))
        ::kill(pid, SIGKILL);
  }

private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int exit_fd_ = -1;
  std::thread waiter_;
  time_point exited_at_;
  int status_ = -1;
  std::string stdout_;
  std::string stderr_;
};

// ---------------------------------------------------------------- a round

/// The echo of `probe` so far: an error text if it differs, else "" and
/// `complete` once all of it is back.
std::string check_echo_reply(const std::string& probe, const std::string& reply,
                             bool& complete) {
  if (reply.size() > probe.size() || probe.compare(0, reply.size(), reply) != 0)
    return "wrong or unexpected bytes in the echo of the probe";
  complete = reply.size() == probe.size();
  return {};
}

/// The answer to `GET /` so far: an error text unless it is a 200 that keeps
/// the connection open, else "" and `complete` once it is all in.
std::string check_http_reply(const std::string& reply, bool& complete) {
  auto r = parse_http_reply(reply, false);
  if (r.st == http_reply::state::bad)
    return r.error;
  if (r.st == http_reply::state::partial)
    return {};
  if (r.status != 200)
    return "not a 200 response: " + reply.substr(0, reply.find('\r'));
  if (!r.keep_alive)
    return "the response does not keep the connection alive";
  if (reply.size() > r.size)
    return "bytes after the response";
  complete = true;
  return {};
}

enum class client_state { connecting, probing, ready, eof, reset, failed };

struct client {
  int fd = -1;
  client_state state = client_state::connecting;
  /// The request that proves the connection was accepted, and its answer.
  std::string probe;
  std::string reply;
  size_t sent = 0;
};

struct round_result {
  bool completed = false; // the server was stopped and reaped
  bool killed = false;    // ... with SIGKILL after the limit
  double stop_ms = 0;
  std::string exit_code = "none";
  bool exit_zero = false;
  size_t clean_eof = 0;
  size_t resets = 0;
  size_t other = 0; // no EOF, another error, or unexpected data
  size_t unexpected_bytes = 0;
  double first_eof_ms = -1;
  double last_eof_ms = -1;
  double setup_ms = 0;
  long rss_base_kb = -1; // after the warm-up connection, before the rest
  long rss_idle_kb = -1; // with every connection open and idle
  std::string error;

  /// What each idle connection added to the server's memory, in bytes.
  double rss_per_conn_bytes(size_t connections) const {
    if (rss_base_kb < 0 || rss_idle_kb < 0 || connections == 0)
      return -1;
    return static_cast<double>(rss_idle_kb - rss_base_kb) * 1024.0
           / static_cast<double>(connections);
  }
};

class round_runner {
public:
  round_runner(const options& opts, int number)
      : opts_(opts), number_(number),
        clients_(static_cast<size_t>(opts.connections)) {}

  ~round_runner() {
    for (auto& c : clients_)
      if (c.fd >= 0)
        ::close(c.fd);
    if (warmup_.fd >= 0)
      ::close(warmup_.fd);
    if (ep_ >= 0)
      ::close(ep_);
  }

  round_result run() {
    auto started = clock_type::now();
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0)
      return fail(std::string{"epoll_create1: "} + std::strerror(errno));
    std::string error;
    if (!server_.start(opts_, error))
      return fail(error);
    watch(server_.out_fd(), tag_stdout);
    watch(server_.err_fd(), tag_stderr);
    watch(server_.exit_fd(), tag_exited);
    uint16_t port = 0;
    if (!await_listening(port))
      return abort_round();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!warm_up(addr))
      return abort_round();
    result_.rss_base_kb = tree_rss_kb(server_.pid());
    if (!connect_and_probe(addr))
      return abort_round();
    if (!settle())
      return abort_round();
    result_.rss_idle_kb = tree_rss_kb(server_.pid());
    result_.setup_ms = ms_between(started, clock_type::now());
    stop_and_watch();
    return result_;
  }

  const server_process& server() const {
    return server_;
  }

private:
  // --- start-up

  bool await_listening(uint16_t& port) {
    auto deadline = clock_type::now() + listen_limit;
    while (clock_type::now() < deadline) {
      auto& text = server_.stdout_text();
      auto nl = text.find('\n');
      if (nl != std::string::npos)
        return parse_listening(text.substr(0, nl), port);
      if (!poll_once(deadline))
        return false;
      if (server_.has_exited())
        return set_error("the server exited (" + server_.exit_code()
                         + ") before printing its listening line");
      if (stdout_closed_ && text.find('\n') == std::string::npos)
        return set_error("the server closed stdout without a listening line");
    }
    return set_error("no listening line within 10s");
  }

  bool parse_listening(const std::string& line, uint16_t& port) {
    const std::string prefix = "listening on ";
    auto at = line.find(prefix);
    if (at == std::string::npos)
      return set_error("cannot parse the listening line '" + line + "'");
    auto begin = at + prefix.size();
    auto space = line.find(' ', begin);
    auto addr = line.substr(
      begin, space == std::string::npos ? std::string::npos : space - begin);
    auto colon = addr.rfind(':');
    long value = 0;
    if (colon == std::string::npos
        || !parse_long(addr.substr(colon + 1), 1, 65535, value))
      return set_error("cannot parse the listening line '" + line + "'");
    if (addr.substr(0, colon) != "127.0.0.1")
      return set_error("the server listens on " + addr
                       + "; stop_time only talks to 127.0.0.1");
    port = static_cast<uint16_t>(value);
    return true;
  }

  /// One connection and one probe round trip, then a close: whatever the
  /// server sets up lazily on its first connection is then part of the base
  /// memory sample, taken after a short settling time.
  bool warm_up(const sockaddr_in& addr) {
    if (!open_client(warmup_, tag_warmup, addr))
      return false;
    auto deadline = clock_type::now() + setup_limit;
    while (warmup_.state != client_state::ready) {
      if (clock_type::now() >= deadline)
        return set_error("the warm-up connection got no answer within 30s");
      if (!poll_once(deadline))
        return false;
      if (server_.has_exited())
        return set_error("the server exited (" + server_.exit_code()
                         + ") during the warm-up connection");
    }
    ::close(warmup_.fd);
    warmup_.fd = -1;
    return settle();
  }

  /// Lets the server settle before a memory sample (the pipes are drained
  /// meanwhile, and any byte on a client is still an error).
  bool settle() {
    auto until = clock_type::now() + rss_settle;
    while (clock_type::now() < until)
      if (!poll_once(until))
        return false;
    if (server_.has_exited())
      return set_error("the server exited (" + server_.exit_code()
                       + ") before the stop");
    return true;
  }

  /// The probe of client `tag` (an index or tag_warmup).
  std::string make_probe(uint64_t tag) const {
    if (opts_.protocol == "http")
      return "GET / HTTP/1.1\r\nHost: stop-time\r\n\r\n";
    // "r" (or "w" for the warm-up) + round digit + six digits of the index.
    std::string probe(probe_size, '0');
    probe[0] = tag == tag_warmup ? 'w' : 'r';
    probe[1] = static_cast<char>('0' + number_ % 10);
    if (tag != tag_warmup)
      for (size_t k = 0, v = tag; k < probe_size - 2; ++k, v /= 10)
        probe[probe_size - 1 - k] = static_cast<char>('0' + v % 10);
    return probe;
  }

  bool open_client(client& c, uint64_t tag, const sockaddr_in& addr) {
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0)
      return set_error(std::string{"socket: "} + std::strerror(errno));
    int on = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr))
          != 0
        && errno != EINPROGRESS)
      return set_error(name(tag) + ": connect: " + std::strerror(errno));
    c.probe = make_probe(tag);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = tag;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0)
      return set_error(std::string{"epoll_ctl: "} + std::strerror(errno));
    return true;
  }

  bool connect_and_probe(const sockaddr_in& addr) {
    for (size_t i = 0; i < clients_.size(); ++i)
      if (!open_client(clients_[i], i, addr))
        return false;
    auto deadline = clock_type::now() + setup_limit;
    while (ready_ < clients_.size()) {
      if (clock_type::now() >= deadline)
        return set_error(std::to_string(clients_.size() - ready_) + " of "
                         + std::to_string(clients_.size())
                         + " clients not connected and echoed within 30s");
      if (!poll_once(deadline))
        return false;
      if (server_.has_exited())
        return set_error("the server exited (" + server_.exit_code()
                         + ") while the clients connected");
    }
    return true;
  }

  std::string name(uint64_t tag) const {
    return tag == tag_warmup ? "the warm-up client"
                             : "client " + std::to_string(tag);
  }

  client& client_at(uint64_t tag) {
    return tag == tag_warmup ? warmup_ : clients_[tag];
  }

  void setup_event(uint64_t tag, uint32_t events) {
    auto& c = client_at(tag);
    if (c.state == client_state::connecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        set_error(name(tag) + ": connect: " + std::strerror(err));
        return;
      }
      if (!(events & EPOLLOUT))
        return;
      c.state = client_state::probing;
    }
    if (c.state == client_state::probing && c.sent < c.probe.size()) {
      ssize_t n = ::send(c.fd, c.probe.data() + c.sent, c.probe.size() - c.sent,
                         MSG_NOSIGNAL);
      if (n > 0)
        c.sent += static_cast<size_t>(n);
      else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK
               && errno != EINTR) {
        set_error(name(tag) + ": send: " + std::strerror(errno));
        return;
      }
      if (c.sent == c.probe.size())
        set_events(tag, EPOLLIN);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      unsigned char buf[64];
      ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n == 0) {
        set_error(name(tag) + ": EOF from the server before the stop");
        return;
      }
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
          set_error(name(tag)
                    + ": recv before the stop: " + std::strerror(errno));
        return;
      }
      if (c.state != client_state::probing) {
        set_error(name(tag) + ": unexpected bytes before the stop");
        return;
      }
      c.reply.append(reinterpret_cast<const char*>(buf),
                     static_cast<size_t>(n));
      bool complete = false;
      auto wrong = opts_.protocol == "http"
                     ? check_http_reply(c.reply, complete)
                     : check_echo_reply(c.probe, c.reply, complete);
      if (!wrong.empty()) {
        set_error(name(tag) + ": " + wrong);
        return;
      }
      if (complete) {
        c.state = client_state::ready;
        if (tag != tag_warmup)
          ++ready_;
      }
    }
  }

  // --- the stop

  void stop_and_watch() {
    auto killed_at = clock_type::now();
    if (::kill(server_.pid(), SIGTERM) != 0) {
      set_error(std::string{"kill(SIGTERM): "} + std::strerror(errno));
      abort_round();
      return;
    }
    stopping_ = true;
    stop_at_ = killed_at;
    open_clients_ = clients_.size();
    auto deadline = killed_at + stop_limit;
    time_point grace_end{};
    for (;;) {
      auto now = clock_type::now();
      if (!server_.has_exited() && now >= deadline) {
        std::fprintf(stderr,
                     "stop_time: round %d: the server (pid %d) did not exit "
                     "within 30s of SIGTERM; sending SIGKILL\n",
                     number_, static_cast<int>(server_.pid()));
        result_.killed = true;
        server_.kill_hard();
        deadline = now + 10s; // for the kill itself
      }
      if (server_.has_exited()) {
        if (grace_end == time_point{})
          grace_end = server_.exited_at() + eof_grace;
        if (open_clients_ == 0 || now >= grace_end)
          break;
      }
      if (result_.killed && now >= deadline) {
        result_.error = "the server did not die after SIGKILL";
        return;
      }
      auto until = server_.has_exited() ? grace_end : deadline;
      if (!poll_once(until)) {
        abort_round();
        return;
      }
    }
    result_.completed = true;
    result_.stop_ms = ms_between(killed_at, server_.exited_at());
    result_.exit_code = server_.exit_code();
    result_.exit_zero = server_.exited_zero();
    for (auto& c : clients_) {
      if (c.state == client_state::ready) {
        ++result_.other; // neither EOF nor reset within the grace period
        ::close(c.fd);
        c.fd = -1;
      }
    }
  }

  void stop_event(size_t i) {
    auto& c = clients_[i];
    if (c.fd < 0)
      return;
    unsigned char buf[4096];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        result_.unexpected_bytes += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      auto ms = ms_between(stop_at_, clock_type::now());
      if (n == 0) {
        c.state = client_state::eof;
        ++result_.clean_eof;
        if (result_.first_eof_ms < 0)
          result_.first_eof_ms = ms;
        result_.last_eof_ms = ms;
      } else if (errno == ECONNRESET) {
        c.state = client_state::reset;
        ++result_.resets;
      } else {
        c.state = client_state::failed;
        ++result_.other;
        if (other_errors_.empty())
          other_errors_ = std::strerror(errno);
      }
      ::close(c.fd); // what a normal client does after end-of-stream
      c.fd = -1;
      --open_clients_;
      return;
    }
  }

  // --- the loop

  /// One epoll_wait until `deadline` at most; false on a fatal error.
  bool poll_once(time_point deadline) {
    epoll_event events[256];
    int n
      = ::epoll_wait(ep_, events, 256, ms_until(clock_type::now(), deadline));
    if (n < 0) {
      if (errno == EINTR)
        return true;
      return set_error(std::string{"epoll_wait: "} + std::strerror(errno));
    }
    for (int k = 0; k < n; ++k) {
      auto tag = events[k].data.u64;
      if (tag == tag_stdout || tag == tag_stderr) {
        int fd = tag == tag_stdout ? server_.out_fd() : server_.err_fd();
        if (!server_.drain(fd)) {
          ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
          if (tag == tag_stdout)
            stdout_closed_ = true;
        }
      } else if (tag == tag_exited) {
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, server_.exit_fd(), nullptr);
        server_.reaped();
      } else if (stopping_) {
        stop_event(static_cast<size_t>(tag));
      } else {
        setup_event(tag, events[k].events);
        if (!result_.error.empty())
          return false;
      }
    }
    return true;
  }

  void watch(int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void set_events(uint64_t tag, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, client_at(tag).fd, &ev);
  }

  bool set_error(const std::string& what) {
    if (result_.error.empty())
      result_.error = what;
    return false;
  }

  round_result fail(const std::string& what) {
    set_error(what);
    return result_;
  }

  /// A failure before the stop: kill our child and collect it (bounded).
  round_result abort_round() {
    if (!server_.has_exited()) {
      server_.kill_hard();
      auto deadline = clock_type::now() + 10s;
      while (!server_.has_exited() && clock_type::now() < deadline)
        poll_once(deadline);
    }
    result_.exit_code = server_.has_exited() ? server_.exit_code() : "none";
    return result_;
  }

public:
  const std::string& other_errors() const {
    return other_errors_;
  }

private:
  const options& opts_;
  int number_;
  int ep_ = -1;
  server_process server_;
  std::vector<client> clients_;
  client warmup_;
  size_t ready_ = 0;
  size_t open_clients_ = 0;
  bool stopping_ = false;
  bool stdout_closed_ = false;
  time_point stop_at_;
  round_result result_;
  std::string other_errors_;
};

/// The median of `values` (0 if there are none).
double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  auto mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

void print_stderr_tail(const std::string& text, int round) {
  size_t lines = 0;
  size_t pos = text.size();
  while (pos > 0 && lines < 20) {
    auto nl = text.rfind('\n', pos - 1);
    pos = nl == std::string::npos ? 0 : nl;
    ++lines;
  }
  std::string tail = text.substr(pos == 0 ? 0 : pos + 1);
  size_t start = 0;
  while (start < tail.size()) {
    auto nl = tail.find('\n', start);
    auto line = tail.substr(start, nl == std::string::npos ? std::string::npos
                                                           : nl - start);
    std::fprintf(stderr, "  round %d server stderr: %s\n", round, line.c_str());
    if (nl == std::string::npos)
      break;
    start = nl + 1;
  }
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  auto opts = parse_options(argc, argv);
  // Beyond the connections: standard streams, epoll, the eventfd and the
  // server's pipes.
  if (!raise_fd_limit(program, opts.connections, 32))
    return exit_failed;
  std::vector<double> times;
  std::vector<double> bases;
  std::vector<double> idles;
  std::vector<double> per_conns;
  std::string codes;
  size_t clean = 0;
  size_t total = 0;
  bool ok = true;
  for (int r = 1; r <= opts.rounds; ++r) {
    round_runner runner{opts, r};
    auto res = runner.run();
    if (!res.completed) {
      std::printf("stop_time: round %d/%ld: failed before or during the stop: "
                  "%s (server exit %s)\n",
                  r, opts.rounds, res.error.c_str(), res.exit_code.c_str());
      std::fflush(stdout);
      print_stderr_tail(runner.server().stderr_text(), r);
      return exit_failed;
    }
    auto n = static_cast<size_t>(opts.connections);
    auto per_conn = res.rss_per_conn_bytes(n);
    std::printf("round %d/%ld: stop_ms=%.2f exit_code=%s clean_eof=%zu/%zu "
                "resets=%zu no_eof_or_error=%zu first_eof_ms=%.2f "
                "last_eof_ms=%.2f unexpected_bytes=%zu setup_ms=%.0f "
                "rss_base_kb=%ld rss_idle_kb=%ld rss_per_conn_bytes=%.0f%s%s\n",
                r, opts.rounds, res.stop_ms, res.exit_code.c_str(),
                res.clean_eof, n, res.resets, res.other, res.first_eof_ms,
                res.last_eof_ms, res.unexpected_bytes, res.setup_ms,
                res.rss_base_kb, res.rss_idle_kb, per_conn,
                res.killed ? " KILLED" : "",
                runner.other_errors().empty()
                  ? ""
                  : (" first_error=" + runner.other_errors()).c_str());
    std::fflush(stdout);
    if (!runner.server().stderr_text().empty())
      print_stderr_tail(runner.server().stderr_text(), r);
    times.push_back(res.stop_ms);
    bases.push_back(static_cast<double>(res.rss_base_kb));
    idles.push_back(static_cast<double>(res.rss_idle_kb));
    per_conns.push_back(per_conn);
    codes += (codes.empty() ? "" : ",") + res.exit_code;
    clean += res.clean_eof;
    total += n;
    if (!res.exit_zero || res.resets > 0 || res.other > 0
        || res.unexpected_bytes > 0 || res.killed)
      ok = false;
    if (res.killed || !res.error.empty()) {
      if (!res.error.empty())
        std::fprintf(stderr, "stop_time: round %d: %s\n", r, res.error.c_str());
      ok = false;
      break;
    }
  }
  auto sorted = times;
  std::sort(sorted.begin(), sorted.end());
  std::printf("stop_time: connections=%ld rounds=%zu median_ms=%.2f "
              "min_ms=%.2f max_ms=%.2f exit_codes=%s clean_eof=%zu/%zu "
              "median_rss_base_kb=%.0f median_rss_idle_kb=%.0f "
              "median_rss_per_conn_bytes=%.0f\n",
              opts.connections, times.size(), median(times),
              sorted.empty() ? 0.0 : sorted.front(),
              sorted.empty() ? 0.0 : sorted.back(), codes.c_str(), clean, total,
              median(bases), median(idles), median(per_conns));
  return ok ? exit_ok : exit_failed;
}
