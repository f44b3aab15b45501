#include "actors/activation.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

namespace quiesce {

std::optional<listener> take_passed_socket() {
  // 1: unset LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, so that no worker
  // (nor any other child) takes them for its own.
  auto n = ::sd_listen_fds(1);
  if (n == 0)
    return std::nullopt;
  listener result;
  if (n < 0) {
    result.error = std::string{"cannot take the sockets systemd passed "
                               "(LISTEN_FDS): "}
                   + std::strerror(-n);
    return result;
  }
  if (n > 1) {
    result.error = "systemd passed " + std::to_string(n)
                   + " sockets (LISTEN_FDS=" + std::to_string(n)
                   + "); quiesce serves on one: give its socket unit a "
                     "single ListenStream=";
    return result;
  }
  int fd = SD_LISTEN_FDS_START;
  auto is_tcp = ::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0);
  if (is_tcp <= 0) {
    result.error = "the descriptor systemd passed (" + std::to_string(fd)
                   + ") is not a listening TCP socket"
                   + (is_tcp < 0 ? std::string{": "} + std::strerror(-is_tcp)
                                 : std::string{});
    return result;
  }
  result = adopt_listener(fd);
  if (result.fd < 0)
    return result;
  result.passed = true;
  return result;
}

caf::timespan fresh_grace(caf::timespan drain_timeout) {
  return std::min<caf::timespan>(std::chrono::milliseconds(300),
                                 drain_timeout / 2);
}

} // namespace quiesce
