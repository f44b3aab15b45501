// The http protocol of the built binary over real loopback sockets: curl for
// the routes, bodies, limits, HTTP/1.0 and keep-alive; raw sockets for
// pipelining, the errors that close the connection, `Expect: 100-continue`
// and the cap on `/delay`; the graceful stop with requests in flight, idle
// keep-alive connections, the drain deadline and a request half received at
// the stop; a short wrk run.

#define CAF_SUITE binary.http

#include "caf/test/unit_test.hpp"

#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/http_response.hpp"

namespace qt = quiesce::test;

using namespace std::chrono_literals;

namespace {

constexpr const char* curl_program = "/usr/bin/curl";

constexpr const char* wrk_program = "/usr/bin/wrk";

/// The body limit of the contract (the default of `--http.max-body`).
constexpr size_t max_body = size_t{1024} * 1024;

/// The body of `GET /`.
constexpr std::string_view hello = "quiesce: hello\n";

// -- responses ----------------------------------------------------------------

/// One HTTP response, from a socket or from curl's output, and how reading
/// it ended: "complete", or e.g. "clean EOF" for a cut response.
struct http_response : qt::response {
  std::string ending = "complete";
};

/// Splits the output of `curl -i` (one response) into head and body. An
/// interim response before it (`HTTP/1.1 100 Continue`, printed by curl
/// too) is skipped.
http_response parse_response(std::string_view text) {
  http_response resp;
  for (;;) {
    auto interim = qt::parse_response(text);
    if (interim.status != qt::parse_status::complete
        || interim.value.status / 100 != 1)
      break;
    text.remove_prefix(interim.size);
  }
  auto end = text.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    resp.ending = "no end of the header section in curl's output";
    qt::parse_head(text, resp);
    return resp;
  }
  if (!qt::parse_head(text.substr(0, end + 2), resp))
    resp.ending = "a field line without a colon in curl's output";
  resp.body = std::string{text.substr(end + 4)};
  return resp;
}

/// Reads one response from `fd`: the header section, then `Content-Length`
/// bytes of body (none after a HEAD request). Reads nothing beyond it, so
/// pipelined responses come out one at a time.
http_response read_response(int fd, bool head_request = false) {
  http_response resp;
  auto head = qt::read_through(fd, "\r\n\r\n");
  auto fields_ok = qt::parse_head(head.bytes, resp);
  if (head.status != qt::read_status::complete) {
    resp.ending = head.ending() + " after " + std::to_string(head.bytes.size())
                  + " bytes of the header section";
    return resp;
  }
  if (!fields_ok) {
    resp.ending = "a field line without a colon";
    return resp;
  }
  auto length = resp.content_length();
  if (!length) {
    resp.ending = "no valid Content-Length";
    return resp;
  }
  if (head_request || *length == 0)
    return resp;
  auto body = qt::read_exactly(fd, *length);
  resp.body = std::move(body.bytes);
  resp.ending = body.ending();
  return resp;
}

/// A request without a body.
std::string request(std::string_view method, std::string_view target,
                    std::string_view extra_headers = "") {
  std::string result{method};
  result += ' ';
  result += target;
  result += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  result += extra_headers;
  result += "\r\n";
  return result;
}

/// A `POST /echo` with `body`.
std::string echo_request(std::string_view body) {
  std::string result = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Length: "
                       + std::to_string(body.size()) + "\r\n\r\n";
  result += body;
  return result;
}

// -- files --------------------------------------------------------------------

/// A temporary file for curl to read or write, removed with this object.
class temp_file {
public:
  temp_file() {
    char tmpl[] = "/tmp/quiesce-http-XXXXXX";
    auto fd = ::mkstemp(tmpl);
    if (fd >= 0) {
      ::close(fd);
      path_ = tmpl;
    }
  }

  temp_file(const temp_file&) = delete;

  temp_file& operator=(const temp_file&) = delete;

  ~temp_file() {
    if (!path_.empty())
      ::unlink(path_.c_str());
  }

  /// The path; empty if the file could not be created.
  const std::string& path() const {
    return path_;
  }

  /// Replaces the contents with `bytes`.
  bool write(std::string_view bytes) const {
    auto* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr)
      return false;
    auto ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    return std::fclose(f) == 0 && ok;
  }

private:
  std::string path_;
};

// -- fixture ------------------------------------------------------------------

/// Milliseconds since `start`.
long long millis_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now() - start)
    .count();
}

struct fixture : qt::binary_fixture {
  /// Runs curl with `args` (after options that keep it quiet, off any proxy
  /// and bounded in time), waits for its exit and checks that it is 0.
  /// Returns its standard output.
  std::string curl(const std::vector<std::string>& args) {
    std::vector<std::string> all{"--silent", "--show-error", "--noproxy",
                                 "*",        "--max-time",   "20"};
    all.insert(all.end(), args.begin(), args.end());
    auto& proc = run_program(curl_program, all);
    auto code = proc.wait_exit();
    if (code != 0)
      CAF_ERROR("`" << proc.command() << "` ended with "
                    << qt::describe_exit(code) << ": " << proc.stderr_text());
    return proc.stdout_text();
  }

  /// `curl -i` for one URL: the response it printed.
  http_response curl_i(const std::vector<std::string>& args) {
    std::vector<std::string> all{"--include"};
    all.insert(all.end(), args.begin(), args.end());
    return parse_response(curl(all));
  }

  /// `http://127.0.0.1:<port><target>`.
  static std::string url(uint16_t port, std::string_view target) {
    return "http://127.0.0.1:" + std::to_string(port) + std::string{target};
  }

  /// `POST /echo` of `body` through curl's `--data-binary @file` (plus
  /// `extra` options); the response it printed.
  http_response curl_echo(uint16_t port, std::string_view body,
                          const std::vector<std::string>& extra = {}) {
    temp_file file;
    if (file.path().empty() || !file.write(body)) {
      CAF_ERROR("cannot write the request body to a temporary file");
      return {};
    }
    std::vector<std::string> args{"--data-binary", "@" + file.path(),
                                  "--header",
                                  "Content-Type: application/octet-stream"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url(port, "/echo"));
    return curl_i(args);
  }

  /// Five connections with a request in flight each (`GET /delay/500`) at
  /// a SIGTERM, with `workers`: each is answered with `Connection: close`,
  /// then a clean EOF, and the server exits 0 with all five drained.
  void requests_in_flight_at_stop(const std::string& workers) {
    constexpr size_t connections = 5;
    auto port = start_http({"--log-level=debug", workers});
    if (port == 0)
      return;
    auto conns = connect_clients(port, connections);
    if (conns.size() < connections)
      return;
    auto sent = std::chrono::steady_clock::now();
    for (auto& conn : conns)
      CAF_REQUIRE(qt::send_all(conn.get(), request("GET", "/delay/500")));
    // The server has every connection, and every request was written
    // before the signal: no connection has "sent nothing yet", each has
    // work in flight.
    if (!await_opened(connections))
      return;
    CAF_REQUIRE(server().signal(SIGTERM));
    for (size_t i = 0; i < connections; ++i) {
      auto resp = read_response(conns[i].get());
      CAF_CHECK_EQUAL(resp.ending, "complete");
      CAF_CHECK_EQUAL(resp.status, 200);
      CAF_CHECK_EQUAL(resp.body, "delayed 500 ms\n");
      CAF_CHECK_EQUAL(resp.header("Connection"), "close");
      expect_clean_eof(conns[i].get());
    }
    auto took = millis_since(sent);
    CAF_MESSAGE("the last answer came " << took << " ms after the requests");
    CAF_CHECK_GREATER_OR_EQUAL(took, 500);
    conns.clear();
    expect_exit(0);
    expect_stderr("stopped: drained=5 forced=0 ");
  }

  /// Sends SIGTERM once every client has closed and expects a clean stop:
  /// exit 0 and `stopped: drained=N forced=0` on standard error. N is not
  /// checked: the server may not have taken every client's close yet (a
  /// connection it closed waits for the client's FIN), and such a
  /// connection drains at the stop.
  void stop_cleanly() {
    CAF_CHECK(server().signal(SIGTERM));
    expect_exit(0);
    CAF_CHECK_EQUAL(server().stderr_count("stopped: drained="), 1u);
    expect_stderr(" forced=0 ");
  }

  /// Checks that standard error contains `text`.
  void expect_stderr(const std::string& text) {
    if (server().stderr_count(text) == 0)
      CAF_ERROR("standard error lacks `" << text << "`");
  }

  /// Reads the rest of the stream on `fd` and checks that it is a clean EOF
  /// with no further bytes.
  void expect_clean_eof(int fd) {
    auto rest = qt::read_until_eof(fd);
    CAF_CHECK_EQUAL(rest.ending(), "clean EOF");
    CAF_CHECK_EQUAL(rest.bytes.size(), 0u);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(http_tests, fixture)

// -- curl ---------------------------------------------------------------------

CAF_TEST(http is the default protocol) {
  auto& srv = run({"--host=127.0.0.1", "--port=0"});
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  CAF_CHECK(srv.stdout_text().find(" protocol=http") != std::string::npos);
  auto resp = curl_i({url(*port, "/")});
  CAF_CHECK_EQUAL(resp.status, 200);
  CAF_CHECK_EQUAL(resp.body, hello);
  CAF_CHECK(srv.signal(SIGTERM));
  CAF_CHECK_EQUAL(qt::describe_exit(srv.wait_exit()), qt::describe_exit(0));
}

CAF_TEST(get root answers 200 with a body a date and a content length) {
  // start_http passes --protocol=http explicitly.
  auto port = start_http();
  if (port == 0)
    return;
  CAF_CHECK(server().stdout_text().find(" protocol=http") != std::string::npos);
  auto resp = curl_i({url(port, "/")});
  CAF_CHECK_EQUAL(resp.ending, "complete");
  CAF_CHECK_EQUAL(resp.status_line, "HTTP/1.1 200 OK");
  CAF_CHECK_EQUAL(resp.body, hello);
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  auto date = resp.header("Date");
  CAF_CHECK_EQUAL(date.size(), 29u);
  CAF_CHECK_EQUAL(date.substr(date.size() - 4), " GMT");
  CAF_CHECK_EQUAL(resp.header("Content-Length"),
                  std::to_string(resp.body.size()));
  // HEAD: the same headers, no body.
  auto head = curl_i({"--head", url(port, "/")});
  CAF_CHECK_EQUAL(head.status, 200);
  CAF_CHECK_EQUAL(head.header("Content-Length"), std::to_string(hello.size()));
  CAF_CHECK_EQUAL(head.body, "");
  stop_cleanly();
}

CAF_TEST(get delay answers after at least the delay) {
  auto port = start_http();
  if (port == 0)
    return;
  auto start = std::chrono::steady_clock::now();
  auto out = curl({"--output", "/dev/null", "--write-out",
                   "%{http_code} %{time_total}", url(port, "/delay/200")});
  auto took = millis_since(start);
  CAF_MESSAGE("curl: `" << out << "`, " << took << " ms including its start");
  auto sp = out.find(' ');
  CAF_REQUIRE_NOT_EQUAL(sp, std::string::npos);
  CAF_CHECK_EQUAL(out.substr(0, sp), "200");
  auto seconds = std::strtod(out.c_str() + sp + 1, nullptr);
  // A lower bound only: a loaded machine may take any longer.
  CAF_CHECK_GREATER_OR_EQUAL(seconds, 0.2);
  CAF_CHECK_GREATER_OR_EQUAL(took, 200);
  // The body names the delay.
  auto resp = curl_i({url(port, "/delay/0")});
  CAF_CHECK_EQUAL(resp.status, 200);
  CAF_CHECK_EQUAL(resp.body, "delayed 0 ms\n");
  stop_cleanly();
}

CAF_TEST(post echo returns the body byte for byte) {
  auto port = start_http();
  if (port == 0)
    return;
  // Every byte value, NUL and CR LF included.
  auto body = qt::pattern(0, size_t{100} * 1000);
  auto resp = curl_echo(port, body);
  CAF_CHECK_EQUAL(resp.status, 200);
  CAF_CHECK_EQUAL(resp.header("Content-Length"), std::to_string(body.size()));
  CAF_CHECK_EQUAL(resp.body.size(), body.size());
  CAF_CHECK_EQUAL(qt::first_difference(resp.body, body), body.size());
  // An empty body.
  auto empty = curl_echo(port, "");
  CAF_CHECK_EQUAL(empty.status, 200);
  CAF_CHECK_EQUAL(empty.header("Content-Length"), "0");
  CAF_CHECK_EQUAL(empty.body, "");
  stop_cleanly();
}

CAF_TEST(a body of exactly the limit is echoed and one byte more is 413) {
  auto port = start_http();
  if (port == 0)
    return;
  auto body = qt::pattern(7, max_body);
  auto resp = curl_echo(port, body);
  CAF_CHECK_EQUAL(resp.status, 200);
  CAF_CHECK_EQUAL(resp.body.size(), body.size());
  CAF_CHECK_EQUAL(qt::first_difference(resp.body, body), body.size());
  auto large = curl_echo(port, qt::pattern(7, max_body + 1));
  CAF_CHECK_EQUAL(large.ending, "complete");
  CAF_CHECK_EQUAL(large.status, 413);
  CAF_CHECK_EQUAL(large.header("Connection"), "close");
  stop_cleanly();
}

CAF_TEST(a chunked upload is echoed) {
  auto port = start_http();
  if (port == 0)
    return;
  // Larger than curl's upload buffer: several chunks.
  auto body = qt::pattern(3, size_t{200} * 1000);
  auto resp = curl_echo(port, body, {"--header", "Transfer-Encoding: chunked"});
  CAF_CHECK_EQUAL(resp.status, 200);
  CAF_CHECK_EQUAL(resp.header("Content-Length"), std::to_string(body.size()));
  CAF_CHECK_EQUAL(resp.body.size(), body.size());
  CAF_CHECK_EQUAL(qt::first_difference(resp.body, body), body.size());
  stop_cleanly();
}

CAF_TEST(unknown paths are 404 wrong methods 405 other methods 501) {
  auto port = start_http();
  if (port == 0)
    return;
  auto missing = curl_i({url(port, "/no/such/path")});
  CAF_CHECK_EQUAL(missing.status_line, "HTTP/1.1 404 Not Found");
  CAF_CHECK_EQUAL(missing.header("Content-Length"),
                  std::to_string(missing.body.size()));
  CAF_CHECK_NOT_EQUAL(missing.header("Date"), "<missing>");
  // /echo takes only POST.
  auto get_echo = curl_i({url(port, "/echo")});
  CAF_CHECK_EQUAL(get_echo.status, 405);
  CAF_CHECK_EQUAL(get_echo.header("Allow"), "POST");
  // / takes GET and HEAD.
  auto post_root = curl_i({"--data-binary", "x", url(port, "/")});
  CAF_CHECK_EQUAL(post_root.status, 405);
  CAF_CHECK_EQUAL(post_root.header("Allow"), "GET, HEAD");
  auto put = curl_i({"--request", "PUT", url(port, "/")});
  CAF_CHECK_EQUAL(put.status_line, "HTTP/1.1 501 Not Implemented");
  auto del = curl_i({"--request", "DELETE", url(port, "/echo")});
  CAF_CHECK_EQUAL(del.status, 501);
  stop_cleanly();
}

CAF_TEST(http 1.0 works) {
  auto port = start_http();
  if (port == 0)
    return;
  auto resp = curl_i({"--http1.0", url(port, "/")});
  CAF_CHECK_EQUAL(resp.status, 200);
  CAF_CHECK_EQUAL(resp.body, hello);
  // HTTP/1.0 without keep-alive: the server closes after the response.
  CAF_CHECK_EQUAL(resp.header("Connection"), "close");
  auto body = qt::pattern(11, 5000);
  auto echo = curl_echo(port, body, {"--http1.0"});
  CAF_CHECK_EQUAL(echo.status, 200);
  CAF_CHECK_EQUAL(echo.body.size(), body.size());
  CAF_CHECK_EQUAL(qt::first_difference(echo.body, body), body.size());
  stop_cleanly();
}

CAF_TEST(two urls in one curl call share one connection) {
  auto port = start_http({"--log-level=debug"});
  if (port == 0)
    return;
  // Per transfer: status and new connections made for it.
  auto out = curl({"--output", "/dev/null", "--output", "/dev/null",
                   "--write-out", "%{http_code}:%{num_connects};",
                   url(port, "/"), url(port, "/delay/10")});
  CAF_CHECK_EQUAL(out, "200:1;200:0;");
  // curl has exited: every connection it made was opened before.
  CAF_CHECK_EQUAL(server().stderr_count(" opened\n"), 1u);
  stop_cleanly();
}

// -- raw sockets --------------------------------------------------------------

CAF_TEST(pipelined requests are answered in order) {
  auto conn = [this] {
    auto port = start_http();
    return port == 0 ? qt::unique_fd{} : connect_client(port);
  }();
  if (!conn)
    return;
  auto fd = conn.get();
  // One write. The first answer is the slowest: order, not readiness,
  // decides.
  CAF_REQUIRE(qt::send_all(fd, request("GET", "/delay/100")
                                 + echo_request("second")
                                 + request("GET", "/")));
  const std::string bodies[]
    = {"delayed 100 ms\n", "second", std::string{hello}};
  for (auto& body : bodies) {
    auto resp = read_response(fd);
    CAF_CHECK_EQUAL(resp.ending, "complete");
    CAF_CHECK_EQUAL(resp.status, 200);
    CAF_CHECK_EQUAL(resp.body, body);
    CAF_CHECK_EQUAL(resp.header("Connection"), "keep-alive");
  }
  // The client asks to close: the server closes after the answer.
  CAF_REQUIRE(qt::send_all(fd, request("GET", "/", "Connection: close\r\n")));
  auto last = read_response(fd);
  CAF_CHECK_EQUAL(last.status, 200);
  CAF_CHECK_EQUAL(last.header("Connection"), "close");
  expect_clean_eof(fd);
  conn.reset();
  stop_cleanly();
}

CAF_TEST(a malformed request gets 400 then the server closes) {
  auto port = start_http();
  if (port == 0)
    return;
  const std::string requests[] = {
    "NOT A REQUEST\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n",
  };
  for (auto& req : requests) {
    auto conn = connect_client(port);
    if (!conn)
      return;
    CAF_MESSAGE("request: " << req.substr(0, req.find('\r')));
    CAF_REQUIRE(qt::send_all(conn.get(), req));
    auto resp = read_response(conn.get());
    CAF_CHECK_EQUAL(resp.ending, "complete");
    CAF_CHECK_EQUAL(resp.status_line, "HTTP/1.1 400 Bad Request");
    CAF_CHECK_EQUAL(resp.header("Connection"), "close");
    expect_clean_eof(conn.get());
  }
  stop_cleanly();
}

CAF_TEST(a header section over 8 KiB gets 431 then the server closes) {
  auto port = start_http();
  if (port == 0)
    return;
  // Exactly 8 KiB, request line and blank line included: accepted.
  {
    auto conn = connect_client(port);
    if (!conn)
      return;
    auto req = request("GET", "/", "X-Fill: \r\n");
    req.insert(req.size() - 4, size_t{8} * 1024 - req.size(), 'a');
    CAF_REQUIRE_EQUAL(req.size(), size_t{8} * 1024);
    CAF_REQUIRE(qt::send_all(conn.get(), req));
    auto resp = read_response(conn.get());
    CAF_CHECK_EQUAL(resp.status, 200);
    CAF_CHECK_EQUAL(resp.header("Connection"), "keep-alive");
  }
  // 9 KiB in one field, and 9 KiB in many small ones.
  std::string one_field
    = "X-Big: " + std::string(size_t{9} * 1024, 'b') + "\r\n";
  std::string many_fields;
  for (int i = 0; many_fields.size() < size_t{9} * 1024; ++i)
    many_fields += "X-Field-" + std::to_string(i) + ": value\r\n";
  for (auto& fields : {one_field, many_fields}) {
    auto conn = connect_client(port);
    if (!conn)
      return;
    CAF_REQUIRE(qt::send_all(conn.get(), request("GET", "/", fields)));
    auto resp = read_response(conn.get());
    CAF_CHECK_EQUAL(resp.ending, "complete");
    CAF_CHECK_EQUAL(resp.status_line,
                    "HTTP/1.1 431 Request Header Fields Too Large");
    CAF_CHECK_EQUAL(resp.header("Connection"), "close");
    expect_clean_eof(conn.get());
  }
  stop_cleanly();
}

CAF_TEST(a body over the limit gets 413 then the server closes) {
  auto conn = [this] {
    auto port = start_http();
    return port == 0 ? qt::unique_fd{} : connect_client(port);
  }();
  if (!conn)
    return;
  // Declared too large: refused before the body is sent.
  CAF_REQUIRE(
    qt::send_all(conn.get(), "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Length: "
                               + std::to_string(max_body + 1) + "\r\n\r\n"));
  auto resp = read_response(conn.get());
  CAF_CHECK_EQUAL(resp.ending, "complete");
  CAF_CHECK_EQUAL(resp.status, 413);
  CAF_CHECK_EQUAL(resp.header("Connection"), "close");
  expect_clean_eof(conn.get());
  conn.reset();
  stop_cleanly();
}

CAF_TEST(expect 100 continue gets 100 continue before the body is sent) {
  auto port = start_http();
  if (port == 0)
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  auto body = qt::pattern(5, size_t{100} * 1024);
  // The header section alone, as curl sends it: the client waits for the
  // interim response before it sends the body.
  CAF_REQUIRE(
    qt::send_all(conn.get(), "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Expect: 100-continue\r\nContent-Length: "
                               + std::to_string(body.size()) + "\r\n\r\n"));
  auto interim = qt::read_through(conn.get(), "\r\n\r\n");
  CAF_CHECK_EQUAL(interim.ending(), "complete");
  CAF_CHECK_EQUAL(interim.bytes, "HTTP/1.1 100 Continue\r\n\r\n");
  CAF_REQUIRE(qt::send_all(conn.get(), body));
  auto resp = read_response(conn.get());
  CAF_CHECK_EQUAL(resp.ending, "complete");
  CAF_CHECK_EQUAL(resp.status, 200);
  CAF_CHECK_EQUAL(resp.header("Connection"), "keep-alive");
  CAF_CHECK_EQUAL(resp.body.size(), body.size());
  CAF_CHECK_EQUAL(qt::first_difference(resp.body, body), body.size());
  conn.reset();
  // curl, told to wait for the 100 longer than it may run at all: it
  // succeeds only if the 100 comes.
  auto echo = curl_echo(
    port, body,
    {"--header", "Expect: 100-continue", "--expect100-timeout", "60"});
  CAF_CHECK_EQUAL(echo.status, 200);
  CAF_CHECK_EQUAL(echo.body.size(), body.size());
  CAF_CHECK_EQUAL(qt::first_difference(echo.body, body), body.size());
  stop_cleanly();
}

CAF_TEST(a delay over the timer range gets 400 and the connection stays open) {
  auto conn = [this] {
    auto port = start_http();
    return port == 0 ? qt::unique_fd{} : connect_client(port);
  }();
  if (!conn)
    return;
  CAF_REQUIRE(qt::send_all(conn.get(), request("GET", "/delay/1000000000001")
                                         + request("GET", "/")));
  auto resp = read_response(conn.get());
  CAF_CHECK_EQUAL(resp.ending, "complete");
  CAF_CHECK_EQUAL(resp.status_line, "HTTP/1.1 400 Bad Request");
  CAF_CHECK_EQUAL(resp.body, "delay must be at most 1000000000000 ms\n");
  CAF_CHECK_EQUAL(resp.header("Connection"), "keep-alive");
  auto next = read_response(conn.get());
  CAF_CHECK_EQUAL(next.status, 200);
  CAF_CHECK_EQUAL(next.body, hello);
  conn.reset();
  stop_cleanly();
}

// -- stop ---------------------------------------------------------------------

CAF_TEST(requests in flight at the stop are answered with connection close) {
  // One process: its supervisor's line counts the connections open at the
  // stop (with workers each has its own; see the variant below).
  requests_in_flight_at_stop("--workers=1");
  expect_stderr("stop requested: stopping; 5 connections open");
}

CAF_TEST(requests in flight at a stop of two workers are answered too) {
  // The master's summary adds up what the workers had open at the stop.
  requests_in_flight_at_stop("--workers=2");
  expect_stderr(" open_at_stop=5 ");
}

CAF_TEST(idle keep alive and fresh connections get a fin at once) {
  constexpr size_t kept_alive = 100;
  constexpr size_t fresh = 100;
  constexpr size_t connections = kept_alive + fresh;
  auto port = start_http({"--log-level=debug"});
  if (port == 0)
    return;
  auto conns = connect_clients(port, connections);
  if (conns.size() < connections)
    return;
  // The first ones make one request each and stay open (keep-alive).
  for (size_t i = 0; i < kept_alive; ++i) {
    CAF_REQUIRE(qt::send_all(conns[i].get(), request("GET", "/")));
    auto resp = read_response(conns[i].get());
    CAF_REQUIRE_EQUAL(resp.status, 200);
    CAF_REQUIRE_EQUAL(resp.header("Connection"), "keep-alive");
  }
  // The others have sent nothing.
  if (!await_opened(connections))
    return;
  auto stop = std::chrono::steady_clock::now();
  CAF_REQUIRE(server().signal(SIGTERM));
  size_t clean = 0;
  for (size_t i = 0; i < connections; ++i) {
    auto rest = qt::read_until_eof(conns[i].get());
    if (rest.status == qt::read_status::eof && rest.bytes.empty()) {
      ++clean;
      continue;
    }
    CAF_ERROR((i < kept_alive ? "keep-alive" : "fresh")
              << " client " << i << ": " << rest.bytes.size()
              << " unexpected bytes, then " << rest.ending());
  }
  auto all_eof = millis_since(stop);
  CAF_CHECK_EQUAL(clean, connections);
  conns.clear();
  expect_exit(0);
  CAF_MESSAGE("after SIGTERM: every client had EOF in "
              << all_eof << " ms, the server exited in " << millis_since(stop)
              << " ms");
  expect_stderr("stopped: drained=200 forced=0 ");
}

CAF_TEST(the drain deadline closes a request in flight and exits 3) {
  auto port = start_http({"--drain-timeout=300ms", "--log-level=debug"});
  if (port == 0)
    return;
  auto conn = connect_client(port);
  if (!conn)
    return;
  // Written before the signal: work in flight at the stop.
  CAF_REQUIRE(qt::send_all(conn.get(), request("GET", "/delay/5000")));
  if (!await_opened(1))
    return;
  auto stop = std::chrono::steady_clock::now();
  CAF_REQUIRE(server().signal(SIGTERM));
  expect_exit(3);
  CAF_MESSAGE("exit " << millis_since(stop) << " ms after SIGTERM");
  expect_stderr("drain timeout passed");
  expect_stderr("stopped: drained=0 forced=1 ");
  // Closed by force: no answer, and the stream has ended (EOF or reset).
  auto rest = qt::read_until_eof(conn.get());
  CAF_CHECK_NOT_EQUAL(rest.ending(), "timeout");
  CAF_CHECK_EQUAL(rest.bytes, "");
}

CAF_TEST(a request half received at the stop is finished and answered) {
  // The rest of the request must reach the connection after its stop. The
  // log cannot promise that: the server logs `stop requested` before it
  // sends the connections their stop, and CAF's event loop may read the
  // socket before it takes the stop message. `listener closed` comes later
  // (the acceptor closes its socket 1 ms after its stop, sent just before
  // the connections'), which makes a late stop rare but not impossible. The
  // response tells: `keep-alive` means the request was complete before the
  // connection's stop, a legitimate answer. The test then starts over with
  // a new server; a server that never answers the half-received request
  // with `Connection: close` fails after the last attempt.
  constexpr int attempts = 10;
  bool half_at_stop = false;
  for (int attempt = 1; attempt <= attempts && !half_at_stop; ++attempt) {
    auto port = start_http({"--log-level=debug"});
    if (port == 0)
      return;
    auto conn = connect_client(port);
    if (!conn)
      return;
    // The header section without its final blank line, written before the
    // signal.
    auto req = request("GET", "/");
    CAF_REQUIRE(qt::send_all(conn.get(), req.substr(0, req.size() - 2)));
    if (!await_opened(1))
      return;
    CAF_REQUIRE(server().signal(SIGTERM));
    CAF_REQUIRE(server().wait_stderr("stop requested"));
    CAF_REQUIRE(server().wait_stderr("listener closed"));
    // The rest, and another request after it: after a stop, only the
    // request half received at the stop is answered.
    CAF_REQUIRE(qt::send_all(conn.get(), "\r\n" + request("GET", "/delay/0")));
    auto resp = read_response(conn.get());
    CAF_CHECK_EQUAL(resp.ending, "complete");
    CAF_CHECK_EQUAL(resp.status, 200);
    CAF_CHECK_EQUAL(resp.body, hello);
    if (resp.header("Connection") == "keep-alive") {
      CAF_MESSAGE("attempt " << attempt
                             << ": the request was complete before the "
                                "connection's stop; starting over");
      // Then the second request came before the stop too: it is answered.
      auto second = read_response(conn.get());
      CAF_CHECK_EQUAL(second.status, 200);
      CAF_CHECK_EQUAL(second.body, "delayed 0 ms\n");
      expect_clean_eof(conn.get());
      conn.reset();
      expect_exit(0);
      continue;
    }
    // No sign that the request was complete before the stop: this is the
    // case under test, and the last attempt.
    half_at_stop = true;
    CAF_CHECK_EQUAL(resp.header("Connection"), "close");
    expect_clean_eof(conn.get());
    conn.reset();
    expect_exit(0);
    expect_stderr("stopped: drained=1 forced=0 ");
  }
  CAF_CHECK(half_at_stop);
}

// -- wrk ----------------------------------------------------------------------

CAF_TEST(a short wrk run has no errors and the server stops cleanly) {
  auto port = start_http();
  if (port == 0)
    return;
  auto& wrk = run_program(wrk_program, {"-t1", "-c10", "-d1s", url(port, "/")});
  CAF_CHECK_EQUAL(qt::describe_exit(wrk.wait_exit()), qt::describe_exit(0));
  auto out = wrk.stdout_text();
  CAF_MESSAGE("wrk:\n" << out);
  // wrk prints these lines only when there were such errors.
  CAF_CHECK_EQUAL(out.find("Socket errors"), std::string::npos);
  CAF_CHECK_EQUAL(out.find("Non-2xx or 3xx responses"), std::string::npos);
  // "  12345 requests in 1.00s, 1.23MB read"
  auto pos = out.find(" requests in ");
  CAF_REQUIRE_NOT_EQUAL(pos, std::string::npos);
  auto begin = out.find_last_not_of("0123456789", pos - 1) + 1;
  auto requests = std::strtoull(out.c_str() + begin, nullptr, 10);
  CAF_CHECK_GREATER(requests, 0u);
  stop_cleanly();
}

CAF_TEST(a client that half closes after its request still gets the answer) {
  // FIN right after the request: the answer comes later (a timer), after
  // CAF has seen the end of the stream.
  auto port = start_http();
  if (port == 0)
    return;
  for (auto path : {"/", "/delay/100"}) {
    auto conn = connect_client(port);
    if (!conn)
      return;
    CAF_REQUIRE(qt::send_all(conn.get(), std::string{"GET "} + path
                                           + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    CAF_REQUIRE_EQUAL(::shutdown(conn.get(), SHUT_WR), 0);
    auto resp = read_response(conn.get());
    CAF_CHECK_EQUAL(resp.ending, "complete");
    CAF_CHECK_EQUAL(resp.status_line, "HTTP/1.1 200 OK");
    expect_clean_eof(conn.get());
  }
  stop_cleanly();
}

CAF_TEST(a request cut short by a client FIN gets 400 and a clean stop) {
  // The rest can never come: the connection must not wait for it (a stop
  // would then wait out the drain deadline and exit 3).
  auto port = start_http();
  if (port == 0)
    return;
  for (auto head : {"GET / HTTP/1.1\r\nHost: x\r\n",
                    "GET /delay/100 HTTP/1.1\r\nHost: x\r\n\r\nGET / HT"}) {
    auto conn = connect_client(port);
    if (!conn)
      return;
    CAF_REQUIRE(qt::send_all(conn.get(), head));
    CAF_REQUIRE_EQUAL(::shutdown(conn.get(), SHUT_WR), 0);
    auto all = qt::read_until_eof(conn.get());
    CAF_CHECK_EQUAL(all.ending(), "clean EOF");
    // The delayed answer first, when there is one, then the 400.
    CAF_CHECK_EQUAL(qt::count_occurrences(all.bytes, "HTTP/1.1 "),
                    std::string{head}.find("delay") != std::string::npos ? 2u
                                                                         : 1u);
    CAF_CHECK_NOT_EQUAL(all.bytes.find("HTTP/1.1 400 Bad Request\r\n"),
                        std::string::npos);
  }
  // Nothing is left busy: the stop drains at once, exit 0.
  stop_cleanly();
}

CAF_TEST_FIXTURE_SCOPE_END()
