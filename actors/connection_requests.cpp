// The connection actor's requests to other actors (connection.hpp): ids,
// asks and their callbacks, replies, one deadline check per connection, and
// the receivers it watches so that a request one held fails when it ends.

#include "actors/connection.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "caf/actor_cast.hpp"
#include "caf/actor_system.hpp"
#include "caf/sec.hpp"

#include "quiesce/log.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "connection";

} // namespace

// -- requests -----------------------------------------------------------------

uint64_t connection_state::new_request(uint64_t token) {
  auto id = ++last_request_id_;
  pending_requests_.emplace(id, pending_request{token, nullptr});
  return id;
}

uint64_t
connection_state::new_ask(std::unique_ptr<detail::ask_callbacks> callbacks) {
  auto id = ++last_request_id_;
  pending_requests_.emplace(id, pending_request{0, std::move(callbacks)});
  return id;
}

std::optional<connection_state::pending_request>
connection_state::end_request(uint64_t id) {
  auto i = pending_requests_.find(id);
  if (i == pending_requests_.end())
    return std::nullopt; // timed out already, or the reply came first
  auto result = std::move(i->second);
  pending_requests_.erase(i);
  if (!core_->accepts_work()) {
    // The connection has ended its work; nobody can use the reply.
    if (log::enabled(log::level::debug))
      log::debug(
        component,
        describe() + " dropped the reply to "
          + (result.ask ? "an ask" : "request " + std::to_string(result.token))
          + " after the FIN");
    return std::nullopt;
  }
  return result;
}

std::unique_ptr<detail::ask_callbacks> connection_state::take_ask(uint64_t id) {
  auto x = end_request(id);
  return x ? std::move(x->ask) : nullptr;
}

void connection_state::ask_done() {
  // The reply is written in the turn of the event loop it arrives in: a
  // reply from an actor on another thread wakes the loop through CAF's pipe,
  // whose reader resumes this broker at once (CAF 0.17.6 pipe_reader.cpp:
  // 64-70, default_multiplexer.cpp:652-663); flush_output then sends
  // directly when CAF holds nothing for the socket. A receiver that is a
  // broker itself (on this thread) answers a loop iteration later: CAF
  // queues a broker woken from its own thread (internally_posted_).
  after_callback();
}

std::string
connection_state::render_error(const caf::error& err,
                               const detail::ask_callbacks& ask) const {
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        return "request timed out after " + millis(ask.timeout);
      case caf::sec::request_receiver_down:
        return "the receiver is gone";
      case caf::sec::invalid_argument:
        // CAF's answer to a request to an invalid handle, at once.
        if (!ask.has_receiver)
          return "the receiver is gone (the handle is invalid)";
        break;
      case caf::sec::unexpected_response:
        // The context is the reply that came instead.
        return "the reply has other types than asked for: "
               + caf::to_string(err.context());
      default:
        break;
    }
  }
  return system().render(err);
}

void connection_state::send_request(uint64_t id, const caf::actor& dest,
                                    caf::timespan timeout, caf::message msg,
                                    caf::behavior on_reply) {
  // No CAF timeout: it would be a delayed message to this broker (see
  // send_later). The relay brings ours; whichever of reply and timeout comes
  // first ends the request, the other is dropped. CAF answers a request to
  // an invalid handle with an error at once.
  //
  // One timer per connection, not one per request: the relay keeps the
  // earliest deadline's check under way, and each check fails what is due
  // and asks for the next. A timer per request cost the relay a message
  // and an entry for each (a pipelining client at 100,000 requests a
  // second kept half a million of them), and the I/O thread a message back
  // for each after its timeout, long after the reply.
  //
  // The receiver is monitored (once per connection, see watched_): a
  // request it holds unanswered when it ends fails at its down message.
  auto watched = dest ? watch(dest) : nullptr;
  auto hdl = self_->request(dest, caf::infinite, std::move(msg));
  self_->add_multiplexed_response_handler(hdl.id(), std::move(on_reply));
  auto deadline = now() + timeout;
  if (auto i = pending_requests_.find(id); i != pending_requests_.end()) {
    i->second.deadline = deadline;
    i->second.dest = watched;
  }
  arm_request_check(deadline);
}

caf::actor_control_block* connection_state::watch(const caf::actor& dest) {
  auto key = caf::actor_cast<caf::actor_control_block*>(dest);
  if (key == last_watched_)
    return key;
  last_watched_ = key;
  if (std::find(watched_.begin(), watched_.end(), key) != watched_.end())
    return key;
  if (watched_.size() >= watch_limit_) {
    prune_watched();
    // Amortized: a full list is pruned again only after as many new
    // receivers as it kept.
    watch_limit_ = std::max(min_watch_limit, 2 * watched_.size());
  }
  // A receiver that has ended already sends its down message at once (and
  // CAF answers the request itself with `request_receiver_down`).
  self_->monitor(dest);
  watched_.push_back(dest.address());
  return key;
}

void connection_state::prune_watched() {
  // Rare (only a connection that asks many different actors gets here):
  // no per-receiver count to keep up on every request and reply.
  std::vector<caf::actor_control_block*> busy;
  for (auto& [id, req] : pending_requests_)
    if (req.dest != nullptr)
      busy.push_back(req.dest);
  std::sort(busy.begin(), busy.end());
  auto idle = [&](const caf::actor_addr& x) {
    if (std::binary_search(busy.begin(), busy.end(), x.get()))
      return false;
    if (x == last_watched_)
      last_watched_ = nullptr;
    self_->demonitor(x);
    return true;
  };
  watched_.erase(std::remove_if(watched_.begin(), watched_.end(), idle),
                 watched_.end());
}

void connection_state::on_down(const caf::down_msg& msg) {
  auto i = std::find(watched_.begin(), watched_.end(), msg.source);
  if (i == watched_.end())
    return; // demonitored by prune_watched: nothing was pending for it
  auto key = i->get();
  watched_.erase(i);
  if (last_watched_ == key)
    last_watched_ = nullptr;
  // Its requests fail as CAF fails those it bounces from the mailbox of an
  // actor that ends, in the order they were made; a callback may make new
  // requests or end the connection.
  std::vector<uint64_t> gone;
  for (auto& [id, req] : pending_requests_)
    if (req.dest == key)
      gone.push_back(id);
  std::sort(gone.begin(), gone.end());
  for (auto id : gone) {
    if (ended_)
      return;
    reply_arrived(id, caf::make_error(caf::sec::request_receiver_down));
  }
}

void connection_state::arm_request_check(caf::actor_clock::time_point at) {
  if (at >= next_request_check_)
    return; // a check under way comes first; it asks for the next one
  next_request_check_ = at;
  send_later(std::max(at - now(), caf::timespan{0}),
             caf::make_message(request_timeout_atom_v));
}

void connection_state::on_request_timeout() {
  auto t = now();
  if (next_request_check_ <= t)
    next_request_check_ = caf::actor_clock::time_point::max();
  // Due ones fail in the order they were made; a callback may make new
  // requests (they arm their own check) or end the connection.
  std::vector<uint64_t> due;
  auto next = caf::actor_clock::time_point::max();
  for (auto& [id, req] : pending_requests_) {
    if (req.deadline <= t)
      due.push_back(id);
    else
      next = std::min(next, req.deadline);
  }
  std::sort(due.begin(), due.end());
  for (auto id : due) {
    if (ended_)
      return;
    reply_arrived(id, caf::make_error(caf::sec::request_timeout));
  }
  if (!ended_ && next != caf::actor_clock::time_point::max())
    arm_request_check(next);
}

void connection_state::reply_arrived(uint64_t id,
                                     caf::expected<caf::message> reply) {
  auto x = end_request(id);
  if (!x)
    return;
  if (x->ask) {
    // Only an ask's failure comes here: its reply goes through take_ask.
    if (!reply)
      x->ask->failed(render_error(reply.error(), *x->ask), *this);
  } else if (reply) {
    behaviour_->on_reply(x->token, *reply, *this);
  } else {
    behaviour_->on_reply_error(x->token, reply.error(), *this);
  }
  after_callback();
}

} // namespace quiesce
