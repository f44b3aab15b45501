#include "quiesce/service.hpp"

#include <algorithm>

#include "quiesce/behaviour.hpp"

namespace quiesce {

namespace {

std::vector<service_declaration>& the_services() {
  static std::vector<service_declaration> instance;
  return instance;
}

} // namespace

void add_service(service_declaration decl) {
  auto& xs = the_services();
  auto i = std::find_if(xs.begin(), xs.end(),
                        [&](auto& x) { return x.name == decl.name; });
  if (i != xs.end())
    *i = std::move(decl);
  else
    xs.push_back(std::move(decl));
}

namespace {

std::vector<std::function<void(caf::actor_system_config&)>>& announcements() {
  static std::vector<std::function<void(caf::actor_system_config&)>> xs;
  return xs;
}

} // namespace

void announce_message_type(
  std::function<void(caf::actor_system_config&)> announce) {
  announcements().push_back(std::move(announce));
}

void apply_message_types(caf::actor_system_config& cfg) {
  for (auto& f : announcements())
    f(cfg);
}

const std::vector<service_declaration>& declared_services() {
  return the_services();
}

void service_directory::set(const std::string& name, caf::actor handle,
                            std::type_index type) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& x : entries_) {
    if (x.name == name) {
      x.handle = std::move(handle);
      x.type = type;
      return;
    }
  }
  entries_.push_back(entry{name, std::move(handle), type});
}

caf::actor service_directory::find(std::string_view name) const {
  return find(name, typeid(caf::actor));
}

caf::actor service_directory::find(std::string_view name,
                                   std::type_index type) const {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& x : entries_)
    if (x.name == name)
      return type == typeid(caf::actor) || type == x.type ? x.handle
                                                          : caf::actor{};
  return {};
}

void service_directory::clear() {
  std::vector<entry> gone;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    gone.swap(entries_);
  }
  // The handles are released here, outside the lock.
}

// -- connection_io's look-up (here, not in behaviour.cpp: it is the services'
// side of the seam) -----------------------------------------------------------

caf::actor connection_io::service(std::string_view name) const {
  return find_service(name, typeid(caf::actor));
}

const service_directory* connection_io::services() const {
  return nullptr;
}

caf::actor connection_io::find_service(std::string_view name,
                                       const std::type_info& type) const {
  auto* dir = services();
  return dir != nullptr ? dir->find(name, std::type_index{type}) : caf::actor{};
}

} // namespace quiesce
