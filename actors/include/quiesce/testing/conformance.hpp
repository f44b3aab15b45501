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
/// fires them), with a fresh actor system per scenario. Given one complete
/// request and its response, the kit checks:
///
/// - every split: the request sent in two pieces, split at every byte, and
///   one byte at a time, gets the same response as sent whole;
/// - stop while idle closes at once: a connection that has sent nothing, and
///   a connection whose work is answered, report `done` (FIN) on `stop`
///   without writing anything more;
/// - stop at every byte: a stop after each prefix of the request either
///   finds the behaviour idle, and then nothing is owed (the output equals
///   what that prefix gets without a stop, and nothing follows), or busy, and
///   then the rest of the request (and the timers it started) finishes it:
///   the output is the response to a request in flight at a stop, then FIN
///   (and a request half received must be in flight, unless the case says
///   the protocol answers every byte at once);
/// - a forced exit aborts work in flight: the actor ends with
///   `user_shutdown`, without `done` and without writing anything more,
///   whether the connection is serving (a request half received) or busy
///   draining a stop; a connection with nothing in flight (before any input,
///   or with its request answered) closes cleanly instead: `done`, a normal
///   end, nothing more written.
///
/// The scenarios run on `broker_fixture` (broker_fixture.hpp), which is also
/// usable on its own for a behaviour's own tests.

#include <algorithm>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "caf/test/io_dsl.hpp"

#include "quiesce/behaviour.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/testing/broker_fixture.hpp"

namespace quiesce::testing {

/// What the kit needs to know of a protocol: one complete request and what
/// it must get.
struct conformance_case {
  /// Makes the behaviour under test.
  behaviour_factory make;
  /// A complete request. If it starts timers or requests, they must end:
  /// the kit fires timers until the response is complete.
  std::string request;
  /// Its response, after `normalize`.
  std::string response;
  /// Its response when a stop arrived while it was in flight (e.g. with
  /// `Connection: close`), after `normalize`; empty: the same as `response`.
  std::string response_at_stop;
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

/// A fixture with one client connected, for one scenario.
struct scenario : broker_fixture {
  connection_handle hdl;
  connection_actor conn;
  const conformance_case& kase;

  explicit scenario(const conformance_case& c)
      : broker_fixture(c.make), kase(c) {
    hdl = connect_client();
    if (rec->connected.size() != 1)
      throw std::logic_error("the acceptor started no connection actor");
    conn = rec->connected.back();
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

inline std::string response_at_stop(const conformance_case& c) {
  return c.response_at_stop.empty() ? c.response : c.response_at_stop;
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

} // namespace detail

/// The request sent in two pieces split at every byte, and one byte at a
/// time, gets the same response as sent whole.
inline void check_every_split(const conformance_case& c) {
  using namespace detail;
  auto& req = c.request;
  for (size_t i = 1; i <= req.size(); ++i) {
    scenario s{c};
    s.client_sends(s.hdl, std::string_view{req}.substr(0, i));
    s.client_sends(s.hdl, std::string_view{req}.substr(i));
    s.finish_work(c.response);
    verify_output(s.out(), c.response,
                  i == req.size()
                    ? "request sent whole"
                    : "request split at byte " + std::to_string(i));
  }
  scenario s{c};
  for (auto ch : req)
    s.client_sends(s.hdl, std::string_view{&ch, 1});
  s.finish_work(c.response);
  verify_output(s.out(), c.response, "request sent one byte at a time");
}

/// `stop` on a connection that has sent nothing, and on one whose request
/// is answered, reports `done` at once and writes nothing more.
inline void check_idle_stop(const conformance_case& c) {
  using namespace detail;
  {
    scenario s{c};
    s.stop();
    verify(s.done(), "stop before any input: done (FIN) at once");
    verify_output(s.out(), "", "stop before any input");
    verify_clean_close(s, "stop before any input");
  }
  {
    scenario s{c};
    s.client_sends(s.hdl, c.request);
    s.finish_work(c.response);
    s.stop();
    verify(s.done(), "stop after the response: done (FIN) at once");
    verify_output(s.out(), c.response, "stop after the response");
    verify_clean_close(s, "stop after the response");
  }
}

/// A stop after every prefix of the request: idle means nothing is owed,
/// busy means the rest of the request finishes it and then the connection
/// closes; with `busy_while_partial`, every stop after part of the request
/// must find it busy. Returns how many prefixes found the behaviour busy.
inline size_t check_stop_at_every_byte(const conformance_case& c) {
  using namespace detail;
  auto& req = c.request;
  size_t busy = 0;
  for (size_t i = 0; i <= req.size(); ++i) {
    auto where = "stop after " + std::to_string(i) + " of "
                 + std::to_string(req.size()) + " bytes";
    auto prefix = std::string_view{req}.substr(0, i);
    auto rest = std::string_view{req}.substr(i);
    auto owed = output_without_stop(c, prefix);
    scenario s{c};
    s.client_sends(s.hdl, prefix);
    s.stop();
    auto partial = i > 0 && i < req.size();
    if (s.done()) {
      verify(!partial || !c.busy_while_partial,
             where
               + ": a request half received at the stop is in flight, "
                 "but the behaviour said idle");
      // Idle at the stop: it must not have owed anything.
      verify_output(s.out(), owed, where + " (idle)");
      s.client_sends(s.hdl, rest);
      s.fire_timers_until([] { return false; }, 100);
      verify_output(s.out(), owed, where + " (idle), after more input");
    } else {
      ++busy;
      s.client_sends(s.hdl, rest);
      auto want = response_at_stop(c);
      s.fire_timers_until([&] { return s.done(); });
      verify(s.done(), where + " (busy): done once the request finished");
      verify_output(s.out(), want, where + " (busy)");
    }
    verify_clean_close(s, where);
  }
  return busy;
}

/// A forced exit aborts work in flight: while serving a request half
/// received, and while a stop waits for work in flight (the first prefix of
/// the request that leaves the behaviour busy). With nothing in flight
/// (before any input, or once the request is answered) it closes cleanly.
inline void check_forced_exit(const conformance_case& c) {
  using namespace detail;
  auto force = [](scenario& s, const std::string& where, bool in_flight) {
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
  };
  {
    scenario s{c};
    force(s, "forced before any input", false);
  }
  {
    scenario s{c};
    s.client_sends(s.hdl, c.request);
    s.finish_work(c.response);
    force(s, "forced with the request answered", false);
  }
  if (c.busy_while_partial && c.request.size() >= 2) {
    scenario s{c};
    s.client_sends(s.hdl,
                   std::string_view{c.request}.substr(0, c.request.size() / 2));
    force(s, "forced while serving a request half received", true);
  }
  for (size_t i = 1; i <= c.request.size(); ++i) {
    scenario s{c};
    s.client_sends(s.hdl, std::string_view{c.request}.substr(0, i));
    s.stop();
    if (s.done())
      continue;
    force(s, "forced while draining after " + std::to_string(i) + " bytes",
          true);
    return;
  }
  verify(!c.busy_while_partial || c.request.size() < 2,
         "forced while draining: no stop found the behaviour busy");
}

/// Every check of the kit.
inline void check_conformance(const conformance_case& c) {
  check_every_split(c);
  check_idle_stop(c);
  check_stop_at_every_byte(c);
  check_forced_exit(c);
}

} // namespace quiesce::testing
