#define CAF_SUITE behaviours.http

#include "actors/behaviours/http.hpp"

#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test/actors/io_fixture.hpp"

using namespace quiesce;
using namespace quiesce::testing;

namespace {

/// One response as the client reads it.
struct response {
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The value of the header `name` (case-insensitive); `<missing>` when
  /// absent, `<repeated>` when present more than once.
  std::string header(std::string_view name) const {
    std::optional<std::string> result;
    for (auto& [field, value] : headers) {
      if (field.size() != name.size())
        continue;
      auto equal = true;
      for (size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(field[i]))
            != std::tolower(static_cast<unsigned char>(name[i])))
          equal = false;
      if (!equal)
        continue;
      if (result)
        return "<repeated>";
      result = value;
    }
    return result ? *result : "<missing>";
  }
};

/// Splits `bytes` into responses. `head[i]` says that response `i` answers a
/// HEAD request (headers only, whatever its Content-Length says); an interim
/// response (1xx) has no body and counts as a response. Bytes that do not
/// form a complete response end up in `rest`.
std::vector<response> parse_responses(std::string_view bytes,
                                      const std::vector<bool>& head,
                                      std::string& rest) {
  std::vector<response> result;
  for (;;) {
    auto end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos)
      break;
    response r;
    auto section = bytes.substr(0, end + 2);
    auto eol = section.find("\r\n");
    r.status_line = std::string{section.substr(0, eol)};
    section.remove_prefix(eol + 2);
    while (!section.empty()) {
      eol = section.find("\r\n");
      auto line = section.substr(0, eol);
      section.remove_prefix(eol + 2);
      auto colon = line.find(':');
      if (colon == std::string_view::npos) {
        rest = std::string{bytes};
        return result;
      }
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
      r.headers.emplace_back(std::string{line.substr(0, colon)},
                             std::string{value});
    }
    if (r.status_line.rfind("HTTP/1.1 1", 0) == 0) {
      bytes.remove_prefix(end + 4);
      result.push_back(std::move(r));
      continue;
    }
    auto length = r.header("Content-Length");
    if (length.empty()
        || length.find_first_not_of("0123456789") != std::string::npos)
      break; // every response must have one: leave it all in `rest`
    size_t body_size = 0;
    if (result.size() >= head.size() || !head[result.size()])
      body_size = std::stoul(length);
    if (bytes.size() < end + 4 + body_size)
      break;
    r.body = std::string{bytes.substr(end + 4, body_size)};
    bytes.remove_prefix(end + 4 + body_size);
    result.push_back(std::move(r));
  }
  rest = std::string{bytes};
  return result;
}

/// An IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
bool is_http_date(const std::string& s) {
  if (s.size() != 29)
    return false;
  auto digit = [&](size_t i) {
    return std::isdigit(static_cast<unsigned char>(s[i])) != 0;
  };
  return s[3] == ',' && s[4] == ' ' && digit(5) && digit(6) && s[7] == ' '
         && s[11] == ' ' && digit(12) && digit(15) && s[16] == ' ' && digit(17)
         && s[19] == ':' && s[22] == ':' && digit(24) && s.substr(25) == " GMT";
}

std::string get(std::string_view target) {
  return "GET " + std::string{target} + " HTTP/1.1\r\nHost: test\r\n\r\n";
}

const std::string get_root = get("/");

constexpr std::string_view hello = "quiesce: hello\n";

/// The interim response to `Expect: 100-continue`, whole, and its status
/// line as `parse_responses` gives it.
constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view continue_line = "HTTP/1.1 100 Continue";

/// The header section of a `POST /echo` that asks for 100 Continue before
/// its body of `length` bytes.
std::string expect_echo(size_t length, std::string_view version = "1.1") {
  return "POST /echo HTTP/" + std::string{version}
         + "\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: "
         + std::to_string(length) + "\r\n\r\n";
}

struct fixture : io_fixture {
  connection_handle hdl;
  connection_actor conn;

  fixture() {
    make_behaviour
      = [] { return std::make_unique<behaviours::http_behaviour>(); };
  }

  /// Accepts one client.
  void open() {
    hdl = connect_client();
    CAF_REQUIRE_EQUAL(rec->connected.size(), 1u);
    conn = rec->connected.back();
  }

  void stop() {
    caf::anon_send(conn, stop_atom_v);
    exhaust();
  }

  /// Fires the next timer (a `/delay` or a linger) and runs what follows.
  void fire_timer() {
    CAF_CHECK(sched.trigger_timeout());
    exhaust();
  }

  /// The responses written so far; checks that there are `n` and nothing
  /// else was written. Missing ones come back empty (and fail every check),
  /// so that a test goes on to its end.
  std::vector<response> responses(size_t n,
                                  const std::vector<bool>& head = {}) {
    std::string rest;
    auto result = parse_responses(output(hdl), head, rest);
    CAF_CHECK_EQUAL(rest, "");
    CAF_CHECK_EQUAL(result.size(), n);
    for (auto& r : result) {
      if (r.status_line == continue_line) {
        CAF_CHECK(r.headers.empty());
        continue;
      }
      CAF_CHECK(is_http_date(r.header("Date")));
      CAF_CHECK_NOT_EQUAL(r.header("Content-Type"), "<missing>");
    }
    result.resize(n);
    return result;
  }

  /// Checks the status line, the `Connection` header, that `Content-Length`
  /// matches `body`, and (unless `head`) the body.
  void check(const response& r, std::string_view status_line,
             std::string_view body, std::string_view connection,
             bool head = false) {
    CAF_CHECK_EQUAL(r.status_line, status_line);
    CAF_CHECK_EQUAL(r.header("Content-Length"), std::to_string(body.size()));
    CAF_CHECK_EQUAL(r.header("Connection"), connection);
    CAF_CHECK_EQUAL(r.body, head ? "" : std::string{body});
  }

  /// Sends `bytes` and checks that the server writes nothing more.
  void check_not_answered(const std::string& bytes) {
    auto before = output(hdl);
    client_sends(hdl, bytes);
    CAF_CHECK_EQUAL(output(hdl), before);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(http_tests, fixture)

// -- routes -------------------------------------------------------------------

CAF_TEST(GET root answers 200 with Content Length and Date) {
  open();
  client_sends(hdl, get_root);
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK_EQUAL(rs[0].header("Content-Type"), "text/plain");
  // Keep-alive: the connection stays open and serves the next request.
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK(!terminated(conn));
  client_sends(hdl, get("/?x=1"));
  rs = responses(2);
  check(rs[1], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK_EQUAL(rec->done, 0);
}

CAF_TEST(pipelined requests are answered in request order) {
  open();
  auto start = sched.clock().current_time;
  client_sends(hdl, get("/delay/100") + get_root);
  // The second response waits for the first one.
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  CAF_CHECK(sched.clock().current_time - start
            == std::chrono::milliseconds(100));
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 100 ms\n", "keep-alive");
  check(rs[1], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK(!sched.has_pending_timeout());
  CAF_CHECK_EQUAL(rec->done, 0);
}

CAF_TEST(a request split into single bytes is answered once) {
  open();
  auto req = get("/delay/5");
  for (auto c : req)
    client_sends(hdl, std::string(1, c));
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 5 ms\n", "keep-alive");
}

CAF_TEST(POST echo echoes the body) {
  open();
  const std::string body{"binary\0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 30};
  auto head = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: "
              + std::to_string(body.size()) + "\r\n\r\n";
  // The header section and the body in separate writes.
  client_sends(hdl, head + body.substr(0, 9));
  CAF_CHECK_EQUAL(output(hdl), "");
  client_sends(hdl, body.substr(9));
  // A chunked body in the same connection.
  client_sends(
    hdl,
    "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n");
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", body, "keep-alive");
  CAF_CHECK_EQUAL(rs[0].header("Content-Type"), "application/octet-stream");
  check(rs[1], "HTTP/1.1 200 OK", "abcdefg", "keep-alive");
}

CAF_TEST(HEAD root has the headers of GET root but no body) {
  open();
  // A GET right behind the HEAD: any body bytes of the HEAD response would
  // show up in front of the GET response.
  client_sends(hdl, "HEAD / HTTP/1.1\r\nHost: test\r\n\r\n" + get_root);
  auto rs = responses(2, {true, false});
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive", true);
  check(rs[1], "HTTP/1.1 200 OK", hello, "keep-alive");
}

CAF_TEST(unknown paths get 404 and wrong methods 405 or 501) {
  open();
  client_sends(
    hdl, get("/nope") + get("/delay/abc")
           + "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n"
           + get("/echo") + "DELETE / HTTP/1.1\r\nHost: test\r\n\r\n"
           + "PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\n\r\nx"
           + get_root);
  auto rs = responses(7);
  check(rs[0], "HTTP/1.1 404 Not Found", "not found\n", "keep-alive");
  check(rs[1], "HTTP/1.1 404 Not Found", "not found\n", "keep-alive");
  check(rs[2], "HTTP/1.1 405 Method Not Allowed", "method not allowed\n",
        "keep-alive");
  CAF_CHECK_EQUAL(rs[2].header("Allow"), "GET, HEAD");
  check(rs[3], "HTTP/1.1 405 Method Not Allowed", "method not allowed\n",
        "keep-alive");
  CAF_CHECK_EQUAL(rs[3].header("Allow"), "POST");
  check(rs[4], "HTTP/1.1 501 Not Implemented", "not implemented\n",
        "keep-alive");
  check(rs[5], "HTTP/1.1 501 Not Implemented", "not implemented\n",
        "keep-alive");
  // None of these ends the connection.
  check(rs[6], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK_EQUAL(rec->done, 0);
}

// -- Expect: 100-continue -----------------------------------------------------

CAF_TEST(Expect 100 continue gets 100 Continue before the body is sent) {
  open();
  client_sends(hdl, expect_echo(5));
  CAF_CHECK_EQUAL(output(hdl), continue_response);
  client_sends(hdl, "hello");
  // Any case, and a chunked body: the same.
  client_sends(hdl, "POST /echo HTTP/1.1\r\nHost: test\r\n"
                    "expect: 100-CONTINUE\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
  auto rs = responses(3);
  CAF_CHECK_EQUAL(rs[0].status_line, continue_line);
  check(rs[1], "HTTP/1.1 200 OK", "hello", "keep-alive");
  CAF_CHECK_EQUAL(rs[2].status_line, continue_line);
  client_sends(hdl, "3\r\nabc\r\n0\r\n\r\n");
  rs = responses(4);
  check(rs[3], "HTTP/1.1 200 OK", "abc", "keep-alive");
  CAF_CHECK_EQUAL(rec->done, 0);
}

CAF_TEST(100 Continue waits for the responses to earlier requests) {
  open();
  client_sends(hdl, get("/delay/100") + expect_echo(3));
  // Written now, the 100 would come before the delayed response.
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 100 ms\n", "keep-alive");
  CAF_CHECK_EQUAL(rs[1].status_line, continue_line);
  CAF_CHECK(output(hdl).size() > continue_response.size());
  CAF_CHECK_EQUAL(
    output(hdl).substr(output(hdl).size() - continue_response.size()),
    continue_response);
  client_sends(hdl, "abc");
  rs = responses(3);
  check(rs[2], "HTTP/1.1 200 OK", "abc", "keep-alive");
}

CAF_TEST(100 Continue is skipped once the body has started to arrive) {
  open();
  // The client did not wait: some of the body came with the header section.
  client_sends(hdl, expect_echo(6) + "abc");
  CAF_CHECK_EQUAL(output(hdl), "");
  client_sends(hdl, "def");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "abcdef", "keep-alive");
  // Behind a delayed response, the body starts to arrive before the 100
  // could be written.
  client_sends(hdl, get("/delay/100") + expect_echo(2));
  client_sends(hdl, "g");
  fire_timer();
  rs = responses(2);
  check(rs[1], "HTTP/1.1 200 OK", "delayed 100 ms\n", "keep-alive");
  client_sends(hdl, "h");
  rs = responses(3);
  check(rs[2], "HTTP/1.1 200 OK", "gh", "keep-alive");
}

CAF_TEST(Expect 100 continue without a body gets just the response) {
  open();
  client_sends(hdl,
               "GET / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n\r\n");
  client_sends(hdl, expect_echo(0));
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive");
  check(rs[1], "HTTP/1.1 200 OK", "", "keep-alive");
}

CAF_TEST(Expect 100 continue with a body over the limit gets 413 and no 100) {
  open();
  client_sends(hdl, expect_echo(1048577));
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 413 Content Too Large", "Content Too Large\n",
        "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(std::string(100, 'x') + get_root);
}

CAF_TEST(Expect 100 continue on a request that is not served closes) {
  open();
  // The final status instead of the 100, after the responses before it;
  // the body is not read.
  client_sends(
    hdl, get_root
           + "POST /nope HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n"
             "Content-Length: 10\r\n\r\n");
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive");
  check(rs[1], "HTTP/1.1 404 Not Found", "not found\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered("0123456789" + get_root);
}

CAF_TEST(HTTP 1.0 ignores Expect) {
  open();
  auto keep_alive = [](std::string head) {
    return head.insert(head.size() - 2, "Connection: keep-alive\r\n");
  };
  client_sends(hdl, keep_alive(expect_echo(2, "1.0")));
  CAF_CHECK_EQUAL(output(hdl), "");
  client_sends(hdl, "ab");
  client_sends(hdl, keep_alive("GET / HTTP/1.0\r\nExpect: x-unknown\r\n\r\n"));
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", "ab", "keep-alive");
  check(rs[1], "HTTP/1.1 200 OK", hello, "keep-alive");
}

CAF_TEST(an unknown expectation gets 417 and the connection stays open) {
  open();
  client_sends(hdl,
               "GET / HTTP/1.1\r\nHost: test\r\nExpect: x-unknown\r\n\r\n");
  // With a body: the client sends it without waiting, the server reads it.
  client_sends(hdl,
               "POST /echo HTTP/1.1\r\nHost: test\r\nExpect: x-unknown=1\r\n"
               "Content-Length: 3\r\n\r\nabc"
                 + get_root);
  auto rs = responses(3);
  check(rs[0], "HTTP/1.1 417 Expectation Failed",
        "only 100-continue can be expected\n", "keep-alive");
  check(rs[1], "HTTP/1.1 417 Expectation Failed",
        "only 100-continue can be expected\n", "keep-alive");
  check(rs[2], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK_EQUAL(rec->done, 0);
  // With 100-continue as well, the body held back: 417 instead of the 100.
  client_sends(hdl,
               "POST /echo HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n"
               "Expect: x-unknown\r\nContent-Length: 3\r\n\r\n");
  rs = responses(4);
  check(rs[3], "HTTP/1.1 417 Expectation Failed",
        "only 100-continue can be expected\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a delay over the limit gets 400 and the connection stays open) {
  open();
  // 2^64 + 5: no wrap-around to 5 ms.
  client_sends(hdl, get("/delay/1000000000001")
                      + get("/delay/18446744073709551621") + get_root);
  auto rs = responses(3);
  check(rs[0], "HTTP/1.1 400 Bad Request",
        "delay must be at most 1000000000000 ms\n", "keep-alive");
  check(rs[1], "HTTP/1.1 400 Bad Request",
        "delay must be at most 1000000000000 ms\n", "keep-alive");
  check(rs[2], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK(!sched.has_pending_timeout());
  CAF_CHECK_EQUAL(rec->done, 0);
}

CAF_TEST(a delay of exactly the limit is served) {
  open();
  auto start = sched.clock().current_time;
  client_sends(hdl, get("/delay/1000000000000"));
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  CAF_CHECK(
    sched.clock().current_time - start
    == std::chrono::milliseconds(behaviours::http_behaviour::max_delay_ms));
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 1000000000000 ms\n", "keep-alive");
}

// -- errors close the connection ----------------------------------------------

CAF_TEST(a malformed request gets 400 and the connection closes) {
  open();
  client_sends(hdl, get_root + "HELLO WORLD\r\n\r\n" + get_root);
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive");
  check(rs[1], "HTTP/1.1 400 Bad Request", "Bad Request\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(get_root);
}

CAF_TEST(a body over the limit gets 413 and the connection closes) {
  open();
  client_sends(
    hdl,
    "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1048577\r\n\r\n");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 413 Content Too Large", "Content Too Large\n",
        "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(std::string(100, 'x') + get_root);
}

CAF_TEST(a header section over the limit gets 431 and the connection closes) {
  open();
  client_sends(hdl, "GET / HTTP/1.1\r\nHost: test\r\nX-Fill: "
                      + std::string(9000, 'a') + "\r\n\r\n");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 431 Request Header Fields Too Large",
        "Request Header Fields Too Large\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(get_root);
}

// -- who closes ---------------------------------------------------------------

CAF_TEST(HTTP 1.0 without keep alive gets Connection close and closes) {
  open();
  client_sends(hdl, "GET / HTTP/1.0\r\n\r\n");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", hello, "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered("GET / HTTP/1.0\r\n\r\n");
}

CAF_TEST(HTTP 1.0 with keep alive stays open) {
  open();
  client_sends(hdl, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  client_sends(hdl, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive");
  check(rs[1], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK_EQUAL(rec->done, 0);
}

CAF_TEST(bytes after a response with Connection close are not answered) {
  open();
  // A request pipelined behind the closing one, in the same write.
  client_sends(hdl, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
                      + get_root);
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", hello, "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  // And one in a later write.
  check_not_answered(get_root);
}

CAF_TEST(a delayed response with Connection close closes after the timer) {
  open();
  client_sends(
    hdl, "GET /delay/50 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
           + get_root);
  CAF_CHECK_EQUAL(rec->done, 0);
  fire_timer();
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 50 ms\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(get_root);
}

// -- stop ---------------------------------------------------------------------

CAF_TEST(stop before any request closes at once) {
  open();
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(output(hdl), "");
  check_not_answered(get_root);
}

CAF_TEST(stop while idle after a request closes at once without more bytes) {
  open();
  client_sends(hdl, get_root);
  auto before = output(hdl);
  responses(1);
  stop();
  // FIN at once: nothing is owed, no response is written for the stop.
  CAF_CHECK_EQUAL(rec->done, 1);
  CAF_CHECK_EQUAL(output(hdl), before);
  check_not_answered(get_root);
}

CAF_TEST(stop after a request and an empty line closes at once) {
  // Some clients send CRLF after a body; RFC 9112 2.2 says to ignore it. It
  // owes the client nothing.
  open();
  client_sends(
    hdl,
    "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nab\r\n");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "ab", "keep-alive");
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(stop with a delayed request in flight answers it with close) {
  open();
  client_sends(hdl, get("/delay/100"));
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  // Input that arrives now is not served.
  client_sends(hdl, get_root);
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 100 ms\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(get_root);
}

CAF_TEST(stop with a half received header section waits for the rest) {
  open();
  client_sends(hdl, "GET / HTTP/1.1\r\nHost: te");
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  // Nothing to wait for but the client: no timer but the header timeout.
  CAF_CHECK_EQUAL(sched.clock().schedule().size(), 1u);
  client_sends(hdl, "st\r\n");
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  // The rest arrives, with another request behind it that is not served.
  client_sends(hdl, "\r\n" + get_root);
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", hello, "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(get_root);
}

CAF_TEST(stop with a half received body waits for the rest) {
  open();
  client_sends(
    hdl, "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nabc");
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  client_sends(hdl, "def");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "abcdef", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(get_root);
}

CAF_TEST(stop with two pipelined requests answers both and closes after last) {
  open();
  client_sends(hdl, get("/delay/100") + get_root);
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 100 ms\n", "keep-alive");
  check(rs[1], "HTTP/1.1 200 OK", hello, "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered(get_root);
}

CAF_TEST(stop after a delayed response with a request half received) {
  open();
  client_sends(hdl, get("/delay/100") + "GET / HT");
  stop();
  fire_timer();
  // The delayed response is not the last one: the half request is owed.
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 100 ms\n", "keep-alive");
  CAF_CHECK_EQUAL(rec->done, 0);
  client_sends(hdl, "TP/1.1\r\nHost: test\r\n\r\n");
  rs = responses(2);
  check(rs[1], "HTTP/1.1 200 OK", hello, "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(stop with a request waiting for 100 Continue answers it 503) {
  open();
  client_sends(hdl, get("/delay/100") + expect_echo(3));
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  // No 100 after the stop: the request is answered without its body.
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 100 ms\n", "keep-alive");
  check(rs[1], "HTTP/1.1 503 Service Unavailable",
        "stopping: request not served\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered("abc" + get_root);
}

CAF_TEST(stop with a header section asking for 100 completed after the stop) {
  open();
  auto head = expect_echo(3);
  client_sends(hdl, head.substr(0, 20));
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  client_sends(hdl, head.substr(20));
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 503 Service Unavailable",
        "stopping: request not served\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

// Found by fuzz_http_behaviour: the 503 carried its body after a HEAD.
CAF_TEST(a HEAD waiting for 100 Continue at a stop gets a 503 without body) {
  open();
  client_sends(hdl, get("/delay/100")
                      + "HEAD / HTTP/1.1\r\nHost: test\r\n"
                        "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  stop();
  fire_timer();
  auto rs = responses(2, {false, true});
  check(rs[0], "HTTP/1.1 200 OK", "delayed 100 ms\n", "keep-alive");
  check(rs[1], "HTTP/1.1 503 Service Unavailable",
        "stopping: request not served\n", "close", true);
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a HEAD asking for 100 Continue completed after a stop gets no body) {
  open();
  const std::string head = "HEAD / HTTP/1.1\r\nHost: test\r\n"
                           "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n";
  client_sends(hdl, head.substr(0, 20));
  stop();
  client_sends(hdl, head.substr(20));
  auto rs = responses(1, {true});
  check(rs[0], "HTTP/1.1 503 Service Unavailable",
        "stopping: request not served\n", "close", true);
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(stop after 100 Continue reads the body and answers) {
  open();
  client_sends(hdl, expect_echo(3));
  CAF_CHECK_EQUAL(output(hdl), continue_response);
  stop();
  // The client was asked for the body: the request is half received.
  CAF_CHECK_EQUAL(rec->done, 0);
  client_sends(hdl, "abc" + get_root);
  auto rs = responses(2);
  CAF_CHECK_EQUAL(rs[0].status_line, continue_line);
  check(rs[1], "HTTP/1.1 200 OK", "abc", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

// -- requests that end HTTP for http_parser -----------------------------------

CAF_TEST(CONNECT gets 501 and the connection closes) {
  open();
  client_sends(hdl, "CONNECT example.com:443 HTTP/1.1\r\n"
                    "Host: example.com:443\r\n\r\n");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 501 Not Implemented", "not implemented\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a request with Upgrade is answered as plain HTTP) {
  open();
  client_sends(hdl, "GET / HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\n"
                    "Upgrade: websocket\r\n\r\n");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive");
}

CAF_TEST(a long pipeline behind a delayed response holds the input) {
  open();
  // 40 requests wait behind a delayed one: past 32 the connection stops
  // reading, so that a client cannot make the server buffer without bound.
  std::string pipeline = get("/delay/100");
  for (int i = 0; i < 39; ++i)
    pipeline += get_root;
  client_sends(hdl, pipeline);
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_CHECK(mpx.passive_mode(hdl));
  // The timer fires: all 40 responses go out in order, reading resumes.
  fire_timer();
  auto rs = responses(40);
  CAF_CHECK_EQUAL(rs[0].body, "delayed 100 ms\n");
  CAF_CHECK_EQUAL(rs[39].body, hello);
  CAF_CHECK(!mpx.passive_mode(hdl));
}

// -- the header timeout (slowloris) ------------------------------------------

CAF_TEST(a header section not complete in time gets 408 and a close) {
  open();
  auto first_byte = sched.clock().current_time;
  client_sends(hdl, "GET / HTTP/1.1\r\nHost: te");
  CAF_CHECK_EQUAL(output(hdl), "");
  fire_timer();
  CAF_CHECK_EQUAL(sched.clock().current_time - first_byte,
                  std::chrono::seconds(10));
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 408 Request Timeout", "Request Timeout\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
  check_not_answered("st\r\n\r\n" + get_root);
}

CAF_TEST(bytes trickling in do not extend the header timeout) {
  open();
  auto first_byte = sched.clock().current_time;
  auto req = get_root;
  // A byte every 2 s: the section would take a minute.
  for (size_t i = 0; i < 5; ++i) {
    client_sends(hdl, req.substr(i, 1));
    sched.clock().current_time += std::chrono::seconds(2);
  }
  CAF_CHECK_EQUAL(output(hdl), "");
  // One timer for the whole section, from its first byte.
  CAF_CHECK_EQUAL(sched.clock().schedule().size(), 1u);
  fire_timer();
  CAF_CHECK_EQUAL(sched.clock().current_time - first_byte,
                  std::chrono::seconds(10));
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 408 Request Timeout", "Request Timeout\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a header section complete in time is answered and not cut off) {
  open();
  client_sends(hdl, "GET / HTTP/1.1\r\nHo");
  sched.clock().current_time += std::chrono::seconds(9);
  client_sends(hdl, "st: test\r\n\r\n");
  // The header timer fires and finds nothing to cut off.
  fire_timer();
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", hello, "keep-alive");
  CAF_CHECK_EQUAL(rec->done, 0);
  client_sends(hdl, get_root);
  {
    auto so_far = responses(2);
    CAF_CHECK_EQUAL(so_far[1].status_line, "HTTP/1.1 200 OK");
  }
}

CAF_TEST(a request arriving in one piece starts no header timer) {
  open();
  client_sends(hdl, get_root + get_root);
  {
    auto so_far = responses(2);
    CAF_CHECK_EQUAL(so_far[1].status_line, "HTTP/1.1 200 OK");
  }
  CAF_CHECK(!sched.has_pending_timeout());
}

CAF_TEST(the body is not timed by the header timeout) {
  open();
  client_sends(
    hdl, "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nabc");
  CAF_CHECK(!sched.has_pending_timeout());
  sched.clock().current_time += std::chrono::minutes(5);
  client_sends(hdl, "def");
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 200 OK", "abcdef", "keep-alive");
}

CAF_TEST(every request gets its own header timeout) {
  open();
  auto start = sched.clock().current_time;
  client_sends(hdl, "GET / HT");
  sched.clock().current_time += std::chrono::seconds(9);
  // The first request completes; the second begins 9 s in.
  client_sends(hdl, "TP/1.1\r\nHost: test\r\n\r\nGET / HT");
  fire_timer(); // the first request's timer: nothing to cut off
  {
    auto so_far = responses(1);
    CAF_CHECK_EQUAL(so_far[0].status_line, "HTTP/1.1 200 OK");
  }
  CAF_CHECK_EQUAL(rec->done, 0);
  fire_timer(); // the second's, 10 s after its first byte
  CAF_CHECK_EQUAL(sched.clock().current_time - start, std::chrono::seconds(19));
  auto rs = responses(2);
  check(rs[1], "HTTP/1.1 408 Request Timeout", "Request Timeout\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(the 408 comes in order after the responses before it) {
  open();
  client_sends(hdl, get("/delay/20000") + "GET / HT");
  fire_timer(); // the header timeout, 10 s: the 408 waits for the delay
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_CHECK_EQUAL(rec->done, 0);
  fire_timer(); // the delay, 20 s
  auto rs = responses(2);
  check(rs[0], "HTTP/1.1 200 OK", "delayed 20000 ms\n", "keep-alive");
  check(rs[1], "HTTP/1.1 408 Request Timeout", "Request Timeout\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(blank lines alone are closed without an answer after the timeout) {
  open();
  client_sends(hdl, get_root + "\r\n");
  {
    auto so_far = responses(1);
    CAF_CHECK_EQUAL(so_far[0].status_line, "HTTP/1.1 200 OK");
  }
  // Blank lines may come before a request, but none came.
  fire_timer();
  {
    auto so_far = responses(1);
    CAF_CHECK_EQUAL(so_far[0].header("Connection"), "keep-alive");
  }
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(the header timeout ends a drain waiting for a header section) {
  open();
  client_sends(hdl, "GET / HTTP/1.1\r\nHo");
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  fire_timer();
  auto rs = responses(1);
  check(rs[0], "HTTP/1.1 408 Request Timeout", "Request Timeout\n", "close");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a header timeout of zero starts no timer) {
  make_behaviour = [] {
    behaviours::http_options opts;
    opts.header_timeout = caf::timespan{0};
    return std::make_unique<behaviours::http_behaviour>(opts);
  };
  open();
  client_sends(hdl, "GET / HTTP/1.1\r\nHo");
  CAF_CHECK(!sched.has_pending_timeout());
  client_sends(hdl, "st: test\r\n\r\n");
  {
    auto so_far = responses(1);
    CAF_CHECK_EQUAL(so_far[0].status_line, "HTTP/1.1 200 OK");
  }
}

CAF_TEST_FIXTURE_SCOPE_END()
