#pragma once

/// @file
/// The HTTP behaviour (quiesce/http.hpp says what it does on the wire and at
/// a stop). Internal: a server gets it through `make_http` or
/// `add_http_protocol`; its member functions are spread over http.cpp (the
/// flow of requests and responses), http_routes.cpp (what each request is
/// answered) and http_timeouts.cpp (the header and body timeouts).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "caf/actor_clock.hpp"

#include "quiesce/behaviour.hpp"
#include "quiesce/http.hpp"
#include "quiesce/ordered_replies.hpp"

#include "actors/behaviours/http_request_parser.hpp"

namespace quiesce::behaviours {

class http_behaviour final : public behaviour {
public:
  /// The longest `GET /delay/<ms>`: the contract puts no limit on `<ms>`,
  /// but the timer's deadline (now + delay, in nanoseconds) must not
  /// overflow. A long delay costs no more than an idle connection, and a
  /// stop's drain deadline bounds it.
  static constexpr uint64_t max_delay_ms = 1000000000000;

  explicit http_behaviour(http_options opts = {});

  void on_data(std::string_view bytes, connection_io& io) override;

  void on_stop(connection_io& io) override;

  bool idle() const override;

  void on_timer(uint64_t token, connection_io& io) override;

  /// The client half-closed: a request half received can never complete; it
  /// gets 400 and the connection closes after the responses before it.
  void on_input_end(connection_io& io) override;

  /// The stop delay began: the next request is the last (`closing_`).
  void on_closing(connection_io& io) override;

  /// Timer tokens with this bit set are header timeouts; the rest of the
  /// token is the number of the request watched (`/delay` timers use the
  /// queue's slot ids, which never reach it).
  static constexpr uint64_t header_timer_bit = uint64_t{1} << 63;

  /// The token of the body timer (one per connection: it watches whichever
  /// body is being received when it fires). Neither the queue's slot ids
  /// nor the request numbers of header tokens ever reach this bit.
  static constexpr uint64_t body_timer_bit = uint64_t{1} << 62;

private:
  /// One request, from parsing to its response.
  struct exchange {
    /// The response is complete only when its timer fires (`/delay`): its
    /// slot in the queue is filled then, with the exchange kept there.
    bool delayed = false;
    /// The client asked to keep the connection open.
    bool keep_alive = true;
    /// The response must close the connection (errors, CONNECT, a request
    /// answered without reading its body).
    bool must_close = false;
    /// HEAD: headers only.
    bool head = false;
    /// Answered by `http_routes::handler`: `body` holds the path to ask
    /// for until the answer fills the slot (no field of its own, so that
    /// the built-in routes' exchanges stay as small as they were).
    bool asked = false;
    /// A `/delay` response is ready this long after its request.
    std::chrono::milliseconds delay{0};
    int status = 200;
    std::string extra_headers;
    std::string body;
  };

  /// The response to `req`, decided from its head; `body` (the request
  /// body) is what `POST /echo` answers.
  exchange route(const http::request& req, std::string body) const;

  /// The response to `req` by `routes_` (http_custom_routes.cpp).
  exchange route_custom(const http::request& req) const;

  /// What every route table refuses before it looks at the path: CONNECT
  /// (501 and close), an expectation other than 100-continue (417), a
  /// method other than GET, HEAD and POST (501). Fills `ex` and returns
  /// true for those (http_routes.cpp).
  static bool refuse_method(const http::request& req, exchange& ex);

  /// Asks `routes_->handler` for the response of the exchange in `slot`
  /// (whose body holds the path), which fills the slot.
  void ask_custom(uint64_t slot, connection_io& io);

  void serve(http::request req, connection_io& io);

  /// Parses `bytes` (after any kept unparsed) into requests and queues
  /// them, at most up to `max_queued_requests` waiting.
  void parse(std::string_view bytes, connection_io& io);

  /// Parses `bytes`, writes what is ready, and parses on from the bytes
  /// kept unparsed while the queue has room; then holds the input if
  /// needed and watches the header timeout. Every event ends here.
  void pump(std::string_view bytes, connection_io& io);

  /// Looks at the head of a request that waits for its body: owes it a 100
  /// Continue, or refuses it at once (see the file comment).
  void check_expectation();

  /// The answer to a request that waits for a 100 Continue after a stop
  /// (the head `awaiting_body` shows): no body if it is a HEAD.
  exchange unavailable() const;

  /// Answers the failure `status` of the parser and closes.
  void fail(int status);

  /// Queues `ex` as the last response: nothing after it is read.
  void refuse(exchange ex);

  /// Writes every ready response at the front of the queue, in order.
  void write_ready(connection_io& io);

  /// Holds the connection's input while too much waits in the queue.
  void hold_if_backlogged(connection_io& io);

  /// Starts the header timer when a header section has begun that no timer
  /// watches yet.
  void watch_header(connection_io& io);

  /// The header timer of request number `request` fired.
  void on_header_timeout(uint64_t request, connection_io& io);

  /// A request body is being waited for now, and the client is the one who
  /// keeps it from coming: what the body timeout watches.
  bool body_expected() const;

  /// Notes the time a body wait begins and every read during one (`read`:
  /// bytes arrived in this event), and starts the body timer if none runs.
  void watch_body(bool read, connection_io& io);

  /// The body timer fired.
  void on_body_timeout(connection_io& io);

  /// Requests waiting for their response (in order) before input is held.
  static constexpr size_t max_queued_requests = 32;
  /// Response bytes waiting in the queue before input is held.
  static constexpr size_t max_queued_bytes = 1024 * 1024;
  /// Input dropped while nothing more is answered before input is held.
  static constexpr size_t max_dropped_bytes = 1024 * 1024;

  http::request_parser parser_;
  /// Routes instead of the built-in ones; null for the built-in ones.
  std::shared_ptr<const http_routes> routes_;
  /// Where responses are counted; null: not counted.
  process_counters* counters_;
  caf::timespan header_timeout_;
  caf::timespan body_timeout_;
  /// `body_expected()` at the end of the last event.
  bool body_watched_ = false;
  /// The body timer runs (at most one).
  bool body_timer_armed_ = false;
  /// When the body wait began, or the last read during it.
  caf::actor_clock::time_point body_progress_;
  /// Requests parsed so far: the number of the one being received.
  uint64_t requests_seen_ = 0;
  /// The request whose header section the last header timer watches.
  uint64_t watched_request_ = UINT64_MAX;
  /// The input is held (hold_if_backlogged).
  bool input_held_ = false;
  /// Input read while nothing more is answered, dropped (see pump).
  size_t dropped_ = 0;
  /// Responses owed, in request order; a slot is filled once its response
  /// is complete. It holds max_queued_requests at most.
  ordered_replies<exchange> queue_;
  bool stopping_ = false;
  /// The stop delay began (on_closing): the next request is answered with
  /// `Connection: close`, as if it had asked for it, and is the last.
  bool closing_ = false;
  /// New requests are served (false after a stop, once the request half
  /// received at the stop is complete, and after a closing response).
  bool accepting_ = true;
  /// The response that closes the connection has been written.
  bool finished_ = false;
  /// The client half-closed (on_input_end).
  bool peer_finished_ = false;

  /// Where the request being received stands with 100 Continue.
  enum class interim {
    /// Its header section has not been looked at (not complete yet).
    unchecked,
    /// Written once every earlier response is (write_ready).
    owed,
    /// Written, not wanted, skipped or replaced by a final response.
    settled,
  };
  interim continue_ = interim::unchecked;
};

} // namespace quiesce::behaviours
