#include "actors/service_proxy.hpp"

#include <deque>

#include "caf/atom.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/mailbox_element.hpp"
#include "caf/stateful_actor.hpp"

#include "quiesce/log.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "service";

struct proxy_state {
  static inline const char* name = "quiesce.service_proxy";
  service_proxy_config cfg;
  /// The service's actor in the master; invalid while it is being found.
  caf::actor service;
  bool asking = false;
  std::deque<caf::mailbox_element_ptr> waiting;
};

using proxy_pointer = caf::stateful_actor<proxy_state>*;

/// Look the service up again (the stand-in's own timer).
using find_atom = caf::atom_constant<caf::atom("svc_find")>;

void forward(proxy_pointer self, caf::mailbox_element_ptr elem) {
  self->state.service->enqueue(std::move(elem), self->context());
}

void ask_master(proxy_pointer self) {
  auto& st = self->state;
  if (st.asking)
    return;
  st.asking = true;
  // The one that ended: until the master's services actor has started its
  // successor, the directory may still name it.
  auto dead = std::move(st.service);
  st.service = nullptr;
  self
    ->request(st.cfg.master, st.cfg.retry_interval * 10, service_atom_v,
              st.cfg.secret, st.cfg.name)
    .then(
      [self, dead](caf::actor& found) {
        auto& s = self->state;
        s.asking = false;
        if (!found || found == dead) {
          self->delayed_send(self, s.cfg.retry_interval, find_atom::value);
          return;
        }
        s.service = found;
        self->monitor(found);
        while (!s.waiting.empty()) {
          forward(self, std::move(s.waiting.front()));
          s.waiting.pop_front();
        }
      },
      [self](caf::error& err) {
        auto& s = self->state;
        s.asking = false;
        log::debug(component, "shared service '" + s.cfg.name
                                + "' not found yet: " + to_string(err));
        self->delayed_send(self, s.cfg.retry_interval, find_atom::value);
      });
}

caf::behavior proxy_main(proxy_pointer self, service_proxy_config cfg) {
  self->state.cfg = std::move(cfg);
  self->set_down_handler([self](caf::down_msg& msg) {
    if (self->state.service && msg.source == self->state.service.address()) {
      log::info(component, "shared service '" + self->state.cfg.name
                             + "' ended in the master; finding its successor");
      self->state.service = nullptr;
      ask_master(self);
    }
  });
  self->set_default_handler(
    [](caf::scheduled_actor* ptr,
       caf::message_view& content) -> caf::result<caf::message> {
      auto proxy = static_cast<proxy_pointer>(ptr);
      auto& st = proxy->state;
      if (!st.service && st.waiting.size() >= st.cfg.max_waiting)
        return caf::make_error(caf::sec::request_receiver_down,
                               "shared service '" + st.cfg.name
                                 + "' unavailable");
      // As it came: the service answers the original sender itself.
      auto* cur = proxy->current_mailbox_element();
      auto elem = caf::make_mailbox_element(std::move(cur->sender), cur->mid,
                                            std::move(cur->stages),
                                            content.move_content_to_message());
      if (st.service)
        forward(proxy, std::move(elem));
      else
        st.waiting.push_back(std::move(elem));
      return caf::delegated<caf::message>{};
    });
  ask_master(self);
  return {
    [self](find_atom) { ask_master(self); },
  };
}

} // namespace

caf::actor spawn_service_proxy(caf::actor_system& sys,
                               service_proxy_config cfg) {
  return sys.spawn(proxy_main, std::move(cfg));
}

} // namespace quiesce
