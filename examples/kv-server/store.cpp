#include "store.hpp"

#include <charconv>
#include <cstdint>
#include <utility>

#include "caf/actor_cast.hpp"
#include "caf/actor_system.hpp"
#include "caf/io/middleman.hpp"
#include "caf/io/typed_broker.hpp"
#include "caf/typed_event_based_actor.hpp"

#include "resp.hpp"

namespace kv {

namespace {

using map_type = std::unordered_map<std::string, std::string>;

/// The broker type of a typed handle: an actor of `store_actor`'s interface
/// that runs on the I/O thread.
template <class>
struct broker_of;

template <class... Sigs>
struct broker_of<caf::typed_actor<Sigs...>> {
  using type = caf::io::typed_broker<Sigs...>;
};

using store_broker = broker_of<store_actor>::type;

std::string incr(map_type& map, const std::string& key) {
  int64_t n = 0; // a missing key counts as 0, as in Redis
  if (auto i = map.find(key); i != map.end()) {
    auto& value = i->second;
    auto end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, n);
    if (value.empty() || ec != std::errc{} || ptr != end)
      return resp::error("ERR value is not an integer or out of range");
  }
  if (n == INT64_MAX)
    return resp::error("ERR increment or decrement would overflow");
  map[key] = std::to_string(++n);
  return resp::integer(n);
}

/// Appends the reply to `cmd` to `out`.
void execute(map_type& map, command& cmd, std::string& out) {
  auto& name = cmd[0];
  if (name == "get" && cmd.size() == 2) {
    auto i = map.find(cmd[1]);
    out += i == map.end() ? resp::nil : resp::bulk(i->second);
  } else if (name == "set" && cmd.size() == 3) {
    map.insert_or_assign(std::move(cmd[1]), std::move(cmd[2]));
    out += "+OK\r\n";
  } else if (name == "del" && cmd.size() >= 2) {
    int64_t n = 0;
    for (size_t i = 1; i < cmd.size(); ++i)
      n += static_cast<int64_t>(map.erase(cmd[i]));
    out += resp::integer(n);
  } else if (name == "incr" && cmd.size() == 2) {
    out += incr(map, cmd[1]);
  } else {
    out += resp::error("ERR the store does not execute '" + name + "'");
  }
}

/// The store's behaviour, as a broker (`store_broker`) or as an
/// event-based actor (`store_actor::pointer`).
template <class Self>
store_actor::behavior_type store_main(Self* self,
                                      std::shared_ptr<store_data> data) {
  return {
    [self](quiesce::stop_atom) {
      // Nothing to flush: the keys are in memory only.
      self->quit();
    },
    [data](exec_atom, std::vector<command>& commands) {
      std::string replies;
      std::lock_guard<std::mutex> guard{data->mtx};
      for (auto& cmd : commands)
        execute(data->map, cmd, replies);
      return replies;
    },
  };
}

} // namespace

store_actor store_locator::find(caf::actor_system& sys) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto alive = caf::actor_cast<store_actor>(store_);
      alive && &alive->home_system() == &sys)
    return alive;
  auto store = spawn_store(sys, data_, where_);
  store_ = store.address();
  return store;
}

store_actor spawn_store(caf::actor_system& sys,
                        std::shared_ptr<store_data> data, placement where) {
  if (where == placement::scheduler)
    return sys.spawn(store_main<store_actor::base>, std::move(data));
  return sys.middleman().spawn_broker(store_main<store_broker>,
                                      std::move(data));
}

} // namespace kv
