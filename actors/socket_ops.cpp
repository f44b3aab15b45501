#include "actors/socket_ops.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
// SIOCOUTQ, and the kernel's struct tcp_info: glibc's <netinet/tcp.h>
// (which cannot be included with it) stops before tcpi_bytes_acked.
#include <linux/sockios.h>
#include <linux/tcp.h>

#include "caf/io/network/default_multiplexer.hpp"

#include "quiesce/log.hpp"

namespace quiesce::socket_ops {

namespace {

bool real_network(caf::io::abstract_broker* self) {
  return dynamic_cast<caf::io::network::default_multiplexer*>(&self->backend())
         != nullptr;
}

/// TCP_CLOSE_WAIT of the kernel's TCP states (include/net/tcp_states.h, part
/// of its ABI: TCP_INFO reports them), which <linux/tcp.h> does not name.
constexpr uint8_t tcp_close_wait = 8;

void report(const char* what, int fd) {
  // ENOTCONN: the peer is already gone, which is what we wanted anyway.
  if (errno == ENOTCONN)
    return;
  log::debug("socket", std::string{what} + " on fd " + std::to_string(fd)
                         + " failed: " + std::strerror(errno));
}

} // namespace

std::optional<int> native_fd(caf::io::abstract_broker* self,
                             caf::io::connection_handle hdl) {
  if (!real_network(self))
    return std::nullopt;
  return static_cast<int>(hdl.id());
}

std::optional<int> native_fd(caf::io::abstract_broker* self,
                             caf::io::accept_handle hdl) {
  if (!real_network(self))
    return std::nullopt;
  return static_cast<int>(hdl.id());
}

size_t unread_bytes(int fd) {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0 || n < 0) {
    report("ioctl(FIONREAD)", fd);
    return 0;
  }
  return static_cast<size_t>(n);
}

std::optional<size_t> send_now(int fd, const char* data, size_t size) {
  for (;;) {
    auto n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
      return static_cast<size_t>(n);
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return size_t{0};
    return std::nullopt;
  }
}

bool peer_sent_fin(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    report("getsockopt(TCP_INFO)", fd);
    return false;
  }
  return info.tcpi_state == tcp_close_wait;
}

void shutdown_write(int fd) {
  if (::shutdown(fd, SHUT_WR) != 0)
    report("shutdown(SHUT_WR)", fd);
}

void shutdown_read(int fd) {
  if (::shutdown(fd, SHUT_RD) != 0)
    report("shutdown(SHUT_RD)", fd);
}

void abort(int fd) {
  // A second line of defence: should the socket still be connected when it
  // is closed, the close sends RST.
  linger lin{};
  lin.l_onoff = 1;
  lin.l_linger = 0;
  if (::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)) != 0)
    report("setsockopt(SO_LINGER)", fd);
  // Connecting a TCP socket to AF_UNSPEC disconnects it (Linux: the
  // kernel's tcp_disconnect): RST now, without a FIN, the send and receive
  // queues dropped; later reads and writes fail (ECONNRESET, then
  // ENOTCONN/EPIPE) and epoll reports the socket as hung up, so the event
  // loop drops it. A shutdown(SHUT_RDWR) would send FIN first: the peer
  // would read a clean end before the reset.
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  if (::connect(fd, &unspec, sizeof(unspec)) == 0)
    return;
  report("connect(AF_UNSPEC)", fd);
  // Not disconnected: end both directions so that no pending write keeps
  // the socket in the event loop; the close then sends RST (SO_LINGER 0).
  if (::shutdown(fd, SHUT_RDWR) != 0)
    report("shutdown(SHUT_RDWR)", fd);
}

std::optional<output_sample> sample_output(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    report("getsockopt(TCP_INFO)", fd);
    return std::nullopt;
  }
  // Kernels before 4.6 fill less of the struct.
  if (len < offsetof(tcp_info, tcpi_notsent_bytes)
              + sizeof(info.tcpi_notsent_bytes))
    return std::nullopt;
  // Unacknowledged plus unsent bytes.
  int queued = 0;
  if (::ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0) {
    report("ioctl(SIOCOUTQ)", fd);
    return std::nullopt;
  }
  output_sample result;
  result.acked = info.tcpi_bytes_acked;
  auto unsent = static_cast<uint64_t>(info.tcpi_notsent_bytes);
  auto unacked = static_cast<uint64_t>(queued);
  result.window = unacked > unsent ? unacked - unsent : 0;
  // Kernels since 5.19 also report the peer's window: bytes not sent yet
  // (the sender paces them) may still fit in it.
  if (len >= offsetof(tcp_info, tcpi_snd_wnd) + sizeof(info.tcpi_snd_wnd))
    result.window = std::max<uint64_t>(result.window, info.tcpi_snd_wnd);
  return result;
}

bool peer_read_since(const output_sample& before, const output_sample& now) {
  return now.acked > before.acked + before.window;
}

void stop_listening(int fd) {
  // On Linux, shutdown() of a listening socket stops listening at once: the
  // kernel refuses new connection attempts before the fd itself is closed.
  if (::shutdown(fd, SHUT_RDWR) != 0)
    report("shutdown(listener)", fd);
}

bool listening(int fd) {
  int value = 0;
  socklen_t size = sizeof(value);
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &size) == 0
         && value != 0;
}

int accept_waiting(int fd) {
  // The listener is about to close: make sure accept() cannot block on it.
  auto flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0)
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  for (;;) {
    auto client = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client >= 0)
      return client;
    if (errno == EINTR || errno == ECONNABORTED)
      continue; // that client is gone; look for the next
    // EINVAL: the socket no longer listens (a worker of the same master
    // stopped it, with the backlog taken): nothing left to accept.
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINVAL)
      log::warning("socket", std::string{"accept at the stop failed: "}
                               + std::strerror(errno));
    return -1;
  }
}

} // namespace quiesce::socket_ops
