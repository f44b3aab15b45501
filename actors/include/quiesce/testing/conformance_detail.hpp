#pragma once

/// @file
/// The conformance kit's scenarios and helpers (conformance.hpp runs
/// them); not for use on their own.

#include "quiesce/testing/conformance_case.hpp"

/// Lets the kit's stand-in service answer the requests it holds.
CAF_ADD_ATOM(quiesce_kit, quiesce::testing::detail, stand_in_answer_atom,
             "kit_answer")

namespace quiesce::testing {

namespace detail {

/// What the stand-in service of a scenario has seen and holds.
struct stand_in_state {
  std::function<caf::message(const caf::message&)> reply;
  /// Hold every request until `stand_in_answer_atom` (else answer at once).
  bool hold = false;
  /// Requests received.
  size_t asked = 0;
  /// Requests held: their promises and messages.
  std::vector<std::pair<caf::response_promise, caf::message>> held;

  caf::message answer(const caf::message& request) const {
    return reply ? reply(request) : caf::message{};
  }
};

/// The kit's stand-in for a service: answers any request with
/// `stand_in_state::reply`, at once or when told. (A class: CAF 0.17 spawns
/// a function actor without arguments through a null pointer, which UBSan
/// reports.)
class stand_in_service : public caf::event_based_actor {
public:
  stand_in_service(caf::actor_config& cfg, std::shared_ptr<stand_in_state> st)
      : caf::event_based_actor(cfg), st_(std::move(st)) {}

  caf::behavior make_behavior() override {
    set_default_handler(
      [this](caf::scheduled_actor*,
             caf::message_view& xs) -> caf::result<caf::message> {
        auto msg = xs.copy_content_to_message();
        ++st_->asked;
        if (!st_->hold)
          return st_->answer(msg);
        auto rp = make_response_promise();
        st_->held.emplace_back(rp, std::move(msg));
        return rp;
      });
    return {
      [this](stand_in_answer_atom) {
        auto held = std::move(st_->held);
        st_->held.clear();
        for (auto& [rp, msg] : held)
          rp.deliver(st_->answer(msg));
      },
    };
  }

private:
  std::shared_ptr<stand_in_state> st_;
};

/// A fixture with one client connected, for one scenario.
struct scenario : broker_fixture {
  connection_handle hdl;
  connection_actor conn;
  const conformance_case& kase;
  /// The stand-in for `kase.service`, if the case has one.
  std::shared_ptr<stand_in_state> svc = std::make_shared<stand_in_state>();
  caf::actor stand_in;

  explicit scenario(const conformance_case& c)
      : broker_fixture(c.make), kase(c) {
    if (!c.service.name.empty()) {
      svc->reply = c.service.reply;
      stand_in = sys.spawn<stand_in_service>(svc);
      set_service(c.service.name, stand_in, c.service.handle_type);
    }
    hdl = connect_client();
    if (rec->connected.size() != 1)
      throw std::logic_error("the acceptor started no connection actor");
    conn = rec->connected.back();
  }

  ~scenario() override {
    if (stand_in)
      caf::anon_send_exit(stand_in, caf::exit_reason::kill);
  }

  std::string out() {
    auto bytes = output(hdl);
    return kase.normalize ? kase.normalize(std::move(bytes)) : bytes;
  }

  bool done() const {
    return reported_done(conn);
  }

  /// Fires timers until the output stops growing toward `want`: until it
  /// equals `want` or no timer is left.
  void finish_work(const std::string& want) {
    fire_timers_until([&] { return out() == want; });
  }

  void stop() {
    caf::anon_send(conn, stop_atom_v);
    exhaust();
  }

  /// The stand-in answers the requests it holds.
  void service_answers() {
    caf::anon_send(stand_in, stand_in_answer_atom_v);
    exhaust();
  }

  /// The exit reason of the connection actor, once it has ended.
  caf::error exit_reason() {
    caf::error result;
    self->monitor(conn);
    self->receive([&](caf::down_msg& msg) { result = msg.reason; },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    return result;
  }
};

inline std::string quoted(const std::string& x) {
  std::string result = "\"";
  for (auto c : x) {
    switch (c) {
      case '\r':
        result += "\\r";
        break;
      case '\n':
        result += "\\n";
        break;
      case '"':
        result += "\\\"";
        break;
      default:
        result += c;
    }
  }
  return result + "\"";
}

/// One check, with the scenario it ran in when it fails.
inline void verify(bool ok, const std::string& what) {
  using caf::term;
  if (auto collector = collect_verdicts::current()) {
    if (ok)
      ++collector->passed;
    else
      collector->failures.push_back(what);
    return;
  }
  if (ok)
    CAF_CHECK_PASSED(what);
  else
    CAF_CHECK_FAILED(what);
}

inline void verify_output(const std::string& got, const std::string& want,
                          const std::string& scenario) {
  verify(got == want, scenario + ": output " + quoted(got)
                        + (got == want ? "" : " but want " + quoted(want)));
}

inline std::string at_stop(const exchange& x) {
  return x.response_at_stop.empty() ? x.response : x.response_at_stop;
}

/// The case's requests: its pipeline, or its one request.
inline std::vector<exchange> exchanges(const conformance_case& c) {
  if (!c.pipeline.empty())
    return c.pipeline;
  return {exchange{c.request, c.response, c.response_at_stop}};
}

/// The requests of `xs` back to back.
inline std::string all_requests(const std::vector<exchange>& xs) {
  std::string result;
  for (auto& x : xs)
    result += x.request;
  return result;
}

/// The responses to the first `n` requests of `xs`, in order; with
/// `stopped`, the last in its form for a stop.
inline std::string responses(const std::vector<exchange>& xs, size_t n,
                             bool stopped = false) {
  std::string result;
  for (size_t i = 0; i < n && i < xs.size(); ++i)
    result += stopped && i + 1 == n ? at_stop(xs[i]) : xs[i].response;
  return result;
}

/// Where the requests of `xs` end in their concatenation.
inline std::vector<size_t> request_ends(const std::vector<exchange>& xs) {
  std::vector<size_t> result;
  size_t end = 0;
  for (auto& x : xs)
    result.push_back(end += x.request.size());
  return result;
}

/// What `prefix` gets without a stop, once its work (timers) has run.
inline std::string output_without_stop(const conformance_case& c,
                                       std::string_view prefix) {
  scenario s{c};
  s.client_sends(s.hdl, prefix);
  s.fire_timers_until([] { return false; });
  return s.out();
}

/// After a stop: the peer reads the FIN and closes; the actor ends normally.
inline void verify_clean_close(scenario& s, const std::string& where) {
  s.peer_closes(s.conn, s.hdl);
  verify(s.terminated(s.conn), where + ": the connection ended after FIN");
  verify(s.exit_reason() == caf::exit_reason::normal,
         where + ": it ended normally");
}

/// A forced exit (the drain deadline, a second signal) of `s`: with work
/// `in_flight` it must abort (`user_shutdown`, no `done`), else close
/// cleanly (`done`, a normal end); either way without another byte.
inline void force(scenario& s, const std::string& where, bool in_flight) {
  auto before = s.out();
  caf::anon_send_exit(s.conn, caf::exit_reason::user_shutdown);
  // The actor acts at once and ends on the next turn of the event loop (a
  // timer of 1 ms): no timer of the behaviour may run first.
  s.fire_timers_until([&] { return s.terminated(s.conn); }, 100);
  verify(s.terminated(s.conn), where + ": the actor ended");
  if (in_flight) {
    verify(s.exit_reason() == caf::exit_reason::user_shutdown,
           where + ": aborted, with user_shutdown");
    verify(!s.done(), where + ": without done");
  } else {
    verify(s.exit_reason() == caf::exit_reason::normal,
           where + ": closed cleanly, a normal end");
    verify(s.done(), where + ": with done");
  }
  verify_output(s.out(), before, where + ": nothing written after it");
}

} // namespace detail

} // namespace quiesce::testing
