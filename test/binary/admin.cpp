// The admin endpoint (`--admin=HOST:PORT`, the README's "Admin endpoint"):
// `/healthz`, `/readyz` and `/metrics` on a live server with one process and
// with two workers; the metrics checked by `promtool check metrics` and
// against real traffic (requests by status, connections, bytes both ways);
// `/readyz` 503 from the SIGTERM on while a request keeps the drain going,
// the admin answering through the drain, drained and forced counted; a
// killed worker's counts kept by the master, and a reload's retired ones;
// bad values exit 2, an admin port in use exits 1.
//
// Waiting: on the `listening on` line, on bytes, on an exit, and on log
// lines written after what a scrape then reads has changed (the servers run
// at --log-level=debug): the admin's "/readyz answers 503", a supervisor's
// "a connection ended" (after its counts), the master's "serves again" and
// "no longer serves" (after the admin's update), the HTTP behaviour's
// "a response delayed by" (after the request was read and counted).

#define CAF_SUITE binary.admin

#include "caf/test/unit_test.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"
#include "support/temp_dir.hpp"

namespace qt = quiesce::test;

using namespace std::chrono_literals;

namespace {

/// Metric values by series, as `name` or `name{labels}`.
using metric_map = std::map<std::string, double>;

/// The series every `/metrics` answer has, with a HELP line each.
const std::vector<std::string> required_metrics{
  "quiesce_connections_open",
  "quiesce_connections_accepted_total",
  "quiesce_connections_drained_total",
  "quiesce_connections_forced_total",
  "quiesce_stopping",
  "quiesce_last_stop_duration_seconds",
  "quiesce_workers",
  "quiesce_worker_restarts_total",
  "quiesce_http_requests_total",
  "quiesce_received_bytes_total",
  "quiesce_sent_bytes_total",
};

/// Parses the sample lines of the Prometheus text format.
metric_map parse_metrics(const std::string& text) {
  metric_map result;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#')
      continue;
    auto space = line.rfind(' ');
    if (space == std::string::npos)
      continue;
    result[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return result;
}

/// `name{code="N"}`.
std::string by_code(int code) {
  return "quiesce_http_requests_total{code=\"" + std::to_string(code) + "\"}";
}

struct fixture : qt::binary_fixture {
  uint16_t port = 0;
  uint16_t admin = 0;

  /// Starts an HTTP server with an admin endpoint on a free port and reads
  /// both ports; false after a failed check.
  bool start(std::vector<std::string> extra) {
    extra.push_back("--admin=127.0.0.1:0");
    extra.push_back("--log-level=debug");
    port = start_http(extra);
    if (port == 0)
      return false;
    auto out = server().stdout_text();
    auto at = out.find(" admin=127.0.0.1:");
    if (at == std::string::npos) {
      CAF_ERROR("no admin= word on the listening line: " << out);
      return false;
    }
    admin = static_cast<uint16_t>(
      std::stoi(out.substr(at + std::strlen(" admin=127.0.0.1:"))));
    return admin != 0;
  }

  /// `method path` on a new connection to `to` (`Connection: close`), the
  /// response read to the end.
  qt::response ask(uint16_t to, const std::string& path,
                   const std::string& method = "GET") {
    auto conn = qt::connect_loopback(to);
    if (!conn.fd) {
      CAF_ERROR("cannot connect to port " << to << ": "
                                          << std::strerror(conn.error));
      return {};
    }
    auto fd = conn.fd.get();
    qt::send_all(fd, method + " " + path
                       + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto got = qt::read_until_eof(fd);
    auto parsed = qt::parse_response(got.bytes, method == "HEAD");
    if (parsed.status != qt::parse_status::complete)
      CAF_ERROR(method << " " << path
                       << ": no complete response: " << got.bytes);
    return parsed.value;
  }

  metric_map metrics() {
    auto r = ask(admin, "/metrics");
    CAF_CHECK_EQUAL(r.status, 200);
    return parse_metrics(r.body);
  }

  /// Waits until `n` client connections have ended (their counts are
  /// updated before the line), then the metrics.
  metric_map metrics_after_ended(size_t n) {
    CAF_CHECK(server().wait_stderr(" supervisor: a connection ended; ", n));
    return metrics();
  }

  /// Waits until the stop has reached the admin (`/readyz` 503 from the
  /// line on), then asks `/readyz`.
  int readyz_after_stop() {
    CAF_CHECK(server().wait_stderr("admin: /readyz answers 503 from now on"));
    return ask(admin, "/readyz").status;
  }

  /// Checks the three endpoints of a server serving with `workers`
  /// processes, and the metrics text with promtool.
  void check_endpoints(double workers) {
    auto health = ask(admin, "/healthz");
    CAF_CHECK_EQUAL(health.status, 200);
    CAF_CHECK_EQUAL(health.body, "ok\n");
    auto head = ask(admin, "/healthz", "HEAD");
    CAF_CHECK_EQUAL(head.status, 200);
    CAF_CHECK_EQUAL(head.body, "");
    CAF_CHECK_EQUAL(ask(admin, "/readyz").status, 200);
    auto m = ask(admin, "/metrics");
    CAF_CHECK_EQUAL(m.status, 200);
    CAF_CHECK_EQUAL(m.header("Content-Type"), "text/plain; version=0.0.4");
    for (auto& name : required_metrics)
      CAF_CHECK(m.body.find("# HELP " + name + " ") != std::string::npos);
    auto values = parse_metrics(m.body);
    CAF_CHECK_EQUAL(values["quiesce_workers"], workers);
    CAF_CHECK_EQUAL(values["quiesce_stopping"], 0.0);
    auto post = ask(admin, "/metrics", "POST");
    CAF_CHECK_EQUAL(post.status, 405);
    CAF_CHECK_EQUAL(post.header("Allow"), "GET, HEAD");
    CAF_CHECK_EQUAL(ask(admin, "/").status, 404);
    CAF_CHECK_EQUAL(ask(admin, "/metricsx").status, 404);
    CAF_CHECK(server().wait_stderr("admin endpoint on 127.0.0.1:"
                                   + std::to_string(admin)));
    promtool_accepts(m.body);
  }

  /// `promtool check metrics` reads `text` and finds nothing wrong.
  void promtool_accepts(const std::string& text) {
    qt::temp_dir dir;
    auto file = dir.file("metrics.txt");
    CAF_REQUIRE(qt::write_file(file, text));
    auto& check = run_program("/bin/sh", {"-c", "exec /usr/bin/promtool check "
                                                "metrics < "
                                                  + file});
    auto code = check.wait_exit();
    CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(0));
    CAF_CHECK_EQUAL(check.stderr_text(), "");
  }

  /// N requests on one keep-alive connection, one 404 on it, then three
  /// more connections: every count checked against what the client sent
  /// and read.
  void check_counts() {
    auto before = metrics();
    CAF_CHECK_EQUAL(before[by_code(200)], 0.0);
    CAF_CHECK_EQUAL(before["quiesce_connections_accepted_total"], 0.0);
    auto conn = connect_client(port);
    if (!conn)
      return;
    auto fd = conn.get();
    size_t sent = 0;
    size_t read = 0;
    auto round_trip = [&](const std::string& path, int status) {
      auto request = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
      CAF_REQUIRE(qt::send_all(fd, request));
      sent += request.size();
      auto head = qt::read_through(fd, "\r\n\r\n");
      qt::response r;
      CAF_REQUIRE(qt::parse_head(head.bytes, r));
      CAF_CHECK_EQUAL(r.status, status);
      auto length = r.content_length().value_or(0);
      auto body = qt::read_exactly(fd, length);
      read += head.bytes.size() + body.bytes.size();
    };
    constexpr int n = 7;
    for (int i = 0; i < n; ++i)
      round_trip("/", 200);
    round_trip("/no/such/path", 404);
    auto m = metrics();
    CAF_CHECK_EQUAL(m[by_code(200)], double{n});
    CAF_CHECK_EQUAL(m[by_code(404)], 1.0);
    CAF_CHECK_EQUAL(m["quiesce_connections_accepted_total"], 1.0);
    CAF_CHECK_EQUAL(m["quiesce_connections_open"], 1.0);
    CAF_CHECK_EQUAL(m["quiesce_received_bytes_total"], double(sent));
    CAF_CHECK_EQUAL(m["quiesce_sent_bytes_total"], double(read));
    for (int i = 0; i < 3; ++i)
      CAF_CHECK_EQUAL(ask(port, "/").status, 200);
    conn.reset();
    // The admin's own requests (a dozen by now) are not counted.
    m = metrics_after_ended(4);
    CAF_CHECK_EQUAL(m["quiesce_connections_open"], 0.0);
    CAF_CHECK_EQUAL(m[by_code(200)], double{n + 3});
    CAF_CHECK_EQUAL(m["quiesce_connections_accepted_total"], 4.0);
    CAF_CHECK_EQUAL(m["quiesce_connections_drained_total"], 0.0);
  }

  /// SIGTERM with a request in flight that holds the drain: /readyz 503,
  /// the admin answering, drained and forced counted during the drain; a
  /// second signal ends it.
  void check_stop(const std::string& summary_source) {
    // B holds the drain; C is idle at the stop (drained at once); D never
    // reads its response, which its write timeout aborts during the drain
    // (forced).
    auto b = connect_client(port);
    auto c = connect_client(port);
    if (!b || !c)
      return;
    const std::string b_request
      = "GET /delay/600000 HTTP/1.1\r\nHost: x\r\n\r\n";
    CAF_REQUIRE(qt::send_all(b.get(), b_request));
    const std::string c_request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CAF_REQUIRE(qt::send_all(c.get(), c_request));
    CAF_REQUIRE(qt::read_through(c.get(), "hello\n").status
                == qt::read_status::complete);
    auto d = qt::connect_small_segments(port);
    CAF_REQUIRE(d.fd);
    const std::string body(100 * 1024, 'x');
    auto d_request = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     + std::to_string(body.size()) + "\r\n\r\n" + body;
    CAF_REQUIRE(qt::send_all(d.fd.get(), d_request));
    CAF_REQUIRE(qt::wait_readable(d.fd.get()));
    // Every request has reached the server: C's and D's are answered, B's
    // delay has begun.
    CAF_REQUIRE(server().wait_stderr("http: a response delayed by 600000 ms"));
    auto total = b_request.size() + c_request.size() + d_request.size();
    auto received = metrics()["quiesce_received_bytes_total"];
    CAF_CHECK_EQUAL(received, double(total));
    CAF_CHECK_EQUAL(ask(admin, "/readyz").status, 200);
    CAF_REQUIRE(server().signal(SIGTERM));
    CAF_CHECK_EQUAL(readyz_after_stop(), 503);
    CAF_CHECK_EQUAL(ask(admin, "/healthz").status, 200);
    // C, idle, is closed at the stop.
    CAF_CHECK_EQUAL(qt::read_until_eof(c.get()).ending(), "clean EOF");
    c.reset();
    // C drained, D forced (its write timeout): B alone is left.
    auto m = metrics_after_ended(2);
    CAF_CHECK_EQUAL(m["quiesce_stopping"], 1.0);
    CAF_CHECK_EQUAL(m["quiesce_connections_drained_total"], 1.0);
    CAF_CHECK_EQUAL(m["quiesce_connections_forced_total"], 1.0);
    CAF_CHECK_EQUAL(m["quiesce_connections_open"], 1.0);
    CAF_CHECK_EQUAL(m[by_code(200)], 2.0); // C's, and D's that never left
    CAF_CHECK_EQUAL(m["quiesce_last_stop_duration_seconds"], 0.0);
    CAF_CHECK(!server().exited()); // B holds the drain
    promtool_accepts(ask(admin, "/metrics").body);
    CAF_REQUIRE(server().signal(SIGTERM));
    expect_exit(3);
    CAF_CHECK(server().stderr_text().find(summary_source
                                          + ": stopped: drained=1 forced=2")
              != std::string::npos);
    // The admin listener closed before the exit.
    CAF_CHECK_NOT_EQUAL(qt::connect_loopback(admin).error, 0);
  }
};

/// A socket listening on a free loopback port, for "in use".
struct busy_port {
  qt::unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  uint16_t port = 0;

  busy_port() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0
        && ::listen(fd.get(), 1) == 0
        && ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len)
             == 0)
      port = ntohs(addr.sin_port);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(admin_tests, fixture)

CAF_TEST(one process serves healthz readyz and metrics that promtool accepts) {
  if (!start({"--workers=1"}))
    return;
  check_endpoints(1);
  CAF_CHECK(server().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST(two workers serve healthz readyz and metrics that promtool accepts) {
  if (!start({"--workers=2"}))
    return;
  check_endpoints(2);
  CAF_CHECK(server().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST(one process counts requests connections and bytes) {
  if (!start({"--workers=1"}))
    return;
  check_counts();
  CAF_CHECK(server().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST(two workers count requests connections and bytes in their sum) {
  if (!start({"--workers=2"}))
    return;
  check_counts();
  CAF_CHECK(server().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST(one process is unready from the stop and answers through the drain) {
  if (!start({"--workers=1", "--drain-timeout=120s", "--write-timeout=2s"}))
    return;
  check_stop("supervisor");
}

CAF_TEST(two workers are unready from the stop and answer through the drain) {
  if (!start({"--workers=2", "--drain-timeout=120s", "--write-timeout=2s"}))
    return;
  check_stop("master");
}

CAF_TEST(the counts of a killed worker are kept by the master) {
  if (!start({"--workers=2"}))
    return;
  for (int i = 0; i < 6; ++i)
    CAF_CHECK_EQUAL(ask(port, "/").status, 200);
  auto before = metrics();
  CAF_CHECK_EQUAL(before[by_code(200)], 6.0);
  auto workers = qt::children_of(server().pid());
  CAF_REQUIRE_EQUAL(workers.size(), 2u);
  CAF_REQUIRE_EQUAL(::kill(workers.front(), SIGKILL), 0);
  CAF_REQUIRE(server().wait_stderr(" serves again, "));
  auto m = metrics();
  CAF_CHECK_EQUAL(m["quiesce_worker_restarts_total"], 1.0);
  CAF_CHECK_EQUAL(m["quiesce_workers"], 2.0);
  CAF_CHECK_EQUAL(m[by_code(200)], 6.0);
  CAF_CHECK_EQUAL(m["quiesce_connections_accepted_total"], 6.0);
  CAF_CHECK_EQUAL(m["quiesce_received_bytes_total"],
                  before["quiesce_received_bytes_total"]);
  CAF_CHECK_EQUAL(m["quiesce_sent_bytes_total"],
                  before["quiesce_sent_bytes_total"]);
  CAF_CHECK(server().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST(a reload keeps the counts of the retired workers) {
  if (!start({"--workers=2"}))
    return;
  for (int i = 0; i < 5; ++i)
    CAF_CHECK_EQUAL(ask(port, "/").status, 200);
  auto before = metrics();
  CAF_REQUIRE(server().signal(SIGHUP));
  // Both old workers answer their retire, then end.
  CAF_REQUIRE(server().wait_stderr(" retired: ", 2));
  // The two new workers alone.
  CAF_REQUIRE(server().wait_stderr(" no longer serves; ", 2));
  auto m = metrics();
  CAF_CHECK_EQUAL(m["quiesce_workers"], 2.0);
  CAF_CHECK_EQUAL(m[by_code(200)], 5.0);
  CAF_CHECK_EQUAL(m["quiesce_connections_accepted_total"], 5.0);
  CAF_CHECK_EQUAL(m["quiesce_received_bytes_total"],
                  before["quiesce_received_bytes_total"]);
  CAF_CHECK_EQUAL(m["quiesce_worker_restarts_total"], 0.0);
  CAF_CHECK_EQUAL(m["quiesce_last_stop_duration_seconds"], 0.0);
  CAF_CHECK_EQUAL(ask(port, "/").status, 200);
  m = metrics();
  CAF_CHECK_EQUAL(m[by_code(200)], 6.0);
  CAF_CHECK(server().signal(SIGTERM));
  expect_exit(0);
}

CAF_TEST(bad admin values are usage errors naming the option) {
  for (auto value : {"nope", "127.0.0.1", "127.0.0.1:", "127.0.0.1:70000",
                     "127.0.0.1:x", "::1:8080", ":8080", "[::1:8080"}) {
    auto& srv = run({"--port=0", std::string{"--admin="} + value});
    auto code = srv.wait_exit();
    CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(2));
    CAF_CHECK(srv.stderr_text().find("admin") != std::string::npos);
  }
}

CAF_TEST(an admin port in use exits 1 naming the address and the error) {
  busy_port busy;
  CAF_REQUIRE(busy.port != 0);
  for (auto workers : {"--workers=1", "--workers=2"}) {
    auto address = "127.0.0.1:" + std::to_string(busy.port);
    auto& srv = run({"--port=0", workers, "--admin=" + address});
    auto code = srv.wait_exit();
    CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(1));
    auto err = srv.stderr_text();
    CAF_CHECK(err.find("--admin") != std::string::npos);
    CAF_CHECK(err.find(address) != std::string::npos);
    CAF_CHECK(err.find("Address already in use") != std::string::npos);
    CAF_CHECK_EQUAL(srv.stdout_text(), "");
  }
}

CAF_TEST(readyz is 503 from the start of a stop delay while still serving) {
  for (auto workers : {"--workers=1", "--workers=2"}) {
    CAF_MESSAGE(workers);
    if (!start({workers, "--stop-delay=60s"}))
      return;
    CAF_CHECK_EQUAL(ask(admin, "/readyz").status, 200);
    CAF_REQUIRE(server().signal(SIGTERM));
    CAF_CHECK_EQUAL(readyz_after_stop(), 503);
    // Unready, but serving: each acceptor is in the closing mode, and a new
    // client is answered (with close).
    auto n = std::string{workers} == "--workers=1" ? 1u : 2u;
    CAF_REQUIRE(server().wait_stderr("new connections in the closing mode", n));
    // A keep-alive request: the answer says close only in the closing mode.
    auto conn = connect_client(port);
    CAF_REQUIRE(qt::send_all(conn.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto head = qt::read_through(conn.get(), "\r\n\r\n");
    CAF_CHECK_EQUAL(qt::status_line_of(head.bytes), "HTTP/1.1 200 OK");
    CAF_CHECK_NOT_EQUAL(head.bytes.find("\r\nConnection: close\r\n"),
                        std::string::npos);
    conn.reset();
    CAF_CHECK(server().signal(SIGTERM));
    expect_exit(0);
  }
}

CAF_TEST_FIXTURE_SCOPE_END()
