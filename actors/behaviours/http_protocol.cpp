// HTTP as a protocol of the registry (quiesce/http.hpp, registry.hpp): its
// options, their rules, and the behaviour each connection gets.

#include "quiesce/http.hpp"

#include <memory>
#include <utility>

#include "caf/config_option_adder.hpp"

#include "quiesce/options.hpp"
#include "quiesce/registry.hpp"

#include "actors/behaviours/http_behaviour.hpp"
#include "actors/metrics.hpp"

namespace quiesce::behaviours {

namespace {

using namespace std::chrono_literals;

/// Declares the options, bound to `opts`: the server's parse stores every
/// value given there, before the first connection.
void declare(caf::config_option_set& set, http_options& opts) {
  caf::config_option_adder{set, "http"}
    .add(opts.max_body, "max-body",
         "largest request body accepted in bytes, larger ones get 413 "
         "(default: 1048576)")
    .add(opts.header_timeout, "header-timeout",
         "how long a request's header section may take from its first byte, "
         "then 408 and close; 0s: no limit (default: 10s)")
    .add(opts.body_timeout, "body-timeout",
         "longest time between two reads of a request body, then 408 and "
         "close; 0s: no limit (default: 60s)");
}

std::vector<options::rule> rules() {
  return {
    options::integer_rule("http.max-body", 0, max_http_body),
    options::duration_rule("http.header-timeout", 0s, options::max_timeout,
                           "0s: no limit"),
    options::duration_rule("http.body-timeout", 0s, options::max_timeout,
                           "0s: no limit"),
  };
}

} // namespace

std::unique_ptr<behaviour> make_http(http_options opts) {
  return std::make_unique<http_behaviour>(opts);
}

void add_http_protocol() {
  // Where the parsed options land; every connection's behaviour copies them.
  auto opts = std::make_shared<http_options>();
  // The protocol of the server's clients: its responses are counted.
  opts->counters = &counters_of_process();
  add_protocol(
    "http", [opts] { return make_http(*opts); },
    {[opts](caf::config_option_set& set) { declare(set, *opts); }, rules()});
}

} // namespace quiesce::behaviours
