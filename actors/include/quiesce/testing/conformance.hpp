#pragma once

/// @file
/// The conformance kit: proves that a behaviour keeps quiesce's shutdown
/// promise. Installed with the library, header-only, for CAF's test framework
/// (`caf/test/unit_test.hpp`): a behaviour in this tree or out of it runs
///
///     CAF_TEST(my protocol keeps the shutdown promise) {
///       quiesce::testing::check_conformance(my_case());
///     }
///
/// Every check runs the real acceptor and connection brokers under CAF's fake
/// multiplexer and test coordinator (virtual time: timers fire when the kit
/// fires them), with a fresh actor system per scenario. Given a pipeline of
/// complete requests sent back to back and their responses in order (one
/// request is a pipeline of one), the kit checks:
///
/// - every split: the pipeline sent in two pieces, split at every byte, and
///   one byte at a time, gets the same responses, in order, as sent whole;
/// - stop while idle closes at once: a connection that has sent nothing, and
///   a connection whose work is answered, report `done` (FIN) on `stop`
///   without writing anything more;
/// - stop at every byte: a stop after each prefix of the pipeline either
///   finds the behaviour idle, and then nothing is owed (the output equals
///   what that prefix gets without a stop, and nothing follows), or busy, and
///   then every request complete before the stop is answered, in order, and
///   a request half received at the stop is finished by the rest of its
///   bytes (and the timers they started): the output is their responses
///   (the last one in its form for a stop), then FIN; requests sent after
///   that get nothing (and a request half received must be in flight,
///   unless the case says the protocol answers every byte at once);
/// - a forced exit aborts work in flight: the actor ends with
///   `user_shutdown`, without `done` and without writing anything more,
///   whether the connection is serving (a request half received) or busy
///   draining a stop; a connection with nothing in flight (before any input,
///   or with its requests answered) closes cleanly instead: `done`, a normal
///   end, nothing more written;
/// - with a `service` (a stand-in for one of the server's services, which
///   the kit plays): a request whose behaviour asks the service gets its
///   response once the service answers; a stop while the service holds the
///   request does not close the connection, and the reply that comes later
///   is written before the FIN (`done` only after it); a service that never
///   answers leaves the connection busy until the forced exit (the drain
///   deadline), which aborts it (`user_shutdown`, no `done`) with nothing
///   more written, even when the reply comes after it.
///
/// The scenarios run on `broker_fixture` (broker_fixture.hpp), which is also
/// usable on its own for a behaviour's own tests.

#include <algorithm>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <vector>

#include "caf/test/io_dsl.hpp"

#include "quiesce/behaviour.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/testing/broker_fixture.hpp"

/// Lets the kit's stand-in service answer the requests it holds.
CAF_ADD_ATOM(quiesce_kit, quiesce::testing::detail, stand_in_answer_atom,
             "kit_answer")

namespace quiesce::testing {

/// One request and what it must get: a step of a case's pipeline.
struct exchange {
  /// A complete request. If it starts timers or requests, they must end:
  /// the kit fires timers until the response is complete.
  std::string request;
  /// Its response, after `normalize`.
  std::string response;
  /// Its response when a stop arrived before it was written (e.g. with
  /// `Connection: close`), after `normalize`; empty: the same as
  /// `response`. In a pipeline only the last response before the FIN takes
  /// this form; the ones before it keep `response`.
  std::string response_at_stop;
};

/// A service of the server (quiesce/service.hpp) that the behaviour asks,
/// played by the kit: a stand-in that answers what the real one would, and
/// that the kit can make hold a request across a stop.
struct service_stand_in {
  /// The name the behaviour looks up (`connection_io::service(name)`).
  /// Empty: the behaviour asks no service, and the checks of a request
  /// pending at a stop are skipped.
  std::string name;
  /// The handle type the real service is declared with (what its spawn
  /// function for `add_service` returns): a typed look-up,
  /// `io.service<store_actor>(name)`, finds the stand-in only under that
  /// type. `caf::actor`, the default, for an untyped service (an untyped
  /// look-up finds it under any type).
  std::type_index handle_type = typeid(caf::actor);
  /// The stand-in's reply to each request it gets, made from the request's
  /// message: what the real service would answer, of the types the
  /// behaviour's `ask` expects (e.g. `caf::make_message(int64_t{1})` to an
  /// `(incr_atom, key)`). Unset: an empty reply (a handler returning void).
  std::function<caf::message(const caf::message& request)> reply;
  /// A complete request on which the behaviour asks the service, and its
  /// response once the reply has come (`response_at_stop`: when a stop came
  /// while the service held the request). In every other check the
  /// stand-in answers at once, so `request` and `pipeline` may ask it too.
  exchange asking;
};

/// What the kit needs to know of a protocol: one complete request and what
/// it must get, or a pipeline of them.
struct conformance_case {
  /// Makes the behaviour under test.
  behaviour_factory make;
  /// A complete request. If it starts timers or requests, they must end:
  /// the kit fires timers until the response is complete. (A pipeline of
  /// one: the same as one `exchange` in `pipeline`.)
  std::string request;
  /// Its response, after `normalize`.
  std::string response;
  /// Its response when a stop arrived while it was in flight (e.g. with
  /// `Connection: close`), after `normalize`; empty: the same as `response`.
  std::string response_at_stop;
  /// Requests a client sends back to back without waiting for an answer (a
  /// pipelining client), with their responses, which must come in the same
  /// order. When set, it replaces `request`, `response` and
  /// `response_at_stop` (leave them empty). The kit cuts the concatenation
  /// of the requests anywhere: at a stop, every request complete before it
  /// must be answered, in order, before the FIN.
  std::vector<exchange> pipeline;
  /// A service the behaviour asks, played by the kit; none by default.
  service_stand_in service;
  /// Removes what differs between runs (a date) before outputs are compared.
  std::function<std::string(std::string)> normalize;
  /// A request half received is work in flight: a stop after part of the
  /// request must find the behaviour busy, and the rest of the request then
  /// gets its response. False for a protocol that answers every byte at once
  /// (echo), which a stop always finds idle.
  bool busy_while_partial = true;
};

/// Where the kit's verdicts go: CAF's test engine, unless a
/// `collect_verdicts` is alive (the kit's own tests use it to show that it
/// catches broken behaviours).
class collect_verdicts {
public:
  collect_verdicts() : previous_(current()) {
    current() = this;
  }

  collect_verdicts(const collect_verdicts&) = delete;

  collect_verdicts& operator=(const collect_verdicts&) = delete;

  ~collect_verdicts() {
    current() = previous_;
  }

  /// The checks that failed, each with its scenario.
  std::vector<std::string> failures;
  size_t passed = 0;

  /// True if some failure contains `text`.
  bool failed_with(std::string_view text) const {
    for (auto& failure : failures)
      if (failure.find(text) != std::string::npos)
        return true;
    return false;
  }

  static collect_verdicts*& current() {
    static thread_local collect_verdicts* instance = nullptr;
    return instance;
  }

private:
  collect_verdicts* previous_;
};

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

/// The pipeline (or the one request) sent in two pieces split at every
/// byte, and one byte at a time, gets the same responses as sent whole.
inline void check_every_split(const conformance_case& c) {
  using namespace detail;
  auto xs = exchanges(c);
  auto req = all_requests(xs);
  auto want = responses(xs, xs.size());
  std::string what = c.pipeline.empty() ? "request" : "pipeline";
  detail::verify(c.pipeline.empty() || c.request.empty(),
                 "the case sets either request or pipeline");
  for (size_t i = 1; i <= req.size(); ++i) {
    scenario s{c};
    s.client_sends(s.hdl, std::string_view{req}.substr(0, i));
    s.client_sends(s.hdl, std::string_view{req}.substr(i));
    s.finish_work(want);
    verify_output(s.out(), want,
                  i == req.size()
                    ? what + " sent whole"
                    : what + " split at byte " + std::to_string(i));
  }
  scenario s{c};
  for (auto ch : req)
    s.client_sends(s.hdl, std::string_view{&ch, 1});
  s.finish_work(want);
  verify_output(s.out(), want, what + " sent one byte at a time");
}

/// `stop` on a connection that has sent nothing, and on one whose requests
/// are answered, reports `done` at once and writes nothing more.
inline void check_idle_stop(const conformance_case& c) {
  using namespace detail;
  auto xs = exchanges(c);
  auto want = responses(xs, xs.size());
  {
    scenario s{c};
    s.stop();
    verify(s.done(), "stop before any input: done (FIN) at once");
    verify_output(s.out(), "", "stop before any input");
    verify_clean_close(s, "stop before any input");
  }
  {
    scenario s{c};
    s.client_sends(s.hdl, all_requests(xs));
    s.finish_work(want);
    s.stop();
    verify(s.done(), "stop after the response: done (FIN) at once");
    verify_output(s.out(), want, "stop after the response");
    verify_clean_close(s, "stop after the response");
  }
}

/// A stop after every prefix of the pipeline (or the one request): idle
/// means nothing is owed; busy means every request complete before the stop
/// is answered in order, a request half received is finished by the rest of
/// its bytes, and then the connection closes; requests sent after that get
/// nothing. With `busy_while_partial`, every stop inside a request must find
/// it busy. Returns how many prefixes found the behaviour busy.
inline size_t check_stop_at_every_byte(const conformance_case& c) {
  using namespace detail;
  auto xs = exchanges(c);
  auto req = all_requests(xs);
  auto ends = request_ends(xs);
  auto pipelined = !c.pipeline.empty();
  size_t busy = 0;
  for (size_t i = 0; i <= req.size(); ++i) {
    // Requests complete in the prefix, and the end of the one it cuts.
    size_t complete = 0;
    while (complete < ends.size() && ends[complete] <= i)
      ++complete;
    auto partial = i > 0 && complete < ends.size()
                   && i > (complete == 0 ? 0 : ends[complete - 1]);
    auto where = "stop after " + std::to_string(i) + " of "
                 + std::to_string(req.size()) + " bytes";
    if (pipelined)
      where += partial ? ", inside request " + std::to_string(complete + 1)
                           + " of " + std::to_string(xs.size())
                       : ", " + std::to_string(complete) + " of "
                           + std::to_string(xs.size()) + " requests complete";
    auto prefix = std::string_view{req}.substr(0, i);
    auto owed = output_without_stop(c, prefix);
    scenario s{c};
    s.client_sends(s.hdl, prefix);
    s.stop();
    if (s.done()) {
      verify(!partial || !c.busy_while_partial,
             where
               + ": a request half received at the stop is in flight, "
                 "but the behaviour said idle");
      // Idle at the stop: it must not have owed anything.
      verify_output(s.out(), owed, where + " (idle)");
      s.client_sends(s.hdl, std::string_view{req}.substr(i));
      s.fire_timers_until([] { return false; }, 100);
      verify_output(s.out(), owed, where + " (idle), after more input");
    } else {
      ++busy;
      // The rest of the request cut by the stop, not the requests after it:
      // those come after the stop, when the behaviour accepts nothing new.
      auto end = partial ? ends[complete] : i;
      s.client_sends(s.hdl, std::string_view{req}.substr(i, end - i));
      auto answered = complete + (partial ? 1 : 0);
      auto want = responses(xs, answered, true);
      s.fire_timers_until([&] { return s.done(); });
      verify(s.done(), where + " (busy): done once the request finished");
      verify_output(s.out(), want, where + " (busy)");
      if (end < req.size()) {
        s.client_sends(s.hdl, std::string_view{req}.substr(end));
        s.fire_timers_until([] { return false; }, 100);
        verify_output(s.out(), want,
                      where + " (busy), after the requests sent later");
      }
    }
    verify_clean_close(s, where);
  }
  return busy;
}

/// A forced exit aborts work in flight: while serving a request half
/// received (the last of a pipeline), and while a stop waits for work in
/// flight (the first prefix that leaves the behaviour busy). With nothing in
/// flight (before any input, or once the requests are answered) it closes
/// cleanly.
inline void check_forced_exit(const conformance_case& c) {
  using namespace detail;
  auto xs = exchanges(c);
  auto req = all_requests(xs);
  auto& last = xs.back().request;
  {
    scenario s{c};
    force(s, "forced before any input", false);
  }
  {
    scenario s{c};
    s.client_sends(s.hdl, req);
    s.finish_work(responses(xs, xs.size()));
    force(s, "forced with the request answered", false);
  }
  if (c.busy_while_partial && last.size() >= 2) {
    scenario s{c};
    s.client_sends(s.hdl, std::string_view{req}.substr(
                            0, req.size() - last.size() + last.size() / 2));
    force(s, "forced while serving a request half received", true);
  }
  for (size_t i = 1; i <= req.size(); ++i) {
    scenario s{c};
    s.client_sends(s.hdl, std::string_view{req}.substr(0, i));
    s.stop();
    if (s.done())
      continue;
    force(s, "forced while draining after " + std::to_string(i) + " bytes",
          true);
    return;
  }
  verify(!c.busy_while_partial || req.size() < 2,
         "forced while draining: no stop found the behaviour busy");
}

/// With a `service`: its request is answered once the service answers; a
/// stop while the service holds the request waits for the reply and writes
/// it before the FIN; a service that never answers leaves the connection
/// busy until the forced exit, which aborts it without another byte.
inline void check_pending_service(const conformance_case& c) {
  using namespace detail;
  auto& svc = c.service;
  if (svc.name.empty())
    return;
  auto& x = svc.asking;
  auto where = "service " + quoted(svc.name);
  // Sends the request and runs until the stand-in holds it.
  auto ask = [&](scenario& s, const std::string& scenario_name) {
    s.svc->hold = true;
    s.client_sends(s.hdl, x.request);
    s.fire_timers_until([&] { return !s.svc->held.empty(); });
    verify(!s.svc->held.empty(),
           scenario_name + ": the behaviour asked the service");
    return !s.svc->held.empty();
  };
  {
    auto name = where + ", answered";
    scenario s{c};
    if (ask(s, name)) {
      s.service_answers();
      s.finish_work(x.response);
      verify_output(s.out(), x.response, name);
    }
  }
  {
    auto name = where + " holds the request at the stop";
    scenario s{c};
    if (ask(s, name)) {
      auto before = s.out();
      s.stop();
      verify(!s.done(), name + ": no done (FIN) while the reply is owed");
      verify_output(s.out(), before, name + ", before the reply");
      s.service_answers();
      s.fire_timers_until([&] { return s.done(); });
      // Nothing is written after the FIN: a reply in the output came first.
      verify(s.done(), name + ": done (FIN) after the reply");
      verify_output(s.out(), at_stop(x), name + ", after the reply");
      verify_clean_close(s, name);
    }
  }
  {
    auto name = where + " never answers the request held at the stop";
    scenario s{c};
    if (ask(s, name)) {
      s.stop();
      verify(!s.done(), name + ": no done (FIN) while the reply is owed");
      force(s, name + ", forced at the drain deadline", true);
      auto before = s.out();
      s.service_answers();
      s.fire_timers_until([] { return false; }, 100);
      verify_output(s.out(), before, name + ", a reply after the forced exit");
    }
  }
}

/// Every check of the kit.
inline void check_conformance(const conformance_case& c) {
  check_every_split(c);
  check_idle_stop(c);
  check_stop_at_every_byte(c);
  check_forced_exit(c);
  check_pending_service(c);
}

} // namespace quiesce::testing
