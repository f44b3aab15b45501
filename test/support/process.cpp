#include "support/process.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace quiesce::test {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

/// Largest single send or receive of the client helpers.
constexpr size_t chunk_size = size_t{64} * 1024;

int to_poll_timeout(milliseconds timeout) {
  return static_cast<int>(
    std::clamp<milliseconds::rep>(timeout.count(), 0, 3'600'000));
}

/// poll() for one descriptor, retried on EINTR. Returns poll's result:
/// 0 when the timeout passed.
int poll_one(int fd, short events, milliseconds timeout, short& revents) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    pollfd pfd{fd, events, 0};
    auto left = std::chrono::duration_cast<milliseconds>(deadline
                                                         - steady_clock::now());
    auto rc = ::poll(&pfd, 1, to_poll_timeout(left));
    if (rc < 0 && errno == EINTR)
      continue;
    revents = pfd.revents;
    return rc;
  }
}

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/// One recv of at most `max` bytes appended to `result.bytes`. False once
/// the stream has ended: `result.status` says how (EOF or an error).
bool receive(int fd, read_result& result, size_t max, int flags) {
  char buf[chunk_size];
  auto n = ::recv(fd, buf, std::min(sizeof(buf), max), flags);
  if (n > 0) {
    result.bytes.append(buf, static_cast<size_t>(n));
    return true;
  }
  if (n < 0 && would_block(errno))
    return true;
  result.status = n == 0 ? read_status::eof : read_status::error;
  result.error = n == 0 ? 0 : errno;
  return false;
}

/// Waits for `events` on `fd` as `poll_one`; false when the watchdog
/// passed or poll failed: `result.status` then says which.
bool await_event(int fd, short events, milliseconds timeout, short& revents,
                 read_result& result) {
  auto rc = poll_one(fd, events, timeout, revents);
  if (rc > 0)
    return true;
  result.status = rc == 0 ? read_status::timeout : read_status::error;
  result.error = rc == 0 ? 0 : errno;
  return false;
}

/// Reads until `limit` bytes have arrived or the stream ends.
read_result read_until(int fd, size_t limit, milliseconds timeout) {
  read_result result;
  while (result.bytes.size() < limit) {
    short revents = 0;
    if (!await_event(fd, POLLIN, timeout, revents, result))
      return result;
    if (!receive(fd, result, limit - result.bytes.size(), MSG_DONTWAIT))
      return result;
  }
  result.status = read_status::complete;
  return result;
}

} // namespace

std::string describe_exit(int code) {
  if (code == exit_timeout)
    return "no exit before the watchdog";
  if (code >= exit_by_signal) {
    auto sig = code - exit_by_signal;
    return "killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig)
           + ")";
  }
  return "exit code " + std::to_string(code);
}

// -- unique_fd ----------------------------------------------------------------

unique_fd& unique_fd::operator=(unique_fd&& other) noexcept {
  if (this != &other)
    reset(other.release());
  return *this;
}

unique_fd::~unique_fd() {
  reset();
}

int unique_fd::release() noexcept {
  auto fd = fd_;
  fd_ = -1;
  return fd;
}

void unique_fd::reset(int fd) noexcept {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = fd;
}

// -- process ------------------------------------------------------------------

process::process(const std::string& program,
                 const std::vector<std::string>& args)
    : process(program, args, process_options{}) {
  // nop
}

process::process(const std::string& program,
                 const std::vector<std::string>& args,
                 const process_options& options) {
  command_ = program;
  for (auto& arg : args)
    command_ += " " + arg;
  auto fail = [this](const char* what) {
    err_text_ = "cannot start " + command_ + ": " + what + ": "
                + std::strerror(errno) + "\n";
    exited_ = true;
    exit_code_ = 127;
  };
  // Every descriptor of ours is close-on-exec: the child inherits only the
  // three it gets through dup2.
  int out_pipe[2];
  int err_pipe[2];
  int exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    fail("pipe2");
    return;
  }
  unique_fd out_read{out_pipe[0]};
  unique_fd out_write{out_pipe[1]};
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    fail("pipe2");
    return;
  }
  unique_fd err_read{err_pipe[0]};
  unique_fd err_write{err_pipe[1]};
  // Reports a failed exec: the write end closes on a successful one.
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    fail("pipe2");
    return;
  }
  unique_fd exec_read{exec_pipe[0]};
  unique_fd exec_write{exec_pipe[1]};
  unique_fd dev_null{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  if (!dev_null) {
    fail("open /dev/null");
    return;
  }
  // Everything the child needs is prepared here: after fork() it may only
  // make async-signal-safe calls (the test process has threads).
  std::vector<std::string> argv_strings;
  argv_strings.push_back(program);
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_strings.size() + 1);
  for (auto& str : argv_strings)
    argv.push_back(str.data());
  argv.push_back(nullptr);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  // The environment: the test's own, then `options.environment`, then
  // socket activation's variables; LISTEN_PID's digits are written by the
  // child into room kept for them.
  std::vector<std::string> env_strings;
  auto replaced = [&options](std::string_view entry) {
    auto name = entry.substr(0, entry.find('=') + 1);
    for (auto& x : options.environment)
      if (x.compare(0, name.size(), name) == 0)
        return true;
    return !options.listen_fds.empty()
           && (name == "LISTEN_FDS=" || name == "LISTEN_PID="
               || name == "LISTEN_FDNAMES=");
  };
  for (auto** e = environ; *e != nullptr; ++e)
    if (!replaced(*e))
      env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), options.environment.begin(),
                     options.environment.end());
  constexpr size_t pid_digits = 20;
  size_t listen_pid_index = 0;
  if (!options.listen_fds.empty()) {
    env_strings.push_back("LISTEN_FDS="
                          + std::to_string(options.listen_fds.size()));
    listen_pid_index = env_strings.size();
    env_strings.push_back("LISTEN_PID=" + std::string(pid_digits, '\0'));
  }
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& str : env_strings)
    envp.push_back(str.data());
  envp.push_back(nullptr);
  auto parent = ::getpid();
  auto pid = ::fork();
  if (pid < 0) {
    fail("fork");
    return;
  }
  if (pid == 0) {
    // Dies with the test process, even when it aborts.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent)
      ::_exit(127);
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP)
        ::sigaction(sig, &default_action, nullptr);
    ::sigprocmask(SIG_SETMASK, &no_signals, nullptr);
    // Before the exec: the group exists when the program starts.
    if (options.own_process_group && ::setpgid(0, 0) != 0) {
      int err = errno; // reported as a failed exec
      auto ignored = ::write(exec_write.get(), &err, sizeof(err));
      static_cast<void>(ignored);
      ::_exit(127);
    }
    if (options.working_directory
        && ::chdir(options.working_directory->c_str()) != 0) {
      int err = errno; // reported as a failed exec
      auto ignored = ::write(exec_write.get(), &err, sizeof(err));
      static_cast<void>(ignored);
      ::_exit(127);
    }
    if (options.open_files) {
      rlimit lim{};
      lim.rlim_cur = static_cast<rlim_t>(*options.open_files);
      lim.rlim_max = lim.rlim_cur;
      if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        int err = errno; // reported as a failed exec
        auto ignored = ::write(exec_write.get(), &err, sizeof(err));
        static_cast<void>(ignored);
        ::_exit(127);
      }
    }
    // Descriptors the test process inherited without close-on-exec (from
    // ctest or a shell) do not reach the server either. Best effort: the
    // call needs Linux 5.11.
    ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    if (::dup2(dev_null.get(), STDIN_FILENO) < 0
        || ::dup2(out_write.get(), STDOUT_FILENO) < 0
        || ::dup2(err_write.get(), STDERR_FILENO) < 0)
      ::_exit(127);
    if (!options.listen_fds.empty()) {
      // Out of the way first (a passed descriptor may be 3 or 4 already),
      // then to 3, 4, ... without close-on-exec.
      constexpr int high = 1000;
      auto count = static_cast<int>(options.listen_fds.size());
      for (int i = 0; i < count; ++i)
        if (::fcntl(options.listen_fds[static_cast<size_t>(i)], F_DUPFD_CLOEXEC,
                    high + i)
            != high + i)
          ::_exit(127);
      for (int i = 0; i < count; ++i)
        if (::dup2(high + i, 3 + i) < 0)
          ::_exit(127);
      // LISTEN_PID=<this pid>, with async-signal-safe calls only.
      char* digits = envp[listen_pid_index] + std::strlen("LISTEN_PID=");
      char tmp[pid_digits];
      size_t n = 0;
      for (auto self = static_cast<unsigned long>(::getpid()); self > 0;
           self /= 10)
        tmp[n++] = static_cast<char>('0' + self % 10);
      for (size_t i = 0; i < n; ++i)
        digits[i] = tmp[n - 1 - i];
      digits[n] = '\0';
    }
    ::execve(argv[0], argv.data(), envp.data());
    int err = errno;
    auto ignored = ::write(exec_write.get(), &err, sizeof(err));
    static_cast<void>(ignored);
    ::_exit(127);
  }
  out_write.reset();
  err_write.reset();
  exec_write.reset();
  int exec_error = 0;
  ssize_t n;
  do {
    n = ::read(exec_read.get(), &exec_error, sizeof(exec_error));
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      // retry
    }
    errno = exec_error;
    fail("exec");
    return;
  }
  pid_ = pid;
  ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_read.get(), F_SETFL, O_NONBLOCK);
  out_ = std::move(out_read);
  err_ = std::move(err_read);
  reader_ = std::thread{[this] { read_output(); }};
}

process::~process() {
  if (pid_ <= 0)
    return;
  {
    // Reaping happens under this lock, so pid_ still names our child here.
    std::lock_guard<std::mutex> guard{mtx_};
    if (!exited_)
      ::kill(pid_, SIGKILL);
  }
  reader_.join();
}

void process::read_output() {
  pollfd fds[2] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}};
  std::string* texts[2] = {&out_text_, &err_text_};
  char buf[4096];
  int open = 2;
  while (open > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      for (;;) {
        auto n = ::read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          std::lock_guard<std::mutex> guard{mtx_};
          texts[i]->append(buf, static_cast<size_t>(n));
          cv_.notify_all();
          continue;
        }
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
          break;
        fds[i].fd = -1; // end of file (or a broken pipe)
        --open;
        break;
      }
    }
  }
  // Both pipes closed: the child has exited or is about to. Wait for it
  // without reaping, so that the pid stays ours until exited_ is set.
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0
         && errno == EINTR) {
    // retry
  }
  std::lock_guard<std::mutex> guard{mtx_};
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    // retry
  }
  if (WIFEXITED(status))
    exit_code_ = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    exit_code_ = exit_by_signal + WTERMSIG(status);
  exited_ = true;
  cv_.notify_all();
}

std::optional<uint16_t> process::wait_listening(milliseconds timeout) {
  static constexpr std::string_view prefix = "listening on ";
  std::optional<uint16_t> result;
  auto parse = [&] {
    // The contract: the first (and only) line of standard output.
    auto eol = out_text_.find('\n');
    if (eol == std::string::npos)
      return exited_;
    std::string_view line{out_text_.data(), eol};
    if (line.substr(0, prefix.size()) != prefix)
      return true;
    auto address = line.substr(prefix.size());
    address = address.substr(0, address.find(' '));
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos)
      return true;
    std::string digits{address.substr(colon + 1)};
    if (digits.empty() || digits.size() > 5
        || digits.find_first_not_of("0123456789") != std::string::npos)
      return true;
    auto port = std::strtoul(digits.c_str(), nullptr, 10);
    if (port > 0 && port <= 65535)
      result = static_cast<uint16_t>(port);
    return true;
  };
  std::unique_lock<std::mutex> guard{mtx_};
  cv_.wait_until(guard, steady_clock::now() + timeout, parse);
  return result;
}

bool process::wait_stderr(std::string_view text, size_t count,
                          milliseconds timeout) {
  std::unique_lock<std::mutex> guard{mtx_};
  auto found = [&] { return count_occurrences(err_text_, text) >= count; };
  cv_.wait_until(guard, steady_clock::now() + timeout,
                 [&] { return found() || exited_; });
  return found();
}

size_t process::stderr_count(std::string_view text) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return count_occurrences(err_text_, text);
}

std::string process::stdout_text() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return out_text_;
}

std::string process::stderr_text() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return err_text_;
}

bool process::signal(int sig) {
  std::lock_guard<std::mutex> guard{mtx_};
  return !exited_ && ::kill(pid_, sig) == 0;
}

bool process::exited() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return exited_;
}

int process::wait_exit(milliseconds timeout) {
  std::unique_lock<std::mutex> guard{mtx_};
  if (!cv_.wait_until(guard, steady_clock::now() + timeout,
                      [this] { return exited_; }))
    return exit_timeout;
  return exit_code_;
}

// -- clients ------------------------------------------------------------------

namespace {

/// Connects a new socket of `family` to `addr` with a blocking connect.
connect_result connect_to(int family, const sockaddr* addr, socklen_t len,
                          int receive_buffer) {
  connect_result result;
  unique_fd fd{::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd) {
    result.error = errno;
    return result;
  }
  if (receive_buffer > 0
      && ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer,
                      sizeof(receive_buffer))
           != 0) {
    result.error = errno;
    return result;
  }
  if (::connect(fd.get(), addr, len) != 0) {
    result.error = errno;
    return result;
  }
  result.fd = std::move(fd);
  return result;
}

} // namespace

connect_result connect_loopback(uint16_t port, int receive_buffer) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return connect_to(AF_INET, reinterpret_cast<const sockaddr*>(&addr),
                    sizeof(addr), receive_buffer);
}

connect_result connect_loopback_v6(uint16_t port) {
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(port);
  addr.sin6_addr = in6addr_loopback;
  return connect_to(AF_INET6, reinterpret_cast<const sockaddr*>(&addr),
                    sizeof(addr), 0);
}

bool set_nonblocking(int fd) {
  auto flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

std::string read_result::ending() const {
  switch (status) {
    case read_status::complete:
      return "complete";
    case read_status::eof:
      return "clean EOF";
    case read_status::error:
      return std::string{"error: "} + std::strerror(error);
    case read_status::timeout:
      break;
  }
  return "timeout";
}

bool send_all(int fd, std::string_view bytes, milliseconds timeout) {
  while (!bytes.empty()) {
    short revents = 0;
    auto rc = poll_one(fd, POLLOUT, timeout, revents);
    if (rc == 0) {
      errno = ETIMEDOUT;
      return false;
    }
    if (rc < 0)
      return false;
    auto n = ::send(fd, bytes.data(), std::min(bytes.size(), chunk_size),
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
      bytes.remove_prefix(static_cast<size_t>(n));
    else if (n < 0 && !would_block(errno))
      return false;
  }
  return true;
}

read_result read_exactly(int fd, size_t n, milliseconds timeout) {
  return read_until(fd, n, timeout);
}

read_result read_until_eof(int fd, milliseconds timeout) {
  return read_until(fd, std::string::npos, timeout);
}

read_result read_through(int fd, std::string_view delimiter,
                         milliseconds timeout) {
  read_result result;
  auto found = [&] {
    auto& bytes = result.bytes;
    return !delimiter.empty() && bytes.size() >= delimiter.size()
           && std::string_view{bytes}.substr(bytes.size() - delimiter.size())
                == delimiter;
  };
  while (!found()) {
    auto byte = read_until(fd, 1, timeout);
    result.bytes += byte.bytes;
    if (byte.status != read_status::complete) {
      result.status = byte.status;
      result.error = byte.error;
      return result;
    }
  }
  result.status = read_status::complete;
  return result;
}

read_result exchange(int fd, std::string_view data, milliseconds timeout) {
  read_result result;
  size_t sent = 0;
  while (result.bytes.size() < data.size()) {
    short events = POLLIN;
    if (sent < data.size())
      events |= POLLOUT;
    short revents = 0;
    if (!await_event(fd, events, timeout, revents, result))
      return result;
    if ((revents & POLLOUT) != 0 && sent < data.size()) {
      auto n = ::send(fd, data.data() + sent,
                      std::min(data.size() - sent, chunk_size), MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && !would_block(errno)) {
        result.status = read_status::error;
        result.error = errno;
        return result;
      }
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0
        && !receive(fd, result, chunk_size, 0))
      return result;
  }
  result.status = read_status::complete;
  return result;
}

bool wait_readable(int fd, milliseconds timeout) {
  short revents = 0;
  auto rc = poll_one(fd, POLLIN, timeout, revents);
  if (rc < 0) {
    // Not a timeout: a check that expects no input must not pass on it.
    std::fprintf(stderr, "wait_readable: poll failed: %s\n",
                 std::strerror(errno));
    std::abort();
  }
  return rc > 0;
}

std::optional<size_t> send_until_stuck(int fd,
                                       const std::function<std::string()>& next,
                                       milliseconds quiet,
                                       milliseconds timeout) {
  std::string pending;
  size_t total = 0;
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    if (pending.empty()) {
      pending = next();
      if (pending.empty())
        return total;
    }
    if (steady_clock::now() > deadline) {
      errno = ETIMEDOUT; // the server never stopped reading
      return std::nullopt;
    }
    auto n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      total += static_cast<size_t>(n);
      pending.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      return std::nullopt;
    // Full. Still full after `quiet`: the server has stopped reading.
    short revents = 0;
    auto rc = poll_one(fd, POLLOUT, quiet, revents);
    if (rc == 0)
      return total;
    if (rc < 0)
      return std::nullopt;
  }
}

std::optional<size_t> flood(int fd, milliseconds quiet) {
  size_t offset = 0;
  auto next = [&offset] {
    auto chunk = pattern(offset, chunk_size);
    offset += chunk.size();
    return chunk;
  };
  return send_until_stuck(fd, next, quiet);
}

stream_result
stream_echo(int fd, size_t base, size_t chunk, size_t window,
            const std::function<void(const stream_result&)>& progress,
            milliseconds timeout) {
  stream_result result;
  auto& received = result.echo.bytes;
  for (;;) {
    progress(result);
    short events = POLLIN;
    if (result.send_error == 0 && result.sent - received.size() < window)
      events |= POLLOUT;
    short revents = 0;
    if (!await_event(fd, events, timeout, revents, result.echo))
      return result; // the timeout, or poll's error
    if ((revents & POLLOUT) != 0) {
      // The pattern is a function of the position: a short send just
      // continues from where it ended.
      auto bytes = pattern(base + result.sent, chunk);
      auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0)
        result.sent += static_cast<size_t>(n);
      else if (n < 0 && !would_block(errno))
        result.send_error = errno; // reading on tells how the stream ended
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0
        && !receive(fd, result.echo, chunk_size, 0))
      return result;
  }
}

std::string pattern(size_t offset, size_t n) {
  std::string result;
  result.resize(n);
  for (size_t i = 0; i < n; ++i) {
    // SplitMix64's finalizer: every byte depends on its whole position.
    uint64_t x = offset + i;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    result[i] = static_cast<char>(static_cast<unsigned char>(x));
  }
  return result;
}

size_t first_difference(std::string_view x, std::string_view y) {
  auto n = std::min(x.size(), y.size());
  auto mismatch = std::mismatch(x.begin(), x.begin() + n, y.begin());
  return static_cast<size_t>(mismatch.first - x.begin());
}

size_t count_occurrences(std::string_view haystack, std::string_view text) {
  if (text.empty())
    return 0;
  size_t result = 0;
  for (auto pos = haystack.find(text); pos != std::string_view::npos;
       pos = haystack.find(text, pos + text.size()))
    ++result;
  return result;
}

} // namespace quiesce::test

namespace quiesce::test {

connect_result connect_small_segments(uint16_t port) {
  connect_result result;
  unique_fd conn{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  int rcvbuf = 4096;
  int mss = 536;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!conn
      || ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
                      sizeof(rcvbuf))
           != 0
      || ::setsockopt(conn.get(), IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss))
           != 0
      || ::connect(conn.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
           != 0) {
    result.error = errno;
    return result;
  }
  result.fd = std::move(conn);
  return result;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> result;
  std::error_code ec;
  std::filesystem::directory_iterator tasks{
    "/proc/" + std::to_string(pid) + "/task", ec};
  if (ec)
    return result;
  for (auto& task : tasks) {
    std::ifstream in{task.path() / "children"};
    pid_t child = 0;
    while (in >> child)
      result.push_back(child);
  }
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

} // namespace quiesce::test
