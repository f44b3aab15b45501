#pragma once

/// @file
/// The store every connection asks: an actor over one
/// `std::unordered_map<std::string, std::string>` that executes the
/// commands on keys (GET, SET, DEL, INCR) in batches: a connection sends
/// the commands of one read in one request, and gets their replies, encoded
/// in RESP, in one reply (a pipeline of 16 commands is one request, not 16).
///
/// It runs on the I/O thread (a broker without sockets, spawned by CAF's
/// middleman): a request and its reply never leave that thread, so a reply
/// is written in the turn of the event loop it arrives in, with no hand-over
/// between threads. Its work per command is a hash-map operation, as in
/// Redis's single thread; a service that blocks or computes for long belongs
/// on the scheduler's threads instead (`sys.spawn`).
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

CAF_ADD_ATOM(kv, kv, exec_atom, "kv_exec")

namespace kv {

/// One command: its words, the name (lower case) first.
using command = std::vector<std::string>;

/// - `exec`: the replies to `commands`, in their order, encoded in RESP
///   one after the other: `get key`, `set key value`, `del key...`, `incr key`
///   (the caller has checked the number of words). Redis's replies and error
///   texts
///   ("-ERR value is not an integer or out of range").
/// - `quiesce::stop_atom`: the server's stop, after the drain: it quits.
using store_actor = caf::typed_actor<
  caf::reacts_to<quiesce::stop_atom>,
  caf::replies_to<exec_atom, std::vector<command>>::with<std::string>>;

/// The keys. A mutex, though one actor at a time uses them: one that ends
/// and the next one may run on different threads, and the lock orders what
/// the first wrote before what the next reads. Never contended.
struct store_data {
  std::mutex mtx;
  std::unordered_map<std::string, std::string> map;
};

/// Where a store runs.
enum class placement {
  /// On the I/O thread, beside the connections (the server's choice).
  io_thread,
  /// On the scheduler's threads: for tests that hold its replies while
  /// the connections run.
  scheduler,
};

/// Spawns a store over `data`.
store_actor spawn_store(caf::actor_system& sys,
                        std::shared_ptr<store_data> data,
                        placement where = placement::io_thread);

/// Finds the store actor, or starts it (see the file comment), for a
/// behaviour run without the server's services.
class store_locator {
public:
  explicit store_locator(placement where = placement::io_thread)
      : where_(where) {}

  store_actor find(caf::actor_system& sys);

private:
  placement where_;
  std::mutex mtx_;
  caf::actor_addr store_; // weak: it must not keep the actor alive
  std::shared_ptr<store_data> data_ = std::make_shared<store_data>();
};

} // namespace kv
