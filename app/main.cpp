// quiesce: an actor-model TCP server with a clean, provable shutdown.
//
// The whole process lives in the library (quiesce/server.hpp), so that a
// server with protocols of its own is the same few lines; this one registers
// echo and http (app/protocols.cpp).

#include <csignal>

#include "quiesce/server.hpp"

#include "protocols.hpp"

namespace {

/// Blocks the server's signals (`quiesce::server_signals()`: TERM, INT,
/// QUIT, HUP, USR1, USR2) as early as user code can run: before static
/// constructors (ours and the libraries'), so that one arriving during
/// start-up waits, pending, for the signal thread instead of taking its
/// default action (for all of them: killing the process). Only the dynamic
/// loader's own work comes before this.
void block_stop_signals(int, char**, char**) {
  auto signals = quiesce::server_signals();
  sigprocmask(SIG_BLOCK, &signals, nullptr);
}

} // namespace

__attribute__((section(".preinit_array"),
               used)) static void (*const block_stop_signals_at_start)(int,
                                                                       char**,
                                                                       char**)
  = block_stop_signals;

int main(int argc, char** argv) {
  quiesce::app::add_protocols();
  return quiesce::run_server(argc, argv);
}
