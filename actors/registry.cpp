#include "quiesce/registry.hpp"

#include <map>

#include "quiesce/echo.hpp"
#include "quiesce/http.hpp"

namespace quiesce::behaviours {

namespace {

behaviour_factory make_echo(const caf::actor_system_config&) {
  return [] { return std::make_unique<echo>(); };
}

behaviour_factory make_http(const caf::actor_system_config& cfg) {
  auto opts = http_behaviour::options_from(cfg);
  return [opts] { return std::make_unique<http_behaviour>(opts); };
}

std::map<std::string, protocol, std::less<>>& registry() {
  // One line per protocol.
  static std::map<std::string, protocol, std::less<>> xs{
    {"echo", {nullptr, make_echo}},
    {"http", {http_behaviour::add_options, make_http}},
  };
  return xs;
}

} // namespace

void add(std::string name, protocol proto) {
  registry()[std::move(name)] = proto;
}

const protocol* find(std::string_view name) {
  auto& xs = registry();
  auto i = xs.find(name);
  return i != xs.end() ? &i->second : nullptr;
}

std::vector<std::string> names() {
  std::vector<std::string> result;
  for (auto& kvp : registry())
    result.push_back(kvp.first);
  return result;
}

void add_options(caf::config_option_set& opts) {
  for (auto& kvp : registry())
    if (kvp.second.add_options != nullptr)
      kvp.second.add_options(opts);
}

} // namespace quiesce::behaviours
