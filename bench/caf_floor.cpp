// caf_floor: the least a graceful stop can cost in CAF 0.17.6 with one
// broker per connection, the design quiesce is built on.
//
// An echo server with nothing but CAF's own parts: an acceptor broker that
// forks one broker per connection and monitors it, and, at SIGTERM, a stop
// that closes the listener and tells every connection broker to send its FIN
// (shutdown(SHUT_WR) on its socket); a connection broker quits when it reads
// the client's end-of-stream, the acceptor quits when the last one is down,
// and the process exits 0. No drain deadline, no linger timer, no `done`
// message, no log, no check of unread input: every guarantee quiesce adds is
// left out, so its stop can only cost more. The CAF settings quiesce uses
// for a stop are the same here (one read per readiness event, as many
// scheduler threads as usable CPUs, helper threads SCHED_BATCH, and the
// connection stops handed to the event loop in one post).
//
// It prints the `listening on 127.0.0.1:PORT` line stop_time and compare.py
// read (docs/performance.md, "stop vs the floors"). Usage:
//
//   caf_floor [--port=0]
//
// Exit codes: 0 after a stop; 1 if the port cannot be opened; 2 on a bad
// option.

#include <sched.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <unordered_set>
#include <vector>

#include "caf/all.hpp"
#include "caf/io/all.hpp"
#include "caf/io/network/default_multiplexer.hpp"

#include "common.hpp"

namespace {

using stop_atom = caf::atom_constant<caf::atom("stop")>;

constexpr char program[] = "caf_floor";

void usage(std::FILE* out) {
  std::fprintf(out, "usage: caf_floor [--port=0]\n");
}

caf::behavior connection(caf::io::broker* self,
                         caf::io::connection_handle hdl) {
  self->configure_read(hdl, caf::io::receive_policy::at_most(4096));
  return {
    [=](const caf::io::new_data_msg& msg) {
      self->write(hdl, msg.buf.size(), msg.buf.data());
      self->flush(hdl);
    },
    [=](const caf::io::connection_closed_msg&) { self->quit(); },
    [=](stop_atom) {
      // The connection handle's id is the socket on CAF's default
      // multiplexer, the only one this program runs on.
      ::shutdown(static_cast<int>(hdl.id()), SHUT_WR);
    },
  };
}

struct acceptor_state {
  std::unordered_set<caf::actor> connections;
  bool stopping = false;
};

caf::behavior
acceptor(caf::stateful_actor<acceptor_state, caf::io::broker>* self,
         caf::io::accept_handle door) {
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& st = self->state;
    st.connections.erase(caf::actor_cast<caf::actor>(msg.source));
    if (st.stopping && st.connections.empty())
      self->quit();
  });
  return {
    [self](const caf::io::new_connection_msg& msg) {
      auto conn = self->fork(connection, msg.handle);
      self->monitor(conn);
      self->state.connections.insert(conn);
    },
    [self, door](stop_atom) {
      auto& st = self->state;
      if (st.stopping)
        return;
      st.stopping = true;
      self->close(door);
      // Queued in this turn of the event loop, like quiesce's broadcast.
      for (auto& conn : st.connections)
        caf::anon_send(conn, stop_atom::value);
      if (st.connections.empty())
        self->quit();
    },
  };
}

struct config : caf::actor_system_config {
  config() {
    load<caf::io::middleman>();
    set("middleman.max-consecutive-reads", 1);
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    long usable = 1;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
      usable = std::max(1, CPU_COUNT(&cpus));
    set("scheduler.max-threads", static_cast<size_t>(usable));
  }
};

} // namespace

int main(int argc, char** argv) {
  using namespace bench;
  long port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    handle_help(arg, usage);
    std::string key;
    std::string value;
    if (!split_option(arg, key, value) || key != "port")
      bad_option(program, usage, arg, "expected --port=N");
    if (!parse_long(value, 0, 65535, port))
      bad_option(program, usage, arg, "expected a port in 0..65535");
  }
  // The signals go to the sigwait below, never to a CAF thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // CAF's helper threads inherit SCHED_BATCH; the I/O thread gets the normal
  // policy back, as in quiesce (run_helpers_as_batch, favour_io_thread).
  sched_param param{};
  sched_setscheduler(0, SCHED_BATCH, &param);
  config cfg;
  caf::actor_system sys{cfg};
  auto& mm = sys.middleman();
  mm.backend().dispatch([] {
    sched_param normal{};
    sched_setscheduler(0, SCHED_OTHER, &normal);
  });
  auto door = mm.backend().new_tcp_doorman(static_cast<uint16_t>(port),
                                           "127.0.0.1", true);
  if (!door) {
    std::fprintf(stderr, "%s: cannot listen on 127.0.0.1:%ld: %s\n", program,
                 port, sys.render(door.error()).c_str());
    return exit_failed;
  }
  auto bound = (*door)->port();
  auto acc = mm.spawn_broker(
    [door = std::move(*door)](
      caf::stateful_actor<acceptor_state, caf::io::broker>* self) mutable {
      auto h = door->hdl();
      self->add_doorman(std::move(door));
      return acceptor(self, h);
    });
  std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(bound));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  caf::anon_send(acc, stop_atom::value);
  // ~actor_system waits for the acceptor and every connection broker.
  return 0;
}
