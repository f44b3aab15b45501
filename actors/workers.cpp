#include "actors/workers.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "caf/actor_system.hpp"

#include "actors/activation.hpp"
#include "actors/master_process.hpp"
#include "actors/notify.hpp"
#include "actors/process.hpp"
#include "quiesce/log.hpp"
#include "quiesce/options.hpp"

extern char** environ;

namespace quiesce {

namespace {

/// Reads what the master wrote for this worker (worker_payload), from the
/// start of `fd`.
std::string read_all(int fd) {
  std::string result;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    result.append(buf, static_cast<size_t>(n));
    if (result.size() > 4 * 1024 * 1024)
      break;
  }
  return result;
}

/// Parses "ID:PORT:LISTEN_FD:SECRET_FD".
bool parse_link(const char* text, uint32_t& id, uint16_t& port, int& lfd,
                int& sfd) {
  std::string_view rest{text};
  auto next = [&](auto& out) {
    auto colon = rest.find(':');
    auto part = rest.substr(0, colon);
    auto [ptr, ec]
      = std::from_chars(part.data(), part.data() + part.size(), out);
    if (ec != std::errc{} || ptr != part.data() + part.size() || part.empty())
      return false;
    rest = colon == std::string_view::npos ? std::string_view{}
                                           : rest.substr(colon + 1);
    return true;
  };
  return next(id) && next(port) && next(lfd) && next(sfd) && rest.empty()
         && id > 0 && port > 0 && lfd > 2 && sfd > 2;
}

/// Parses worker_payload's text into `link`.
bool parse_payload(std::string_view text, worker_link& link) {
  auto line = [&text](std::string_view& out) {
    auto eol = text.find('\n');
    if (eol == std::string_view::npos)
      return false;
    out = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    return true;
  };
  std::string_view secret;
  std::string_view found;
  std::string_view path;
  if (!line(secret) || !line(found) || !line(path) || secret.empty()
      || (found != "0" && found != "1"))
    return false;
  link.secret = std::string{secret};
  link.config.found = found == "1";
  link.config.path = std::string{path};
  link.config.text = std::string{text};
  return true;
}

} // namespace

std::string worker_payload(const std::string& secret,
                           const config_file& config) {
  return secret + "\n" + (config.found ? "1" : "0") + "\n" + config.path + "\n"
         + config.text;
}

/// Starts worker `id` from this process's own binary: the same arguments,
/// the listening socket and a memory file holding `payload` (the secret and
/// the configuration: worker_payload) inherited, and
/// QUIESCE_WORKER naming them. Its pid, or -1 with `error` set.
pid_t spawn_worker_process(uint32_t id, uint16_t port, int listen_fd,
                           bool passed_socket, const std::string& payload,
                           const std::vector<std::string>& args,
                           std::string& error) {
  // A memory file, not a pipe: the config text may exceed a pipe's
  // capacity, and nobody reads before the exec.
  int sfd = ::memfd_create("quiesce-worker", MFD_CLOEXEC);
  if (sfd < 0) {
    error = std::string{"memfd_create: "} + std::strerror(errno);
    return -1;
  }
  const char* p = payload.data();
  auto left = payload.size();
  while (left > 0) {
    auto n = ::write(sfd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      error = std::string{"writing its secret and configuration: "}
              + std::strerror(errno);
      ::close(sfd);
      return -1;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // Everything the child needs is built before the fork: between fork and
  // exec a child of a threaded process may only make async-signal-safe
  // calls.
  std::vector<std::string> arg_text{"quiesce: worker " + std::to_string(id)};
  arg_text.insert(arg_text.end(), args.begin(), args.end());
  std::vector<char*> child_argv;
  for (auto& x : arg_text)
    child_argv.push_back(x.data());
  child_argv.push_back(nullptr);
  std::vector<std::string> env_text;
  std::string prefix = std::string{worker_environment} + "=";
  // The master's own: systemd's notify socket and watchdog (only the
  // master notifies: NotifyAccess=main drops a worker's messages, and a
  // worker's watchdog pings would hide a wedged master).
  auto masters_own = [](const char* entry) {
    for (auto* name : notify::own_variables) {
      auto len = std::strlen(name);
      if (std::strncmp(entry, name, len) == 0 && entry[len] == '=')
        return true;
    }
    auto len = std::strlen(passed_socket_environment);
    return std::strncmp(entry, passed_socket_environment, len) == 0
           && entry[len] == '=';
  };
  for (auto** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0
        && !masters_own(*e))
      env_text.emplace_back(*e);
  if (passed_socket)
    env_text.push_back(std::string{passed_socket_environment} + "=1");
  env_text.push_back(prefix + std::to_string(id) + ":" + std::to_string(port)
                     + ":" + std::to_string(listen_fd) + ":"
                     + std::to_string(sfd));
  std::vector<char*> child_env;
  for (auto& x : env_text)
    child_env.push_back(x.data());
  child_env.push_back(nullptr);
  static const char exec_failed[] = "quiesce: cannot exec /proc/self/exe "
                                    "for a worker\n";
  auto pid = ::fork();
  if (pid == 0) {
    // Only the socket and the memory file pass the exec: the master's
    // other descriptors (its control plane, CAF's epoll) are its own.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::fcntl(listen_fd, F_SETFD, 0);
    ::fcntl(sfd, F_SETFD, 0);
    ::execve("/proc/self/exe", child_argv.data(), child_env.data());
    auto ignored = ::write(STDERR_FILENO, exec_failed, sizeof(exec_failed) - 1);
    (void)ignored;
    ::_exit(exit_cannot_run);
  }
  auto err = errno;
  ::close(sfd);
  if (pid < 0)
    error = std::string{"fork: "} + std::strerror(err);
  return pid;
}

size_t worker_count(const server_config& cfg) {
  auto n = options::parse_workers(cfg.workers).value_or(1);
  if (n == 0) {
    n = std::min(server_config::usable_cpus(), options::max_workers);
    // Each worker holds at least one connection: `auto` never asks for
    // more workers than --max-connections allows.
    if (cfg.max_connections > 0)
      n = std::min(n, cfg.max_connections);
  }
  return n;
}

std::optional<worker_link> take_worker_environment(listener& lst,
                                                   std::string& error) {
  auto* text = std::getenv(worker_environment);
  if (text == nullptr)
    return std::nullopt;
  worker_link link;
  int lfd = -1;
  int sfd = -1;
  if (!parse_link(text, link.id, link.master_port, lfd, sfd)) {
    error = std::string{worker_environment}
            + " is malformed (a master sets it for its workers; unset it to "
              "run a server)";
    return std::nullopt;
  }
  auto payload = read_all(sfd);
  ::close(sfd);
  if (!parse_payload(payload, link)) {
    error = "worker " + std::to_string(link.id)
            + ": no secret and configuration from the master on descriptor "
            + std::to_string(sfd);
    return std::nullopt;
  }
  int listening = 0;
  socklen_t size = sizeof(listening);
  if (::getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0
      && listening == 0) {
    // The server's stop reached the socket between the master's fork and
    // this start (a reload or a restart racing a stop): nothing to serve.
    ::close(lfd);
    lst = listener{};
    return link;
  }
  lst = adopt_listener(lfd);
  if (lst.fd < 0) {
    error = "worker " + std::to_string(link.id) + ": " + lst.error;
    return std::nullopt;
  }
  // The master's socket was passed by systemd (activation.hpp).
  if (auto* passed = std::getenv(passed_socket_environment);
      passed != nullptr && std::string_view{passed} == "1")
    lst.passed = true;
  // Its own workers, if it ever had any, would get their own variable.
  ::unsetenv(worker_environment);
  ::unsetenv(passed_socket_environment);
  return link;
}

size_t worker_share(size_t total, uint32_t id, size_t count) {
  if (count == 0 || id == 0)
    return total;
  auto share = total / count + ((id - 1) % count < total % count ? 1 : 0);
  return std::max<size_t>(share, 1);
}

int run_master(server_config& cfg, listener& lst, listener& admin_lst,
               const sigset_t& signals, size_t count, int argc, char** argv) {
  teardown_watchdog watchdog;
  int code = exit_cannot_run;
  {
    run_helpers_as_batch();
    caf::actor_system sys{cfg};
    {
      master_process master{sys, cfg, lst, admin_lst, count, argc, argv};
      code = master.run(signals);
    }
    watchdog.arm(code);
  }
  ::close(lst.fd);
  lst.fd = -1;
  log::flush(std::chrono::seconds(1));
  return code;
}

} // namespace quiesce
