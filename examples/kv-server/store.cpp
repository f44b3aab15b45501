#include "store.hpp"

#include <charconv>
#include <cstdint>
#include <utility>

#include "caf/actor_cast.hpp"
#include "caf/actor_system.hpp"
#include "caf/typed_event_based_actor.hpp"

namespace kv {

namespace {

struct store_state {
  static inline const char* name = "kv.store";
  std::shared_ptr<store_data> data;
};

store_actor::behavior_type
store_main(store_actor::stateful_pointer<store_state> self,
           std::shared_ptr<store_data> data) {
  self->state.data = std::move(data);
  auto locked = [self] {
    auto& d = *self->state.data;
    return std::pair{std::unique_lock{d.mtx}, &d.map};
  };
  return {
    [self](quiesce::stop_atom) {
      // Nothing to flush: the keys are in memory only.
      self->quit();
    },
    [locked](get_atom, const std::string& key) {
      auto [guard, map] = locked();
      auto i = map->find(key);
      return i == map->end() ? std::make_tuple(false, std::string{})
                             : std::make_tuple(true, i->second);
    },
    [locked](set_atom, std::string& key, std::string& value) {
      auto [guard, map] = locked();
      (*map)[std::move(key)] = std::move(value);
    },
    [locked](del_atom, const std::vector<std::string>& keys) {
      auto [guard, map] = locked();
      int64_t n = 0;
      for (auto& key : keys)
        n += static_cast<int64_t>(map->erase(key));
      return n;
    },
    [locked](incr_atom, const std::string& key) {
      auto [guard, map] = locked();
      int64_t n = 0; // a missing key counts as 0, as in Redis
      if (auto i = map->find(key); i != map->end()) {
        auto& value = i->second;
        auto end = value.data() + value.size();
        auto [ptr, ec] = std::from_chars(value.data(), end, n);
        if (value.empty() || ec != std::errc{} || ptr != end)
          return std::make_tuple(int64_t{0},
                                 std::string{"value is not an integer or "
                                             "out of range"});
      }
      if (n == INT64_MAX)
        return std::make_tuple(
          int64_t{0}, std::string{"increment or decrement would overflow"});
      (*map)[key] = std::to_string(++n);
      return std::make_tuple(n, std::string{});
    },
  };
}

} // namespace

store_actor store_locator::find(caf::actor_system& sys) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto alive = caf::actor_cast<store_actor>(store_);
      alive && &alive->home_system() == &sys)
    return alive;
  auto store = spawn_store(sys, data_);
  store_ = store.address();
  return store;
}

store_actor spawn_store(caf::actor_system& sys,
                        std::shared_ptr<store_data> data) {
  return sys.spawn(store_main, std::move(data));
}

} // namespace kv
