#include "actors/socket_ops.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "caf/io/network/default_multiplexer.hpp"

#include "actors/log.hpp"

namespace quiesce::socket_ops {

namespace {

bool real_network(caf::io::abstract_broker* self) {
  return dynamic_cast<caf::io::network::default_multiplexer*>(&self->backend())
         != nullptr;
}

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
  return info.tcpi_state == TCP_CLOSE_WAIT;
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
  linger lin{};
  lin.l_onoff = 1;
  lin.l_linger = 0;
  if (::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)) != 0)
    report("setsockopt(SO_LINGER)", fd);
  if (::shutdown(fd, SHUT_RDWR) != 0)
    report("shutdown(SHUT_RDWR)", fd);
}

void stop_listening(int fd) {
  // On Linux, shutdown() of a listening socket stops listening at once: the
  // kernel refuses new connection attempts before the fd itself is closed.
  if (::shutdown(fd, SHUT_RDWR) != 0)
    report("shutdown(listener)", fd);
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
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      log::warning("socket", std::string{"accept at the stop failed: "}
                               + std::strerror(errno));
    return -1;
  }
}

} // namespace quiesce::socket_ops
