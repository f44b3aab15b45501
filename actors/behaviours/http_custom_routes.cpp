// Routes given to the HTTP behaviour instead of the built-in ones
// (`http_routes` in quiesce/http.hpp): the admin endpoint's.

#include <algorithm>
#include <string>
#include <utility>

#include "actors/behaviours/http_behaviour.hpp"
#include "actors/behaviours/http_fields.hpp"

namespace quiesce::behaviours {

using http::path_of;

http_behaviour::exchange
http_behaviour::route_custom(const http::request& req) const {
  exchange ex;
  ex.keep_alive = req.keep_alive;
  ex.head = req.method == "HEAD";
  auto path = path_of(req.target);
  auto get_like = req.method == "GET" || ex.head;
  auto& paths = routes_->paths;
  auto known = std::find(paths.begin(), paths.end(), path) != paths.end();
  // As the built-in routes: methods they know (GET, HEAD, POST) on a path
  // that does not allow them are 405; any other method 501.
  if (refuse_method(req, ex)) {
    // Answered as filled.
  } else if (!known) {
    ex.status = 404;
    ex.body = "not found\n";
  } else if (!get_like) {
    ex.status = 405;
    ex.extra_headers = "Allow: GET, HEAD\r\n";
    ex.body = "method not allowed\n";
  } else {
    ex.asked = true;
    ex.body = std::string{path};
  }
  return ex;
}

void http_behaviour::ask_custom(uint64_t slot, connection_io& io) {
  auto* ex = queue_.find(slot);
  auto path = std::move(ex->body);
  ex->body.clear();
  io.ask<int32_t, std::string, std::string>(routes_->handler, routes_->timeout,
                                            http_get_atom_v, std::move(path))
    .then(
      [this, slot](int32_t status, std::string& type, std::string& body,
                   connection_io& conn) {
        if (auto* x = queue_.find(slot)) {
          x->status = status;
          x->extra_headers = "Content-Type: " + type + "\r\n";
          x->body = std::move(body);
          queue_.fill(slot);
        }
        pump({}, conn);
      },
      [this, slot](const std::string& error, connection_io& conn) {
        if (auto* x = queue_.find(slot)) {
          x->status = 503;
          x->body = "no answer: " + error + "\n";
          queue_.fill(slot);
        }
        pump({}, conn);
      });
}

} // namespace quiesce::behaviours
