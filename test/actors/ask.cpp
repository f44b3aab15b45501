#define CAF_SUITE actors.ask

// connection_io::ask: typed requests whose reply (or error, as text) comes
// to callbacks given with the request, in a real connection actor under
// CAF's fake multiplexer and the test coordinator.

#include <map>
#include <memory>
#include <string>

#include "actors/connection.hpp"

#include "test/actors/io_fixture.hpp"

using namespace quiesce;
using namespace quiesce::testing;

namespace {

/// How often other actors attached to a store (a monitor) and detached from
/// it (a demonitor that found its monitor).
struct watch_counts {
  int attached = 0;
  int detached = 0;
};

/// Holds each `(key)` request until `(release, key, n)`, then answers
/// `(key, n)`; answers `(int32_t)` with nothing, `(double)` with a string,
/// `(bool)` with an error. `stop` makes it quit, dropping the requests it
/// holds (as does any other end), without an answer: CAF 0.17 has no
/// broken-promise error. Counts monitors in `*counts`.
class store_actor : public caf::event_based_actor {
public:
  store_actor(caf::actor_config& cfg, std::shared_ptr<watch_counts> counts)
      : caf::event_based_actor(cfg), counts_(std::move(counts)) {}

  void attach(caf::attachable_ptr ptr) override {
    ++counts_->attached;
    caf::event_based_actor::attach(std::move(ptr));
  }

  size_t detach(const caf::attachable::token& what) override {
    auto n = caf::event_based_actor::detach(what);
    counts_->detached += static_cast<int>(n);
    return n;
  }

  void on_exit() override {
    // A held promise refers to this actor: dropped here, as by a crash.
    held_.clear();
  }

  caf::behavior make_behavior() override {
    return {
      [this](const std::string& key) -> caf::result<std::string, int64_t> {
        held_.emplace(key, make_response_promise());
        return caf::delegated<std::string, int64_t>{};
      },
      [this](release_atom, const std::string& key, int64_t n) {
        auto i = held_.find(key);
        if (i == held_.end())
          return;
        i->second.deliver(key, n);
        held_.erase(i);
      },
      [](int32_t) {
        // An empty reply.
      },
      [](double) { return std::string("not a number"); },
      [](bool) -> caf::error { return caf::sec::runtime_error; },
      [this](stop_atom) { quit(); },
    };
  }

private:
  std::shared_ptr<watch_counts> counts_;
  std::map<std::string, caf::response_promise> held_;
};

/// Each line is a command: `get KEY` asks for `(key)` and expects
/// `(std::string, int64_t)`; `other KEY` asks the same of the actor in
/// `*other` at that time; `void`, `wrong`, `fail` ask with an `int32_t`,
/// a `double` and a `bool`. Replies are written as `ASKED:KEY=N` (the key
/// the callback asked for, then the reply's), `void ok`, and
/// errors as `error: TEXT`. Counts the callbacks it gets in `*calls`.
class asking_behaviour final : public behaviour {
public:
  asking_behaviour(caf::actor store, std::shared_ptr<caf::actor> other,
                   std::shared_ptr<int> calls)
      : store_(std::move(store)), other_(std::move(other)),
        calls_(std::move(calls)) {}

  void on_data(std::string_view bytes, connection_io& io) override {
    for (auto c : bytes) {
      if (c != '\n') {
        line_ += c;
        continue;
      }
      command(line_, io);
      line_.clear();
    }
  }

  void on_stop(connection_io&) override {}

  bool idle() const override {
    // The framework counts the asks.
    return true;
  }

private:
  void command(const std::string& line, connection_io& io) {
    auto on_error = [this](const std::string& error, connection_io& conn) {
      ++*calls_;
      conn.write("error: " + error + "\n");
    };
    // `get KEY` waits 5 s for the reply, `quick KEY` 1 s. The callback
    // writes the key it asked for and the reply's values.
    auto get = line.rfind("get ", 0) == 0;
    auto other = line.rfind("other ", 0) == 0;
    if (get || other || line.rfind("quick ", 0) == 0) {
      auto asked = line.substr(get ? 4 : 6);
      auto timeout = std::chrono::seconds(get || other ? 5 : 1);
      io.ask<std::string, int64_t>(other ? *other_ : store_, timeout, asked)
        .then(
          [this, asked](const std::string& key, int64_t n,
                        connection_io& conn) {
            ++*calls_;
            conn.write(asked + ":" + key + "=" + std::to_string(n) + "\n");
          },
          on_error);
    } else if (line == "void") {
      io.ask<>(store_, std::chrono::seconds(5), int32_t{1})
        .then(
          [this](connection_io& conn) {
            ++*calls_;
            conn.write("void ok\n");
          },
          on_error);
    } else if (line == "wrong") {
      io.ask<int64_t>(store_, std::chrono::seconds(5), 1.5)
        .then(
          [this](int64_t, connection_io& conn) {
            ++*calls_;
            conn.write("wrong ok\n");
          },
          on_error);
    } else if (line == "fail") {
      io.ask<int64_t>(store_, std::chrono::seconds(5), true)
        .then(
          [this](int64_t, connection_io& conn) {
            ++*calls_;
            conn.write("fail ok\n");
          },
          on_error);
    }
  }

  caf::actor store_;
  std::shared_ptr<caf::actor> other_;
  std::shared_ptr<int> calls_;
  std::string line_;
};

struct fixture : io_fixture {
  connection_handle hdl;
  connection_actor conn;
  caf::actor store;
  std::shared_ptr<watch_counts> store_counts = std::make_shared<watch_counts>();
  /// The receiver of `other KEY` (none unless a test sets it).
  std::shared_ptr<caf::actor> other = std::make_shared<caf::actor>();
  /// How many callbacks of asks have run.
  std::shared_ptr<int> calls = std::make_shared<int>(0);

  fixture() {
    store = sys.spawn<store_actor>(store_counts);
  }

  ~fixture() override {
    caf::anon_send_exit(store, caf::exit_reason::kill);
    if (*other)
      caf::anon_send_exit(*other, caf::exit_reason::kill);
  }

  /// Accepts one client running `asking_behaviour` on `to`.
  void open(caf::actor to) {
    make_behaviour = [to, o = other, c = calls] {
      return std::make_unique<asking_behaviour>(to, o, c);
    };
    hdl = connect_client();
    CAF_REQUIRE_EQUAL(rec->connected.size(), 1u);
    conn = rec->connected.back();
  }

  void open() {
    open(store);
  }

  void release(const std::string& key, int64_t n) {
    caf::anon_send(store, release_atom_v, key, n);
    exhaust();
  }

  void stop() {
    caf::anon_send(conn, stop_atom_v);
    exhaust();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(ask_tests, fixture)

CAF_TEST(an ask delivers its typed reply to its callback) {
  open();
  client_sends(hdl, "get apples\n");
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_CHECK_EQUAL(*calls, 0);
  release("apples", 42);
  CAF_CHECK_EQUAL(output(hdl), "apples:apples=42\n");
  CAF_CHECK_EQUAL(*calls, 1);
}

CAF_TEST(two asks answered out of order each reach their own callback) {
  open();
  client_sends(hdl, "get a\nget b\n");
  release("b", 2);
  CAF_CHECK_EQUAL(output(hdl), "b:b=2\n");
  release("a", 1);
  CAF_CHECK_EQUAL(output(hdl), "b:b=2\na:a=1\n");
  CAF_CHECK_EQUAL(*calls, 2);
}

CAF_TEST(an ask with an empty reply calls its callback) {
  open();
  client_sends(hdl, "void\n");
  CAF_CHECK_EQUAL(output(hdl), "void ok\n");
  CAF_CHECK_EQUAL(*calls, 1);
}

CAF_TEST(an ask that times out calls its error callback with the timeout) {
  open();
  client_sends(hdl, "get slow\n");
  // The only timer is the ask's timeout.
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: request timed out after 5000ms\n");
  // The late reply finds no ask: dropped, no second callback.
  release("slow", 1);
  CAF_CHECK_EQUAL(output(hdl), "error: request timed out after 5000ms\n");
  CAF_CHECK_EQUAL(*calls, 1);
}

CAF_TEST(a shorter timeout after a longer one fails first and alone) {
  open();
  // One deadline check is under way per connection: for the 5 s ask, then
  // an earlier one for the 1 s ask.
  client_sends(hdl, "get a\nquick b\n");
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: request timed out after 1000ms\n");
  // The 5 s ask is still pending: its reply reaches its callback.
  release("a", 1);
  CAF_CHECK_EQUAL(output(hdl),
                  "error: request timed out after 1000ms\na:a=1\n");
  CAF_CHECK_EQUAL(*calls, 2);
  // The late reply to the one that timed out is dropped (and the store lets
  // go of the request: nothing is left held at the end of the test).
  release("b", 2);
  CAF_CHECK_EQUAL(*calls, 2);
}

CAF_TEST(asks with one deadline all time out at it in order) {
  open();
  client_sends(hdl, "get a\nget b\nget c\n");
  // Every timer of the test clock, until none is left: the asks' deadline
  // checks are all the timers there are.
  size_t fired = 0;
  while (sched.trigger_timeout()) {
    ++fired;
    exhaust();
  }
  CAF_CHECK_EQUAL(output(hdl), "error: request timed out after 5000ms\n"
                               "error: request timed out after 5000ms\n"
                               "error: request timed out after 5000ms\n");
  CAF_CHECK_EQUAL(*calls, 3);
  CAF_CHECK_EQUAL(fired, 1u);
  for (auto key : {"a", "b", "c"})
    release(key, 1); // dropped: nothing is left held
  CAF_CHECK_EQUAL(*calls, 3);
}

CAF_TEST(an ask to a receiver that is gone calls its error callback) {
  open();
  caf::anon_send_exit(store, caf::exit_reason::kill);
  exhaust();
  client_sends(hdl, "get a\n");
  CAF_CHECK_EQUAL(output(hdl), "error: the receiver is gone\n");
  CAF_CHECK_EQUAL(*calls, 1);
}

CAF_TEST(an ask to an invalid handle calls its error callback) {
  open(caf::actor{});
  client_sends(hdl, "get a\n");
  CAF_CHECK_EQUAL(output(hdl),
                  "error: the receiver is gone (the handle is invalid)\n");
  CAF_CHECK_EQUAL(*calls, 1);
}

CAF_TEST(an ask answered with other types calls its error callback) {
  open();
  client_sends(hdl, "wrong\n");
  CAF_CHECK_EQUAL(output(hdl), "error: the reply has other types than asked "
                               "for: (\"not a number\")\n");
  CAF_CHECK_EQUAL(*calls, 1);
}

CAF_TEST(an ask answered with an error calls its error callback with its text) {
  open();
  client_sends(hdl, "fail\n");
  CAF_CHECK_EQUAL(output(hdl),
                  "error: " + sys.render(caf::sec::runtime_error) + "\n");
  CAF_CHECK_EQUAL(*calls, 1);
}

CAF_TEST(a pending ask keeps the connection busy through a stop) {
  open();
  client_sends(hdl, "get a\n");
  stop();
  // The behaviour says idle, but its ask has no reply yet: no FIN, no done.
  CAF_CHECK_EQUAL(rec->done, 0);
  release("a", 1);
  // The reply is written, then the FIN and done.
  CAF_CHECK_EQUAL(output(hdl), "a:a=1\n");
  CAF_CHECK_EQUAL(rec->done, 1);
  peer_closes(conn, hdl);
  CAF_CHECK(terminated(conn));
}

CAF_TEST(a stop waits for every pending ask) {
  open();
  client_sends(hdl, "get a\nget b\n");
  stop();
  release("b", 2);
  CAF_CHECK_EQUAL(rec->done, 0);
  release("a", 1);
  CAF_CHECK_EQUAL(output(hdl), "b:b=2\na:a=1\n");
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a reply after the connection has closed is dropped) {
  open();
  client_sends(hdl, "get a\n");
  // A reset by the peer drops the work in flight and ends the actor.
  peer_closes(conn, hdl);
  CAF_REQUIRE(fire_timers_until([&] { return terminated(conn); }));
  release("a", 1);
  CAF_CHECK_EQUAL(*calls, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
}

CAF_TEST(a reply after a stop timed the ask out and sent the FIN is dropped) {
  open();
  client_sends(hdl, "get a\n");
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  // The ask's timeout is the only timer: its error is the last answer.
  CAF_REQUIRE(sched.trigger_timeout());
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: request timed out after 5000ms\n");
  CAF_CHECK_EQUAL(rec->done, 1);
  // The actor lingers for the peer; the late reply finds nothing to call.
  CAF_REQUIRE(!terminated(conn));
  release("a", 1);
  CAF_CHECK_EQUAL(*calls, 1);
  CAF_CHECK_EQUAL(output(hdl), "error: request timed out after 5000ms\n");
  peer_closes(conn, hdl);
  CAF_CHECK(terminated(conn));
}

CAF_TEST(a reply after a forced end is dropped) {
  open();
  client_sends(hdl, "get a\n");
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  exhaust();
  CAF_REQUIRE(fire_timers_until([&] { return terminated(conn); }));
  release("a", 1);
  CAF_CHECK_EQUAL(*calls, 0);
  CAF_CHECK_EQUAL(output(hdl), "");
  CAF_CHECK_EQUAL(rec->done, 0);
}

CAF_TEST(asks held by a receiver that quits fail at once) {
  open();
  client_sends(hdl, "get a\nget b\n");
  CAF_CHECK_EQUAL(output(hdl), "");
  // The store quits holding both requests (in promises, not in its
  // mailbox): CAF answers neither. The connection's monitor fails them,
  // without a timer firing.
  caf::anon_send(store, stop_atom_v);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: the receiver is gone\n"
                               "error: the receiver is gone\n");
  CAF_CHECK_EQUAL(*calls, 2);
  // Nothing is pending: a stop ends the connection at once.
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(an ask held by a receiver that crashes fails at once) {
  open();
  client_sends(hdl, "get a\n");
  caf::anon_send_exit(store, caf::exit_reason::kill);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: the receiver is gone\n");
  CAF_CHECK_EQUAL(*calls, 1);
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
  peer_closes(conn, hdl);
  CAF_CHECK(terminated(conn));
}

CAF_TEST(only the asks to the receiver that ended fail) {
  auto other_counts = std::make_shared<watch_counts>();
  *other = sys.spawn<store_actor>(other_counts);
  open();
  client_sends(hdl, "get a\nother b\nget c\nother d\n");
  caf::anon_send_exit(*other, caf::exit_reason::kill);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: the receiver is gone\n"
                               "error: the receiver is gone\n");
  CAF_CHECK_EQUAL(*calls, 2);
  // The store's asks are still pending and get their replies.
  stop();
  CAF_CHECK_EQUAL(rec->done, 0);
  release("c", 3);
  release("a", 1);
  CAF_CHECK_EQUAL(output(hdl), "error: the receiver is gone\n"
                               "error: the receiver is gone\n"
                               "c:c=3\na:a=1\n");
  CAF_CHECK_EQUAL(*calls, 4);
  CAF_CHECK_EQUAL(rec->done, 1);
}

CAF_TEST(a receiver started anew after one ended is watched too) {
  auto first_counts = std::make_shared<watch_counts>();
  *other = sys.spawn<store_actor>(first_counts);
  open();
  client_sends(hdl, "other a\n");
  caf::anon_send_exit(*other, caf::exit_reason::kill);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: the receiver is gone\n");
  // A restart: a new actor, monitored on the first ask to it.
  auto second_counts = std::make_shared<watch_counts>();
  *other = sys.spawn<store_actor>(second_counts);
  client_sends(hdl, "other b\n");
  CAF_CHECK_EQUAL(second_counts->attached, 1);
  caf::anon_send_exit(*other, caf::exit_reason::kill);
  exhaust();
  CAF_CHECK_EQUAL(output(hdl), "error: the receiver is gone\n"
                               "error: the receiver is gone\n");
  CAF_CHECK_EQUAL(*calls, 2);
}

CAF_TEST(many asks to one receiver share one monitor that ends with the actor) {
  open();
  auto before = store_counts->attached;
  std::string batch;
  for (int i = 0; i < 100; ++i)
    batch += "get k" + std::to_string(i) + "\n";
  client_sends(hdl, batch);
  CAF_CHECK_EQUAL(store_counts->attached - before, 1);
  for (int i = 0; i < 100; ++i)
    release("k" + std::to_string(i), i);
  CAF_CHECK_EQUAL(*calls, 100);
  // Nothing pending, the monitor stays: no new one for the next ask.
  client_sends(hdl, "get x\n");
  release("x", 1);
  CAF_CHECK_EQUAL(store_counts->attached - before, 1);
  CAF_CHECK_EQUAL(store_counts->detached, 0);
  // The connection ends: its monitor leaves the store (else it would keep
  // the ended actor's memory for as long as the store lives).
  stop();
  CAF_CHECK_EQUAL(rec->done, 1);
  peer_closes(conn, hdl);
  CAF_REQUIRE(terminated(conn));
  CAF_CHECK_EQUAL(store_counts->detached, 1);
}

CAF_TEST(receivers without a pending ask stop being watched as more come) {
  open();
  client_sends(hdl, "get a\n");
  // Eight more receivers, one ask each, answered at once: the ninth
  // receiver in the list finds it full and prunes it first.
  std::vector<caf::actor> others;
  std::vector<std::shared_ptr<watch_counts>> counts;
  for (int i = 0; i < 8; ++i) {
    counts.push_back(std::make_shared<watch_counts>());
    others.push_back(sys.spawn<store_actor>(counts.back()));
    *other = others.back();
    client_sends(hdl, "other k\n");
    caf::anon_send(others.back(), release_atom_v, std::string("k"), int64_t{i});
    exhaust();
  }
  CAF_CHECK_EQUAL(*calls, 8);
  for (int i = 0; i < 7; ++i) {
    CAF_CHECK_EQUAL(counts[i]->attached, 1);
    CAF_CHECK_EQUAL(counts[i]->detached, 1);
  }
  CAF_CHECK_EQUAL(counts[7]->detached, 0);
  // The store's ask is pending: it is still watched.
  CAF_CHECK_EQUAL(store_counts->detached, 0);
  caf::anon_send_exit(store, caf::exit_reason::kill);
  exhaust();
  CAF_CHECK_EQUAL(*calls, 9);
  auto out = output(hdl);
  CAF_CHECK(out.size() >= 28
            && out.compare(out.size() - 28, 28, "error: the receiver is gone\n")
                 == 0);
  for (size_t i = 0; i + 1 < others.size(); ++i)
    caf::anon_send_exit(others[i], caf::exit_reason::kill);
}

CAF_TEST_FIXTURE_SCOPE_END()
