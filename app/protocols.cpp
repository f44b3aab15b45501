#include "protocols.hpp"

#include <memory>

#include "quiesce/admin.hpp"
#include "quiesce/echo.hpp"
#include "quiesce/http.hpp"
#include "quiesce/registry.hpp"

namespace quiesce::app {

void add_protocols() {
  // One line per protocol.
  add_protocol("echo", [] { return std::make_unique<behaviours::echo>(); });
  behaviours::add_http_protocol();
  set_default_protocol("http");
  // --admin (quiesce/admin.hpp).
  add_admin_endpoint();
}

} // namespace quiesce::app
