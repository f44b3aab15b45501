#define CAF_SUITE conformance.http

#include "actors/behaviours/http_behaviour.hpp"

#include <string>

#include "quiesce/testing/conformance.hpp"

using namespace quiesce;

namespace {

/// Blanks the value of every `Date` header: it is the wall clock.
std::string without_dates(std::string bytes) {
  std::string::size_type pos = 0;
  while ((pos = bytes.find("\r\nDate: ", pos)) != std::string::npos) {
    auto begin = pos + 8;
    auto end = bytes.find("\r\n", begin);
    if (end == std::string::npos)
      break;
    bytes.replace(begin, end - begin, "-");
    pos = begin;
  }
  return bytes;
}

testing::conformance_case http_case() {
  testing::conformance_case c;
  c.make = [] { return std::make_unique<behaviours::http_behaviour>(); };
  c.normalize = without_dates;
  return c;
}

std::string response(const std::string& body, const char* connection) {
  return "HTTP/1.1 200 OK\r\nDate: -\r\nContent-Type: text/plain\r\n"
         "Content-Length: "
         + std::to_string(body.size()) + "\r\nConnection: " + connection
         + "\r\n\r\n" + body;
}

} // namespace

CAF_TEST(a request with a body keeps the shutdown promise) {
  auto c = http_case();
  c.request = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
              "Content-Type: text/plain\r\n\r\nhello";
  c.response = "HTTP/1.1 200 OK\r\nDate: -\r\n"
               "Content-Type: application/octet-stream\r\n"
               "Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";
  c.response_at_stop = "HTTP/1.1 200 OK\r\nDate: -\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       "Content-Length: 5\r\nConnection: close\r\n\r\nhello";
  testing::check_conformance(c);
}

CAF_TEST(a chunked request body keeps the shutdown promise) {
  auto c = http_case();
  c.request = "POST /echo HTTP/1.1\r\nHost: test\r\n"
              "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  c.response = "HTTP/1.1 200 OK\r\nDate: -\r\n"
               "Content-Type: application/octet-stream\r\n"
               "Content-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
  c.response_at_stop = "HTTP/1.1 200 OK\r\nDate: -\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       "Content-Length: 3\r\nConnection: close\r\n\r\nabc";
  testing::check_conformance(c);
}

CAF_TEST(a delayed response keeps the shutdown promise) {
  // Answered by a timer: busy after the whole request too.
  auto c = http_case();
  c.request = "GET /delay/20 HTTP/1.1\r\nHost: test\r\n\r\n";
  c.response = response("delayed 20 ms\n", "keep-alive");
  c.response_at_stop = response("delayed 20 ms\n", "close");
  testing::check_conformance(c);
}

CAF_TEST(pipelined requests keep the shutdown promise) {
  // A delayed response first: the echo after it is answered at once but
  // must wait for it; at a stop, only the last response owed says close.
  auto c = http_case();
  auto echo = [](const char* connection) {
    return "HTTP/1.1 200 OK\r\nDate: -\r\n"
           "Content-Type: application/octet-stream\r\n"
           "Content-Length: 2\r\nConnection: "
           + std::string(connection) + "\r\n\r\nhi";
  };
  c.pipeline = {
    {"GET /delay/20 HTTP/1.1\r\nHost: test\r\n\r\n",
     response("delayed 20 ms\n", "keep-alive"),
     response("delayed 20 ms\n", "close")},
    {"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nhi",
     echo("keep-alive"), echo("close")},
  };
  testing::check_conformance(c);
}
