#pragma once

/// @file
/// The protocols of the `quiesce` binary: echo and http (the default).

namespace quiesce::app {

/// Registers echo and http (registry.hpp) and makes http the default.
void add_protocols();

} // namespace quiesce::app
