// A Redis-protocol server of its own: quiesce's whole process (options,
// signals, the drain, exit codes) serving one protocol, `resp`, whose keys
// live in one store actor shared by every connection: a service.

#include <chrono>
#include <memory>
#include <vector>

#include "quiesce/admin.hpp"
#include "quiesce/registry.hpp"
#include "quiesce/server.hpp"
#include "quiesce/service.hpp"

#include "kv.hpp"

int main(int argc, char** argv) {
  // The store: started before the listener opens, stopped after the drain
  // (2 s to quit), restarted over the same keys if it crashes (store.hpp).
  // Shared: with --workers, one store in the master serves every worker
  // (an INCR from any of them sees the others'); its request type crosses
  // processes, so it is announced.
  auto keys = std::make_shared<kv::store_data>();
  quiesce::service_options opts;
  opts.stop_deadline = std::chrono::seconds(2);
  opts.on_crash = quiesce::crash_policy::restart;
  opts.shared = true;
  quiesce::add_service(
    "store",
    [keys](caf::actor_system& sys) { return kv::spawn_store(sys, keys); },
    opts);
  quiesce::announce_message_type<std::vector<kv::command>>("kv::commands");
  // The first protocol added is the default: `--protocol` is `resp` unless
  // given.
  quiesce::add_protocol("resp", [] { return std::make_unique<kv_protocol>(); });
  // `--admin=HOST:PORT`: /healthz, /readyz and /metrics for the operator.
  quiesce::add_admin_endpoint();
  return quiesce::run_server(argc, argv);
}
