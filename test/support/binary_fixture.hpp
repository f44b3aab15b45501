#pragma once

/// @file
/// The fixture of the binary suites: starts `build/bin/quiesce` and, when a
/// test fails, reports what each started process wrote (its standard error
/// has the server's side of the story).

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "caf/test/unit_test.hpp"

#include "support/process.hpp"

#ifndef QUIESCE_BINARY
#error "QUIESCE_BINARY must name the server binary (set by CMake)"
#endif

namespace quiesce::test {

/// The server binary the suites run: `QUIESCE_BINARY` (the one this build
/// made), or the path in the environment variable `QUIESCE_TEST_BINARY`, so
/// that a new test can be shown to fail against an older build:
/// `QUIESCE_TEST_BINARY=/old/build/bin/quiesce build/bin/binary_tests -s X`.
inline const char* server_binary() {
  auto* other = std::getenv("QUIESCE_TEST_BINARY");
  return other != nullptr && *other != '\0' ? other : QUIESCE_BINARY;
}

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
    procs_.push_back(std::make_unique<process>(server_binary(), args));
    return *procs_.back();
  }

  /// Starts the binary with `args` and `options` (e.g. a descriptor limit).
  process& run(const std::vector<std::string>& args,
               const process_options& options) {
    procs_.push_back(std::make_unique<process>(server_binary(), args, options));
    return *procs_.back();
  }

  /// Starts another program (a client such as curl) with `args`. Its output
  /// is reported like the server's when the test fails.
  process& run_program(const std::string& program,
                       const std::vector<std::string>& args) {
    procs_.push_back(std::make_unique<process>(program, args));
    return *procs_.back();
  }

  /// Starts another program with `args` and `options`.
  process& run_program(const std::string& program,
                       const std::vector<std::string>& args,
                       const process_options& options) {
    procs_.push_back(std::make_unique<process>(program, args, options));
    return *procs_.back();
  }

  /// Starts an echo server on a free loopback port with `extra` options and
  /// waits for its `listening on` line. Returns the port, or 0 after a
  /// failed check.
  uint16_t start_echo(const std::vector<std::string>& extra = {}) {
    return start_server("echo", extra);
  }

  /// Starts an HTTP server as `start_echo` starts an echo server.
  uint16_t start_http(const std::vector<std::string>& extra = {}) {
    return start_server("http", extra);
  }

  /// Starts a server with `--protocol=<protocol>` on a free loopback port
  /// with `extra` options and waits for its `listening on` line. Returns the
  /// port, or 0 after a failed check.
  uint16_t start_server(const std::string& protocol,
                        const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--protocol=" + protocol, "--host=127.0.0.1",
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

  /// The process `start_echo`, `start_http` or `start_server` started.
  process& server() {
    return *server_;
  }

  /// Connects a client to the server on `port` (`receive_buffer` as in
  /// `connect_loopback`). Checks the connect here, so that a test only
  /// returns when no socket came back: the failure is reported already.
  unique_fd connect_client(uint16_t port, int receive_buffer = 0) {
    auto conn = connect_loopback(port, receive_buffer);
    CAF_CHECK_EQUAL(conn.error, 0);
    return std::move(conn.fd);
  }

  /// Starts an echo server as `start_echo` does and connects one client,
  /// the start of most single-connection tests. Returns no socket after a
  /// failed check.
  unique_fd start_echo_and_connect() {
    auto port = start_echo();
    if (port == 0)
      return {};
    return connect_client(port);
  }

  /// Connects `n` clients as `connect_client` does, in order. Stops at the
  /// first failed connect, since the test cannot go on with fewer clients:
  /// fewer than `n` sockets mean a failed check.
  std::vector<unique_fd> connect_clients(uint16_t port, size_t n) {
    std::vector<unique_fd> fds;
    for (size_t i = 0; i < n; ++i) {
      auto fd = connect_client(port);
      if (!fd)
        break;
      fds.push_back(std::move(fd));
    }
    return fds;
  }

  /// Checks that the echo server `srv`, listening on `port`, echoes `text`
  /// over a new connection, and that SIGTERM then ends it cleanly: the
  /// client reads a clean EOF, the exit code is 0. False after a failed
  /// check.
  bool expect_echo_then_clean_stop(process& srv, uint16_t port,
                                   const std::string& text) {
    auto conn = connect_loopback(port);
    CAF_CHECK_EQUAL(conn.error, 0);
    if (!conn.fd || !send_all(conn.fd.get(), text)) {
      CAF_ERROR("no echo round trip with the server on port " << port);
      return false;
    }
    CAF_CHECK_EQUAL(read_exactly(conn.fd.get(), text.size()).bytes, text);
    CAF_CHECK(srv.signal(SIGTERM));
    CAF_CHECK_EQUAL(read_until_eof(conn.fd.get()).ending(), "clean EOF");
    conn.fd.reset();
    auto code = srv.wait_exit();
    CAF_CHECK_EQUAL(describe_exit(code), describe_exit(0));
    return code == 0;
  }

  /// Waits until the server has opened `n` connections (needs
  /// `--log-level=debug`), e.g. so that no client waits in the listen
  /// backlog at a stop; false after a failed check.
  bool await_opened(size_t n) {
    if (server().wait_stderr(" opened\n", n))
      return true;
    CAF_ERROR("the server opened only " << server().stderr_count(" opened\n")
                                        << " of " << n << " connections");
    return false;
  }

  /// Waits for the server's exit and checks its code. Compares the
  /// descriptions, so that a failure reads "killed by signal 9 (Killed)"
  /// or "no exit before the watchdog" instead of a bare number.
  void expect_exit(int expected) {
    auto code = server().wait_exit();
    CAF_CHECK_EQUAL(describe_exit(code), describe_exit(expected));
  }

private:
  std::vector<std::unique_ptr<process>> procs_;
  process* server_ = nullptr;
};

} // namespace quiesce::test
