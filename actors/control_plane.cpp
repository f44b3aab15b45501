#include "actors/control_plane.hpp"

#include <random>

#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"
#include "caf/sec.hpp"

namespace quiesce {

void add_control_plane_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<shutdown_report>("quiesce::shutdown_report");
  cfg.add_message_type<supervisor_actor>("quiesce::supervisor_actor");
  cfg.add_message_type<master_actor>("quiesce::master_actor");
  cfg.add_message_type<metrics_snapshot>("quiesce::metrics_snapshot");
}

std::string make_secret() {
  static constexpr char digits[] = "0123456789abcdef";
  std::random_device rd;
  std::uniform_int_distribution<int> nibble{0, 15};
  std::string result;
  result.reserve(32);
  for (int i = 0; i < 32; ++i)
    result += digits[nibble(rd)];
  return result;
}

bool same_secret(const std::string& x, const std::string& secret) {
  // Every character of `secret` is looked at whatever `x` holds.
  unsigned diff = x.size() == secret.size() ? 0u : 1u;
  for (size_t i = 0; i < secret.size(); ++i) {
    auto c = i < x.size() ? x[i] : '\0';
    diff
      |= static_cast<unsigned char>(c) ^ static_cast<unsigned char>(secret[i]);
  }
  return diff == 0;
}

caf::expected<master_actor> connect_to_master(caf::actor_system& sys,
                                              uint16_t port) {
  auto master = sys.middleman().remote_actor<master_actor>("127.0.0.1", port);
  if (!master)
    return caf::make_error(caf::sec::cannot_connect_to_node,
                           "cannot reach the master at 127.0.0.1:"
                             + std::to_string(port) + ": "
                             + to_string(master.error()));
  return master;
}

caf::error register_worker(caf::actor_system& sys, const master_actor& master,
                           const std::string& secret, uint32_t id,
                           const supervisor_actor& sup) {
  caf::error failure;
  caf::scoped_actor self{sys};
  self->request(master, registration_timeout, register_atom_v, secret, id, sup)
    .receive([](caf::ok_atom) {},
             [&](caf::error& err) {
               failure = caf::make_error(caf::sec::invalid_argument,
                                         "the master did not register worker "
                                           + std::to_string(id) + ": "
                                           + to_string(err));
             });
  return failure;
}

caf::expected<master_actor> register_with_master(caf::actor_system& sys,
                                                 uint16_t port,
                                                 const std::string& secret,
                                                 uint32_t id,
                                                 const supervisor_actor& sup) {
  auto master = connect_to_master(sys, port);
  if (!master)
    return master;
  if (auto err = register_worker(sys, *master, secret, id, sup))
    return err;
  return master;
}

} // namespace quiesce
