#include "actors/admin_endpoint.hpp"

#include <chrono>
#include <iostream>
#include <utility>

#include "caf/scoped_actor.hpp"
#include "caf/send.hpp"

#include "actors/server_config.hpp"

namespace quiesce {

namespace {

admin_starter& starter() {
  static admin_starter instance;
  return instance;
}

} // namespace

void set_admin_starter(admin_starter fn) {
  starter() = std::move(fn);
}

bool has_admin_starter() {
  return static_cast<bool>(starter());
}

std::optional<std::pair<std::string, uint16_t>>
parse_admin_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return std::nullopt;
  auto host = text.substr(0, colon);
  auto port_text = text.substr(colon + 1);
  // A bare IPv6 address has colons of its own: it needs its brackets here.
  if (host.front() != '[' && host.find(':') != std::string::npos)
    return std::nullopt;
  if (!host_address(host) || port_text.empty() || port_text.size() > 5)
    return std::nullopt;
  uint32_t port = 0;
  for (auto c : port_text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535)
    return std::nullopt;
  return std::make_pair(host, static_cast<uint16_t>(port));
}

std::optional<int> open_admin_listener(const std::string& admin,
                                       listener& lst) {
  if (admin.empty())
    return std::nullopt;
  if (!has_admin_starter())
    return usage_error("--admin: this server has no admin endpoint");
  auto address = parse_admin_address(admin); // checked by its rule
  if (!address)
    return usage_error("--admin=" + admin + ": not HOST:PORT");
  lst = open_listener(address->first, address->second);
  if (lst.fd >= 0)
    return std::nullopt;
  std::cerr << "quiesce: --admin: " << lst.error << std::endl;
  return exit_cannot_run;
}

admin_endpoint::~admin_endpoint() {
  close();
}

bool admin_endpoint::start(caf::actor_system& sys, admin_setup setup,
                           std::string& error) {
  if (!starter()) {
    error = "--admin: this server has no admin endpoint";
    return false;
  }
  auto address = setup.lst.address;
  auto started = starter()(sys, std::move(setup));
  if (!started) {
    error = "--admin: cannot start the admin endpoint: "
            + to_string(started.error());
    return false;
  }
  sys_ = &sys;
  actors_ = std::move(*started);
  address_ = std::move(address);
  return true;
}

void admin_endpoint::ready() {
  if (actors_.actor)
    caf::anon_send(actors_.actor, ready_atom_v);
}

void admin_endpoint::stopping() {
  if (actors_.actor)
    caf::anon_send(actors_.actor, stopping_atom_v);
}

void admin_endpoint::stopped(const shutdown_report& report) {
  if (actors_.actor)
    caf::anon_send(actors_.actor, stopped_atom_v, report);
}

void admin_endpoint::workers(uint32_t count, uint64_t restarts) {
  if (actors_.actor)
    caf::anon_send(actors_.actor, workers_atom_v, count, restarts);
}

void admin_endpoint::close() {
  if (sys_ == nullptr)
    return;
  caf::scoped_actor self{*sys_};
  if (actors_.supervisor) {
    // Its drain timeout bounds this (admin.cpp); the margin is for a
    // loaded machine.
    self->request(actors_.supervisor, std::chrono::seconds(5), stop_atom_v)
      .receive([](shutdown_report&) {}, [](caf::error&) {});
  }
  if (actors_.actor)
    self->send_exit(actors_.actor, caf::exit_reason::user_shutdown);
  actors_ = admin_actors{};
  sys_ = nullptr;
}

} // namespace quiesce
