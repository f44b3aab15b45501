#include "quiesce/server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <sched.h>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/io/middleman.hpp"
#include "caf/io/network/multiplexer.hpp"
#include "caf/send.hpp"
#include "caf/scoped_actor.hpp"

#include "actors/acceptor.hpp"
#include "actors/activation.hpp"
#include "actors/admin_endpoint.hpp"
#include "actors/metrics.hpp"
#include "actors/control_plane.hpp"
#include "actors/service_proxy.hpp"
#include "actors/process.hpp"
#include "actors/workers.hpp"
#include "quiesce/registry.hpp"
#include "actors/config_file.hpp"
#include "actors/listener.hpp"
#include "actors/notify.hpp"
#include "actors/server_config.hpp"
#include "actors/server_wiring.hpp"
#include "actors/shared_listener.hpp"
#include "actors/stop_sequence.hpp"
#include "quiesce/log.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/options.hpp"
#include "quiesce/service.hpp"
#include "actors/services.hpp"
#include "actors/supervisor.hpp"

namespace quiesce {

namespace {

using namespace std::chrono_literals;

using config = server_config;

/// How often the STATUS line for systemd is brought up to date.
constexpr auto status_interval = std::chrono::milliseconds(500);

/// Runs the server until it has stopped; returns the exit code.
int serve(caf::actor_system& sys, const config& cfg, const sigset_t& signals,
          listener& lst, behaviour_factory factory, size_t max_connections,
          const worker_link* link, listener& admin_lst) {
  auto& mm = sys.middleman();
  favour_io_thread(mm);
  caf::scoped_actor self{sys};
  // The services first: connections may use them from their first byte.
  // The listening socket is bound already (a port in use fails before any
  // service starts), but no client is accepted before they all run.
  auto directory = std::make_shared<service_directory>();
  // A worker reaches its master first: the shared services run there.
  master_actor master;
  if (link != nullptr) {
    auto m = connect_to_master(sys, link->master_port);
    if (!m) {
      log::error("main", to_string(m.error()));
      ::close(lst.fd);
      lst.fd = -1;
      return exit_cannot_run;
    }
    master = *m;
  }
  services_config svc_cfg;
  for (auto& decl : declared_services())
    if (link == nullptr || !decl.options.shared)
      svc_cfg.services.push_back(decl);
  svc_cfg.directory = directory;
  svc_cfg.on_failure = [main = caf::actor{self}](const std::string& why) {
    caf::anon_send(main, service_failed_atom_v, why);
  };
  auto services = sys.spawn<caf::detached>(services_main, std::move(svc_cfg));
  self->monitor(services);
  if (auto code = start_services(self, services)) {
    ::close(lst.fd);
    lst.fd = -1;
    return *code;
  }
  // In a worker, a shared service is a stand-in that forwards to the one in
  // the master (service_proxy.hpp).
  std::vector<caf::actor> proxies;
  if (link != nullptr)
    for (auto& decl : declared_services())
      if (decl.options.shared) {
        auto proxy = spawn_service_proxy(
          sys, service_proxy_config{decl.name, master, link->secret});
        directory->set(decl.name, proxy, decl.handle_type);
        proxies.push_back(proxy);
      }
  // The doorman owns the descriptor now; on a shared listener it never
  // shuts the socket down (shared_listener.hpp).
  auto shared_listener = lst.shared;
  auto passed_socket = lst.passed;
  auto door = make_listener_doorman(mm.backend(), lst);
  supervisor_config sup_cfg;
  sup_cfg.drain_timeout = cfg.drain_timeout;
  sup_cfg.counters = &counters_of_process();
  if (link != nullptr) // the final counts, to the master's sums (master.hpp)
    sup_cfg.on_drained = [master, secret = link->secret,
                          id = link->id](const metrics_snapshot& x) {
      caf::anon_send(master, metrics_atom_v, secret, id, x);
    };
  if (link != nullptr)
    sup_cfg.summary = [](const shutdown_report& x) {
      return "this worker's drain is over: " + std::to_string(x.drained)
             + " drained, " + std::to_string(x.forced) + " forced, in "
             + log::millis(x.duration);
    };
  sup_cfg.broadcast_stop = event_loop_broadcast(mm);
  sup_cfg.start_acceptor = acceptor_starter(
    mm, door,
    acceptor_setup{factory, max_connections, cfg.idle_timeout,
                   cfg.write_timeout, cfg.drain_timeout, lst.address,
                   shared_listener, passed_socket, link != nullptr, directory});
  // The admin endpoint before the first client: ready as soon as listening.
  admin_endpoint admin;
  if (std::string error;
      admin_lst.fd >= 0
      && !admin.start(
        sys, admin_setup{admin_lst, &counters_of_process(), {}, 1}, error))
    log::error("main", error + "; serving without it");
  auto sup = sys.spawn(supervisor_main, std::move(sup_cfg));
  self->monitor(sup);
  // The signals, the stop delay and the moment the stop begins (a worker's
  // stop, and its delay, are its master's: no delay of its own).
  stop_sequence seq{link == nullptr ? cfg.stop_delay : caf::timespan{0}};
  // What must change the moment the stop begins (the delay's start, or the
  // stop), once: systemd is told STOPPING=1, `/readyz` answers 503.
  seq.on_stop_begins([&admin](const std::string& why) {
    notify::stopping(why);
    admin.stopping();
  });
  // A signal that arrived during start-up is pending: it is taken now.
  signal_thread signal_watch{signals, caf::actor{self}};
  bool link_failed = false;
  // WATCHDOG=1 while the I/O event loop turns (notify.hpp) and serve() runs.
  notify::watchdog_pinger pinger{mm.backend()};
  if (link == nullptr) {
    // Before the line: a request sent after it finds the admin ready.
    admin.ready();
    std::cout << "listening on " << lst.address << " protocol=" << cfg.protocol
              << (admin.address().empty() ? "" : " admin=" + admin.address())
              << std::endl;
    notify::ready(lst.address, 0);
    if (notify::enabled())
      self->delayed_send(self, status_interval, connections_atom_v);
    if (!admin.address().empty())
      log::info("main", "admin endpoint on " + admin.address());
    log::info("main", "listening on " + lst.address + " (protocol "
                        + cfg.protocol + ", max connections "
                        + std::to_string(max_connections) + ")");
  } else if (auto err
             = register_worker(sys, master, link->secret, link->id, sup);
             !err) {
    self->monitor(master);
    log::info("main", "serving on " + lst.address + " (pid "
                        + std::to_string(::getpid()) + ", max connections "
                        + std::to_string(max_connections) + ")");
  } else {
    log::error("main", to_string(err) + "; stopping");
    link_failed = true;
    seq.on_other_stop("registration with the master failed");
    self->send(sup, stop_atom_v);
  }
  // The phases of the stop: the supervisor's (listener, drain), then the
  // services actor's (each service's stop and deadline), then the exit.
  bool supervisor_gone = false;
  caf::error supervisor_end;
  bool services_gone = false;
  bool service_failed = false;
  std::optional<shutdown_report> report;
  std::optional<services_report> svc_report;
  // Called once: the stop_sequence says `stop` once.
  auto begin_stop = [&] { self->send(sup, stop_atom_v); };
  self->receive_while([&] { return !services_gone; })(
    [&](signal_atom, int sig) {
      auto name = signal_name(sig);
      if (link != nullptr) {
        // A process-group signal reaches the master too, and the master
        // decides for every worker: taken here, it would count twice.
        log::debug("main", name
                             + " received: ignored (a worker takes its "
                               "orders from its master)");
        return;
      }
      if (sig == SIGHUP) {
        // A closing terminal, or an operator asking for a reload: one
        // process has nothing to reload (workers bring that), so it goes on.
        log::warning("main", name
                               + " received: this process has nothing to "
                                 "reload; ignored");
        return;
      }
      if (sig == SIGUSR1) {
        // nginx reopens its log files on USR1; quiesce writes to standard
        // error and has none to reopen. Never a reason to stop.
        log::warning("main", name
                               + " received: ignored (the log goes to "
                                 "standard error: no file to reopen)");
        return;
      }
      // Act first, then log: the stop must not wait for standard error.
      auto delaying = seq.delaying();
      switch (seq.on_signal(name + " received")) {
        case stop_sequence::step::delay:
          self->send(sup, closing_atom_v);
          self->delayed_send(self, seq.delay(), timer_atom_v, uint64_t{0});
          log::info("main", name + " received: " + stop_delay_line(seq));
          break;
        case stop_sequence::step::stop:
          begin_stop();
          log::info("main", name
                              + (delaying ? " received again during the stop "
                                            "delay: stopping now (a further "
                                            "signal forces the stop)"
                                          : " received: stopping (a second "
                                            "signal forces the stop)"));
          break;
        case stop_sequence::step::already:
          log::info("main", name
                              + " received: stopping already (a second "
                                "signal forces the stop)");
          break;
        case stop_sequence::step::force:
          if (!supervisor_gone)
            self->send(sup, force_atom_v);
          self->send(services, force_atom_v);
          log::warning("main", name + " received again: forcing the stop");
          break;
        case stop_sequence::step::none:
          break;
      }
    },
    [&](timer_atom, uint64_t) {
      // The stop delay is over (its only timer here).
      if (seq.on_delay_over() == stop_sequence::step::stop) {
        begin_stop();
        log::info("main", "the stop delay is over: stopping (a second signal "
                          "forces the stop)");
      }
    },
    [&](service_failed_atom, std::string&) {
      // Logged by the services actor already.
      service_failed = true;
      if (seq.on_other_stop("a service failed") == stop_sequence::step::stop) {
        begin_stop();
        log::info("main", "a service failed: stopping (exit code 1)");
      }
    },
    [&](shutdown_report& x) {
      report = x;
      notify::finished(x);
      admin.stopped(x);
    },
    [&](services_report& x) { svc_report = x; },
    [&](connections_atom) {
      // STATUS for systemd (only with NOTIFY_SOCKET): the connections the
      // supervisor holds, asked every `status_interval`.
      if (supervisor_gone)
        return;
      self->request(sup, status_interval, connections_atom_v)
        .receive([](uint32_t n) { notify::connections(n); },
                 [](caf::error&) {});
      self->delayed_send(self, status_interval, connections_atom_v);
    },
    [&](caf::down_msg& msg) {
      if (master && msg.source == master.address()) {
        // A master ends normally only after its stop, which reached this
        // worker's supervisor first; any other end leaves it alone.
        if (msg.reason
            && seq.on_other_stop("the master is gone")
                 == stop_sequence::step::stop) {
          begin_stop();
          log::warning("main", "the master is gone (" + to_string(msg.reason)
                                 + "): stopping");
        }
      } else if (msg.source == sup.address()) {
        supervisor_gone = true;
        supervisor_end = msg.reason;
        // The connections have drained: now the services may stop.
        self->send(services, stop_atom_v);
      } else if (msg.source == services.address()) {
        services_gone = true;
      }
    });
  // A worker leaves only once its master has what it sent: its report and
  // final counts may still be on their way, and its exit would overtake
  // them (the master would count its connections as lost).
  if (link != nullptr && master && !link_failed)
    self
      ->request(master, std::chrono::seconds(1), done_atom_v, link->secret,
                link->id)
      .receive([](caf::ok_atom) {}, [](caf::error&) {});
  // The admin listener closes last: it answered throughout the drain.
  admin.close();
  // Every actor must end before the actor system can.
  for (auto& proxy : proxies)
    caf::anon_send_exit(proxy, caf::exit_reason::user_shutdown);
  if (link_failed)
    return exit_cannot_run;
  if (!report && link != nullptr && !supervisor_end) {
    // Its master asked for the stop and has the report.
    report = shutdown_report{};
  }
  if (!report) {
    log::error("main", "the server stopped on its own (see above)");
    return exit_cannot_run;
  }
  if (service_failed || !svc_report || svc_report->failed)
    return exit_cannot_run;
  return report->forced > 0 || svc_report->forced > 0 ? exit_forced
                                                      : exit_clean;
}

/// Whether the command line or the config file names
/// `scheduler.max-threads` (then it is the user's choice, in every process).
bool sets_scheduler_threads(int argc, char** argv, const config& cfg) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view{argv[i]}.find("max-threads") != std::string_view::npos)
      return true;
  return cfg.config.text.find("max-threads") != std::string::npos;
}

} // namespace

sigset_t server_signals() {
  sigset_t result;
  sigemptyset(&result);
  for (auto sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2})
    sigaddset(&result, sig);
  return result;
}

void block_server_signals() {
  auto signals = server_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int run_server(int argc, char** argv) {
  // Blocked already if the binary did so at its start; again here, before
  // any thread exists. Every thread inherits the mask and only the signal
  // thread takes the signals, with sigwait.
  block_server_signals();
  auto signals = server_signals();
  std::signal(SIGPIPE, SIG_IGN);
  // A worker started by a master serves on the master's socket, with the
  // config file as the master read it.
  std::string worker_error;
  listener lst;
  auto link = take_worker_environment(lst, worker_error);
  // With workers only the master notifies systemd.
  notify::init(!link);
  if (!worker_error.empty()) {
    std::cerr << "quiesce: " << worker_error << std::endl;
    return exit_cannot_run;
  }
  config cfg;
  if (auto code = configure(cfg, argc, argv, link ? &link->config : nullptr))
    return *code;
  log::level lvl = log::level::info;
  log::parse_level(cfg.log_level, lvl); // checked by its rule
  log::set_threshold(lvl);
  log::format fmt = log::format::text;
  log::parse_format(cfg.log_format, fmt); // checked by its rule
  log::set_format(fmt);
  auto proto = find_protocol(cfg.protocol);
  if (proto == nullptr) { // checked by its rule, unless none is registered
    std::cerr << "quiesce: no protocol registered (add_protocol, registry.hpp)"
              << std::endl;
    return exit_cannot_run;
  }
  auto factory = proto->make;
  add_control_plane_types(cfg);
  apply_message_types(cfg);
  auto workers = worker_count(cfg);
  if (!link && workers > 1 && cfg.max_connections > 0
      && cfg.max_connections < workers)
    return usage_error("--max-connections="
                       + std::to_string(cfg.max_connections)
                       + " is less than the " + std::to_string(workers)
                       + " workers: each worker holds at least one connection "
                         "(raise it, or lower --workers)");
  if ((link || workers > 1) && !sets_scheduler_threads(argc, argv, cfg)) {
    // The CPUs are the workers' to share: each worker gets its part of
    // CAF's scheduler threads (idle ones poll and wake up, taking time from
    // the I/O threads), the master one.
    auto cpus = server_config::usable_cpus();
    cfg.set("scheduler.max-threads",
            link ? std::max<size_t>(1, cpus / workers) : size_t{1});
  }
  if (link) {
    log::set_worker(link->id);
    if (lst.fd < 0) {
      log::info("main", "the listening socket was stopped before this worker "
                        "started (the server is stopping): nothing to serve");
      log::flush(std::chrono::seconds(1));
      return exit_clean;
    }
  }
  auto fd_limit = raise_fd_limit();
  auto max_connections = max_connections_for(fd_limit);
  auto wanted = cfg.max_connections;
  if (link && wanted > 0)
    wanted = worker_share(wanted, link->id, workers);
  if (wanted > max_connections)
    log::warning("main", "--max-connections=" + std::to_string(wanted)
                           + (link ? " (this worker's share)" : "")
                           + " exceeds what the open-file limit allows ("
                           + std::to_string(fd_limit) + "); using "
                           + std::to_string(max_connections));
  else if (wanted > 0)
    max_connections = wanted;
  listener admin_lst;
  if (!link) {
    if (auto passed = take_passed_socket()) {
      lst = std::move(*passed);
      if (lst.fd >= 0)
        log::info("main", "serving on the socket systemd passed (" + lst.address
                            + "); --host and --port are "
                              "ignored");
    } else {
      lst = open_listener(cfg.host, cfg.port);
    }
    if (lst.fd < 0) {
      std::cerr << "quiesce: " << lst.error << std::endl;
      return exit_cannot_run;
    }
    if (auto code = open_admin_listener(cfg.admin, admin_lst)) {
      ::close(lst.fd);
      return *code;
    }
    if (workers > 1)
      return run_master(cfg, lst, admin_lst, signals, workers, argc, argv);
  }
  teardown_watchdog watchdog;
  int code = exit_cannot_run;
  {
    // The threads CAF starts now inherit SCHED_BATCH; serve() returns the
    // I/O thread to the normal policy (see favour_io_thread).
    run_helpers_as_batch();
    caf::actor_system sys{cfg};
    code = serve(sys, cfg, signals, lst, std::move(factory), max_connections,
                 link ? &*link : nullptr, admin_lst);
    watchdog.arm(code);
  } // ~actor_system waits for every actor and the I/O thread.
  // The summary line must be out before the exit; a standard error that
  // nobody reads must not keep the process alive.
  log::flush(std::chrono::seconds(1));
  return code;
}

std::vector<std::string> server_option_names() {
  config cfg;
  std::vector<std::string> result;
  for (auto& opt : cfg.options())
    result.push_back(options::name_of(opt));
  return result;
}

} // namespace quiesce
