#include "actors/behaviour.hpp"

namespace quiesce {

// Out-of-line destructors anchor the vtables in the library.
connection_io::~connection_io() = default;

behaviour::~behaviour() = default;

void behaviour::on_timer(uint64_t, connection_io&) {
  // A behaviour that starts no timer gets none.
}

} // namespace quiesce
