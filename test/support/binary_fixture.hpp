#pragma once

/// @file
/// The fixture of the binary suites: starts `build/bin/quiesce` and, when a
/// test fails, reports what each started process wrote (its standard error
/// has the server's side of the story).

#include <memory>
#include <string>
#include <vector>

#include "caf/test/unit_test.hpp"

#include "support/process.hpp"

#ifndef QUIESCE_BINARY
#error "QUIESCE_BINARY must name the server binary (set by CMake)"
#endif

namespace quiesce::test {

/// Starts processes of the server binary for one test and ends them with it.
class binary_fixture {
public:
  binary_fixture() = default;

  binary_fixture(const binary_fixture&) = delete;

  binary_fixture& operator=(const binary_fixture&) = delete;

  /// Reports the output of every process if the test failed; the processes'
  /// destructors then kill and reap any still running.
  ~binary_fixture() {
    auto* current = caf::test::engine::current_test();
    if (current == nullptr || current->bad() == 0)
      return;
    for (auto& proc : procs_) {
      CAF_MESSAGE("`" << proc->command() << "` ("
                      << (proc->exited() ? "exited" : "still running")
                      << ")\n--- stdout ---\n"
                      << proc->stdout_text() << "--- stderr ---\n"
                      << proc->stderr_text() << "--- end ---");
    }
  }

  /// Starts the binary with `args`.
  process& run(const std::vector<std::string>& args) {
    procs_.push_back(std::make_unique<process>(QUIESCE_BINARY, args));
    return *procs_.back();
  }

  /// Starts an echo server on a free loopback port with `extra` options and
  /// waits for its `listening on` line. Returns the port, or 0 after a
  /// failed check.
  uint16_t start_echo(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--protocol=echo", "--host=127.0.0.1",
                                  "--port=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = &run(args);
    auto port = server_->wait_listening();
    if (!port) {
      CAF_ERROR("`" << server_->command() << "` printed no valid "
                    << "`listening on HOST:PORT` line");
      return 0;
    }
    return *port;
  }

  /// The process `start_echo` started.
  process& server() {
    return *server_;
  }

private:
  std::vector<std::unique_ptr<process>> procs_;
  process* server_ = nullptr;
};

} // namespace quiesce::test
