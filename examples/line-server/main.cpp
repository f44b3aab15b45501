// A server binary of its own: quiesce's whole process (options, signals,
// the drain, exit codes) with one more protocol, `line`.

#include <memory>

#include "quiesce/registry.hpp"
#include "quiesce/server.hpp"

#include "line.hpp"

int main(int argc, char** argv) {
  quiesce::behaviours::add("line",
                           {nullptr, [](const caf::actor_system_config&) {
                              return quiesce::behaviour_factory{[] {
                                return std::make_unique<line_protocol>();
                              }};
                            }});
  return quiesce::run_server(argc, argv);
}
