#pragma once

/// @file
/// The HTTP/1.1 protocol (and HTTP/1.0).
///
/// Wire format: requests parsed by `http::request_parser` (Boost.Beast's
/// parser, strict: actors/behaviours/http_request_parser.hpp states the
/// rules); keep-alive and pipelining,
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
///
/// During a stop delay (`on_closing`, `--stop-delay`): the next request
/// (the first one completed after the delay began, on a connection open
/// then or accepted during it) is answered as if it had asked for
/// `Connection: close`: its response says so and the connection closes
/// after it (FIN); nothing sent after that request is answered. Responses
/// to requests received before the delay began still say keep-alive. An
/// idle keep-alive connection stays open (its client may still send one
/// more request) until that request or the stop.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "caf/actor.hpp"

#include "caf/timespan.hpp"

#include "quiesce/behaviour.hpp"

namespace quiesce {

struct process_counters;

} // namespace quiesce

namespace quiesce::behaviours {

/// Routes that replace the built-in ones (the admin endpoint's,
/// actors/admin.hpp): `GET` and `HEAD` of each of `paths` are answered by
/// `handler`, asked `(http_get_atom, path)` and answering `(int32_t status,
/// std::string content_type, std::string body)` within `timeout` (else 503).
/// Any other path: 404; another known method on one of `paths`: 405 with
/// `Allow: GET, HEAD`; an unknown method: 501 (as the built-in routes).
/// Taking them costs the built-in routes one test of a null pointer per
/// request.
struct http_routes {
  std::vector<std::string> paths;
  caf::actor handler;
  caf::timespan timeout = std::chrono::seconds(5);
};

struct http_options {
  /// The default of `max_body`.
  static constexpr size_t default_max_body = 1024 * 1024;
  /// The largest request body accepted (`--http.max-body`): 1 MiB.
  size_t max_body = default_max_body;
  /// How long a header section may take from its first byte
  /// (`--http.header-timeout`); zero: no limit.
  caf::timespan header_timeout = std::chrono::seconds(10);
  /// The longest time between two reads of a request body
  /// (`--http.body-timeout`); zero: no limit.
  caf::timespan body_timeout = std::chrono::seconds(60);
  /// If set, served instead of the built-in routes.
  std::shared_ptr<const http_routes> routes;
  /// Where each response is counted by its status (actors/metrics.hpp);
  /// not at all if null.
  process_counters* counters = nullptr;
};

/// The largest `--http.max-body`: a request body is held in memory whole.
constexpr int64_t max_http_body = int64_t{1} << 30;

/// A behaviour serving HTTP with `opts`, for one connection.
std::unique_ptr<behaviour> make_http(http_options opts = {});

/// Registers HTTP as protocol `http` (registry.hpp), with its options
/// `--http.max-body`, `--http.header-timeout` and `--http.body-timeout` and
/// their rules (behaviours/http_protocol.cpp).
void add_http_protocol();

} // namespace quiesce::behaviours
