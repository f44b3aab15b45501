// A server binary for the services tests (test/binary/services.cpp): the
// library's run_server with a test protocol, `svc`, and test services. The
// first argument picks the services, `--services=MODE`, and is taken off
// the command line before run_server sees it:
//
// - `restart`: `counter`, restarted on a crash (5 in 10 s, deadline 2 s),
//   and `aux`, the same;
// - `fatal`: `counter`, whose crash stops the server;
// - `slow`: `counter` and `slow` (declared last, so stopped first), which
//   ignores its stop; deadline 300 ms;
// - `stubborn`: `counter` and `stubborn`, which also ignores the forced
//   exit (it traps exits); deadline 300 ms;
// - `broken`: `counter` and `broken`, whose spawn function throws.
// With `--workers=N` each worker process gets the mode too (through the
// environment variable `QUIESCE_TEST_SERVICES`).
//
// `svc` reads lines and answers each with one line:
// - `gen NAME`: asks the service; its answer is `gen=G`, G counting the
//   spawns of that service (2 after one restart);
// - `crash NAME`: the service throws in its handler; answers `sent`;
// - `wait NAME MS`: the service logs `test-service NAME: holding` and
//   answers `waited` after MS milliseconds;
// - `block MS`: sleeps MS milliseconds in the connection's callback, on the
//   I/O event loop's thread (a wedged event loop), then answers
//   `unblocked`;
// a failed request answers `error: TEXT`, an unknown service `no service`.

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/response_promise.hpp"
#include "caf/send.hpp"

#include "quiesce/behaviour.hpp"
#include "quiesce/log.hpp"
#include "quiesce/messages.hpp"
#include "quiesce/registry.hpp"
#include "quiesce/server.hpp"
#include "quiesce/service.hpp"

namespace {

using namespace std::chrono_literals;

enum class stop_mode { quit, ignore, ignore_and_trap };

caf::behavior test_service(caf::event_based_actor* self, std::string name,
                           int generation, stop_mode mode) {
  if (mode == stop_mode::ignore_and_trap)
    self->set_exit_handler([self, name](caf::exit_msg& msg) {
      quiesce::log::info("test-service " + name,
                         "ignoring exit " + to_string(msg.reason));
    });
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  return {
    [self, name, mode](quiesce::stop_atom) {
      if (mode == stop_mode::quit) {
        self->quit();
        return;
      }
      quiesce::log::info("test-service " + name, "ignoring stop");
    },
    [self, name, generation,
     held](std::string& cmd) -> caf::result<std::string> {
      if (cmd == "gen")
        return "gen=" + std::to_string(generation);
      if (cmd == "crash")
        throw std::runtime_error("crash requested");
      if (cmd.rfind("wait ", 0) == 0) {
        held->push_back(self->make_response_promise());
        quiesce::log::info("test-service " + name, "holding");
        self->delayed_send(self,
                           std::chrono::milliseconds(std::stoi(cmd.substr(5))),
                           caf::ok_atom_v);
        return caf::delegated<std::string>{};
      }
      return "unknown";
    },
    [held](caf::ok_atom) {
      if (held->empty())
        return;
      held->front().deliver(std::string{"waited"});
      held->erase(held->begin());
    },
  };
}

void add_test_service(std::string name, stop_mode mode,
                      quiesce::service_options opts) {
  auto spawns = std::make_shared<std::atomic<int>>(0);
  quiesce::add_service(
    name,
    [name, mode, spawns](caf::actor_system& sys) {
      return sys.spawn(test_service, name, ++*spawns, mode);
    },
    opts);
}

class svc_protocol : public quiesce::behaviour {
public:
  void on_data(std::string_view bytes, quiesce::connection_io& io) override {
    buf_.append(bytes);
    size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      auto line = buf_.substr(0, pos);
      buf_.erase(0, pos + 1);
      handle(line, io);
    }
  }

  void on_stop(quiesce::connection_io&) override {}

  bool idle() const override {
    return true;
  }

  void on_reply(uint64_t, caf::message& reply,
                quiesce::connection_io& io) override {
    if (reply.match_elements<std::string>())
      io.write(reply.get_as<std::string>(0) + "\n");
    else
      io.write("error: reply of another type\n");
  }

  void on_reply_error(uint64_t, const caf::error& err,
                      quiesce::connection_io& io) override {
    io.write("error: " + io.system().render(err) + "\n");
  }

private:
  void handle(const std::string& line, quiesce::connection_io& io) {
    auto words = split(line);
    if (words.size() == 2 && words[0] == "block") {
      // Holds the event loop's thread, as a behaviour doing heavy work in
      // its callback would: nothing else of the I/O loop runs meanwhile
      // (binary.systemd: the watchdog's pings must stop).
      std::this_thread::sleep_for(
        std::chrono::milliseconds(std::atoi(words[1].c_str())));
      io.write("unblocked\n");
      return;
    }
    if (words.size() < 2) {
      io.write("bad command\n");
      return;
    }
    auto svc = io.service(words[1]);
    if (!svc) {
      io.write("no service\n");
      return;
    }
    if (words[0] == "gen") {
      io.request<std::string>(svc, 10s, ++token_, std::string{"gen"});
    } else if (words[0] == "crash") {
      caf::anon_send(svc, std::string{"crash"});
      io.write("sent\n");
    } else if (words[0] == "wait" && words.size() == 3) {
      io.request<std::string>(svc, 10s, ++token_, "wait " + words[2]);
    } else {
      io.write("bad command\n");
    }
  }

  static std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> result;
    size_t i = 0;
    while (i < line.size()) {
      auto j = line.find(' ', i);
      if (j == std::string::npos)
        j = line.size();
      if (j > i)
        result.push_back(line.substr(i, j - i));
      i = j + 1;
    }
    return result;
  }

  std::string buf_;
  uint64_t token_ = 0;
};

} // namespace

int main(int argc, char** argv) {
  quiesce::block_server_signals();
  std::string mode = "restart";
  // A worker process (`--workers=N`) runs this binary again with the
  // arguments run_server saw, without the flag: the mode reaches it through
  // the environment, which a master hands on to its workers.
  constexpr const char* mode_variable = "QUIESCE_TEST_SERVICES";
  std::vector<char*> args{argv, argv + argc};
  constexpr std::string_view flag = "--services=";
  if (args.size() > 1
      && std::string_view{args[1]}.substr(0, flag.size()) == flag) {
    mode = args[1] + flag.size();
    args.erase(args.begin() + 1);
  } else if (auto* inherited = std::getenv(mode_variable)) {
    mode = inherited;
  }
  ::setenv(mode_variable, mode.c_str(), 1);
  quiesce::add_protocol("svc", [] { return std::make_unique<svc_protocol>(); });
  quiesce::service_options counter_opts;
  counter_opts.stop_deadline = 2s;
  if (mode == "fatal")
    counter_opts.on_crash = quiesce::crash_policy::stop_server;
  add_test_service("counter", stop_mode::quit, counter_opts);
  if (mode == "restart")
    add_test_service("aux", stop_mode::quit, counter_opts);
  quiesce::service_options slow_opts;
  slow_opts.stop_deadline = 300ms;
  if (mode == "slow")
    add_test_service("slow", stop_mode::ignore, slow_opts);
  if (mode == "stubborn")
    add_test_service("stubborn", stop_mode::ignore_and_trap, slow_opts);
  if (mode == "broken")
    quiesce::add_service("broken", [](caf::actor_system&) -> caf::actor {
      throw std::runtime_error("no backend");
    });
  return quiesce::run_server(static_cast<int>(args.size()), args.data());
}
