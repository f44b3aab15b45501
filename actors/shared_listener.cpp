#include "actors/shared_listener.hpp"

#include <utility>

#include "caf/io/network/default_multiplexer.hpp"
#include "caf/io/network/doorman_impl.hpp"
#include "caf/make_counted.hpp"

namespace quiesce {

namespace {

/// CAF's doorman, except that its end never calls `shutdown()` on the
/// socket. Subclassing `doorman_impl` uses its protected `acceptor_` (an
/// installed CAF 0.17.6 header): it stays here, and test/actors/
/// shared_listener.cpp fails if a CAF update breaks it.
class shared_doorman final : public caf::io::network::doorman_impl {
public:
  using doorman_impl::doorman_impl;

  bool new_connection() override {
    if (detached()) {
      // A client accepted in the event loop's turn that detached this
      // doorman (its broker quit while clients arrived: the acceptor's own
      // stop leaves the loop first, acceptor.cpp). The stock doorman leaks
      // that socket, unserved and never closed. Another process cannot
      // take it any more: close it.
      auto& fd = acceptor_.accepted_socket();
      caf::io::network::close_socket(fd);
      fd = caf::io::network::invalid_native_socket;
      return false;
    }
    return doorman_impl::new_connection();
  }

  void graceful_shutdown() override {
    // The stock version calls `acceptor_.graceful_shutdown()` first, which
    // is `shutdown(fd, SHUT_RDWR)`: the socket would stop listening in every
    // process that holds it. Only the detach: out of the event loop and away
    // from the broker. The descriptor is closed when the doorman is freed.
    detach(&acceptor_.backend(), false);
  }
};

} // namespace

caf::io::doorman_ptr make_listener_doorman(caf::io::network::multiplexer& mpx,
                                           listener& lst) {
  auto fd = std::exchange(lst.fd, -1);
  if (lst.shared) {
    if (auto* dm = dynamic_cast<caf::io::network::default_multiplexer*>(&mpx))
      return caf::make_counted<shared_doorman>(*dm, fd);
  }
  return mpx.new_doorman(fd);
}

} // namespace quiesce
