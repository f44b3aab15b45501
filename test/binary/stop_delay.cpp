// `--stop-delay` with real processes, one (`--workers=1`) and a master
// with two workers (`--workers=2`): after the first SIGTERM the server
// keeps accepting and serving for the delay, every HTTP response then says
// `Connection: close` (on a connection accepted during the delay and on a
// keep-alive one opened before it), then the normal stop: new connections
// refused, exit 0. A second signal during the delay stops at once, a third
// forces (exit 3); a process-group signal counts once. Bad values are
// usage errors; the config file's key works.

#define CAF_SUITE binary.stop_delay

#include "caf/test/unit_test.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"
#include "support/temp_dir.hpp"

namespace qt = quiesce::test;

using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

/// What each acceptor logs once it starts new connections in the closing
/// mode.
const std::string acceptor_closing = "new connections in the closing mode";

constexpr std::string_view get_root = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Milliseconds since `since`.
long long millis_since(clock_type::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now()
                                                               - since)
    .count();
}

struct fixture : qt::binary_fixture {
  /// Starts an HTTP server with `--workers=<workers>` and `extra` options;
  /// the port, or 0 after a failed check.
  uint16_t start(int workers, std::vector<std::string> extra,
                 const qt::process_options& opts = {}) {
    extra.push_back("--workers=" + std::to_string(workers));
    std::vector<std::string> args{"--protocol=http", "--host=127.0.0.1",
                                  "--port=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    srv_ = &run(args, opts);
    auto port = srv_->wait_listening();
    if (!port) {
      CAF_ERROR("`" << srv_->command() << "` printed no `listening on` line");
      return 0;
    }
    return *port;
  }

  qt::process& srv() {
    return *srv_;
  }

  /// Sends `GET /` on `fd` and reads the whole response (head, then the
  /// body by its Content-Length); an empty status line if none came.
  qt::response get(int fd) {
    qt::response r;
    if (!qt::send_all(fd, get_root)) {
      CAF_ERROR("sending GET / failed: " << std::strerror(errno));
      return r;
    }
    auto head = qt::read_through(fd, "\r\n\r\n");
    if (head.status != qt::read_status::complete) {
      CAF_ERROR("no response head: " << head.ending());
      return r;
    }
    if (!qt::parse_head(head.bytes, r) || !r.content_length()) {
      CAF_ERROR("a response head that does not parse: " << head.bytes);
      return r;
    }
    r.body = qt::read_exactly(fd, *r.content_length()).bytes;
    return r;
  }

  /// Waits until `text` is on standard error `n` times; false after a
  /// failed check.
  bool await(const std::string& text, size_t n = 1) {
    if (srv().wait_stderr(text, n))
      return true;
    CAF_ERROR("standard error has `" << text << "` " << srv().stderr_count(text)
                                     << " of " << n << " times");
    return false;
  }

  /// Sends SIGTERM and waits until every serving process is in the
  /// closing mode (each acceptor logs it): the delay runs, and connections
  /// accepted from now on start in the mode. False after a failed check.
  bool begin_delay(int workers, int sig = SIGTERM) {
    CAF_CHECK(srv().signal(sig));
    return await(acceptor_closing, static_cast<size_t>(workers));
  }

  void expect_stderr(const std::string& text, size_t n = 1) {
    CAF_CHECK_EQUAL(srv().stderr_count(text), n);
  }

  void expect_exit(int expected) {
    auto code = srv().wait_exit();
    CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(expected));
  }

  /// Checks that a client of `port` is refused.
  void expect_refused(uint16_t port) {
    auto late = qt::connect_loopback(port);
    CAF_CHECK_EQUAL(std::string{std::strerror(late.error)},
                    std::string{std::strerror(ECONNREFUSED)});
  }

private:
  qt::process* srv_ = nullptr;
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(stop_delay_tests, fixture)

CAF_TEST(during the delay new and old connections get Connection close) {
  for (int workers : {1, 2}) {
    CAF_MESSAGE("--workers=" << workers);
    auto port = start(workers, {"--stop-delay=60s", "--log-level=debug"});
    if (port == 0)
      return;
    // A keep-alive connection from before the delay.
    auto old = connect_client(port);
    auto before = get(old.get());
    CAF_CHECK_EQUAL(before.status, 200);
    CAF_CHECK_EQUAL(before.header("Connection"), "keep-alive");
    auto signalled = clock_type::now();
    if (!begin_delay(workers))
      return;
    CAF_CHECK_EQUAL(srv().stderr_count("received: stopping in 60s (stop delay"),
                    1u);
    // The supervisors hand the mode to the open connections through the
    // event loop: the old connection's debug line says it has it.
    if (!await("the next answer closes (stop delay)"))
      return;
    // A new connection during the delay is accepted and served; its
    // response says close, and the server closes it (FIN, not a reset).
    for (int i = 0; i < 3; ++i) {
      auto fresh = connect_client(port);
      auto r = get(fresh.get());
      CAF_CHECK_EQUAL(r.status, 200);
      CAF_CHECK_EQUAL(r.body, "quiesce: hello\n");
      CAF_CHECK_EQUAL(r.header("Connection"), "close");
      CAF_CHECK_EQUAL(qt::read_until_eof(fresh.get()).ending(), "clean EOF");
    }
    // The old keep-alive connection: its next response says close.
    auto after = get(old.get());
    CAF_CHECK_EQUAL(after.status, 200);
    CAF_CHECK_EQUAL(after.header("Connection"), "close");
    CAF_CHECK_EQUAL(qt::read_until_eof(old.get()).ending(), "clean EOF");
    old.reset();
    CAF_CHECK(!srv().exited());
    // A second signal during the delay: the graceful stop at once, long
    // before the 60 s delay would end.
    CAF_CHECK(srv().signal(SIGTERM));
    expect_exit(0);
    auto took = millis_since(signalled);
    CAF_MESSAGE("exit " << took << " ms after the first SIGTERM");
    CAF_CHECK_LESS(took, 30'000);
    expect_stderr("SIGTERM received again during the stop delay");
    expect_stderr("forcing", 0);
    expect_stderr("stopped: drained=");
  }
}

CAF_TEST(after the delay new connections are refused and the exit is 0) {
  for (int workers : {1, 2}) {
    CAF_MESSAGE("--workers=" << workers);
    auto port = start(workers, {"--stop-delay=2s", "--drain-timeout=60s"});
    if (port == 0)
      return;
    // A request in flight past the delay keeps the server draining while
    // the test connects (answered with close whenever it ends).
    auto busy = connect_client(port);
    CAF_REQUIRE(
      qt::send_all(busy.get(), "GET /delay/4000 HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto signalled = clock_type::now();
    if (!begin_delay(workers) || !await("listener closed"))
      return;
    // The stop began only once the delay was over.
    auto took = millis_since(signalled);
    CAF_MESSAGE("listener closed " << took << " ms after SIGTERM");
    CAF_CHECK_GREATER_OR_EQUAL(took, 2'000);
    CAF_CHECK_EQUAL(srv().stderr_count("the stop delay is over"), 1u);
    expect_refused(port);
    auto head = qt::read_through(busy.get(), "\r\n\r\n");
    CAF_CHECK_EQUAL(head.ending(), "complete");
    CAF_CHECK_EQUAL(qt::status_line_of(head.bytes), "HTTP/1.1 200 OK");
    CAF_CHECK_NOT_EQUAL(head.bytes.find("\r\nConnection: close\r\n"),
                        std::string::npos);
    auto rest = qt::read_until_eof(busy.get());
    CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
    CAF_CHECK_EQUAL(rest.bytes, "delayed 4000 ms\n");
    busy.reset();
    expect_exit(0);
    expect_stderr("stopped: drained=");
  }
}

CAF_TEST(a third signal forces a request in flight and exits 3) {
  for (int workers : {1, 2}) {
    CAF_MESSAGE("--workers=" << workers);
    auto port = start(workers, {"--stop-delay=60s", "--drain-timeout=60s"});
    if (port == 0)
      return;
    auto busy = connect_client(port);
    CAF_REQUIRE(
      qt::send_all(busy.get(), "GET /delay/60000 HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto signalled = clock_type::now();
    if (!begin_delay(workers))
      return;
    CAF_CHECK(srv().signal(SIGTERM));
    if (!await("received again during the stop delay"))
      return;
    CAF_CHECK(srv().signal(SIGTERM));
    expect_exit(3);
    auto took = millis_since(signalled);
    CAF_MESSAGE("exit " << took << " ms after the first SIGTERM");
    CAF_CHECK_LESS(took, 30'000);
    expect_stderr("SIGTERM received again: forcing the stop");
    auto rest = qt::read_until_eof(busy.get());
    CAF_CHECK_EQUAL(rest.bytes.size(), 0u);
    CAF_CHECK_EQUAL(rest.ending(), "error: Connection reset by peer");
  }
}

CAF_TEST(a process group signal during the delay counts once) {
  qt::process_options opts;
  opts.own_process_group = true;
  auto port = start(2, {"--stop-delay=60s"}, opts);
  if (port == 0)
    return;
  // Ctrl-C: the master and both workers get it; the workers leave it to
  // the master, which begins the delay once.
  CAF_REQUIRE_EQUAL(::kill(-srv().pid(), SIGINT), 0);
  if (!await(acceptor_closing, 2))
    return;
  auto fresh = connect_client(port);
  auto r = get(fresh.get());
  CAF_CHECK_EQUAL(r.header("Connection"), "close");
  fresh.reset();
  expect_stderr("SIGINT received again", 0);
  // A SIGHUP during the delay reloads nothing.
  CAF_CHECK(srv().signal(SIGHUP));
  if (!await("SIGHUP received during the stop delay: ignored"))
    return;
  CAF_REQUIRE_EQUAL(::kill(-srv().pid(), SIGINT), 0);
  expect_exit(0);
  expect_stderr("SIGINT received again during the stop delay");
  expect_stderr("reloading", 0);
}

CAF_TEST(a worker restarted during the delay serves in the closing mode) {
  auto port = start(2, {"--stop-delay=60s"});
  if (port == 0 || !begin_delay(2))
    return;
  auto workers = qt::children_of(srv().pid());
  CAF_REQUIRE_EQUAL(workers.size(), 2u);
  CAF_REQUIRE_EQUAL(::kill(workers.front(), SIGKILL), 0);
  // Started again, it registers into the closing mode: a third line.
  if (!await("serves again") || !await(acceptor_closing, 3))
    return;
  // Whichever worker takes them, new connections are answered with close.
  for (int i = 0; i < 6; ++i) {
    auto fresh = connect_client(port);
    auto r = get(fresh.get());
    CAF_CHECK_EQUAL(r.status, 200);
    CAF_CHECK_EQUAL(r.header("Connection"), "close");
  }
  CAF_CHECK(srv().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST(without a delay the first signal stops at once) {
  auto port = start(1, {"--stop-delay=0s"});
  if (port == 0)
    return;
  CAF_CHECK(srv().signal(SIGTERM));
  if (!await("listener closed"))
    return;
  expect_exit(0);
  expect_stderr("stop delay", 0);
  expect_stderr("closing mode", 0);
}

CAF_TEST(bad values are usage errors naming the option) {
  for (auto value : {"abc", "-1s", "5", "25h"}) {
    auto arg = std::string{"--stop-delay="} + value;
    auto& proc = run({"--protocol=http", "--host=127.0.0.1", "--port=0", arg});
    auto code = proc.wait_exit();
    CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(2));
    if (proc.stderr_text().find("stop-delay") == std::string::npos)
      CAF_ERROR(arg << ": the error does not name the option: "
                    << proc.stderr_text());
    CAF_CHECK_EQUAL(proc.stdout_text(), "");
  }
}

CAF_TEST(the config file sets the delay) {
  qt::temp_dir dir;
  CAF_REQUIRE(dir.ok());
  CAF_REQUIRE(qt::write_file(dir.file("caf-application.ini"),
                             "[global]\nstop-delay=60s\n"));
  qt::process_options opts;
  opts.working_directory = dir.path();
  auto port = start(1, {}, opts);
  if (port == 0)
    return;
  if (!begin_delay(1))
    return;
  expect_stderr("received: stopping in 60s");
  auto fresh = connect_client(port);
  auto r = get(fresh.get());
  CAF_CHECK_EQUAL(r.header("Connection"), "close");
  fresh.reset();
  CAF_CHECK(srv().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST_FIXTURE_SCOPE_END()
