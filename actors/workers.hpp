#pragma once

/// @file
/// `--workers=N` with N >= 2: the process started is the master of N worker
/// processes on its one listening socket (docs/architecture.md, "Worker
/// processes").
///
/// - The master binds the socket, publishes its control plane on loopback
///   (actors/master.hpp) and starts each worker by fork and exec of its own
///   binary with its own arguments. A worker inherits the socket and a
///   memory file with the secret and the config file's text as the master
///   read it (`worker_payload`); `QUIESCE_WORKER` tells it the descriptors,
///   its id and the master's port. `ps` shows "quiesce: worker N" for each.
/// - A worker serves like a single process on the shared socket, registers
///   its supervisor with the master, and takes its orders from the master
///   only: it ignores signals (a process-group Ctrl-C or systemd's
///   control-group SIGTERM then counts once, at the master) and stops on
///   its own if the master is gone.
/// - The master prints the `listening on` line once every worker has
///   registered, turns signals into `stop`/`force` for all workers, prints
///   the summed summary and gives the exit code. A worker that dies is
///   started again at once on the same socket; more than
///   `max_restarts` restarts within `restart_window` stop the server with
///   exit code 1.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "actors/config_file.hpp"
#include "actors/listener.hpp"
#include "actors/server_config.hpp"

namespace quiesce {

/// What a worker process knows of its master.
struct worker_link {
  uint32_t id = 0;
  uint16_t master_port = 0;
  std::string secret;
  /// The config file as the master read it: the worker does not read it
  /// again (it may be a pipe, or changed since).
  config_file config;
};

/// What a master hands each worker in an inherited memory file: the
/// secret, then whether a config file was found, its path, and its text.
std::string worker_payload(const std::string& secret,
                           const config_file& config);

/// The environment variable a master sets for its workers.
constexpr const char* worker_environment = "QUIESCE_WORKER";

/// How many restarts of workers the master allows within `restart_window`.
constexpr size_t max_restarts = 5;
constexpr std::chrono::seconds restart_window{10};

/// Starts worker `id` from this process's own binary (/proc/self/exe) with
/// `args` (the command line after argv[0]; argv[0] becomes "quiesce: worker
/// N"): the listening socket `listen_fd` and a memory file holding
/// `payload` (worker_payload) inherited, QUIESCE_WORKER naming them with
/// `id` and the control plane's `port`; `passed_socket`: the socket was
/// passed by systemd (QUIESCE_PASSED_SOCKET tells the worker). systemd's
/// notify and watchdog variables are not passed on. Its pid, or -1 with
/// `error` set.
pid_t spawn_worker_process(uint32_t id, uint16_t port, int listen_fd,
                           bool passed_socket, const std::string& payload,
                           const std::vector<std::string>& args,
                           std::string& error);

/// The worker count `--workers` asks for, "auto" resolved to the CPUs of
/// the affinity mask, at most `--max-connections` if that is set (the
/// option's rule has checked the text).
size_t worker_count(const server_config& cfg);

/// In a worker process (`QUIESCE_WORKER` set): takes the inherited socket
/// into `lst` and returns the link to the master. Nothing in any other
/// process. Sets `error` if the variable or the descriptors are unusable.
/// A socket that no longer listens (the server's stop came first) leaves
/// `lst.fd` at -1 without an error: the worker has nothing to serve.
std::optional<worker_link> take_worker_environment(listener& lst,
                                                   std::string& error);

/// The part of `--max-connections` that worker `id` of `count` holds: the
/// shares add up to `total`, each at least 1.
size_t worker_share(size_t total, uint32_t id, size_t count);

/// Runs the master of `count` workers on `lst` until every worker has
/// stopped; returns the process's exit code. `argv` is the process's own
/// command line, handed to each worker.
int run_master(server_config& cfg, listener& lst, listener& admin_lst,
               const sigset_t& signals, size_t count, int argc, char** argv);

} // namespace quiesce
