#include "actors/workers.hpp"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <iostream>
#include <linux/close_range.h>
#include <map>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/scoped_actor.hpp"
#include "caf/send.hpp"

#include "actors/control_plane.hpp"
#include "actors/master.hpp"
#include "actors/process.hpp"
#include "quiesce/log.hpp"
#include "quiesce/options.hpp"

extern char** environ;

namespace quiesce {

namespace {

constexpr const char* component = "master";

using clock_type = std::chrono::steady_clock;

/// "exited with code 3", "killed by SIGKILL".
std::string describe_status(int status) {
  if (WIFEXITED(status))
    return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by " + signal_name(WTERMSIG(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

/// Reads the whole of a small text from `fd` (the secret's pipe).
std::string read_all(int fd) {
  std::string result;
  char buf[128];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    result.append(buf, static_cast<size_t>(n));
    if (result.size() > 1024)
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

/// A worker process being started or running.
struct child {
  uint32_t id = 0;
  clock_type::time_point started;
};

/// The master process: its workers, their restarts, and its stop.
class master_process {
public:
  master_process(caf::actor_system& sys, server_config& cfg, listener& lst,
                 size_t count, int argc, char** argv)
      : sys_(sys), cfg_(cfg), lst_(lst), count_(count), self_(sys) {
    args_.assign(argv + 1, argv + argc);
  }

  ~master_process() {
    for (auto& t : waiters_)
      if (t.joinable())
        t.join();
  }

  int run(const sigset_t& signals) {
    secret_ = make_secret();
    master_config mcfg;
    mcfg.secret = secret_;
    for (uint32_t id = 1; id <= count_; ++id)
      mcfg.expected.insert(id);
    // Each worker's drain, then a margin for its answer to travel.
    mcfg.stop_deadline = cfg_.drain_timeout + std::chrono::seconds(5);
    mcfg.linger = true;
    mcfg.observer = [main = caf::actor{self_}](const master_event& ev) {
      caf::anon_send(main, ev);
    };
    auto published = start_master(sys_, std::move(mcfg));
    if (!published) {
      std::cerr << "quiesce: cannot start the workers' control plane: "
                << to_string(published.error()) << std::endl;
      return exit_cannot_run;
    }
    master_ = published->handle;
    port_ = published->port;
    self_->monitor(master_);
    log::info(component, "starting " + std::to_string(count_) + " workers on "
                           + lst_.address + " (control plane on 127.0.0.1:"
                           + std::to_string(port_) + ")");
    for (uint32_t id = 1; id <= count_; ++id)
      if (!spawn(id)) {
        code_ = exit_cannot_run;
        begin_stop("a worker could not be started");
        break;
      }
    self_->delayed_send(self_, workers_ready_limit, timer_atom_v,
                        uint64_t{ready_timer});
    signal_thread signal_watch{signals, caf::actor{self_}};
    loop();
    return exit_code();
  }

private:
  static constexpr uint64_t ready_timer = 1;
  static constexpr uint64_t straggler_timer = 2;

  bool spawn(uint32_t id) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      log::error(component, "cannot start worker " + std::to_string(id)
                              + ": pipe: " + std::strerror(errno));
      return false;
    }
    // 32 bytes: far below the pipe's capacity, so this never blocks.
    auto text = secret_ + "\n";
    auto written = ::write(pipe_fds[1], text.data(), text.size());
    ::close(pipe_fds[1]);
    if (written != static_cast<ssize_t>(text.size())) {
      ::close(pipe_fds[0]);
      log::error(component, "cannot start worker " + std::to_string(id)
                              + ": writing its secret failed");
      return false;
    }
    // Everything the child needs is built before the fork: between fork and
    // exec a child of a threaded process may only make async-signal-safe
    // calls.
    auto title = "quiesce: worker " + std::to_string(id);
    std::vector<std::string> arg_text{title};
    arg_text.insert(arg_text.end(), args_.begin(), args_.end());
    std::vector<char*> child_argv;
    for (auto& x : arg_text)
      child_argv.push_back(x.data());
    child_argv.push_back(nullptr);
    std::vector<std::string> env_text;
    std::string prefix = std::string{worker_environment} + "=";
    for (auto** e = environ; *e != nullptr; ++e)
      if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0)
        env_text.emplace_back(*e);
    env_text.push_back(prefix + std::to_string(id) + ":" + std::to_string(port_)
                       + ":" + std::to_string(lst_.fd) + ":"
                       + std::to_string(pipe_fds[0]));
    std::vector<char*> child_env;
    for (auto& x : env_text)
      child_env.push_back(x.data());
    child_env.push_back(nullptr);
    int lfd = lst_.fd;
    int sfd = pipe_fds[0];
    static const char exec_failed[] = "quiesce: cannot exec /proc/self/exe "
                                      "for a worker\n";
    auto pid = ::fork();
    if (pid == 0) {
      // Only the socket and the secret's pipe pass the exec: the master's
      // other descriptors (its control plane, CAF's epoll) are its own.
      ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
      ::fcntl(lfd, F_SETFD, 0);
      ::fcntl(sfd, F_SETFD, 0);
      ::execve("/proc/self/exe", child_argv.data(), child_env.data());
      auto ignored
        = ::write(STDERR_FILENO, exec_failed, sizeof(exec_failed) - 1);
      (void)ignored;
      ::_exit(exit_cannot_run);
    }
    auto err = errno;
    ::close(sfd);
    if (pid < 0) {
      log::error(component, "cannot start worker " + std::to_string(id)
                              + ": fork: " + std::strerror(err));
      return false;
    }
    children_[pid] = child{id, clock_type::now()};
    waiters_.emplace_back([pid, main = caf::actor{self_}] {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        // again
      }
      caf::anon_send(main, exited_atom_v, static_cast<int32_t>(pid), status);
    });
    log::info(component, "worker " + std::to_string(id) + " started: pid "
                           + std::to_string(pid));
    return true;
  }

  void begin_stop(const std::string& why) {
    if (stopping_)
      return;
    stopping_ = true;
    log::info(component, why + ": stopping every worker");
    if (master_alive_)
      self_->send(master_, stop_atom_v);
  }

  void force(const std::string& why) {
    log::warning(component, why + ": forcing the stop");
    if (master_alive_)
      self_->send(master_, force_atom_v);
  }

  void on_signal(int sig) {
    auto name = signal_name(sig);
    if (sig == SIGHUP) {
      log::warning(component, name
                                + " received: reload is not built yet; "
                                  "ignored");
      return;
    }
    if (sig == SIGUSR1) {
      log::warning(component, name
                                + " received: ignored (the log goes to "
                                  "standard error: no file to reopen)");
      return;
    }
    if (++signals_seen_ == 1) {
      if (stopping_) {
        log::info(component, name
                               + " received: stopping already (a second "
                                 "signal forces the stop)");
        return;
      }
      begin_stop(name + " received");
      return;
    }
    force(name + " received again");
  }

  void on_event(const master_event& ev) {
    using kind = master_event::kind;
    if (ev.what == kind::registered) {
      ready_.insert(ev.worker);
      auto i = restarted_at_.find(ev.worker);
      if (i != restarted_at_.end()) {
        auto took = clock_type::now() - i->second;
        log::info(component, "worker " + std::to_string(ev.worker)
                               + " serves again, " + log::millis(took)
                               + " after its end");
        restarted_at_.erase(i);
      }
      if (!announced_ && ready_.size() == count_ && !stopping_) {
        announced_ = true;
        std::cout << "listening on " << lst_.address
                  << " protocol=" << cfg_.protocol << " workers=" << count_
                  << std::endl;
        log::info(component, "listening on " + lst_.address + " (protocol "
                               + cfg_.protocol + ", " + std::to_string(count_)
                               + " workers)");
      }
    } else if (ev.what == kind::gone) {
      ready_.erase(ev.worker);
    }
  }

  void on_exit(pid_t pid, int status) {
    auto i = children_.find(pid);
    if (i == children_.end())
      return;
    auto id = i->second.id;
    children_.erase(i);
    auto what = "worker " + std::to_string(id) + " (pid " + std::to_string(pid)
                + ") " + describe_status(status);
    if (stopping_) {
      auto clean = WIFEXITED(status)
                   && (WEXITSTATUS(status) == exit_clean
                       || WEXITSTATUS(status) == exit_forced);
      if (clean)
        log::info(component, what);
      else
        log::warning(component, what);
      return;
    }
    if (!announced_) {
      log::error(component, what + " before every worker was ready");
      code_ = exit_cannot_run;
      begin_stop("the workers could not start");
      return;
    }
    auto now = clock_type::now();
    while (!restarts_.empty() && now - restarts_.front() > restart_window)
      restarts_.pop_front();
    if (restarts_.size() >= max_restarts) {
      log::error(component, what + "; more than " + std::to_string(max_restarts)
                              + " restarts within "
                              + std::to_string(restart_window.count())
                              + "s: stopping the server (exit code 1)");
      code_ = exit_cannot_run;
      begin_stop("too many worker restarts");
      return;
    }
    restarts_.push_back(now);
    log::warning(component, what + "; starting it again");
    restarted_at_[id] = now;
    if (!spawn(id)) {
      code_ = exit_cannot_run;
      begin_stop("a worker could not be started again");
    }
  }

  void on_timer(uint64_t which) {
    if (which == ready_timer) {
      if (!announced_ && !stopping_) {
        log::error(component,
                   std::to_string(ready_.size()) + " of "
                     + std::to_string(count_) + " workers registered within "
                     + std::to_string(workers_ready_limit.count()) + "s");
        code_ = exit_cannot_run;
        begin_stop("the workers could not start");
      }
      return;
    }
    // The master's stop is over; these workers are past their own
    // teardown limit too.
    for (auto& [pid, c] : children_) {
      log::error(component, "worker " + std::to_string(c.id) + " (pid "
                              + std::to_string(pid)
                              + ") did not exit after its stop; killing it");
      ::kill(pid, SIGKILL);
    }
  }

  /// The control plane lingers after its stop (master_config): it ends
  /// once every worker process has.
  void end_master_when_done() {
    if (stopping_ && master_alive_ && report_ && children_.empty()
        && !master_exit_sent_) {
      master_exit_sent_ = true;
      // (An exit message with reason `normal` is ignored by design.)
      self_->send_exit(master_, caf::exit_reason::user_shutdown);
    }
  }

  void loop() {
    bool straggler_timer_set = false;
    auto arm_straggler_timer = [&] {
      if (!straggler_timer_set) {
        straggler_timer_set = true;
        self_->delayed_send(self_, cfg_.drain_timeout + 3s + 5s, timer_atom_v,
                            uint64_t{straggler_timer});
      }
    };
    self_->receive_while([&] { return master_alive_ || !children_.empty(); })(
      [&](signal_atom, int sig) { on_signal(sig); },
      [&](master_event& ev) { on_event(ev); },
      [&](exited_atom, int32_t pid, int status) {
        on_exit(pid, status);
        end_master_when_done();
      },
      [&](shutdown_report& x) {
        report_ = x;
        arm_straggler_timer();
        end_master_when_done();
      },
      [&](timer_atom, uint64_t which) { on_timer(which); },
      [&](caf::down_msg& msg) {
        if (msg.source != master_.address())
          return;
        master_alive_ = false;
        if (!stopping_) {
          // Its workers see it gone and stop on their own.
          log::error(component, "the control plane ended unexpectedly ("
                                  + to_string(msg.reason) + ")");
          stopping_ = true;
          code_ = exit_cannot_run;
        }
        arm_straggler_timer();
      });
  }

  int exit_code() const {
    if (code_)
      return *code_;
    if (!report_)
      return exit_cannot_run;
    return report_->forced > 0 ? exit_forced : exit_clean;
  }

  caf::actor_system& sys_;
  server_config& cfg_;
  listener& lst_;
  size_t count_;
  caf::scoped_actor self_;
  std::vector<std::string> args_;
  std::string secret_;
  master_actor master_;
  bool master_alive_ = true;
  bool master_exit_sent_ = false;
  uint16_t port_ = 0;
  std::map<pid_t, child> children_;
  std::vector<std::thread> waiters_;
  std::set<uint32_t> ready_;
  std::map<uint32_t, clock_type::time_point> restarted_at_;
  std::deque<clock_type::time_point> restarts_;
  bool announced_ = false;
  bool stopping_ = false;
  int signals_seen_ = 0;
  std::optional<int> code_;
  std::optional<shutdown_report> report_;
};

} // namespace

size_t worker_count(const server_config& cfg) {
  auto n = options::parse_workers(cfg.workers).value_or(1);
  if (n == 0)
    n = std::min(server_config::usable_cpus(), options::max_workers);
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
  auto secret = read_all(sfd);
  ::close(sfd);
  while (!secret.empty() && secret.back() == '\n')
    secret.pop_back();
  if (secret.empty()) {
    error = "worker " + std::to_string(link.id)
            + ": no secret from the master on descriptor "
            + std::to_string(sfd);
    return std::nullopt;
  }
  link.secret = std::move(secret);
  lst = adopt_listener(lfd);
  if (lst.fd < 0) {
    error = "worker " + std::to_string(link.id) + ": " + lst.error;
    return std::nullopt;
  }
  // Its own workers, if it ever had any, would get their own variable.
  ::unsetenv(worker_environment);
  return link;
}

size_t worker_share(size_t total, uint32_t id, size_t count) {
  if (count == 0 || id == 0)
    return total;
  auto share = total / count + ((id - 1) % count < total % count ? 1 : 0);
  return std::max<size_t>(share, 1);
}

int run_master(server_config& cfg, listener& lst, const sigset_t& signals,
               size_t count, int argc, char** argv) {
  teardown_watchdog watchdog;
  int code = exit_cannot_run;
  {
    run_helpers_as_batch();
    caf::actor_system sys{cfg};
    {
      master_process master{sys, cfg, lst, count, argc, argv};
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
