// What the HTTP behaviour answers each request: the routes of quiesce/http.hpp.

#include "actors/behaviours/http_behaviour.hpp"

#include <chrono>
#include <string>
#include <utility>

#include "actors/behaviours/http_fields.hpp"
#include "quiesce/log.hpp"

namespace quiesce::behaviours {

using http::expectations_of;
using http::parse_delay;
using http::path_of;

bool http_behaviour::refuse_method(const http::request& req, exchange& ex) {
  if (req.method == "CONNECT") {
    // What follows a CONNECT is tunnel data, not requests: close after.
    ex.status = 501;
    ex.must_close = true;
    ex.body = "not implemented\n";
  } else if (expectations_of(req).unmet) {
    // RFC 9110 10.1.1 allows 417 for an expectation the server cannot
    // meet; answered like any other request, after its body.
    ex.status = 417;
    ex.body = "only 100-continue can be expected\n";
  } else if (req.method != "GET" && req.method != "HEAD"
             && req.method != "POST") {
    ex.status = 501;
    ex.body = "not implemented\n";
  } else {
    return false;
  }
  return true;
}

http_behaviour::exchange http_behaviour::route(const http::request& req,
                                               std::string body) const {
  if (routes_)
    return route_custom(req);
  exchange ex;
  ex.keep_alive = req.keep_alive;
  ex.head = req.method == "HEAD";
  auto path = path_of(req.target);
  auto get_like = req.method == "GET" || ex.head;
  auto not_allowed = [&](const char* allow) {
    ex.status = 405;
    ex.extra_headers = std::string{"Allow: "} + allow + "\r\n";
    ex.body = "method not allowed\n";
  };
  constexpr std::string_view delay_prefix = "/delay/";
  uint64_t ms = 0;
  if (refuse_method(req, ex)) {
    // Answered as filled.
  } else if (path == "/") {
    if (get_like)
      ex.body = "quiesce: hello\n";
    else
      not_allowed("GET, HEAD");
  } else if (path == "/echo") {
    if (req.method == "POST") {
      ex.extra_headers = "Content-Type: application/octet-stream\r\n";
      ex.body = std::move(body);
    } else {
      not_allowed("POST");
    }
  } else if (path.substr(0, delay_prefix.size()) == delay_prefix
             && parse_delay(path.substr(delay_prefix.size()), max_delay_ms,
                            ms)) {
    if (!get_like) {
      not_allowed("GET, HEAD");
    } else if (ms > max_delay_ms) {
      // Well-formed HTTP with an argument out of range: an answer, not a
      // reason to close.
      ex.status = 400;
      ex.body
        = "delay must be at most " + std::to_string(max_delay_ms) + " ms\n";
    } else {
      ex.body = "delayed " + std::to_string(ms) + " ms\n";
      ex.delay = std::chrono::milliseconds(ms);
      ex.delayed = true;
      // The request has been read (and counted): tests wait on this line.
      log::debug("http", "a response delayed by " + std::to_string(ms) + " ms");
    }
  } else {
    ex.status = 404;
    ex.body = "not found\n";
  }
  return ex;
}

http_behaviour::exchange http_behaviour::unavailable() const {
  exchange ex;
  ex.status = 503;
  ex.body = "stopping: request not served\n";
  // A response to HEAD has no content (RFC 9110 9.3.2), whatever its
  // Content-Length says.
  ex.head = parser_.head_request();
  return ex;
}

} // namespace quiesce::behaviours
