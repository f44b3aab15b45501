// The HTTP behaviour's flow (quiesce/http.hpp): requests parsed and queued,
// responses written in order, the stop, the backlog's hold on input.

#include "actors/behaviours/http_behaviour.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <vector>

#include "actors/behaviours/http_fields.hpp"
#include "actors/metrics.hpp"

namespace quiesce::behaviours {

namespace {

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

/// The `Date` header value (RFC 9110 IMF-fixdate), formatted once a second.
const std::string& http_date() {
  thread_local std::time_t last = 0;
  thread_local std::string text;
  auto now = std::time(nullptr);
  if (now != last || text.empty()) {
    std::tm utc{};
    gmtime_r(&now, &utc);
    char buf[64];
    auto n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &utc);
    text.assign(buf, n);
    last = now;
  }
  return text;
}

using http::expectations_of;

static_assert(http_options::default_max_body
              == http::request_parser::default_max_body_bytes);

} // namespace

http_behaviour::http_behaviour(http_options opts)
    : parser_(http::request_parser::default_max_header_bytes, opts.max_body),
      routes_(std::move(opts.routes)), counters_(opts.counters),
      header_timeout_(opts.header_timeout), body_timeout_(opts.body_timeout) {
  // nop
}

void http_behaviour::on_data(std::string_view bytes, connection_io& io) {
  pump(bytes, io);
}

void http_behaviour::parse(std::string_view bytes, connection_io& io) {
  // Scratch space of the thread (every broker of the event loop runs on its
  // one thread): no allocation per read, no memory kept per connection.
  thread_local std::vector<http::request> scratch;
  auto& requests = scratch;
  requests.clear();
  // At most max_queued_requests wait for their responses: the parser stops
  // before the request that would pass the bound and keeps the rest of the
  // bytes (a pipelining client cannot make one read queue hundreds).
  auto room = queue_.size() < max_queued_requests
                ? max_queued_requests - queue_.size()
                : 0;
  auto failure = parser_.feed(bytes, requests, room);
  requests_seen_ += requests.size();
  // A request that came out settled any 100 Continue of its own; a head
  // awaiting its body now belongs to a later request.
  if (!requests.empty())
    continue_ = interim::unchecked;
  for (auto& req : requests) {
    if (!accepting_)
      break;
    serve(std::move(req), io);
  }
  if (failure != 0 && accepting_) {
    fail(failure);
  } else if (accepting_) {
    if (stopping_ && parser_.input_ended())
      accepting_ = false; // every request begun before the stop is in
    else
      check_expectation();
  }
}

void http_behaviour::pump(std::string_view bytes, connection_io& io) {
  auto read = !bytes.empty();
  if (read && (finished_ || !accepting_)) {
    // Nothing read now is answered: a response that closes the connection
    // (an error, a stop's last request) waits behind one that is not ready,
    // and the client sends on (an upload refused with 413). Dropped, but
    // bounded (hold_if_backlogged).
    dropped_ += bytes.size();
  }
  for (;;) {
    if (!finished_ && accepting_ && (!bytes.empty() || parser_.unparsed() > 0)
        && (queue_.size() < max_queued_requests || !bytes.empty())) {
      parse(bytes, io);
      bytes = {};
    }
    write_ready(io);
    // Responses went out: parse on from the bytes kept, while there is room.
    if (finished_ || !accepting_ || parser_.unparsed() == 0
        || queue_.size() >= max_queued_requests)
      break;
  }
  if (peer_finished_ && accepting_ && !finished_ && parser_.unparsed() == 0
      && parser_.mid_request()) {
    // The client half-closed: the request it began can never complete.
    fail(400);
    write_ready(io);
  }
  hold_if_backlogged(io);
  watch_header(io);
  watch_body(read, io);
}

void http_behaviour::on_stop(connection_io& io) {
  stopping_ = true;
  // Requests begun before the stop are answered, bytes kept unparsed
  // included (they were received before it); nothing that begins after.
  parser_.end_input();
  if (continue_ == interim::owed) {
    // The client holds the body back until a 100 Continue that is not
    // written yet. Asking for the body now would stretch the drain by an
    // upload; answering without it ends the request (and the connection)
    // as soon as the responses before it are out, and the client learns
    // that nothing was done.
    refuse(unavailable());
  } else if (parser_.input_ended()) {
    // A request half received at the stop is finished; nothing after it.
    // (One that was sent 100 Continue is half received: its body comes.)
    accepting_ = false;
  }
  pump({}, io);
}

bool http_behaviour::idle() const {
  return queue_.empty() && (finished_ || !accepting_ || !parser_.mid_request());
}

void http_behaviour::on_timer(uint64_t token, connection_io& io) {
  if ((token & header_timer_bit) != 0) {
    on_header_timeout(token & ~header_timer_bit, io);
    return;
  }
  if (token == body_timer_bit) {
    on_body_timeout(io);
    return;
  }
  queue_.fill(token); // a `/delay` response, built when it was routed
  pump({}, io);
}

void http_behaviour::serve(http::request req, connection_io& io) {
  auto ex = route(req, std::move(req.body));
  if (closing_)
    ex.keep_alive = false; // the stop delay: this answer is the last
  auto slot = queue_.reserve();
  // Nothing after a response that closes the connection is answered. (After
  // a stop, the parser ends the input: see parse.)
  if (ex.must_close || !ex.keep_alive)
    accepting_ = false;
  if (ex.delayed) {
    io.start_timer(ex.delay, slot);
    *queue_.find(slot) = std::move(ex); // filled when the timer fires
  } else if (ex.asked) {
    *queue_.find(slot) = std::move(ex); // filled by the handler's answer
    ask_custom(slot, io);
  } else {
    queue_.fill(slot, std::move(ex));
  }
}

void http_behaviour::check_expectation() {
  auto* head = parser_.awaiting_body();
  if (head == nullptr) {
    // No head waits, or its body has started to arrive: the client did not
    // wait for the 100 Continue (RFC 9110 lets it), which is moot now.
    if (continue_ == interim::owed)
      continue_ = interim::settled;
    return;
  }
  if (continue_ != interim::unchecked)
    return; // this head was looked at when it arrived
  continue_ = interim::settled;
  if (!expectations_of(*head).wants_continue)
    return;
  auto ex = route(*head, {});
  if (ex.status != 200) {
    // The answer does not depend on the body: it replaces the 100 (RFC
    // 9110 10.1.1). Then close rather than read a body only to throw it
    // away.
    refuse(std::move(ex));
  } else if (stopping_) {
    refuse(unavailable());
  } else {
    // The body will be read: ask for it once every earlier response is
    // out (write_ready), so that responses stay in request order.
    continue_ = interim::owed;
  }
}

void http_behaviour::on_closing(connection_io&) {
  // Responses to requests routed already keep their keep-alive; the next
  // request routed (serve) says `Connection: close` and is the last.
  closing_ = true;
}

void http_behaviour::on_input_end(connection_io& io) {
  // Requests in the bytes kept unparsed are answered first (pump).
  peer_finished_ = true;
  pump({}, io);
}

void http_behaviour::fail(int status) {
  exchange ex;
  ex.status = status;
  ex.body = std::string{reason(status)} + "\n";
  // A response to HEAD has no content (RFC 9110 9.3.2): not even an error's.
  ex.head = parser_.head_request();
  refuse(std::move(ex));
}

void http_behaviour::refuse(exchange ex) {
  ex.must_close = true;
  accepting_ = false;
  continue_ = interim::settled;
  queue_.fill(queue_.reserve(), std::move(ex));
}

void http_behaviour::hold_if_backlogged(connection_io& io) {
  // Responses wait in order behind one that is not ready (a delay): past a
  // bound, the client waits in TCP flow control instead of in our memory.
  size_t queued_bytes = 0;
  queue_.for_each([&](const exchange& ex) { queued_bytes += ex.body.size(); });
  // Bytes kept unparsed (see parse) are more of the same: no more reading
  // until they are parsed.
  input_held_ = queue_.size() >= max_queued_requests
                || queued_bytes > max_queued_bytes || parser_.unparsed() > 0
                || dropped_ > max_dropped_bytes;
  io.hold_input(input_held_);
}

void http_behaviour::write_ready(connection_io& io) {
  auto closed = false;
  queue_.take_ready([&](exchange& ex) {
    // While it is handed, `ex` is still in the queue: `size() == 1` says it
    // is the last response owed.
    auto last = ex.must_close || !ex.keep_alive
                || (stopping_ && !accepting_ && queue_.size() == 1);
    if (!last && queue_.size() == 1 && !stopping_ && io.stop_requested()) {
      // The stop has reached the connection, but the behaviour is still
      // getting bytes that were sent before it (on_stop follows). This may
      // be the last response: written now, it would say keep-alive. It
      // waits for on_stop (only this one: the queue must keep draining, or
      // held input would keep the stop from ever beginning).
      return take_step::keep;
    }
    if (counters_ != nullptr)
      counters_->count_response(ex.status);
    // Built in the thread's scratch string (see on_data), then copied once
    // into the connection's output.
    thread_local std::string scratch;
    auto& out = scratch;
    out.clear();
    out += "HTTP/1.1 ";
    out += std::to_string(ex.status);
    out += ' ';
    out += reason(ex.status);
    out += "\r\nDate: ";
    out += http_date();
    out += "\r\n";
    if (ex.extra_headers.find("Content-Type:") == std::string::npos)
      out += "Content-Type: text/plain\r\n";
    out += ex.extra_headers;
    out += "Content-Length: ";
    out += std::to_string(ex.body.size());
    out += last ? "\r\nConnection: close\r\n\r\n"
                : "\r\nConnection: keep-alive\r\n\r\n";
    if (!ex.head)
      out += ex.body;
    io.write(out);
    if (out.capacity() > 64 * 1024)
      std::string{}.swap(out); // a large /echo body: don't keep its memory
    if (!last)
      return take_step::next;
    closed = true;
    return take_step::last;
  });
  if (closed) {
    finished_ = true;
    accepting_ = false;
    queue_.clear();
    io.close();
    return;
  }
  if (queue_.empty() && continue_ == interim::owed && !io.stop_requested()) {
    // Every earlier response is out, and the body has not started (else
    // check_expectation would have settled it): the client may send it.
    io.write("HTTP/1.1 100 Continue\r\n\r\n");
    continue_ = interim::settled;
  }
}

} // namespace quiesce::behaviours
