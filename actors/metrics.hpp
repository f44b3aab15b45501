#pragma once

/// @file
/// The process's counters for the admin endpoint's `/metrics` (admin.hpp):
/// relaxed atomics, one set per process (`process_counters()`), counted
/// where the events happen.
///
/// Why atomics and not per-actor counts collected on request: every client
/// connection actor would otherwise have to be asked (thousands of
/// messages per scrape, and a connection that ends takes its counts with
/// it). A relaxed `fetch_add` on a counter that only the one I/O thread
/// writes costs a few nanoseconds and never contends; the admin reads
/// them from another thread without a lock. Counters are only counted
/// where a component is given them (`acceptor_config::counters`,
/// `connection_config::counters`, `supervisor_config::counters`,
/// `http_options::counters`): the server's client listener gets them, the
/// admin endpoint's own listener does not, so that scraping does not count
/// itself.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "quiesce/messages.hpp"

namespace quiesce {

/// The HTTP statuses counted one by one (what the HTTP behaviour answers);
/// any other is counted in the slot after them, shown as `code="other"`.
constexpr std::array<uint16_t, 12> counted_statuses{
  200, 400, 404, 405, 408, 413, 414, 417, 431, 501, 503, 505};

/// The slot of `status` in `metrics_snapshot::responses`.
constexpr size_t status_slot(int status) {
  for (size_t i = 0; i < counted_statuses.size(); ++i)
    if (counted_statuses[i] == status)
      return i;
  return counted_statuses.size();
}

/// The counters of one process. Every operation is a relaxed atomic.
struct process_counters {
  /// Connections accepted on the client listener.
  std::atomic<uint64_t> accepted{0};
  /// Connections accepted (counted by the acceptor at once) whose end the
  /// supervisor has not seen yet.
  std::atomic<uint64_t> open{0};
  /// Connections that drained at a stop or a retire (supervisor.hpp says
  /// what counts as drained or forced).
  std::atomic<uint64_t> drained{0};
  std::atomic<uint64_t> forced{0};
  /// Bytes read from client connections, and written to them by their
  /// behaviour.
  std::atomic<uint64_t> received_bytes{0};
  std::atomic<uint64_t> sent_bytes{0};
  /// HTTP responses by `status_slot`.
  std::array<std::atomic<uint64_t>, counted_statuses.size() + 1> responses{};

  static void add(std::atomic<uint64_t>& x, uint64_t n = 1) {
    x.fetch_add(n, std::memory_order_relaxed);
  }

  void count_response(int status) {
    add(responses[status_slot(status)]);
  }

  void connection_ended() {
    open.fetch_sub(1, std::memory_order_relaxed);
  }

  /// The values now (each read on its own: not one instant, as any scrape).
  metrics_snapshot snapshot() const;
};

/// The counters of this process.
process_counters& counters_of_process();

/// Adds the counters of `x` to `sum` (and `open` too if `with_gauges`: a
/// worker that is gone holds no connection any more).
void add_counts(metrics_snapshot& sum, const metrics_snapshot& x,
                bool with_gauges);

} // namespace quiesce
