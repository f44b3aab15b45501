// libFuzzer target: the HTTP behaviour (actors/behaviours/http.cpp) end to
// end, through a fake connection_io with a virtual clock: no actor system.
//
// Input: byte 0 seeds the piece sizes (and how long before on_stop the stop
// reaches the connection: stop_requested() with bytes still to deliver, and
// whether the body timeout is on), byte 1 the events (when the stop comes,
// how often timers fire, the body limit); the rest is what the client
// sends. The harness delivers the bytes in
// pieces, respects hold_input (it fires timers instead of delivering while
// input is held), fires timers earliest first between pieces, stops the
// behaviour at some point, then drains every timer and sends more data after
// the stop.
//
// Invariants:
// - every write is one complete response: `HTTP/1.1 100 Continue` and
//   nothing else, or a final response with a status this oracle expects
//   (its own list, from the contract) and a well-formed reason phrase (one
//   per status, a different one for each), `name: value` fields: `Date`,
//   `Content-Type`, `Content-Length` and `Connection` (keep-alive or close)
//   exactly once, `Allow` on a 405 and nowhere else, and a body of exactly
//   Content-Length bytes (none for a response to HEAD);
// - responses answer the requests in order: response i is for the i-th
//   request a second parser (fed the same bytes) sees, so a POST /echo
//   answered 200 carries that request's body and a /delay/<ms> answered 200
//   says `delayed <ms> ms`;
// - no 100 Continue after the stop (nor once it was requested), never two
//   without a final response in between;
// - a `Connection: close` response is the last write and close() follows it
//   at once; close() only after one (or from a header read timeout, which
//   closes without a response when only blank lines came); nothing written
//   after close();
// - idle() is true before any input; when closed; never while a delayed
//   response's timer is pending (unless closed; header and body timers,
//   token bits 63 and 62, may be); once idle after the stop it stays idle
//   and writes nothing more;
// - input is never held while no timer is pending (that would hang the
//   connection), and held input is released once the timers have fired;
// - after the stop and every timer, with the input complete, the last
//   response written after the stop was requested (if any) carries
//   `Connection: close`.

#include "actors/behaviours/http_behaviour.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/behaviours/http_fields.hpp"
#include "actors/behaviours/http_request_parser.hpp"
#include "test/fuzz/fake_io.hpp"
#include "test/support/http_response.hpp"

using quiesce::behaviours::http_behaviour;
using quiesce::behaviours::http_options;
using quiesce::fuzz::fail;
using quiesce::fuzz::fake_io;
using quiesce::http::request;
using quiesce::http::request_parser;
using quiesce::test::parse_response;
using quiesce::test::parse_status;

namespace {

/// The final statuses this oracle expects, each for a reason of its own
/// (the contract's protocol section and the README's options), not taken
/// from the server: a status outside it is a bug.
bool expected_status(int status) {
  switch (status) {
    case 200: // GET /, GET /delay/<ms>, POST /echo
    case 400: // a malformed request, ambiguous framing, a delay over the cap
    case 404: // any other path
    case 405: // a known method on a path that does not allow it
    case 408: // the header or the body read timeout
    case 413: // a body over the limit
    case 414: // a request line over the limit
    case 417: // an expectation other than 100-continue (RFC 9110 10.1.1)
    case 431: // a header section over 8 KiB
    case 501: // a method that is not supported (and CONNECT)
    case 503: // a request still waiting for its 100 Continue at the stop
    case 505: // an HTTP version that is not supported
      return true;
    default:
      return false;
  }
}

/// Whether `phrase` is a reason phrase as RFC 9110 (4) writes it,
/// `1*( HTAB / SP / VCHAR / obs-text )`, narrowed to what a client can
/// show: printable ASCII words with single spaces between them.
bool is_reason_phrase(std::string_view phrase) {
  if (phrase.empty() || phrase.front() == ' ' || phrase.back() == ' ')
    return false;
  for (size_t i = 0; i < phrase.size(); ++i) {
    auto c = phrase[i];
    if (c == ' ' ? phrase[i - 1] == ' ' : (c < 0x21 || c > 0x7e))
      return false;
  }
  return true;
}

/// Checks that a status always comes with the same reason phrase and that
/// no two statuses share one, over every response of the process. The
/// phrases themselves are checked, one by one, by the behaviour's tests
/// (test/actors/http.cpp); this oracle does not keep a copy of them.
void check_reason(int status, std::string_view phrase) {
  static std::map<int, std::string> seen;
  auto [pos, added] = seen.emplace(status, std::string{phrase});
  FUZZ_CHECK_MSG(pos->second == phrase, std::to_string(status) + " is `"
                                          + pos->second + "` and `"
                                          + std::string{phrase} + "`");
  if (!added)
    return;
  for (auto& [other, other_phrase] : seen)
    FUZZ_CHECK_MSG(other == status || other_phrase != phrase,
                   std::to_string(other) + " and " + std::to_string(status)
                     + " both `" + std::string{phrase} + "`");
}

/// A small deterministic generator for piece sizes and events.
struct rng {
  uint32_t state;
  uint32_t next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
};

struct response {
  int status = 0;
  bool close = false;
  std::string body;
};

/// Timer tokens with one of these bits are the behaviour's header and body
/// read timeouts; the others are `/delay` responses (exchange ids).
constexpr uint64_t header_timer_bit = http_behaviour::header_timer_bit;
constexpr uint64_t read_timer_bits
  = header_timer_bit | http_behaviour::body_timer_bit;

/// Bounds the timers fired in one loop: a header timeout starts over while
/// the input is held, so a long delay ahead of a slow header can take many.
constexpr int max_fires = 10000;

http_options options(size_t max_body, bool body_timeout) {
  http_options result;
  result.max_body = max_body;
  if (!body_timeout)
    result.body_timeout = caf::timespan{0};
  return result;
}

/// The harness's state besides the fake io.
struct run {
  http_behaviour b;
  fake_io io;
  /// The same bytes as the behaviour got, in the same pieces: what the
  /// requests are, in order.
  request_parser shadow;
  std::vector<request> shadow_requests;
  std::vector<response> responses;
  size_t checked_writes = 0;
  bool stopped = false;
  /// The stop reached the connection (stop_requested) before on_stop.
  bool stop_requested = false;
  /// A 100 Continue was written since the last final response.
  bool continue_pending = false;
  /// Final responses written after the stop was requested.
  size_t finals_after_stop = 0;
  /// `io.out.size()` when the behaviour was first idle after the stop.
  std::optional<size_t> idle_after_stop_at;
  /// close() came from a header timeout (which may close without a
  /// response when only blank lines had arrived).
  bool closed_by_header_timeout = false;

  run(size_t max_body, bool body_timeout)
      : b(options(max_body, body_timeout)),
        shadow(request_parser::default_max_header_bytes, max_body) {
    // nop
  }

  /// The request that final response `i` answers, if the second parser has
  /// seen it (complete, or its head awaiting the body).
  const request* request_for(size_t i) const {
    if (i < shadow_requests.size())
      return &shadow_requests[i];
    if (i == shadow_requests.size())
      return shadow.awaiting_body();
    return nullptr;
  }

  void check_final(std::string_view w) {
    auto index = responses.size();
    auto* req = request_for(index);
    // An error about the request being received (its head not complete, or
    // refused) answers a HEAD without a body too.
    auto head = req != nullptr
                  ? req->method == "HEAD"
                  : index == shadow_requests.size() && shadow.head_request();
    auto parsed = parse_response(w, head);
    FUZZ_CHECK_MSG(parsed.status == parse_status::complete,
                   (parsed.status == parse_status::malformed
                      ? parsed.error
                      : std::string{"an incomplete response"})
                     + ": " + std::string{w.substr(0, 200)});
    auto& line = parsed.value.status_line;
    FUZZ_CHECK_MSG(line.size() >= 13 && line.substr(0, 9) == "HTTP/1.1 "
                     && line[12] == ' ' && parsed.value.status != 0,
                   line);
    auto status = parsed.value.status;
    FUZZ_CHECK_MSG(expected_status(status), line);
    auto reason = std::string_view{line}.substr(13);
    FUZZ_CHECK_MSG(is_reason_phrase(reason), line);
    check_reason(status, reason);
    // The header section exactly as `name: value` lines: one space after
    // the colon, none elsewhere around a value.
    std::string canonical = line + "\r\n";
    for (auto& [name, value] : parsed.value.headers) {
      FUZZ_CHECK(!name.empty());
      canonical += name + ": " + value + "\r\n";
    }
    canonical += "\r\n";
    FUZZ_CHECK_MSG(w.substr(0, canonical.size()) == canonical,
                   std::string{w.substr(0, canonical.size())});
    int dates = 0;
    int types = 0;
    int lengths = 0;
    int connections = 0;
    int allows = 0;
    response r;
    r.status = status;
    for (auto& [name, value] : parsed.value.headers) {
      if (name == "Date") {
        ++dates;
        FUZZ_CHECK_MSG(value.size() == 29 && value.substr(26) == "GMT", value);
      } else if (name == "Content-Type") {
        ++types;
      } else if (name == "Content-Length") {
        ++lengths;
        FUZZ_CHECK_MSG(!value.empty() && value.size() < 12, value);
      } else if (name == "Connection") {
        ++connections;
        FUZZ_CHECK_MSG(value == "close" || value == "keep-alive", value);
        r.close = value == "close";
      } else if (name == "Allow") {
        ++allows;
      } else {
        fail("unexpected field", name + ": " + value);
      }
    }
    FUZZ_CHECK(dates == 1 && types == 1 && lengths == 1 && connections == 1);
    // RFC 9110 15.5.6: a 405 says which methods are allowed; nothing else
    // does here.
    FUZZ_CHECK_MSG(allows == (status == 405 ? 1 : 0), line);
    auto length = parsed.value.content_length();
    FUZZ_CHECK(length.has_value());
    r.body = std::string{w.substr(canonical.size())};
    if (head)
      FUZZ_CHECK_MSG(r.body.empty(), "a body in a response to HEAD: "
                                       + std::to_string(status) + " " + r.body);
    else
      FUZZ_CHECK_MSG(r.body.size() == *length, std::to_string(r.body.size())
                                                 + " vs Content-Length "
                                                 + std::to_string(*length));
    // Responses in request order, with the right content.
    if (req != nullptr && status == 200 && index < shadow_requests.size()) {
      auto path = quiesce::http::path_of(req->target);
      if (path == "/echo" && !head)
        FUZZ_CHECK_MSG(r.body == req->body,
                       "echo body of request " + std::to_string(index));
      if (path.substr(0, 7) == "/delay/" && !head) {
        auto ms = std::string{path.substr(7)};
        auto nz = ms.find_first_not_of('0');
        ms = nz == std::string::npos ? "0" : ms.substr(nz);
        FUZZ_CHECK_MSG(r.body == "delayed " + ms + " ms\n",
                       "response " + std::to_string(index) + " " + r.body
                         + " for " + req->target);
      }
    }
    if (stopped || stop_requested)
      ++finals_after_stop;
    continue_pending = false;
    responses.push_back(std::move(r));
  }

  /// Checks the writes since the last call, and what must hold now.
  void check() {
    FUZZ_CHECK_MSG(io.writes_after_close == 0, "a write after close()");
    FUZZ_CHECK_MSG(io.closes <= 1, "close() twice");
    size_t begin = checked_writes == 0 ? 0 : io.write_ends[checked_writes - 1];
    for (; checked_writes < io.write_ends.size(); ++checked_writes) {
      FUZZ_CHECK_MSG(responses.empty() || !responses.back().close,
                     "a write after a Connection: close response");
      auto end = io.write_ends[checked_writes];
      auto w = std::string_view{io.out}.substr(begin, end - begin);
      begin = end;
      if (w.substr(0, 12) == "HTTP/1.1 100") {
        FUZZ_CHECK_MSG(w == "HTTP/1.1 100 Continue\r\n\r\n", std::string{w});
        FUZZ_CHECK_MSG(!stopped && !stop_requested,
                       "100 Continue after the stop");
        FUZZ_CHECK_MSG(!continue_pending, "two 100 Continue");
        continue_pending = true;
      } else {
        check_final(w);
      }
    }
    auto closed_by_response = !responses.empty() && responses.back().close;
    if (closed_by_response)
      FUZZ_CHECK_MSG(io.closes == 1, "a closing response without close()");
    else
      FUZZ_CHECK_MSG(io.closes == 0 || closed_by_header_timeout,
                     "close() without a closing response");
    auto idle = b.idle();
    if (io.closes > 0)
      FUZZ_CHECK_MSG(idle, "closed but not idle");
    else if (idle)
      for (auto& t : io.timers)
        FUZZ_CHECK_MSG((t.token & read_timer_bits) != 0,
                       "idle with a delayed response pending");
    // (Once closed, the hold no longer matters: nothing is read.)
    if (io.held && io.closes == 0)
      FUZZ_CHECK_MSG(!io.timers.empty(), "input held with no timer pending");
    if (stopped) {
      if (idle_after_stop_at)
        FUZZ_CHECK_MSG(io.out.size() == *idle_after_stop_at,
                       "a write after the behaviour was idle after the stop");
      else if (idle)
        idle_after_stop_at = io.out.size();
    }
  }

  void deliver(std::string_view piece) {
    b.on_data(piece, io);
    shadow.feed(piece, shadow_requests);
    check();
  }

  /// The stop reaches the connection while bytes sent before it are still
  /// unread: on_stop comes later (stop()).
  void request_stop() {
    stop_requested = true;
    io.stop_was_requested = true;
  }

  void stop() {
    stopped = true;
    io.stop_was_requested = true;
    b.on_stop(io);
    check();
  }

  void fire() {
    auto header_timer
      = !io.timers.empty() && (io.next_timer().token & header_timer_bit) != 0;
    auto closes = io.closes;
    io.fire_next(b);
    if (header_timer && io.closes > closes)
      closed_by_header_timeout = true;
    check();
  }

  /// Fires timers while `more()` (at most max_fires); false if that bound
  /// stopped it.
  template <class Predicate>
  bool fire_while(Predicate more) {
    for (int i = 0; more(); ++i) {
      if (i == max_fires)
        return false;
      fire();
    }
    return true;
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  auto split = data[0];
  auto events = data[1];
  std::string_view input{reinterpret_cast<const char*>(data) + 2, size - 2};
  constexpr size_t max_bodies[]
    = {request_parser::default_max_body_bytes, 0, 5, 64};
  // The body timeout (60 s) on, or off (bit 5 of byte 0): with timers fired
  // between pieces, any body split across pieces would get 408.
  run r{max_bodies[(events >> 4) % 4], (split & 0x20) == 0};
  rng gen{0x9e3779b9u ^ (uint32_t{split} << 8) ^ events};
  // Piece sizes up to 1, 8, 64 bytes or the whole input.
  constexpr size_t max_piece[] = {1, 8, 64, SIZE_MAX};
  auto piece_limit = max_piece[split % 4];
  // The stop comes after this many pieces (0: before any), or never before
  // the input ends (bit 7).
  auto stop_at
    = (events & 0x80) != 0 ? SIZE_MAX : static_cast<size_t>(events & 0x0f);
  // Timers fire between pieces: none, sometimes, or always.
  auto timer_mode = (events >> 6) & 1 ? 2u : (split >> 2) % 2;
  // The stop reaches the connection this many pieces before on_stop (bytes
  // sent before the stop still unread), 0: together.
  auto requested_before = static_cast<size_t>((split >> 3) % 4);

  FUZZ_CHECK_MSG(r.b.idle(), "busy before any input");
  size_t pos = 0;
  size_t pieces = 0;
  while (pos < input.size()) {
    if (stop_at != SIZE_MAX && pieces + requested_before >= stop_at
        && !r.stop_requested && !r.stopped)
      r.request_stop();
    if (pieces == stop_at && !r.stopped)
      r.stop();
    // Held input: the framework reads nothing until the behaviour lets go;
    // only its timers can change that.
    if (r.io.held && r.io.closes == 0)
      FUZZ_CHECK_MSG(!r.io.timers.empty(), "held with nothing to wait for");
    if (!r.fire_while([&] { return r.io.held && r.io.closes == 0; }))
      return 0; // a very long delay holds the input: nothing more to see

    auto n = piece_limit == SIZE_MAX ? input.size() - pos
                                     : 1 + gen.next() % piece_limit;
    auto piece = input.substr(pos, n);
    pos += piece.size();
    ++pieces;
    // The framework reads nothing after close(), nor after the behaviour
    // became idle after the stop; the behaviour must cope anyway.
    r.deliver(piece);
    if (timer_mode == 2 || (timer_mode == 1 && gen.next() % 3 == 0))
      while (!r.io.timers.empty() && (timer_mode == 2 || gen.next() % 2 == 0))
        r.fire();
  }
  if (!r.stopped)
    r.stop();
  if (!r.fire_while([&] { return !r.io.timers.empty(); }))
    return 0;
  FUZZ_CHECK_MSG(!r.io.held || r.io.closes > 0, "input held after every timer");
  // Everything owed is out: idle, or a request is half received (the
  // behaviour waits for the rest of it).
  if (r.b.idle() && r.finals_after_stop > 0 && r.io.closes == 0)
    fail("idle after the stop, responses written, no Connection: close");
  // More data after the stop and the drain: no crash, and nothing written
  // once idle (checked in check()).
  r.deliver("GET / HTTP/1.1\r\n\r\n");
  r.fire_while([&] { return !r.io.timers.empty(); });
  return 0;
}
