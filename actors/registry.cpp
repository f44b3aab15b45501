#include "quiesce/registry.hpp"

#include <map>
#include <utility>

namespace quiesce {

namespace {

struct registry {
  std::map<std::string, protocol, std::less<>> protocols;
  std::string default_name;
  uint64_t version = 0;
};

registry& the_registry() {
  static registry instance;
  return instance;
}

} // namespace

void add_protocol(std::string name, behaviour_factory make,
                  protocol_options opts) {
  auto& reg = the_registry();
  if (reg.default_name.empty())
    reg.default_name = name;
  reg.protocols[std::move(name)] = protocol{std::move(make), std::move(opts)};
  ++reg.version;
}

void set_default_protocol(std::string name) {
  auto& reg = the_registry();
  reg.default_name = std::move(name);
  ++reg.version;
}

const std::string& default_protocol() {
  return the_registry().default_name;
}

const protocol* find_protocol(std::string_view name) {
  auto& xs = the_registry().protocols;
  auto i = xs.find(name);
  return i != xs.end() ? &i->second : nullptr;
}

std::vector<std::string> protocol_names() {
  std::vector<std::string> result;
  for (auto& kvp : the_registry().protocols)
    result.push_back(kvp.first);
  return result;
}

void declare_protocol_options(caf::config_option_set& opts) {
  for (auto& kvp : the_registry().protocols)
    if (kvp.second.options.declare)
      kvp.second.options.declare(opts);
}

std::vector<options::rule> protocol_rules() {
  std::vector<options::rule> result;
  for (auto& kvp : the_registry().protocols)
    for (auto& x : kvp.second.options.rules)
      result.push_back(x);
  return result;
}

uint64_t registry_version() {
  return the_registry().version;
}

} // namespace quiesce
