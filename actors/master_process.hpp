#pragma once

/// @file
/// The master process of `--workers=N` (workers.hpp has the contract): its
/// worker processes, their restarts, the reload and the stop, driven from
/// one blocking loop in the main thread.
///
/// - Events: the signal thread's signals; the control plane's events
///   (master.hpp: a worker registered, refused, gone); a child watcher
///   thread per worker process with its wait status; the answers to
///   `stop` (the control plane's sum) and to `retire` (an old worker's own
///   report); timers.
/// - Generations: the workers started together, at the start or by one
///   reload. Worker ids are never reused across generations (the control
///   plane accepts only the ids of live generations); a restarted worker
///   keeps its id.
/// - Stop delay (`--stop-delay`, stop_sequence.hpp): at the first signal
///   the control plane tells every worker `closing` (they keep accepting;
///   HTTP answers close their connections); at its end, or at a second
///   signal, the stop. A SIGHUP during the delay is ignored (logged).
/// - Reload (SIGHUP): the configuration is read again (a bad one: logged,
///   nothing changes); a new generation starts; once every one of its
///   workers has registered, each old worker gets `retire`: it stops
///   accepting without shutting the shared socket down, drains with a grace
///   for keep-alive clients, answers and exits. A new worker that dies or
///   does not register within `--workers-ready-timeout` fails the reload: the
///   new generation is retired and the old one goes on serving. A SIGHUP
///   during a reload is kept for after it (one at most).

#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/scoped_actor.hpp"

#include "actors/admin_endpoint.hpp"
#include "actors/listener.hpp"
#include "actors/master.hpp"
#include "actors/server_config.hpp"
#include "actors/stop_sequence.hpp"

namespace quiesce {

class master_process {
public:
  master_process(caf::actor_system& sys, server_config& cfg, listener& lst,
                 listener& admin_lst, size_t count, int argc, char** argv);

  ~master_process();

  /// Starts the workers and serves until every worker has stopped; the
  /// process's exit code.
  int run(const sigset_t& signals);

private:
  using clock_type = std::chrono::steady_clock;

  /// Timer tokens: the kind in the high half, its subject in the low one.
  static constexpr uint64_t ready_timer = 1;
  static constexpr uint64_t straggler_timer = 2;
  static constexpr uint64_t retire_timer = 3;
  static constexpr uint64_t stop_delay_timer = 4;

  static constexpr uint64_t timer_token(uint64_t kind, uint32_t subject) {
    return (kind << 32) | subject;
  }

  /// How long an old worker may take to exit after `retire`, past its
  /// drain timeout (its own teardown limit is 3 s).
  static constexpr std::chrono::seconds exit_margin{8};

  /// "worker 3".
  static std::string worker_name(uint32_t id);

  /// A worker process being started or running.
  struct child {
    uint32_t id = 0;
    uint32_t generation = 0;
    /// Sent `retire` (an old generation's, or a failed reload's): its end
    /// is expected and it is not started again.
    bool retired = false;
  };

  /// A reload under way: the generation it starts.
  struct reload_state {
    uint32_t generation = 0;
    std::set<uint32_t> ids;
    std::set<uint32_t> ready;
    clock_type::time_point began;
  };

  bool spawn(uint32_t id, uint32_t generation);
  void start_generation(size_t count, std::set<uint32_t>& ids);
  // -- the stop's beginning and the signals (master_stop.cpp) ---------------
  void begin_stop(const std::string& why);
  void begin_stop_delay(const std::string& signal_name);
  void on_stop_delay_over();
  void on_signal(int sig);
  // -- the rest (master_process.cpp, master_reload.cpp) ---------------------
  void on_event(const master_event& ev);
  void on_exit(pid_t pid, int status);
  void on_timer(uint64_t which);
  void announce();
  void reload();
  void reload_ready();
  void reload_failed(const std::string& why);
  void retire(uint32_t id);
  void end_master_when_done();
  void loop();
  int exit_code() const;

  caf::actor_system& sys_;
  server_config& cfg_;
  listener& lst_;
  /// `--admin`'s listener (closed: none), served from here: the workers'
  /// sums, asked of the control plane (admin.hpp).
  listener& admin_lst_;
  admin_endpoint admin_;
  size_t count_;
  caf::scoped_actor self_;
  /// The command line after argv[0], handed to every worker.
  std::vector<std::string> args_;
  /// argv[0]: for reading the configuration again.
  std::string program_;
  std::string protocol_;
  /// The config file as last read, handed to every worker started.
  config_file config_;
  caf::timespan drain_timeout_;
  /// `--workers-ready-timeout` as last read: a reload's fresh configuration
  /// decides its own.
  caf::timespan ready_timeout_;
  std::string secret_;
  master_actor master_;
  bool master_alive_ = true;
  bool master_exit_sent_ = false;
  uint16_t port_ = 0;
  /// The ids the control plane accepts: every live generation's.
  std::shared_ptr<std::set<uint32_t>> ids_book_;
  std::shared_ptr<std::mutex> ids_mtx_;
  uint32_t next_id_ = 1;
  uint32_t generation_ = 1;
  /// The serving generation's worker ids.
  std::set<uint32_t> current_;
  std::map<pid_t, child> children_;
  /// A thread per live worker process, blocked in waitpid; joined once it
  /// has reported the exit (reloads and restarts must not pile them up).
  std::map<pid_t, std::thread> waiters_;
  std::set<uint32_t> ready_;
  std::map<uint32_t, clock_type::time_point> restarted_at_;
  std::deque<clock_type::time_point> restarts_;
  /// Every restart so far (`quiesce_worker_restarts_total`).
  uint64_t restarts_total_ = 0;
  std::optional<reload_state> reload_;
  bool reload_pending_ = false;
  uint64_t reloads_done_ = 0;
  bool announced_ = false;
  bool stopping_ = false;
  bool straggler_timer_set_ = false;
  /// The signals, the stop delay, the moment the stop begins: hook that
  /// moment with `seq_.on_stop_begins` (in `run`).
  stop_sequence seq_;
  /// A signal forced the stop.
  bool forced_ = false;
  std::optional<int> code_;
  std::optional<shutdown_report> report_;
  /// The shared services (service_options::shared).
  services_actor services_;
  bool services_alive_ = true;
  bool services_stop_sent_ = false;
  std::optional<services_report> svc_report_;
};

} // namespace quiesce
