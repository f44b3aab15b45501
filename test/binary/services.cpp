// Services in the supervision tree, over real sockets: the test server
// (test/services/server.cpp) runs run_server with test services. A request
// to a service that is pending at SIGTERM is answered before the FIN, and
// the service stops only after the drain, and one that crashes during the
// drain is restarted and stopped after it; a service slow to stop is forced
// at its own deadline (exit 3), killed if it traps the forced exit; a
// crashed service is restarted and later look-ups find the new actor, until
// too many restarts stop the server (exit 1); a `stop_server` service's
// crash stops the server (exit 1); a service that cannot start is exit 1
// without the `listening on` line.

#define CAF_SUITE binary.services

#include "caf/test/unit_test.hpp"

#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "support/binary_fixture.hpp"

#ifndef QUIESCE_SERVICE_SERVER
#error "QUIESCE_SERVICE_SERVER must name the test server (set by CMake)"
#endif

namespace qt = quiesce::test;

using namespace std::chrono_literals;

namespace {

struct fixture : qt::binary_fixture {
  qt::process* srv = nullptr;

  /// Starts the test server with `--services=<mode>` on a free port and
  /// waits for its `listening on` line; 0 after a failed check.
  uint16_t start(const std::string& mode,
                 const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--services=" + mode, "--protocol=svc",
                                  "--host=127.0.0.1", "--port=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    pin_one_process(args);
    srv = &run_program(QUIESCE_SERVICE_SERVER, args);
    auto port = srv->wait_listening();
    if (!port) {
      CAF_ERROR("the test server printed no `listening on` line");
      return 0;
    }
    return *port;
  }

  /// Adds `--workers=1` unless `args` ask for workers: services are per
  /// process (each worker has its own), and the tests check one process's
  /// restarts, deadlines and the order of its log lines.
  static void pin_one_process(std::vector<std::string>& args) {
    for (auto& arg : args)
      if (arg.rfind("--workers=", 0) == 0)
        return;
    args.emplace_back("--workers=1");
  }

  /// Starts the test server in `mode`, connects, and asks the counter
  /// service with a request it holds; returns the connection once the
  /// service has it (or a null descriptor after a failed check).
  qt::unique_fd hold_request(const std::string& mode) {
    auto port = start(mode);
    if (port == 0)
      return {};
    auto fd = connect_client(port);
    if (!fd || !qt::send_all(fd.get(), "wait counter 1000\n")
        || !srv->wait_stderr("test-service counter: holding")) {
      CAF_ERROR("the counter service did not get the request");
      return {};
    }
    return fd;
  }

  /// Sends `line` and reads one line back.
  std::string ask(int fd, const std::string& line) {
    if (!qt::send_all(fd, line + "\n"))
      return "send failed";
    return qt::read_through(fd, "\n").bytes;
  }

  int wait_exit() {
    return srv->wait_exit();
  }

  /// Where `text` first occurs in standard error (npos if nowhere).
  size_t stderr_pos(const std::string& text) {
    return srv->stderr_text().find(text);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(services_tests, fixture)

CAF_TEST(a request pending at the stop is answered before the FIN) {
  auto fd = hold_request("restart");
  CAF_REQUIRE(fd);
  // The request has reached the service: now the stop.
  CAF_CHECK(srv->signal(SIGTERM));
  auto got = qt::read_until_eof(fd.get());
  CAF_CHECK_EQUAL(got.bytes, "waited\n");
  CAF_CHECK_EQUAL(got.ending(), "clean EOF");
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(0));
  // The service stopped after the drain, not at the signal.
  auto drained = stderr_pos("stopped: drained=1 forced=0");
  auto stopped = stderr_pos("service 'counter' stopped in");
  CAF_CHECK(drained != std::string::npos);
  CAF_CHECK(stopped != std::string::npos);
  CAF_CHECK(drained < stopped);
}

CAF_TEST(a service crashing during the drain is restarted and stopped) {
  auto fd = hold_request("restart");
  CAF_REQUIRE(fd);
  CAF_CHECK(srv->signal(SIGTERM));
  CAF_REQUIRE(srv->wait_stderr("SIGTERM received: stopping"));
  // Busy with its request, the connection still reads: another service
  // crashes during the drain, and is restarted (it might still be needed).
  CAF_REQUIRE(qt::send_all(fd.get(), "crash aux\n"));
  auto got = qt::read_until_eof(fd.get());
  CAF_CHECK_EQUAL(got.bytes, "sent\nwaited\n");
  CAF_CHECK_EQUAL(got.ending(), "clean EOF");
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(0));
  auto restarted = stderr_pos("service 'aux' ended unexpectedly");
  auto stopped = stderr_pos("service 'aux' stopped in");
  CAF_CHECK(restarted != std::string::npos);
  CAF_CHECK(stopped != std::string::npos);
  CAF_CHECK(restarted < stopped);
  CAF_CHECK(stderr_pos("services stopped: stopped=2 forced=0")
            != std::string::npos);
}

CAF_TEST(a service slow to stop is forced at its deadline) {
  CAF_REQUIRE(start("slow") != 0);
  auto began = std::chrono::steady_clock::now();
  CAF_CHECK(srv->signal(SIGTERM));
  auto code = wait_exit();
  auto took = std::chrono::steady_clock::now() - began;
  CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(3));
  // Its own deadline (300 ms), far from the default 5 s; the generous bound
  // is for a loaded machine.
  CAF_CHECK_LESS(took, 3s);
  CAF_CHECK(srv->stderr_count("test-service slow: ignoring stop") == 1);
  auto forced = stderr_pos("service 'slow' forced at its deadline (300ms)");
  auto counter = stderr_pos("service 'counter' stopped in");
  CAF_CHECK(forced != std::string::npos);
  // Declared last, stopped first; then the next one.
  CAF_CHECK(counter != std::string::npos);
  CAF_CHECK(forced < counter);
  CAF_CHECK(stderr_pos("services stopped: stopped=1 forced=1")
            != std::string::npos);
}

CAF_TEST(a service that traps the forced exit is killed) {
  CAF_REQUIRE(start("stubborn") != 0);
  CAF_CHECK(srv->signal(SIGTERM));
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(3));
  CAF_CHECK(stderr_pos("service 'stubborn' forced at its deadline (300ms)")
            != std::string::npos);
  CAF_CHECK(srv->stderr_count("test-service stubborn: ignoring exit") == 1);
  CAF_CHECK(stderr_pos("service 'stubborn' still runs 250ms after its forced "
                       "exit (it traps exits): killed")
            != std::string::npos);
  // The kill ended it: nobody gave up on it, no teardown guard fired.
  CAF_CHECK_EQUAL(srv->stderr_count("giving up on it"), 0u);
  CAF_CHECK_EQUAL(srv->stderr_count("did not shut down"), 0u);
  CAF_CHECK(stderr_pos("service 'counter' stopped in") != std::string::npos);
}

CAF_TEST(a crashed service is restarted and found by later lookups) {
  auto port = start("restart");
  CAF_REQUIRE(port != 0);
  auto fd = connect_client(port);
  CAF_REQUIRE(fd);
  CAF_CHECK_EQUAL(ask(fd.get(), "gen counter"), "gen=1\n");
  CAF_CHECK_EQUAL(ask(fd.get(), "crash counter"), "sent\n");
  CAF_REQUIRE(srv->wait_stderr("restarted (restart 1 of at most 5 within "
                               "10s)"));
  CAF_CHECK_EQUAL(ask(fd.get(), "gen counter"), "gen=2\n");
  CAF_CHECK(srv->signal(SIGTERM));
  CAF_CHECK_EQUAL(qt::read_until_eof(fd.get()).ending(), "clean EOF");
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(0));
}

CAF_TEST(too many restarts stop the server with exit code 1) {
  auto port = start("restart");
  CAF_REQUIRE(port != 0);
  auto fd = connect_client(port);
  CAF_REQUIRE(fd);
  for (size_t i = 1; i <= 5; ++i) {
    CAF_CHECK_EQUAL(ask(fd.get(), "crash counter"), "sent\n");
    CAF_REQUIRE(srv->wait_stderr("restarted (restart " + std::to_string(i)));
  }
  CAF_CHECK_EQUAL(ask(fd.get(), "gen counter"), "gen=6\n");
  CAF_CHECK_EQUAL(ask(fd.get(), "crash counter"), "sent\n");
  CAF_CHECK_EQUAL(qt::read_until_eof(fd.get()).ending(), "clean EOF");
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(1));
  CAF_CHECK(stderr_pos("after 5 restarts within 10s; stopping the server "
                       "(exit code 1)")
            != std::string::npos);
}

CAF_TEST(a crash under the stop_server policy stops the server) {
  auto port = start("fatal");
  CAF_REQUIRE(port != 0);
  auto fd = connect_client(port);
  CAF_REQUIRE(fd);
  CAF_CHECK_EQUAL(ask(fd.get(), "crash counter"), "sent\n");
  CAF_CHECK_EQUAL(qt::read_until_eof(fd.get()).ending(), "clean EOF");
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(1));
  CAF_CHECK(stderr_pos("service 'counter' ended unexpectedly")
            != std::string::npos);
  CAF_CHECK(stderr_pos("its crash policy stops the server (exit code 1)")
            != std::string::npos);
  CAF_CHECK_EQUAL(srv->stderr_count("restarted"), 0u);
}

CAF_TEST(a service that cannot start is exit 1 without listening) {
  std::vector<std::string> args{"--services=broken", "--protocol=svc",
                                "--host=127.0.0.1", "--port=0"};
  pin_one_process(args);
  srv = &run_program(QUIESCE_SERVICE_SERVER, args);
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(1));
  CAF_CHECK_EQUAL(srv->stdout_text().find("listening on"), std::string::npos);
  CAF_CHECK(stderr_pos("service 'broken' failed to start: its spawn function "
                       "threw: no backend")
            != std::string::npos);
  // The one that had started is stopped again.
  CAF_CHECK(stderr_pos("service 'counter' stopped in") != std::string::npos);
}

CAF_TEST(with two workers a crash under the stop_server policy is exit 1) {
  // From outside: the client of the crashed worker gets a clean EOF, the
  // server stops with exit code 1 and one summary line.
  auto port = start("fatal", {"--workers=2"});
  CAF_REQUIRE(port != 0);
  auto fd = connect_client(port);
  CAF_REQUIRE(fd);
  CAF_CHECK_EQUAL(ask(fd.get(), "crash counter"), "sent\n");
  CAF_CHECK_EQUAL(qt::read_until_eof(fd.get()).ending(), "clean EOF");
  fd.reset();
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(1));
  CAF_CHECK_EQUAL(srv->stdout_text().find("listening on"),
                  srv->stdout_text().rfind("listening on"));
}

CAF_TEST(with two workers a service that cannot start is exit 1) {
  // From outside: no worker can start, so no `listening on` line, and
  // exit code 1.
  std::vector<std::string> args{"--services=broken", "--protocol=svc",
                                "--host=127.0.0.1", "--port=0", "--workers=2"};
  srv = &run_program(QUIESCE_SERVICE_SERVER, args);
  CAF_CHECK_EQUAL(qt::describe_exit(wait_exit()), qt::describe_exit(1));
  CAF_CHECK_EQUAL(srv->stdout_text().find("listening on"), std::string::npos);
  CAF_CHECK(stderr_pos("service 'broken' failed to start")
            != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
