#include "actors/metrics.hpp"

#include <algorithm>

namespace quiesce {

metrics_snapshot process_counters::snapshot() const {
  auto get = [](const std::atomic<uint64_t>& x) {
    return x.load(std::memory_order_relaxed);
  };
  metrics_snapshot result;
  result.accepted = get(accepted);
  result.open = get(open);
  result.drained = get(drained);
  result.forced = get(forced);
  result.received_bytes = get(received_bytes);
  result.sent_bytes = get(sent_bytes);
  result.responses.reserve(responses.size());
  for (auto& x : responses)
    result.responses.push_back(get(x));
  return result;
}

process_counters& counters_of_process() {
  static process_counters instance;
  return instance;
}

void add_counts(metrics_snapshot& sum, const metrics_snapshot& x,
                bool with_gauges) {
  sum.accepted += x.accepted;
  sum.drained += x.drained;
  sum.forced += x.forced;
  sum.received_bytes += x.received_bytes;
  sum.sent_bytes += x.sent_bytes;
  if (with_gauges)
    sum.open += x.open;
  if (sum.responses.size() < x.responses.size())
    sum.responses.resize(x.responses.size());
  for (size_t i = 0; i < x.responses.size(); ++i)
    sum.responses[i] += x.responses[i];
}

} // namespace quiesce
