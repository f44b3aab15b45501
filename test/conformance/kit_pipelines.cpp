#define CAF_SUITE conformance.kit_pipelines

// The kit's own tests for pipelines and a request to a service pending at a
// stop: it passes a pipelining behaviour that keeps the promise and catches
// each way of breaking it.

#include "quiesce/testing/conformance.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quiesce/ordered_replies.hpp"

using namespace quiesce;
using namespace quiesce::testing;

namespace {

/// The typed handle of the store service, for a typed look-up.
using store_handle
  = caf::typed_actor<caf::replies_to<std::string>::with<std::string>>;

/// Asks a service on behalf of a connection and pushes the reply to it
/// (`deliver_atom`): the connection does not know that a request is
/// pending.
class asking_worker : public caf::event_based_actor {
public:
  asking_worker(caf::actor_config& cfg, caf::actor svc, connection_actor conn,
                std::string key)
      : caf::event_based_actor(cfg), svc_(std::move(svc)),
        conn_(std::move(conn)), key_(std::move(key)) {}

  caf::behavior make_behavior() override {
    request(svc_, caf::infinite, key_).then([this](std::string& value) {
      caf::anon_send(conn_, deliver_atom_v, caf::make_message(key_, value));
      quit();
    });
    return {};
  }

private:
  caf::actor svc_;
  connection_actor conn_;
  std::string key_;
};

/// A pipelining line protocol: `slow` is answered by a timer after 20 ms,
/// `fast` after 10 ms, `get KEY` by the service "store" (`KEY=VALUE`), any
/// other line at once (`> LINE`); the replies go out in request order.
/// Busy while part of a line is buffered or a reply is owed. A defect can
/// be switched on.
class pipelined_line final : public behaviour {
public:
  enum class defect {
    none,
    /// Writes each reply as soon as it is known, not in request order.
    out_of_order,
    /// On a stop, finishes the reply at the front and drops the others.
    drops_queued_at_stop,
    /// Asks the service through a worker it does not count as work in
    /// flight: idle while the reply is owed.
    idle_while_asking,
  };

  /// With `typed`, it looks the store up as a `store_handle`.
  explicit pipelined_line(defect d = defect::none, bool typed = false)
      : defect_(d), typed_(typed) {}

  void on_data(std::string_view bytes, connection_io& io) override {
    for (auto c : bytes) {
      if (c != '\n') {
        partial_ += c;
        continue;
      }
      command(partial_, io);
      partial_.clear();
    }
    write_ready(io);
  }

  void on_timer(uint64_t slot, connection_io& io) override {
    fill(slot, timed_.count(slot) ? timed_[slot] : "", io);
  }

  void on_message(caf::message& msg, connection_io& io) override {
    // The worker's reply (idle_while_asking).
    if (msg.match_elements<std::string, std::string>())
      io.write(msg.get_as<std::string>(0) + "=" + msg.get_as<std::string>(1)
               + "\n");
  }

  void on_stop(connection_io&) override {
    stopping_ = true;
  }

  bool idle() const override {
    return partial_.empty() && replies_.empty();
  }

private:
  void command(const std::string& line, connection_io& io) {
    if (line.rfind("get ", 0) == 0) {
      auto key = line.substr(4);
      if (defect_ == defect::idle_while_asking) {
        io.system().spawn<asking_worker>(io.service("store"), io.handle(), key);
        return;
      }
      auto slot = replies_.reserve();
      auto store
        = typed_
            ? caf::actor_cast<caf::actor>(io.service<store_handle>("store"))
            : io.service("store");
      io.ask<std::string>(store, std::chrono::seconds(5), key)
        .then(
          [this, slot, key](const std::string& value, connection_io& conn) {
            fill(slot, key + "=" + value + "\n", conn);
          },
          [this, slot](const std::string& error, connection_io& conn) {
            fill(slot, "error: " + error + "\n", conn);
          });
      return;
    }
    auto slot = replies_.reserve();
    if (line == "slow" || line == "fast") {
      timed_[slot] = line + " done\n";
      io.start_timer(std::chrono::milliseconds(line == "slow" ? 20 : 10), slot);
    } else {
      fill(slot, "> " + line + "\n", io);
    }
  }

  void fill(uint64_t slot, std::string reply, connection_io& io) {
    timed_.erase(slot);
    if (defect_ == defect::out_of_order) {
      io.write(reply);
      reply.clear();
    }
    replies_.fill(slot, std::move(reply));
    write_ready(io);
  }

  void write_ready(connection_io& io) {
    replies_.take_ready([&](std::string& reply) {
      io.write(reply);
      if (stopping_ && defect_ == defect::drops_queued_at_stop) {
        replies_.clear();
        return take_step::last;
      }
      return take_step::next;
    });
  }

  defect defect_;
  bool typed_;
  bool stopping_ = false;
  std::string partial_;
  ordered_replies<std::string> replies_;
  std::map<uint64_t, std::string> timed_;
};

conformance_case pipeline_case(pipelined_line::defect d
                               = pipelined_line::defect::none) {
  conformance_case c;
  c.make = [d] { return std::make_unique<pipelined_line>(d); };
  c.pipeline = {{"slow\n", "slow done\n", ""},
                {"get a\n", "a=value\n", ""},
                {"fast\n", "fast done\n", ""},
                {"hi\n", "> hi\n", ""}};
  c.service.name = "store";
  c.service.reply = [](const caf::message&) {
    return caf::make_message(std::string("value"));
  };
  c.service.asking = {"get k\n", "k=value\n", ""};
  return c;
}

} // namespace

CAF_TEST(a pipelining behaviour that keeps the promise passes every check) {
  collect_verdicts verdicts;
  check_conformance(pipeline_case());
  CAF_CHECK_EQUAL(verdicts.failures, std::vector<std::string>{});
  CAF_CHECK_GREATER(verdicts.passed, 150u);
}

CAF_TEST(replies out of request order are caught) {
  collect_verdicts verdicts;
  check_conformance(pipeline_case(pipelined_line::defect::out_of_order));
  CAF_CHECK(verdicts.failed_with(
    "pipeline sent whole: output \"> hi\\na=value\\nfast done\\nslow "
    "done\\n\" but want \"slow done\\na=value\\nfast done\\n> hi\\n\""));
  CAF_CHECK(verdicts.failed_with("pipeline split at byte 7: output"));
}

CAF_TEST(a pipelined reply dropped at a stop is caught) {
  collect_verdicts verdicts;
  check_conformance(
    pipeline_case(pipelined_line::defect::drops_queued_at_stop));
  CAF_CHECK(verdicts.failed_with(
    "stop after 19 of 19 bytes, 4 of 4 requests complete (busy): output "
    "\"slow done\\n\" but want \"slow done\\na=value\\nfast done\\n> hi\\n\""));
}

CAF_TEST(a close before the pending service reply is caught) {
  collect_verdicts verdicts;
  check_conformance(pipeline_case(pipelined_line::defect::idle_while_asking));
  CAF_CHECK(
    verdicts.failed_with("service \"store\" holds the request at the "
                         "stop: no done (FIN) while the reply is owed"));
  CAF_CHECK(verdicts.failed_with(
    "service \"store\" holds the request at the stop, after the reply: "
    "output \"\" but want \"k=value\\n\""));
  CAF_CHECK(
    verdicts.failed_with("service \"store\" never answers the "
                         "request held at the stop, forced at the "
                         "drain deadline: aborted, with user_shutdown"));
}

CAF_TEST(a typed lookup finds the stand in under its declared type) {
  auto c = pipeline_case();
  c.make = [] {
    return std::make_unique<pipelined_line>(pipelined_line::defect::none, true);
  };
  {
    collect_verdicts verdicts;
    c.service.handle_type = typeid(store_handle);
    check_conformance(c);
    CAF_CHECK_EQUAL(verdicts.failures, std::vector<std::string>{});
  }
  {
    // Declared untyped: the typed look-up finds nothing, the ask fails.
    collect_verdicts verdicts;
    c.service.handle_type = typeid(caf::actor);
    check_conformance(c);
    CAF_CHECK(verdicts.failed_with(
      "service \"store\", answered: the behaviour asked the service"));
  }
}
