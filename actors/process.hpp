#pragma once

/// @file
/// What a server process needs around its actor system, whether it serves
/// alone, as a worker or as the master of workers (server.cpp,
/// workers.cpp): the signal thread, the teardown watchdog, the scheduling
/// of its threads, signal names.

#include <atomic>
#include <optional>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <pthread.h>
#include <string>
#include <thread>

#include "caf/actor.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"
#include "caf/send.hpp"

#include "quiesce/log.hpp"
#include "quiesce/messages.hpp"

namespace quiesce {

using namespace std::chrono_literals;

/// How long the actor system may take to shut down once the supervisor has
/// reported. It normally takes milliseconds; this only guards the promise
/// that the process never needs SIGKILL against a socket stuck inside CAF.
constexpr auto teardown_limit = 3s;

/// Ends the process if the actor system does not shut down in time.
class teardown_watchdog {
public:
  void arm(int exit_code) {
    thread_ = std::thread{[this, exit_code] {
      std::unique_lock<std::mutex> guard{mtx_};
      if (!cv_.wait_for(guard, teardown_limit, [this] { return done_; })) {
        log::error("main", "the actor system did not shut down within 3s; "
                           "exiting anyway");
        log::flush(std::chrono::seconds(1));
        std::_Exit(exit_code);
      }
    }};
  }

  ~teardown_watchdog() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// Waits for the signals of `server_signals()` (blocked in every thread) and
/// reports each one to `main_actor`. SIGUSR2 with `quit_` set ends it.
class signal_thread {
public:
  signal_thread(const sigset_t& set, caf::actor main_actor) {
    thread_ = std::thread{[this, set, main_actor] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
          continue;
        if (sig == SIGUSR2) {
          if (quit_.load())
            return;
          continue;
        }
        caf::anon_send(main_actor, signal_atom_v, sig);
      }
    }};
  }

  ~signal_thread() {
    quit_.store(true);
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
  }

private:
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

/// Lowers the calling thread, and the threads it starts from now on, to
/// SCHED_BATCH (see process.cpp).
void run_helpers_as_batch();

/// Returns the I/O thread of `mm` to the normal policy.
void favour_io_thread(caf::io::middleman& mm);

/// Asks the services actor (spawned on a thread of its own: its deadlines
/// must fire even if a service blocks every scheduler worker) to start every
/// service it was given. Nothing if all started; else the exit code, after
/// the ones that started are stopped again.
std::optional<int> start_services(caf::scoped_actor& self,
                                  const services_actor& services);

/// "SIGTERM" for SIGTERM, and so on.
std::string signal_name(int sig);

} // namespace quiesce
