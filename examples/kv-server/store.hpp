#pragma once

/// @file
/// The store every connection asks: an event-based actor over one
/// `std::unordered_map<std::string, std::string>`.
///
/// Its lifetime today (quiesce has no services yet, and no hook at the
/// server's stop): `store_locator::find` spawns it on first use and hands
/// out strong handles, which only the connections keep. When the last
/// connection that holds one ends, CAF ends the actor (no one can reach it);
/// at a stop that is when the last connection has drained, so nothing is
/// left for `~actor_system` to wait for. The keys live in `store_data`,
/// which outlives the actor: the next connection's request starts a new
/// one over the same map.

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
using store_actor = caf::typed_actor<
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

/// Finds the store actor, or starts it (see the file comment). One per
/// server, shared by every connection's behaviour.
class store_locator {
public:
  store_actor find(caf::actor_system& sys);

private:
  std::mutex mtx_;
  caf::actor_addr store_; // weak: it must not keep the actor alive
  std::shared_ptr<store_data> data_ = std::make_shared<store_data>();
};

} // namespace kv
