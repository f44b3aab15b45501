#pragma once

/// @file
/// The store every connection asks: an event-based actor over one
/// `std::unordered_map<std::string, std::string>`.
///
/// In the server it is a quiesce service (main.cpp, quiesce/service.hpp):
/// started before the listener opens, asked by every connection through
/// `io.service<kv::store_actor>("store")`, told `stop_atom` after the
/// connections have drained, and restarted if it crashes. The keys live in
/// `store_data`, which outlives the actor: a restarted store serves the same
/// map.
///
/// `store_locator` is the other way, for tests that run a behaviour without
/// the server (the conformance kit): it spawns the store on first use and
/// hands out strong handles, which only the connections keep, so CAF ends
/// the actor with the last of them.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "caf/actor_addr.hpp"
#include "caf/fwd.hpp"
#include "caf/type_id.hpp"
#include "caf/typed_actor.hpp"

#include "quiesce/messages.hpp"

CAF_ADD_ATOM(kv, kv, get_atom, "kv_get")
CAF_ADD_ATOM(kv, kv, set_atom, "kv_set")
CAF_ADD_ATOM(kv, kv, del_atom, "kv_del")
CAF_ADD_ATOM(kv, kv, incr_atom, "kv_incr")

namespace kv {

/// - `get`: (found, value); value empty if not found.
/// - `set`: an empty reply.
/// - `del`: how many of the keys existed.
/// - `incr`: (value after, error); the error is Redis's text ("value is
///   not an integer or out of range", "increment or decrement would
///   overflow"), empty on success.
/// - `quiesce::stop_atom`: the server's stop, after the drain: it quits.
using store_actor = caf::typed_actor<
  caf::reacts_to<quiesce::stop_atom>,
  caf::replies_to<get_atom, std::string>::with<bool, std::string>,
  caf::reacts_to<set_atom, std::string, std::string>,
  caf::replies_to<del_atom, std::vector<std::string>>::with<int64_t>,
  caf::replies_to<incr_atom, std::string>::with<int64_t, std::string>>;

/// The keys. A mutex, though one actor at a time uses them: one that ends
/// and the next one may run on different threads, and the lock orders what
/// the first wrote before what the next reads. Never contended.
struct store_data {
  std::mutex mtx;
  std::unordered_map<std::string, std::string> map;
};

/// Spawns a store over `data`.
store_actor spawn_store(caf::actor_system& sys,
                        std::shared_ptr<store_data> data);

/// Finds the store actor, or starts it (see the file comment), for a
/// behaviour run without the server's services.
class store_locator {
public:
  store_actor find(caf::actor_system& sys);

private:
  std::mutex mtx_;
  caf::actor_addr store_; // weak: it must not keep the actor alive
  std::shared_ptr<store_data> data_ = std::make_shared<store_data>();
};

} // namespace kv
