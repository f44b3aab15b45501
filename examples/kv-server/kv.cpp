#include "kv.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iterator>
#include <utility>

namespace {

/// How long a command may wait for the store.
constexpr auto store_timeout = std::chrono::seconds(5);

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

bool known(const std::string& name) {
  for (auto x : {"ping", "echo", "set", "get", "del", "incr"})
    if (name == x)
      return true;
  return false;
}

/// Redis's words, so that redis-cli shows the same.
std::string unknown_command(const std::vector<std::string>& args) {
  std::string listed;
  for (size_t i = 1; i < args.size() && listed.size() < 128; ++i)
    listed += "'" + args[i].substr(0, 128 - listed.size()) + "' ";
  return resp::error("ERR unknown command '" + args[0].substr(0, 128)
                     + "', with args beginning with: " + listed);
}

} // namespace

void kv_protocol::on_data(std::string_view bytes, quiesce::connection_io& io) {
  auto completed = false;
  while (!closing_) {
    auto r = parser_.next(bytes, args_);
    if (r == resp_parser::result::need_more)
      break;
    if (r == resp_parser::result::error) {
      // The replies owed go first, then this one, then the FIN.
      ++owed_;
      replies_.fill(reserve_local(io),
                    {resp::error("ERR " + parser_.error()), true});
      closing_ = true;
      break;
    }
    execute(args_, io);
    completed = true;
  }
  if (!batch_.empty())
    ask_store(io);
  // After a stop, the command half received then is finished with the
  // complete ones that come with it; what follows them is not read.
  if (stopping_ && (completed || !parser_.partial()))
    closing_ = true;
  write_ready(io);
}

void kv_protocol::execute(std::vector<std::string>& args,
                          quiesce::connection_io& io) {
  ++owed_;
  auto name = lower(args[0]);
  auto n = args.size();
  if ((name == "get" && n == 2) || (name == "set" && n == 3)
      || (name == "del" && n >= 2) || (name == "incr" && n == 2)) {
    // Asked at the end of the read, with the others it completes.
    if (batch_.empty())
      batch_slot_ = replies_.reserve();
    args[0] = std::move(name);
    batch_.push_back(std::exchange(args, {}));
    return;
  }
  auto slot = reserve_local(io);
  auto answer
    = [&](std::string bytes) { replies_.fill(slot, {std::move(bytes)}); };
  if (name == "ping" && n <= 2) {
    answer(n == 1 ? resp::simple("PONG") : resp::bulk(args[1]));
  } else if (name == "echo" && n == 2) {
    answer(resp::bulk(args[1]));
  } else if (name == "quit") {
    replies_.fill(slot, {resp::simple("OK"), true});
    closing_ = true;
  } else if (name == "set" && n > 3) {
    answer(resp::error("ERR syntax error")); // no options (EX, NX, ...)
  } else if (known(name)) {
    answer(
      resp::error("ERR wrong number of arguments for '" + name + "' command"));
  } else {
    answer(unknown_command(args));
  }
}

kv_protocol::slot_id kv_protocol::reserve_local(quiesce::connection_io& io) {
  // A command on keys after this one must not join the batch before it:
  // its reply would come first.
  if (!batch_.empty())
    ask_store(io);
  return replies_.reserve();
}

void kv_protocol::ask_store(quiesce::connection_io& io) {
  auto slot = batch_slot_;
  auto count = batch_.size();
  io.ask<std::string>(find_store(io), store_timeout, kv::exec_atom_v,
                      std::exchange(batch_, {}))
    .then(
      [this, slot, count](std::string& out, quiesce::connection_io& conn) {
        replies_.fill(slot, {std::move(out), false, count});
        write_ready(conn);
      },
      [this, slot, count](const std::string& error,
                          quiesce::connection_io& conn) {
        // One error reply for each command: the client counts them.
        std::string out;
        auto one = resp::error("ERR " + error);
        for (size_t i = 0; i < count; ++i)
          out += one;
        replies_.fill(slot, {std::move(out), false, count});
        write_ready(conn);
      });
}

kv::store_actor kv_protocol::find_store(quiesce::connection_io& io) {
  if (!stores_) {
    // The service, looked up for each request: after a restart it is a new
    // actor (quiesce/service.hpp).
    return io.service<kv::store_actor>("store");
  }
  if (!store_)
    store_ = stores_->find(io.system());
  return store_;
}

void kv_protocol::write_ready(quiesce::connection_io& io) {
  replies_.take_ready([this, &io](reply& r) {
    owed_ -= r.commands;
    io.write(r.bytes);
    if (!r.close)
      return quiesce::take_step::next;
    io.close();
    return quiesce::take_step::last;
  });
  // A client that pipelines faster than the store answers waits in TCP flow
  // control, not in this connection's memory.
  auto hold = owed_ >= max_owed_replies;
  if (hold != holding_) {
    holding_ = hold;
    io.hold_input(hold);
  }
}

void kv_protocol::on_stop(quiesce::connection_io& io) {
  // The replies owed are written as the store answers (a pending ask keeps
  // the connection busy). A command half received is finished when its rest
  // arrives (idle() is false until then); no new one is started.
  stopping_ = true;
  if (!parser_.partial())
    closing_ = true;
  write_ready(io);
}

bool kv_protocol::idle() const {
  return replies_.empty() && (closing_ || !parser_.partial());
}

void kv_protocol::on_input_end(quiesce::connection_io&) {
  // No more input: a command half received will never be whole; it is
  // dropped, as Redis does. The replies owed are still written.
  closing_ = true;
}
