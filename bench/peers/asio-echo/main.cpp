// asio-echo: a hand-written, single-threaded standalone-Asio echo server, as
// a near-limit C++ reference for quiesce's echo protocol (see
// bench/peers/README.md).
//
// One io_context (concurrency hint 1), run() on the main thread only. Per
// connection: async_read_some into a 16 KiB buffer that lives in the session
// object, async_write of exactly what was read, read again. TCP_NODELAY on
// every accepted socket (CAF does the same for quiesce).
//
// SIGTERM/SIGINT: close the acceptor; a connection waiting in read with
// nothing unread in the kernel gets a FIN at once (shutdown(send)); one that
// is writing, or has bytes waiting unread, echoes them (the bytes unread at
// the stop, as quiesce does) and then gets its FIN. After its FIN a
// connection has drained; it goes on reading (and discarding) until the
// peer's FIN, so that a client still sending gets no reset. Once every
// connection has drained the process waits at most 1 s (quiesce's linger)
// for those FINs, then exits 0. At --drain-timeout, or on a second signal,
// everything left is closed and the exit code is 3 if a connection had not
// drained.
//
// Exit codes: 0 clean stop, 3 forced, 1 start-up error, 2 bad option.
//
// g++ -std=c++17 -O2 -DASIO_STANDALONE -pthread -o asio-echo main.cpp

#include <asio.hpp>

#include <sys/ioctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

using asio::ip::tcp;
using std::chrono::nanoseconds;
using std::chrono::steady_clock;

constexpr char program[] = "asio-echo";

/// Per-connection read buffer. 16 KiB: what quiesce reads at most per event
/// (CAF receive_policy::at_most(16 KiB)), large enough that a bulk transfer
/// needs few syscalls, small enough that 10,000 connections stay cheap (an
/// idle connection touches one page of it).
constexpr std::size_t buffer_size = 16 * 1024;

/// After every connection has sent its FIN: how long to wait for the
/// clients' FINs before exiting (quiesce lingers 1 s).
constexpr auto linger = std::chrono::seconds(1);

/// Backoff when accept fails for lack of descriptors or memory.
constexpr auto accept_retry = std::chrono::milliseconds(10);

class server;

class session : public std::enable_shared_from_this<session> {
public:
  session(server& srv, tcp::socket sock) : srv_(srv), sock_(std::move(sock)) {}

  void start() {
    read();
  }

  /// The graceful stop reached this connection.
  void stop();

  /// Closes the socket now; pending operations end with operation_aborted.
  void close();

  bool drained() const {
    return drained_;
  }

private:
  void read() {
    reading_ = true;
    sock_.async_read_some(
      asio::buffer(buf_),
      [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
        self->on_read(ec, n);
      });
  }

  void on_read(const asio::error_code& ec, std::size_t n);
  void on_written(const asio::error_code& ec);
  void send_fin();
  void mark_drained();

  std::size_t unread() {
    int n = 0;
    if (::ioctl(sock_.native_handle(), FIONREAD, &n) != 0)
      return 0;
    return static_cast<std::size_t>(n);
  }

  server& srv_;
  tcp::socket sock_;
  bool reading_ = false;
  bool writing_ = false;
  bool stopping_ = false;
  bool fin_sent_ = false;
  bool drained_ = false;
  bool closed_ = false;
  std::size_t unread_at_stop_ = 0;
  std::array<char, buffer_size> buf_;
};

class server {
public:
  server(asio::io_context& io, nanoseconds drain)
      : io_(io), acceptor_(io), retry_timer_(io), deadline_timer_(io),
        linger_timer_(io), signals_(io, SIGTERM, SIGINT), drain_(drain) {
    wait_signal();
  }

  /// Opens the listening socket; throws asio::system_error.
  void listen(const tcp::endpoint& ep) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    accept();
  }

  unsigned short port() const {
    return acceptor_.local_endpoint().port();
  }

  bool stopping() const {
    return stopping_;
  }

  int exit_code() const {
    return exit_code_;
  }

  void add(session* s) {
    sessions_.insert(s);
    ++owed_;
  }

  void drained(session*) {
    --owed_;
    check_done();
  }

  void remove(session* s) {
    sessions_.erase(s);
    check_done();
  }

private:
  void wait_signal() {
    signals_.async_wait([this](const asio::error_code& ec, int) {
      if (ec)
        return;
      if (!stopping_) {
        begin_stop();
        wait_signal();
      } else {
        force(); // a second signal
      }
    });
  }

  void accept() {
    acceptor_.async_accept(
      [this](const asio::error_code& ec, tcp::socket sock) {
        if (ec == asio::error::operation_aborted)
          return;
        if (ec) {
          on_accept_error(ec);
          return;
        }
        retry_warned_ = false;
        asio::error_code ignored;
        sock.set_option(tcp::no_delay(true), ignored);
        auto s = std::make_shared<session>(*this, std::move(sock));
        add(s.get());
        s->start();
        if (stopping_)
          s->stop(); // accepted just before the stop
        else
          accept();
      });
  }

  void on_accept_error(const asio::error_code& ec) {
    if (stopping_)
      return;
    auto v = ec.value();
    if (v == ECONNABORTED || v == EPROTO || v == EPERM || v == EINTR) {
      accept(); // that client is gone; the next one may be fine
      return;
    }
    // EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: clients wait in the backlog.
    if (!retry_warned_) {
      std::fprintf(stderr, "%s: accept: %s; retrying\n", program,
                   ec.message().c_str());
      retry_warned_ = true;
    }
    retry_timer_.expires_after(accept_retry);
    retry_timer_.async_wait([this](const asio::error_code& tec) {
      if (!tec && !stopping_)
        accept();
    });
  }

  void begin_stop() {
    stopping_ = true;
    asio::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
    stop_started_ = steady_clock::now();
    deadline_timer_.expires_after(drain_);
    deadline_timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec)
        force();
    });
    std::vector<session*> all(sessions_.begin(), sessions_.end());
    for (auto* s : all)
      if (sessions_.count(s) != 0)
        s->stop();
    check_done();
  }

  void check_done() {
    if (!stopping_ || finished_)
      return;
    if (sessions_.empty()) {
      finish(0);
      return;
    }
    if (owed_ == 0 && !lingering_) {
      // Everything owed is sent: wait a little for the clients' FINs.
      lingering_ = true;
      auto left = drain_ - (steady_clock::now() - stop_started_);
      linger_timer_.expires_after(std::min<nanoseconds>(linger, left));
      linger_timer_.async_wait([this](const asio::error_code& ec) {
        if (!ec)
          finish(0);
      });
    }
  }

  void force() {
    finish(owed_ > 0 ? 3 : 0);
  }

  void finish(int code) {
    if (finished_)
      return;
    finished_ = true;
    exit_code_ = code;
    std::vector<session*> all(sessions_.begin(), sessions_.end());
    for (auto* s : all)
      s->close();
    io_.stop();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer linger_timer_;
  asio::signal_set signals_;
  nanoseconds drain_;
  steady_clock::time_point stop_started_;
  std::unordered_set<session*> sessions_;
  std::size_t owed_ = 0; // sessions that have not drained
  bool stopping_ = false;
  bool lingering_ = false;
  bool finished_ = false;
  bool retry_warned_ = false;
  int exit_code_ = 0;
};

void session::on_read(const asio::error_code& ec, std::size_t n) {
  reading_ = false;
  if (closed_)
    return;
  if (ec) {
    // End of stream (everything read was echoed: reads wait for writes, so
    // the close sends a FIN) or an error such as a reset.
    close();
    return;
  }
  if (fin_sent_) {
    read(); // lingering: input is dropped
    return;
  }
  if (stopping_)
    unread_at_stop_ -= std::min(unread_at_stop_, n);
  writing_ = true;
  asio::async_write(
    sock_, asio::buffer(buf_.data(), n),
    [self = shared_from_this()](const asio::error_code& wec, std::size_t) {
      self->on_written(wec);
    });
}

void session::on_written(const asio::error_code& ec) {
  writing_ = false;
  if (closed_)
    return;
  if (ec) {
    close();
    return;
  }
  if (stopping_ && unread_at_stop_ == 0)
    send_fin();
  else
    read();
}

void session::stop() {
  if (stopping_ || closed_)
    return;
  stopping_ = true;
  unread_at_stop_ = unread();
  // Writing: on_written goes on. Reading with bytes waiting: the pending
  // read gets them. Reading with nothing waiting: idle.
  if (!writing_ && unread_at_stop_ == 0)
    send_fin();
}

void session::send_fin() {
  asio::error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  fin_sent_ = true;
  if (ec) {
    close();
    return;
  }
  if (!reading_)
    read(); // linger until the peer's FIN
  mark_drained();
}

void session::mark_drained() {
  if (drained_)
    return;
  drained_ = true;
  srv_.drained(this);
}

void session::close() {
  if (closed_)
    return;
  closed_ = true;
  asio::error_code ignored;
  sock_.close(ignored);
  auto self = shared_from_this(); // keep alive through the bookkeeping
  mark_drained();
  srv_.remove(this);
}

// ---------------------------------------------------------------- options

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program, what.c_str());
  std::fprintf(stderr,
               "usage: %s [--host=127.0.0.1] [--port=8080] "
               "[--drain-timeout=10s] [--protocol=echo] [--log-level=...]\n",
               program);
  std::exit(2);
}

/// "10s", "500ms", "250us", "2m", "1.5s", "0"; a bare number is seconds.
bool parse_duration(const std::string& text, nanoseconds& out) {
  if (text.empty())
    return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || errno != 0 || !(v >= 0) || !std::isfinite(v))
    return false;
  std::string unit{end};
  double scale;
  if (unit.empty() || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "ns")
    scale = 1;
  else if (unit == "m" || unit == "min")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  else
    return false;
  if (v * scale > 1e18)
    return false;
  out = nanoseconds{static_cast<long long>(v * scale)};
  return true;
}

void raise_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max)
    return;
  lim.rlim_cur = lim.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0)
    std::fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE): %s\n", program,
                 std::strerror(errno));
}

} // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  long port = 8080;
  nanoseconds drain = std::chrono::seconds(10);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: %s [--host=127.0.0.1] [--port=8080 (0: any free)] "
                  "[--drain-timeout=10s]\n",
                  program);
      return 0;
    }
    auto eq = arg.find('=');
    if (arg.compare(0, 2, "--") != 0 || eq == std::string::npos)
      usage_error("bad argument '" + arg + "' (options are --key=value)");
    auto key = arg.substr(2, eq - 2);
    auto value = arg.substr(eq + 1);
    if (key == "host") {
      host = value;
    } else if (key == "port") {
      char* end = nullptr;
      errno = 0;
      port = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || port < 0
          || port > 65535)
        usage_error("bad --port=" + value);
    } else if (key == "drain-timeout") {
      if (!parse_duration(value, drain))
        usage_error("bad --drain-timeout=" + value + " (e.g. 10s, 500ms)");
    } else if (key == "protocol") {
      if (value != "echo")
        usage_error("bad --protocol=" + value + ": only echo");
    } else if (key == "log-level") {
      // accepted for bench/stop_time; nothing is logged per connection
    } else {
      usage_error("unknown option --" + key);
    }
  }
  asio::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec)
    usage_error("bad --host=" + host + " (a numeric address)");
  raise_file_limit();

  asio::io_context io{1};
  server srv{io, drain}; // catches SIGTERM/SIGINT from here on
  try {
    srv.listen(tcp::endpoint{addr, static_cast<unsigned short>(port)});
  } catch (const asio::system_error& e) {
    std::fprintf(stderr, "%s: cannot listen on %s:%ld: %s\n", program,
                 host.c_str(), port, e.code().message().c_str());
    return 1;
  }
  std::printf("listening on %s:%u\n", host.c_str(),
              static_cast<unsigned>(srv.port()));
  std::fflush(stdout);
  io.run();
  // Every socket is closed by now; skip tearing down thousands of objects.
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(srv.exit_code());
}
