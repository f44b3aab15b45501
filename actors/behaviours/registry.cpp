#include "actors/behaviours/registry.hpp"

#include <algorithm>
#include <map>

#include "actors/behaviours/echo.hpp"

namespace quiesce::behaviours {

namespace {

template <class T>
behaviour_factory make() {
  return [] { return std::make_unique<T>(); };
}

const std::map<std::string, behaviour_factory, std::less<>>& registry() {
  // One line per protocol.
  static const std::map<std::string, behaviour_factory, std::less<>> xs{
    {"echo", make<echo>()},
  };
  return xs;
}

} // namespace

behaviour_factory find(std::string_view name) {
  auto& xs = registry();
  auto i = xs.find(name);
  return i != xs.end() ? i->second : behaviour_factory{};
}

std::vector<std::string> names() {
  std::vector<std::string> result;
  for (auto& kvp : registry())
    result.push_back(kvp.first);
  return result;
}

} // namespace quiesce::behaviours
