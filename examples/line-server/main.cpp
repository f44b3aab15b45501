// A server binary of its own: quiesce's whole process (options, signals,
// the drain, exit codes) serving one protocol, `line`.

#include <memory>

#include "quiesce/registry.hpp"
#include "quiesce/server.hpp"

#include "line.hpp"

int main(int argc, char** argv) {
  // The first protocol added is the default (set_default_protocol changes
  // it); the core has none of its own.
  quiesce::add_protocol("line",
                        [] { return std::make_unique<line_protocol>(); });
  return quiesce::run_server(argc, argv);
}
