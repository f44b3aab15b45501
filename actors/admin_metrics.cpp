// The text of `/metrics` (admin.hpp), made with prometheus-cpp's core: a
// registry filled from the values of one scrape, and its text serializer.

#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "actors/admin.hpp"
#include "actors/metrics.hpp"

namespace quiesce {

namespace {

double as_value(uint64_t x) {
  return static_cast<double>(x);
}

void counter(prometheus::Registry& reg, const char* name, const char* help,
             uint64_t value) {
  prometheus::BuildCounter()
    .Name(name)
    .Help(help)
    .Register(reg)
    .Add({})
    .Increment(as_value(value));
}

void gauge(prometheus::Registry& reg, const char* name, const char* help,
           double value) {
  prometheus::BuildGauge().Name(name).Help(help).Register(reg).Add({}).Set(
    value);
}

} // namespace

std::string metrics_text(const metrics_snapshot& x, const admin_values& v) {
  prometheus::Registry reg;
  gauge(reg, "quiesce_connections_open",
        "Client connections open now (accepted, not yet ended).",
        as_value(x.open));
  counter(reg, "quiesce_connections_accepted_total",
          "Client connections accepted.", x.accepted);
  counter(reg, "quiesce_connections_drained_total",
          "Client connections that finished cleanly during a stop or a "
          "reload's retire.",
          x.drained);
  counter(reg, "quiesce_connections_forced_total",
          "Client connections closed by force during a stop (drain "
          "deadline, second signal, write timeout).",
          x.forced);
  gauge(reg, "quiesce_stopping",
        "1 once a stop has begun (/readyz answers 503), else 0.",
        v.stopping ? 1 : 0);
  gauge(reg, "quiesce_last_stop_duration_seconds",
        "How long the drain of the server's stop took (0 before it is "
        "over).",
        v.last_stop_seconds);
  gauge(reg, "quiesce_workers",
        "Processes serving client connections (1 without --workers).",
        v.workers);
  counter(reg, "quiesce_worker_restarts_total",
          "Worker processes started again after an unexpected end.",
          v.restarts);
  if (v.unanswered)
    gauge(reg, "quiesce_workers_unanswered",
          "Workers that did not answer this scrape in time (their last "
          "known values are in the sums).",
          *v.unanswered);
  auto& requests = prometheus::BuildCounter()
                     .Name("quiesce_http_requests_total")
                     .Help("HTTP responses to clients, by status code.")
                     .Register(reg);
  for (size_t i = 0; i <= counted_statuses.size(); ++i) {
    auto count = i < x.responses.size() ? x.responses[i] : 0;
    if (i == counted_statuses.size() && count == 0)
      continue; // "other" only once there is one
    auto code = i < counted_statuses.size()
                  ? std::to_string(counted_statuses[i])
                  : std::string{"other"};
    requests.Add({{"code", code}}).Increment(as_value(count));
  }
  counter(reg, "quiesce_received_bytes_total",
          "Bytes read from client connections.", x.received_bytes);
  counter(reg, "quiesce_sent_bytes_total",
          "Bytes written to client connections.", x.sent_bytes);
  return prometheus::TextSerializer{}.Serialize(reg.Collect());
}

} // namespace quiesce
