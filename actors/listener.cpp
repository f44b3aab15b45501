#include "actors/listener.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace quiesce {

namespace {

std::string format_address(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (addr.ss_family == AF_INET6) {
    auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof(host));
    port = ntohs(in6.sin6_port);
    return "[" + std::string{host} + "]:" + std::to_string(port);
  }
  auto& in4 = reinterpret_cast<const sockaddr_in&>(addr);
  inet_ntop(AF_INET, &in4.sin_addr, host, sizeof(host));
  port = ntohs(in4.sin_port);
  return std::string{host} + ":" + std::to_string(port);
}

std::string requested(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

} // namespace

namespace {

/// An IPv6 address, scope (fe80::1%eth0) allowed, and nothing else.
bool is_ipv6_address(const std::string& text) {
  addrinfo hints{};
  hints.ai_family = AF_INET6;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* found = nullptr;
  if (::getaddrinfo(text.c_str(), nullptr, &hints, &found) != 0)
    return false;
  ::freeaddrinfo(found);
  return true;
}

} // namespace

std::optional<std::string> host_address(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  if (text.front() != '[') {
    if (text.find_first_of("[]") != std::string_view::npos)
      return std::nullopt;
    std::string host{text};
    // No host name has a colon: with one, it is a bare IPv6 address or a
    // mistake (`127.0.0.1:80`), never a name to look up.
    if (host.find(':') != std::string::npos && !is_ipv6_address(host))
      return std::nullopt;
    return host;
  }
  if (text.size() < 3 || text.back() != ']')
    return std::nullopt;
  std::string inner{text.substr(1, text.size() - 2)};
  if (!is_ipv6_address(inner))
    return std::nullopt;
  return inner;
}

listener open_listener(const std::string& text, uint16_t port) {
  listener result;
  auto address = host_address(text);
  if (!address) {
    result.error = "cannot listen on '" + text + "': not an address";
    return result;
  }
  const auto& host = *address;
  auto fail = [&](const std::string& what, int err) {
    result.error = "cannot listen on " + requested(host, port) + ": " + what
                   + ": " + std::strerror(err);
    if (result.fd >= 0)
      ::close(result.fd);
    result.fd = -1;
    return result;
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (auto rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    result.error = "cannot listen on " + requested(host, port)
                   + ": cannot resolve the host: " + ::gai_strerror(rc);
    return result;
  }
  // The first address the resolver offers, as a server bound to one address.
  auto* ai = found;
  result.fd
    = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
  if (result.fd < 0) {
    auto err = errno;
    ::freeaddrinfo(found);
    return fail("socket", err);
  }
  int on = 1;
  if (::setsockopt(result.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) {
    auto err = errno;
    ::freeaddrinfo(found);
    return fail("setsockopt(SO_REUSEADDR)", err);
  }
  if (::bind(result.fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    auto err = errno;
    ::freeaddrinfo(found);
    return fail("bind", err);
  }
  ::freeaddrinfo(found);
  if (::listen(result.fd, listen_backlog) != 0)
    return fail("listen", errno);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(result.fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0)
    return fail("getsockname", errno);
  result.address = format_address(bound);
  result.port = bound.ss_family == AF_INET6
                  ? ntohs(reinterpret_cast<sockaddr_in6&>(bound).sin6_port)
                  : ntohs(reinterpret_cast<sockaddr_in&>(bound).sin_port);
  return result;
}

listener adopt_listener(int fd) {
  listener result;
  auto fail = [&](const char* what, int err) {
    result.error = "cannot serve on the inherited descriptor "
                   + std::to_string(fd) + ": " + what + ": "
                   + std::strerror(err);
    return result;
  };
  int listening = 0;
  socklen_t size = sizeof(listening);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0)
    return fail("getsockopt(SO_ACCEPTCONN)", errno);
  if (listening == 0)
    return fail("not a listening socket", EINVAL);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0)
    return fail("getsockname", errno);
  if (bound.ss_family != AF_INET && bound.ss_family != AF_INET6)
    return fail("not a TCP/IP socket", EAFNOSUPPORT);
  // Status flags belong to the open file, which the other holders share:
  // it is non-blocking for them already, and must be for CAF.
  auto flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return fail("fcntl(O_NONBLOCK)", errno);
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return fail("fcntl(FD_CLOEXEC)", errno);
  result.fd = fd;
  result.address = format_address(bound);
  result.port = bound.ss_family == AF_INET6
                  ? ntohs(reinterpret_cast<sockaddr_in6&>(bound).sin6_port)
                  : ntohs(reinterpret_cast<sockaddr_in&>(bound).sin_port);
  result.shared = true;
  return result;
}

size_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    auto raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
      lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY)
    return 1u << 20;
  return static_cast<size_t>(lim.rlim_cur);
}

size_t max_connections_for(size_t fd_limit) {
  return fd_limit > reserved_fds + 1 ? fd_limit - reserved_fds : 1;
}

} // namespace quiesce
