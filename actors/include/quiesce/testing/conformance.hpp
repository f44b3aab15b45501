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

#include <string>

#include "quiesce/testing/conformance_detail.hpp"

namespace quiesce::testing {

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
