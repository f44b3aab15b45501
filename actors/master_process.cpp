#include "actors/master_process.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <iostream>
#include <mutex>
#include <sys/wait.h>
#include <unistd.h>

#include "caf/send.hpp"

#include "caf/io/middleman.hpp"

#include "actors/control_plane.hpp"
#include "actors/notify.hpp"
#include "actors/services.hpp"
#include "actors/process.hpp"
#include "actors/workers.hpp"
#include "quiesce/log.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "master";

/// "exited with code 3", "killed by SIGKILL".
std::string describe_status(int status) {
  if (WIFEXITED(status))
    return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by " + signal_name(WTERMSIG(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

} // namespace

std::string master_process::worker_name(uint32_t id) {
  return "worker " + std::to_string(id);
}

master_process::master_process(caf::actor_system& sys, server_config& cfg,
                               listener& lst, listener& admin_lst, size_t count,
                               int argc, char** argv)
    : sys_(sys), cfg_(cfg), lst_(lst), admin_lst_(admin_lst), count_(count),
      self_(sys), program_(argv[0]), protocol_(cfg.protocol),
      config_(cfg.config), drain_timeout_(cfg.drain_timeout),
      ready_timeout_(cfg.workers_ready_timeout),
      ids_book_(std::make_shared<std::set<uint32_t>>()),
      ids_mtx_(std::make_shared<std::mutex>()), seq_(cfg.stop_delay) {
  args_.assign(argv + 1, argv + argc);
}

master_process::~master_process() {
  for (auto& kvp : waiters_)
    if (kvp.second.joinable())
      kvp.second.join();
}

int master_process::run(const sigset_t& signals) {
  // The shared services run here, started before any worker can ask for
  // one, stopped once every worker has ended.
  auto directory = std::make_shared<service_directory>();
  services_config svc_cfg;
  for (auto& decl : declared_services())
    if (decl.options.shared)
      svc_cfg.services.push_back(decl);
  svc_cfg.directory = directory;
  svc_cfg.on_failure = [main = caf::actor{self_}](const std::string& why) {
    caf::anon_send(main, service_failed_atom_v, why);
  };
  services_ = sys_.spawn<caf::detached>(services_main, std::move(svc_cfg));
  self_->monitor(services_);
  if (auto code = start_services(self_, services_)) {
    services_alive_ = false;
    return *code;
  }
  secret_ = make_secret();
  master_config mcfg;
  mcfg.services = directory;
  mcfg.secret = secret_;
  mcfg.expects = [book = ids_book_, mtx = ids_mtx_](uint32_t id) {
    std::lock_guard<std::mutex> guard{*mtx};
    return book->count(id) > 0;
  };
  // Each worker's drain, then a margin for its answer to travel.
  mcfg.stop_deadline = drain_timeout_ + std::chrono::seconds(5);
  mcfg.linger = true;
  mcfg.observer = [main = caf::actor{self_}](const master_event& ev) {
    caf::anon_send(main, ev);
  };
  // systemd (notify.hpp): the STATUS line, and the watchdog's pings stop
  // while a worker does not answer the polls (its event loop is wedged: the
  // polls travel through it) as well as when the master's own loop does
  // not turn. A whole stuck server then gets restarted, not only a stuck
  // master.
  auto answering = std::make_shared<std::atomic<bool>>(true);
  if (notify::enabled())
    mcfg.on_poll = [answering](uint32_t open, bool all) {
      answering->store(all);
      notify::connections(open);
    };
  auto published = start_master(sys_, std::move(mcfg));
  if (!published) {
    std::cerr << "quiesce: cannot start the workers' control plane: "
              << to_string(published.error()) << std::endl;
    self_->send(services_, stop_atom_v);
    self_->receive([](services_report&) {});
    return exit_cannot_run;
  }
  master_ = published->handle;
  port_ = published->port;
  self_->monitor(master_);
  log::info(component,
            "starting " + std::to_string(count_) + " workers on " + lst_.address
              + " (control plane on 127.0.0.1:" + std::to_string(port_) + ")");
  // What must change the moment the stop begins (the delay's start, or the
  // stop), once: systemd is told STOPPING=1, `/readyz` answers 503.
  // Before anything can begin the stop (a worker that cannot start).
  seq_.on_stop_begins([this](const std::string& why) {
    notify::stopping(why);
    admin_.stopping();
  });
  if (std::string error;
      admin_lst_.fd >= 0
      && !admin_.start(sys_,
                       admin_setup{admin_lst_, nullptr, master_,
                                   static_cast<uint32_t>(count_)},
                       error))
    log::error(component, error + "; serving without it");
  start_generation(count_, current_);
  self_->delayed_send(self_, ready_timeout_, timer_atom_v,
                      timer_token(ready_timer, generation_));
  signal_thread signal_watch{signals, caf::actor{self_}};
  notify::watchdog_pinger pinger{sys_.middleman().backend(),
                                 [answering] { return answering->load(); }};
  loop();
  // Last: it answered throughout the drain.
  admin_.close();
  return exit_code();
}

bool master_process::spawn(uint32_t id, uint32_t generation) {
  std::string error;
  auto pid
    = spawn_worker_process(id, port_, lst_.fd, lst_.passed,
                           worker_payload(secret_, config_), args_, error);
  if (pid < 0) {
    log::error(component, "cannot start " + worker_name(id) + ": " + error);
    return false;
  }
  children_[pid] = child{id, generation, false};
  waiters_[pid] = std::thread([pid, main = caf::actor{self_}] {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      // again
    }
    caf::anon_send(main, exited_atom_v, static_cast<int32_t>(pid), status);
  });
  log::info(component, worker_name(id) + " started: pid " + std::to_string(pid)
                         + ", generation " + std::to_string(generation));
  return true;
}

void master_process::start_generation(size_t count, std::set<uint32_t>& ids) {
  {
    std::lock_guard<std::mutex> guard{*ids_mtx_};
    for (size_t i = 0; i < count; ++i) {
      ids.insert(next_id_);
      ids_book_->insert(next_id_++);
    }
  }
  for (auto id : ids)
    if (!spawn(id, generation_)) {
      if (reload_)
        reload_failed(worker_name(id) + " could not be started");
      else {
        code_ = exit_cannot_run;
        begin_stop("a worker could not be started");
      }
      return;
    }
}

void master_process::announce() {
  announced_ = true;
  // Before the line: a request sent after it finds the admin ready.
  admin_.ready();
  std::cout << "listening on " << lst_.address << " protocol=" << protocol_
            << " workers=" << count_
            << (admin_.address().empty() ? "" : " admin=" + admin_.address())
            << std::endl;
  if (!admin_.address().empty())
    log::info(component, "admin endpoint on " + admin_.address());
  log::info(component, "listening on " + lst_.address + " (protocol "
                         + protocol_ + ", " + std::to_string(count_)
                         + " workers)");
  notify::ready(lst_.address, count_);
}

void master_process::on_event(const master_event& ev) {
  using kind = master_event::kind;
  if (ev.what == kind::given_up) {
    // It cannot act on the force (stopped by a signal, wedged): ended now,
    // as the force promised its connections.
    for (auto& [pid, c] : children_)
      if (c.id == ev.worker) {
        log::error(component, worker_name(c.id) + " (pid " + std::to_string(pid)
                                + ") did not act on the force; killing it");
        ::kill(pid, SIGKILL);
      }
    return;
  }
  if (ev.what == kind::gone) {
    ready_.erase(ev.worker);
    admin_.workers(static_cast<uint32_t>(ready_.size()), restarts_total_);
    // After the admin's update: a test waits on this line, then scrapes.
    log::debug(component, worker_name(ev.worker) + " no longer serves; "
                            + std::to_string(ready_.size()) + " serve");
    return;
  }
  if (ev.what != kind::registered)
    return;
  ready_.insert(ev.worker);
  admin_.workers(static_cast<uint32_t>(ready_.size()), restarts_total_);
  auto i = restarted_at_.find(ev.worker);
  if (i != restarted_at_.end()) {
    log::info(component, worker_name(ev.worker) + " serves again, "
                           + log::millis(clock_type::now() - i->second)
                           + " after its end");
    restarted_at_.erase(i);
  }
  if (stopping_)
    return;
  if (!announced_) {
    bool all = true;
    for (auto id : current_)
      all = all && ready_.count(id) > 0;
    if (all)
      announce();
    return;
  }
  if (reload_ && reload_->ids.count(ev.worker) > 0) {
    reload_->ready.insert(ev.worker);
    if (reload_->ready.size() == reload_->ids.size())
      reload_ready();
  }
}

void master_process::on_exit(pid_t pid, int status) {
  // Its watcher has sent this and returns: joined now, not at the end.
  if (auto w = waiters_.find(pid); w != waiters_.end()) {
    if (w->second.joinable())
      w->second.join();
    waiters_.erase(w);
  }
  auto i = children_.find(pid);
  if (i == children_.end())
    return;
  auto c = i->second;
  children_.erase(i);
  auto what = worker_name(c.id) + " (pid " + std::to_string(pid) + ") "
              + describe_status(status);
  auto clean = WIFEXITED(status)
               && (WEXITSTATUS(status) == exit_clean
                   || WEXITSTATUS(status) == exit_forced);
  if (stopping_ || c.retired) {
    if (clean)
      log::info(component, what);
    else
      log::warning(component, what);
    if (c.retired) {
      std::lock_guard<std::mutex> guard{*ids_mtx_};
      ids_book_->erase(c.id);
    }
    return;
  }
  if (!announced_) {
    log::error(component, what + " before every worker was ready");
    code_ = exit_cannot_run;
    begin_stop("the workers could not start");
    return;
  }
  if (reload_ && reload_->ids.count(c.id) > 0
      && reload_->ready.count(c.id) == 0) {
    log::error(component, what + " before it was ready");
    reload_failed(worker_name(c.id) + " of the new generation ended");
    std::lock_guard<std::mutex> guard{*ids_mtx_};
    ids_book_->erase(c.id);
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
  ++restarts_total_;
  log::warning(component, what + "; starting it again");
  restarted_at_[c.id] = now;
  if (!spawn(c.id, c.generation)) {
    code_ = exit_cannot_run;
    begin_stop("a worker could not be started again");
  }
}

void master_process::on_timer(uint64_t token) {
  auto kind = token >> 32;
  auto subject = static_cast<uint32_t>(token & 0xffffffffu);
  if (kind == ready_timer) {
    if (stopping_)
      return;
    if (!announced_ && subject == 1) {
      log::error(component,
                 std::to_string(ready_.size()) + " of " + std::to_string(count_)
                   + " workers registered within " + log::span(ready_timeout_)
                   + " (--workers-ready-timeout)");
      code_ = exit_cannot_run;
      begin_stop("the workers could not start");
    } else if (reload_ && reload_->generation == subject) {
      reload_failed("its workers did not register within "
                    + log::span(ready_timeout_) + " (--workers-ready-timeout)");
    }
    return;
  }
  auto kill_child = [&](pid_t pid, const child& c, const char* when) {
    log::error(component, worker_name(c.id) + " (pid " + std::to_string(pid)
                            + ") did not exit " + when + "; killing it");
    ::kill(pid, SIGKILL);
  };
  if (kind == stop_delay_timer) {
    on_stop_delay_over();
    return;
  }
  if (kind == retire_timer) {
    auto i = children_.find(static_cast<pid_t>(subject));
    if (i != children_.end() && i->second.retired)
      kill_child(i->first, i->second, "after its retire");
    return;
  }
  // The master's stop is over; these workers are past their own teardown
  // limit too.
  for (auto& [pid, c] : children_)
    kill_child(pid, c, "after its stop");
}

void master_process::end_master_when_done() {
  // The control plane lingers after its stop (master_config): it ends once
  // every worker process has, and the shared services stop then (the
  // workers' requests to them were answered while they drained).
  if (!stopping_ || !children_.empty())
    return;
  if (master_alive_ && report_ && !master_exit_sent_) {
    master_exit_sent_ = true;
    // (An exit message with reason `normal` is ignored by design.)
    self_->send_exit(master_, caf::exit_reason::user_shutdown);
  }
  if (services_alive_ && !services_stop_sent_ && (report_ || !master_alive_)) {
    services_stop_sent_ = true;
    self_->send(services_, stop_atom_v);
    if (forced_)
      self_->send(services_, force_atom_v);
  }
}

void master_process::loop() {
  auto arm_straggler_timer = [&] {
    if (!straggler_timer_set_) {
      straggler_timer_set_ = true;
      self_->delayed_send(
        self_, drain_timeout_ + std::chrono::seconds(3) + exit_margin,
        timer_atom_v, timer_token(straggler_timer, 0));
    }
  };
  self_->receive_while([&] {
    return master_alive_ || !children_.empty() || services_alive_;
  })([&](signal_atom, int sig) { on_signal(sig); },
     [&](master_event& ev) { on_event(ev); },
     [&](exited_atom, int32_t pid, int status) {
       on_exit(pid, status);
       end_master_when_done();
     },
     [&](shutdown_report& x) {
       report_ = x;
       notify::finished(x);
       admin_.stopped(x);
       arm_straggler_timer();
       end_master_when_done();
     },
     [&](caf::error& err) {
       log::error(component,
                  "the control plane refused the stop: " + to_string(err));
     },
     [&](timer_atom, uint64_t which) { on_timer(which); },
     [&](service_failed_atom, std::string&) {
       // Logged by the services actor already.
       code_ = exit_cannot_run;
       begin_stop("a shared service failed");
     },
     [&](services_report& x) { svc_report_ = x; },
     [&](caf::down_msg& msg) {
       if (msg.source == services_.address()) {
         services_alive_ = false;
         return;
       }
       if (msg.source != master_.address())
         return;
       master_alive_ = false;
       if (!stopping_) {
         // Its workers see it gone and stop on their own.
         log::error(component, "the control plane ended unexpectedly ("
                                 + to_string(msg.reason) + ")");
         seq_.on_other_stop("the control plane ended");
         stopping_ = true;
         code_ = exit_cannot_run;
       }
       arm_straggler_timer();
       end_master_when_done();
     });
}

int master_process::exit_code() const {
  if (code_)
    return *code_;
  if (!report_ || (svc_report_ && svc_report_->failed))
    return exit_cannot_run;
  auto forced = report_->forced > 0 || (svc_report_ && svc_report_->forced > 0);
  return forced ? exit_forced : exit_clean;
}

} // namespace quiesce
