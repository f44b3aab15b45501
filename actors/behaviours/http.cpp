#include "actors/behaviours/http.hpp"

#include <chrono>
#include <ctime>
#include <vector>

#include "caf/config_option_adder.hpp"

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
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
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

/// Milliseconds of `/delay/<ms>`: 1 to 7 decimal digits, nothing else.
bool parse_delay(std::string_view text, uint64_t& ms) {
  if (text.empty() || text.size() > 7)
    return false;
  ms = 0;
  for (auto c : text) {
    if (c < '0' || c > '9')
      return false;
    ms = ms * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

} // namespace

http_behaviour::http_behaviour(http_options opts)
    : parser_(http::request_parser::default_max_header_bytes, opts.max_body) {
  // nop
}

void http_behaviour::add_options(caf::config_option_set& opts) {
  caf::config_option_adder{opts, "http"}.add<size_t>(
    "max-body", "largest request body accepted in bytes, larger ones get "
                "413 (default: 1048576)");
}

http_options http_behaviour::options_from(const caf::actor_system_config& cfg) {
  http_options result;
  result.max_body = caf::get_or(cfg, "http.max-body", result.max_body);
  return result;
}

void http_behaviour::on_data(std::string_view bytes, connection_io& io) {
  if (finished_ || !accepting_)
    return; // nothing read now would be answered
  std::vector<http::request> requests;
  auto failure = parser_.feed(bytes, requests);
  for (auto& req : requests) {
    if (!accepting_)
      break;
    serve(std::move(req), io);
  }
  if (failure != 0 && accepting_)
    fail(failure, io);
  write_ready(io);
}

void http_behaviour::on_stop(connection_io& io) {
  stopping_ = true;
  // A request half received at the stop is finished; nothing after it.
  if (!parser_.mid_request())
    accepting_ = false;
  write_ready(io);
}

bool http_behaviour::idle() const {
  return queue_.empty() && (finished_ || !accepting_ || !parser_.mid_request());
}

void http_behaviour::on_timer(uint64_t token, connection_io& io) {
  for (auto& ex : queue_) {
    if (ex.id == token) {
      ex.ready = true;
      break;
    }
  }
  write_ready(io);
}

void http_behaviour::serve(http::request req, connection_io& io) {
  exchange ex;
  ex.id = next_id_++;
  ex.keep_alive = req.keep_alive;
  ex.head = req.method == "HEAD";
  ex.ready = true;
  auto path = std::string_view{req.target}.substr(0, req.target.find('?'));
  auto get_like = req.method == "GET" || ex.head;
  auto not_allowed = [&](const char* allow) {
    ex.status = 405;
    ex.extra_headers = std::string{"Allow: "} + allow + "\r\n";
    ex.body = "method not allowed\n";
  };
  constexpr std::string_view delay_prefix = "/delay/";
  uint64_t ms = 0;
  if (req.method == "CONNECT") {
    // What follows a CONNECT is tunnel data, not requests: close after.
    ex.status = 501;
    ex.must_close = true;
    ex.body = "not implemented\n";
  } else if (!get_like && req.method != "POST") {
    ex.status = 501;
    ex.body = "not implemented\n";
  } else if (path == "/") {
    if (get_like)
      ex.body = "quiesce: hello\n";
    else
      not_allowed("GET, HEAD");
  } else if (path == "/echo") {
    if (req.method == "POST") {
      ex.extra_headers = "Content-Type: application/octet-stream\r\n";
      ex.body = std::move(req.body);
    } else {
      not_allowed("POST");
    }
  } else if (path.substr(0, delay_prefix.size()) == delay_prefix
             && parse_delay(path.substr(delay_prefix.size()), ms)) {
    if (get_like) {
      ex.body = "delayed " + std::to_string(ms) + " ms\n";
      ex.ready = false;
      io.start_timer(std::chrono::milliseconds(ms), ex.id);
    } else {
      not_allowed("GET, HEAD");
    }
  } else {
    ex.status = 404;
    ex.body = "not found\n";
  }
  // Nothing after a response that closes the connection is answered, and
  // after a stop nothing after the request that was half received.
  if (ex.must_close || !ex.keep_alive || stopping_)
    accepting_ = false;
  queue_.push_back(std::move(ex));
}

void http_behaviour::fail(int status, connection_io&) {
  exchange ex;
  ex.id = next_id_++;
  ex.ready = true;
  ex.must_close = true;
  ex.status = status;
  ex.body = std::string{reason(status)} + "\n";
  accepting_ = false;
  queue_.push_back(std::move(ex));
}

void http_behaviour::hold_if_backlogged(connection_io& io) {
  // Responses wait in order behind one that is not ready (a delay): past a
  // bound, the client waits in TCP flow control instead of in our memory.
  size_t queued_bytes = 0;
  for (auto& ex : queue_)
    queued_bytes += ex.body.size();
  io.hold_input(queue_.size() >= max_queued_requests
                || queued_bytes > max_queued_bytes);
}

void http_behaviour::write_ready(connection_io& io) {
  while (!queue_.empty() && queue_.front().ready) {
    auto& ex = queue_.front();
    auto last = ex.must_close || !ex.keep_alive
                || (stopping_ && !accepting_ && queue_.size() == 1);
    std::string out;
    out.reserve(160 + ex.extra_headers.size() + ex.body.size());
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
    queue_.pop_front();
    if (last) {
      finished_ = true;
      accepting_ = false;
      queue_.clear();
      io.close();
      return;
    }
  }
  hold_if_backlogged(io);
}

} // namespace quiesce::behaviours
