#pragma once

/// @file
/// Protocol name -> behaviour factory: what `--protocol=NAME` picks from.

#include <string>
#include <string_view>
#include <vector>

#include "actors/behaviour.hpp"

namespace quiesce::behaviours {

/// Returns the factory registered as `name`, or an empty function.
behaviour_factory find(std::string_view name);

/// Returns every registered name, sorted.
std::vector<std::string> names();

} // namespace quiesce::behaviours
