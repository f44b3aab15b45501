#pragma once

/// @file
/// The conformance kit's cases: what a protocol tells the kit
/// (conformance.hpp has what the kit checks with them).

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

} // namespace quiesce::testing
