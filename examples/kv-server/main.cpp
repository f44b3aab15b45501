// A Redis-protocol server of its own: quiesce's whole process (options,
// signals, the drain, exit codes) serving one protocol, `resp`, whose keys
// live in one store actor shared by every connection.

#include <memory>

#include "quiesce/registry.hpp"
#include "quiesce/server.hpp"

#include "kv.hpp"

int main(int argc, char** argv) {
  // One locator for every connection of the server: it starts the store on
  // first use and keeps its keys (store.hpp). The first protocol added is
  // the default: `--protocol` is `resp` unless given.
  auto stores = std::make_shared<kv::store_locator>();
  quiesce::add_protocol(
    "resp", [stores] { return std::make_unique<kv_protocol>(stores); });
  return quiesce::run_server(argc, argv);
}
