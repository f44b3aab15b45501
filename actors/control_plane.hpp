#pragma once

/// @file
/// The control plane between a master process and its worker processes,
/// through CAF's distributed layer (BASP, in libcaf_io): what both sides
/// share, and the worker's side. The master's side is actors/master.hpp;
/// docs/architecture.md ("Worker processes") puts them together.
///
/// - Types: every type in a message that crosses BASP, other than an atom,
///   must be announced in BOTH processes (CAF 0.17: a type that is not is
///   sent as an empty message). `add_control_plane_types` is the one list;
///   master and workers call it on their config before the actor system
///   starts.
/// - Trust: the master listens on loopback only and accepts a registration
///   only with the secret it hands to each worker at spawn (`make_secret`)
///   and one of the worker ids it expects.
/// - The worker's side: `register_with_master` connects to the master's
///   port and registers the worker's supervisor; the master then sends it
///   `stop` and `force` as the process's own signal handling would.

#include <chrono>
#include <cstdint>
#include <string>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/expected.hpp"

#include "quiesce/messages.hpp"

namespace quiesce {

/// Announces every non-atom type of the control plane's messages:
/// `shutdown_report`, `supervisor_actor`, `master_actor`.
void add_control_plane_types(caf::actor_system_config& cfg);

/// A fresh secret: 32 hexadecimal characters (128 bits) from
/// `std::random_device`.
std::string make_secret();

/// Whether `x` equals `secret`, in a time that does not depend on where they
/// differ.
bool same_secret(const std::string& x, const std::string& secret);

/// How long `register_with_master` waits for the master's answer.
constexpr std::chrono::seconds registration_timeout{10};

/// Connects to the master published on 127.0.0.1:`port`: its handle, or an
/// error that says so.
caf::expected<master_actor> connect_to_master(caf::actor_system& sys,
                                              uint16_t port);

/// Registers `sup` as worker `id` with `secret` at `master` (blocks until
/// the master answers, at most `registration_timeout`).
caf::error register_worker(caf::actor_system& sys, const master_actor& master,
                           const std::string& secret, uint32_t id,
                           const supervisor_actor& sup);

/// Connects to the master published on 127.0.0.1:`port` and registers
/// `sup` as worker `id` with `secret`. Blocks the calling thread (a worker's
/// start-up) until the master answers. The master's handle, or an error
/// whose text says which step failed: the connection, or the registration
/// (refused or unanswered).
caf::expected<master_actor> register_with_master(caf::actor_system& sys,
                                                 uint16_t port,
                                                 const std::string& secret,
                                                 uint32_t id,
                                                 const supervisor_actor& sup);

} // namespace quiesce
