#include "protocols.hpp"

#include <memory>

#include "quiesce/echo.hpp"
#include "quiesce/http.hpp"
#include "quiesce/registry.hpp"

namespace quiesce::app {

void add_protocols() {
  // One line per protocol.
  add_protocol("echo", [] { return std::make_unique<behaviours::echo>(); });
  behaviours::add_http_protocol();
  set_default_protocol("http");
}

} // namespace quiesce::app
