// The master's `metrics` (master.hpp): the sum of its workers' counters.

#include <memory>
#include <utility>

#include "actors/master.hpp"
#include "actors/metrics.hpp"

namespace quiesce {

namespace {

/// One scrape's sum, answered once every worker asked has answered or
/// failed to.
struct metrics_round {
  metrics_snapshot sum;
  size_t waiting = 0;
  caf::typed_response_promise<metrics_snapshot> rp;

  void one_less() {
    if (--waiting == 0)
      rp.deliver(std::move(sum));
  }
};

} // namespace

void collect_metrics(master_pointer self,
                     caf::typed_response_promise<metrics_snapshot> rp) {
  auto& st = self->state;
  auto round = std::make_shared<metrics_round>();
  round->sum = st.ended;
  round->rp = std::move(rp);
  if (st.workers.empty()) {
    round->rp.deliver(std::move(round->sum));
    return;
  }
  round->waiting = st.workers.size();
  for (auto& [id, entry] : st.workers) {
    // Its values as they are now: if it ends before it answers, its down
    // message moves them to `ended`, which this round copied already.
    self->request(entry.handle, st.cfg.metrics_timeout, metrics_atom_v)
      .then(
        [self, round, id = id](metrics_snapshot& x) {
          auto i = self->state.workers.find(id);
          if (i != self->state.workers.end())
            i->second.last = x;
          add_counts(round->sum, x, true);
          round->one_less();
        },
        [round, last = entry.last](caf::error&) {
          // Served with what is known of it, and said so.
          add_counts(round->sum, last, true);
          ++round->sum.unanswered;
          round->one_less();
        });
  }
}

void poll_metrics(master_pointer self, uint32_t id) {
  auto& st = self->state;
  auto i = st.workers.find(id);
  if (i == st.workers.end())
    return;
  self->request(i->second.handle, st.cfg.poll_interval, metrics_atom_v)
    .then(
      [self, id](metrics_snapshot& x) {
        auto j = self->state.workers.find(id);
        if (j != self->state.workers.end())
          j->second.last = std::move(x);
      },
      [](caf::error&) {});
}

} // namespace quiesce
