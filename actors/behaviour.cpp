#include "quiesce/behaviour.hpp"

#include <stdexcept>
#include <string>

#include "caf/actor_system.hpp"
#include "caf/deep_to_string.hpp"

namespace quiesce {

// Out-of-line destructors anchor the vtables in the library.
connection_io::~connection_io() = default;

detail::ask_callbacks::~ask_callbacks() = default;

caf::actor_clock::time_point connection_io::now() const {
  return system().clock().now();
}

behaviour::~behaviour() = default;

void behaviour::on_timer(uint64_t, connection_io&) {
  // A behaviour that starts no timer gets none.
}

void behaviour::on_reply(uint64_t token, caf::message&, connection_io&) {
  throw std::logic_error("the behaviour made request " + std::to_string(token)
                         + " but does not handle replies (on_reply)");
}

void behaviour::on_reply_error(uint64_t token, const caf::error& err,
                               connection_io&) {
  throw std::logic_error("request " + std::to_string(token) + " failed ("
                         + caf::to_string(err)
                         + ") and the behaviour does not handle it "
                           "(on_reply_error)");
}

void behaviour::on_input_end(connection_io&) {
  // Nothing half received to give up.
}

void behaviour::on_closing(connection_io&) {
  // Nothing to tell the client: serve on until the stop.
}

void behaviour::on_message(caf::message&, connection_io&) {
  // Nobody is expected to push messages to a behaviour that takes none.
}

} // namespace quiesce
