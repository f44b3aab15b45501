#include "actors/behaviour.hpp"

namespace quiesce {

// Out-of-line destructors anchor the vtables in the library.
connection_io::~connection_io() = default;

behaviour::~behaviour() = default;

} // namespace quiesce
