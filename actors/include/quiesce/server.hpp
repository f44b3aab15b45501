#pragma once

/// @file
/// A whole quiesce server process, for `main`: the binary's contract
/// (options, the `listening on` line, signals, exit codes; see the README)
/// in one call. It parses the command line and `caf-application.ini` and
/// checks every value (options.hpp, config_file.hpp), opens the listening
/// socket, starts the supervisor and turns SIGTERM/SIGINT/SIGQUIT into
/// `stop` and a second one into `force`; the actors do the rest.
///
/// A server binary registers its protocols (registry.hpp), then runs it:
///
///     int main(int argc, char** argv) {
///       quiesce::add_protocol(
///         "line", [] { return std::make_unique<line_protocol>(); });
///       return quiesce::run_server(argc, argv);
///     }

#include <csignal>
#include <string>
#include <vector>

namespace quiesce {

/// The signals a server takes with sigwait, so that none of them has its
/// default action (most kill the process on the spot):
/// - SIGTERM, SIGINT, SIGQUIT: a graceful stop; a second one (any of the
///   three) forces it;
/// - SIGHUP: a reload where there is something to reload; one process has
///   nothing, so it logs a warning and goes on;
/// - SIGUSR1: logged and ignored (no log file to reopen: the log goes to
///   standard error);
/// - SIGUSR2: the wake-up of its signal thread.
sigset_t server_signals();

/// Blocks `server_signals()` in the calling thread. `run_server` does it
/// first thing; a binary that calls it earlier (e.g. from `.preinit_array`,
/// as build/bin/quiesce does) also covers its static constructors.
void block_server_signals();

/// Runs the server until it has stopped; returns the exit code: 0 clean
/// stop, 3 some connections closed by force, 1 cannot run (also with no
/// protocol registered), 2 usage error. `--protocol` picks one of those
/// registered (registry.hpp).
int run_server(int argc, char** argv);

/// The name of every option `run_server` declares, CAF's included, as on the
/// command line (`port`, `http.max-body`, `scheduler.max-threads`): each
/// must have a rule in options.hpp.
std::vector<std::string> server_option_names();

} // namespace quiesce
