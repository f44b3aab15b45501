// The HTTP behaviour's header and body timeouts (quiesce/http.hpp): when a
// timer starts, and what its firing cuts off.

#include "actors/behaviours/http_behaviour.hpp"

#include <chrono>
#include <string>

#include "quiesce/log.hpp"

namespace quiesce::behaviours {

void http_behaviour::watch_header(connection_io& io) {
  if (header_timeout_ <= caf::timespan{0} || finished_ || !accepting_
      || !parser_.in_header_section() || watched_request_ == requests_seen_)
    return;
  // One timer per header section, from its first byte (this read): bytes
  // trickling in later do not extend it.
  watched_request_ = requests_seen_;
  io.start_timer(header_timeout_, header_timer_bit | requests_seen_);
}

void http_behaviour::on_header_timeout(uint64_t request, connection_io& io) {
  // A later request, or a header section completed in time, or nothing more
  // is read anyway: nothing to cut off.
  if (request != requests_seen_ || finished_ || !accepting_
      || !parser_.in_header_section())
    return;
  if (input_held_) {
    // The rest of the header may wait unread in the kernel behind our own
    // backlog: not the client's delay. Start over.
    io.start_timer(header_timeout_, header_timer_bit | request);
    return;
  }
  if (parser_.mid_request()) {
    fail(408);
  } else if (queue_.empty()) {
    // Only blank lines: no request to answer, nothing owed.
    accepting_ = false;
    finished_ = true;
    io.close();
    return;
  } else {
    // Only blank lines after requests still being answered: the last of
    // those closes the connection.
    accepting_ = false;
    queue_.back().must_close = true;
  }
  pump({}, io);
}

bool http_behaviour::body_expected() const {
  // Not while the client waits for a 100 Continue that is not written yet,
  // nor while the input is held: then the body cannot come through no
  // fault of the client.
  return body_timeout_ > caf::timespan{0} && !finished_ && accepting_
         && !input_held_ && continue_ != interim::owed && parser_.in_body();
}

void http_behaviour::watch_body(bool read, connection_io& io) {
  if (!body_expected()) {
    body_watched_ = false;
    return;
  }
  // A wait that begins now (a header section complete, a 100 Continue
  // written, held input let go) and every read during one: the clock
  // starts over. (Every byte read while a body is expected is a byte of
  // it, or of its chunk framing, or completes it.)
  if (!body_watched_ || read) {
    body_watched_ = true;
    body_progress_ = io.now();
  }
  if (!body_timer_armed_) {
    body_timer_armed_ = true;
    io.start_timer(body_timeout_, body_timer_bit);
  }
}

void http_behaviour::on_body_timeout(connection_io& io) {
  body_timer_armed_ = false;
  // No body expected (complete, or not the client's delay now): watch_body
  // starts the timer again when one is.
  if (!body_watched_ || !body_expected())
    return;
  auto quiet = io.now() - body_progress_;
  if (quiet < body_timeout_) {
    // Read since the timer started: wait for what is left.
    body_timer_armed_ = true;
    io.start_timer(body_timeout_ - quiet, body_timer_bit);
    return;
  }
  if (log::enabled(log::level::debug))
    log::debug(
      "http",
      "body timeout: no byte of a request body for "
        + std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(quiet).count())
        + " ms; 408 and close");
  // Like the header timeout with a request begun: 408 in order after the
  // responses before it, then the close.
  fail(408);
  pump({}, io);
}

} // namespace quiesce::behaviours
