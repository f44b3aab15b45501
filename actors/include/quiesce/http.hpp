#pragma once

/// @file
/// The HTTP/1.1 protocol (and HTTP/1.0).
///
/// Wire format: requests parsed by `http::request_parser` (Boost.Beast's
/// parser, strict: its header states the rules); keep-alive and pipelining,
/// responses strictly in request order, each with `Date` and
/// `Content-Length`.
///
/// Routes, by the path of the target (origin-form, or absolute-form
/// `http://host/path`: RFC 9112 3.2.2): `GET /` (a short text), `GET
/// /delay/<ms>` (answered by a timer after `<ms>` milliseconds, no thread
/// waits; at most `max_delay_ms`, 10^12 ms or about 31 years, the most the
/// actor clock can add to its time without overflow: a larger number gets
/// 400 `delay must be at most 1000000000000 ms`, and the connection stays
/// open; a `<ms>` that is not a decimal number: 404), `POST /echo` (the
/// request body), `HEAD` wherever `GET` is allowed. Another path: 404. A
/// known method on a path that does not allow it: 405 with `Allow`. Any
/// other method (any token): 501, the connection stays open; CONNECT: 501
/// and close. What the parser refuses closes the connection after its
/// response: malformed or ambiguous framing 400, a body over `max_body`
/// (default 1 MiB; exactly 1 MiB is accepted) 413, a request line over
/// 8 KiB 414, a header section over 8 KiB 431, a transfer coding other than
/// chunked 501, an HTTP version other than 1.0 and 1.1 505. No response to
/// a HEAD carries a body, an error's neither (its Content-Length is the
/// body's a GET would get).
///
/// `Expect` (RFC 9110 10.1.1), HTTP/1.1 only (HTTP/1.0 ignores it):
/// - `100-continue` on a request whose body has not started to arrive when
///   its header section is complete: if the request will be read (a route
///   that answers 200; a `Content-Length` within `max_body`, else 413 and
///   close as above), `HTTP/1.1 100 Continue` is written as soon as every
///   earlier pipelined response is, so that responses stay in order; if the
///   body starts to arrive first, the 100 is skipped. A request that will
///   not be read gets its final response (404, 405, 501, ...) at once, in
///   order, instead of the 100, with `Connection: close`: reading a body
///   only to throw it away costs more than the client's new connection
///   (Go's net/http closes in this case too).
/// - Any other expectation: 417 Expectation Failed. The request is read
///   whole like any other (its client does not wait for anything) and the
///   connection stays open; with `100-continue` as well and the body still
///   held back, the 417 comes instead of the 100 and closes as above.
///
/// Header read timeout (`header_timeout`, `--http.header-timeout`, default
/// 10 s; zero: none): a header section that is not complete this long after
/// its first byte (a slowloris client trickling it a byte at a time) is cut
/// off: 408 Request Timeout with `Connection: close`, in order after the
/// responses before it, then the close. If only blank lines (which may come
/// before a request) have arrived, there is no request to answer: the
/// connection just closes after the responses before them. One timer per
/// header section that does not arrive in one read, started at its first
/// byte; bytes arriving do not extend it. The clock starts at the first
/// byte, not when the connection opened: a connection that sends nothing
/// is the framework's idle timeout's (`--idle-timeout`). The body has a
/// timeout of its own (below). While the connection holds its input (the
/// backlog below), the header cannot complete through no fault of the
/// client: the timeout then starts over.
///
/// Body read timeout (`body_timeout`, `--http.body-timeout`, default 60 s
/// as nginx's `client_body_timeout`; zero: none): the longest time between
/// two reads of a request body. A request whose header section is complete
/// and whose body does not get a byte for this long (a client that stalls,
/// or trickles its bytes further apart than that) is cut off: 408 Request
/// Timeout with `Connection: close`, in order after the responses before
/// it, then the close (a debug log line says so). The clock starts when the
/// body is first waited for (the end of the header section, or the 100
/// Continue written) and starts over at every read of it. Not the client's
/// delay, so not timed: a request that waits for its 100 Continue (the
/// client holds the body back until it comes), and any time the connection
/// holds its input (the backlog below); the clock starts over when that
/// ends. (The framework's own pause while too much output waits, for a
/// client that reads its responses slowly, is not seen here: a body behind
/// it is timed.) It applies during a stop too (the drain deadline bounds it
/// anyway): a stalled upload then ends with its 408 rather than the
/// deadline's forced close. One timer per connection at a time: a read
/// notes the time, and the timer, when it fires, starts again for what is
/// left.
///
/// Who closes: the client, or the server after a response with
/// `Connection: close` (the client asked for it, HTTP/1.0 without
/// keep-alive, an error above, or a stop).
///
/// Backpressure: at most 32 requests wait for their responses. Parsing stops
/// before the request that would be the 33rd; the rest of the read is kept
/// unparsed (at most one read and a header section) and the connection stops
/// reading (the client waits in TCP flow control) until the queue drains,
/// then parsing resumes from the kept bytes. The same hold while 1 MiB of
/// responses wait behind one that is not ready yet, and once 1 MiB of input
/// has been dropped because nothing more is answered (a response that
/// closes the connection, or a stop's last request, waits behind one that
/// is not ready): the connection's own discard limit takes over once the
/// last response is out.
///
/// On `stop`: requests already received are answered in order (those in
/// bytes kept unparsed too); a request half received at the stop is finished
/// if the rest arrives (before the drain deadline, and within the header or
/// body timeout). While the stop has
/// reached the connection but bytes sent before it are still being
/// delivered (`connection_io::stop_requested`, before `on_stop`), the last
/// response waits, so that it can carry the `Connection: close`. The last
/// response carries `Connection: close`, then the connection sends FIN. Nothing
/// else is read. Idle keep-alive connections and connections that have sent
/// nothing close at once. No 100 Continue is written after a stop: a request
/// that waits for one (at the stop, or when its header section completes during
/// the drain) is answered 503 with `Connection: close` after the responses
/// before it, its body unread. The drain does not wait for an upload that has
/// not started (nor, if the client never sends it, until its deadline), and the
/// client learns that the request was not served, so that it may retry
/// elsewhere. A request that was sent its 100 before the stop is half received:
/// its body is read and it is answered.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "caf/actor_clock.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/config_option_set.hpp"

#include "quiesce/behaviour.hpp"
#include "actors/behaviours/http_request_parser.hpp"

namespace quiesce::behaviours {

struct http_options {
  /// The largest request body accepted (`--http.max-body`).
  size_t max_body = http::request_parser::default_max_body_bytes;
  /// How long a header section may take from its first byte
  /// (`--http.header-timeout`); zero: no limit.
  caf::timespan header_timeout = std::chrono::seconds(10);
  /// The longest time between two reads of a request body
  /// (`--http.body-timeout`); zero: no limit.
  caf::timespan body_timeout = std::chrono::seconds(60);
};

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

  /// Declares `--http.max-body`, `--http.header-timeout` and
  /// `--http.body-timeout`.
  static void add_options(caf::config_option_set& opts);

  /// Reads the options declared by `add_options`. Throws
  /// `std::invalid_argument` for a negative `--http.header-timeout` or
  /// `--http.body-timeout` (the server turns it into a usage error).
  static http_options options_from(const caf::actor_system_config& cfg);

  /// Timer tokens with this bit set are header timeouts; the rest of the
  /// token is the number of the request watched (`/delay` timers use the
  /// exchange ids, which never reach it).
  static constexpr uint64_t header_timer_bit = uint64_t{1} << 63;

  /// The token of the body timer (one per connection: it watches whichever
  /// body is being received when it fires). Neither the exchange ids nor
  /// the request numbers of header tokens ever reach this bit.
  static constexpr uint64_t body_timer_bit = uint64_t{1} << 62;

private:
  /// One request, from parsing to its response.
  struct exchange {
    uint64_t id = 0;
    /// The response is complete (a delayed one: once its timer fired).
    bool ready = false;
    /// The client asked to keep the connection open.
    bool keep_alive = true;
    /// The response must close the connection (errors, CONNECT, a request
    /// answered without reading its body).
    bool must_close = false;
    /// HEAD: headers only.
    bool head = false;
    /// A `/delay` response is ready this long after its request.
    std::chrono::milliseconds delay{0};
    int status = 200;
    std::string extra_headers;
    std::string body;
  };

  /// The response to `req`, decided from its head; `body` (the request
  /// body) is what `POST /echo` answers. Not ready when it is delayed.
  exchange route(const http::request& req, std::string body) const;

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
  /// Responses owed, in request order. A vector, not a deque: libstdc++'s
  /// deque allocates 576 bytes up front, which every idle connection would
  /// keep; this queue holds a handful of entries at most (see
  /// max_queued_requests), so erasing at the front is cheap.
  std::vector<exchange> queue_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
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
