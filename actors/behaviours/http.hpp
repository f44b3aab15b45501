#pragma once

/// @file
/// The HTTP/1.1 protocol (and HTTP/1.0).
///
/// Wire format: requests parsed by `http::request_parser` (http-parser);
/// keep-alive and pipelining, responses strictly in request order, each with
/// `Date` and `Content-Length`.
///
/// Routes: `GET /` (a short text), `GET /delay/<ms>` (answered by a timer
/// after `<ms>` milliseconds, no thread waits), `POST /echo` (the request
/// body), `HEAD` wherever `GET` is allowed. Another path: 404. A known method
/// on a path that does not allow it: 405 with `Allow`. Any other method: 501.
/// Malformed request: 400; header section over 8 KiB: 431; body over
/// `max_body` (default 1 MiB; exactly 1 MiB is accepted): 413. These three
/// close the connection after their response.
///
/// Who closes: the client, or the server after a response with
/// `Connection: close` (the client asked for it, HTTP/1.0 without
/// keep-alive, an error above, or a stop).
///
/// Backpressure: while 32 requests or 1 MiB of responses wait behind one
/// that is not ready yet, the connection stops reading (the client waits).
///
/// On `stop`: requests already received are answered in order; a request
/// half received at the stop is finished if the rest arrives (before the
/// drain deadline). The last response carries `Connection: close`, then the
/// connection sends FIN. Nothing else is read. Idle keep-alive connections
/// and connections that have sent nothing close at once.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "caf/actor_system_config.hpp"
#include "caf/config_option_set.hpp"

#include "actors/behaviour.hpp"
#include "actors/behaviours/http_request_parser.hpp"

namespace quiesce::behaviours {

struct http_options {
  /// The largest request body accepted (`--http.max-body`).
  size_t max_body = http::request_parser::default_max_body_bytes;
};

class http_behaviour final : public behaviour {
public:
  explicit http_behaviour(http_options opts = {});

  void on_data(std::string_view bytes, connection_io& io) override;

  void on_stop(connection_io& io) override;

  bool idle() const override;

  void on_timer(uint64_t token, connection_io& io) override;

  /// Declares `--http.max-body`.
  static void add_options(caf::config_option_set& opts);

  /// Reads the options declared by `add_options`.
  static http_options options_from(const caf::actor_system_config& cfg);

private:
  /// One request, from parsing to its response.
  struct exchange {
    uint64_t id = 0;
    /// The response is complete (a delayed one: once its timer fired).
    bool ready = false;
    /// The client asked to keep the connection open.
    bool keep_alive = true;
    /// The response must close the connection (errors, CONNECT).
    bool must_close = false;
    /// HEAD: headers only.
    bool head = false;
    int status = 200;
    std::string extra_headers;
    std::string body;
  };

  void serve(http::request req, connection_io& io);

  void fail(int status, connection_io& io);

  /// Writes every ready response at the front of the queue, in order.
  void write_ready(connection_io& io);

  /// Holds the connection's input while too much waits in the queue.
  void hold_if_backlogged(connection_io& io);

  /// Requests waiting for their response (in order) before input is held.
  static constexpr size_t max_queued_requests = 32;
  /// Response bytes waiting in the queue before input is held.
  static constexpr size_t max_queued_bytes = 1024 * 1024;

  http::request_parser parser_;
  std::deque<exchange> queue_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
  /// New requests are served (false after a stop, once the request half
  /// received at the stop is complete, and after a closing response).
  bool accepting_ = true;
  /// The response that closes the connection has been written.
  bool finished_ = false;
};

} // namespace quiesce::behaviours
