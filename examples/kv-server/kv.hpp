#pragma once

/// @file
/// A subset of Redis's protocol (RESP2), written outside quiesce against its
/// installed package: PING [msg], ECHO msg, SET key value, GET key, DEL key
/// [key ...], INCR key, QUIT. The keys live in one store actor (store.hpp)
/// that every connection asks with `io.ask`: once per read, for all the
/// commands on keys that the read completed.
///
/// Wire format: requests as resp.hpp parses them (arrays of bulk strings,
/// or inline commands), answered in request order (pipelining), whatever
/// order the store's replies come in. An unknown command or wrong arguments
/// get an error reply, as from Redis, and the connection goes on.
/// Who closes: the client; the server after QUIT (`+OK` first) or after
/// malformed input (`-ERR Protocol error: ...` first; the rest of the input
/// is ignored), and when it stops.
/// On `stop`: every reply owed is still written (the store's replies are
/// awaited). A command half received is finished when its rest arrives
/// (busy until then), with the complete commands that arrive with it (the
/// client sent them before it saw the FIN); input after that is not read.
/// Then the connection closes.

#include <memory>
#include <string>
#include <vector>

#include "quiesce/behaviour.hpp"
#include "quiesce/ordered_replies.hpp"

#include "resp.hpp"
#include "store.hpp"

class kv_protocol final : public quiesce::behaviour {
public:
  /// Asks the server's service "store" (main.cpp).
  kv_protocol() = default;

  /// Asks a store from `stores` instead: for tests that run the behaviour
  /// without the server's services.
  explicit kv_protocol(std::shared_ptr<kv::store_locator> stores)
      : stores_(std::move(stores)) {}

  void on_data(std::string_view bytes, quiesce::connection_io& io) override;

  void on_stop(quiesce::connection_io& io) override;

  bool idle() const override;

  void on_input_end(quiesce::connection_io& io) override;

private:
  struct reply {
    std::string bytes;
    /// The connection closes once this reply is written.
    bool close = false;
    /// The commands it answers (a batch's reply answers several).
    size_t commands = 1;
  };

  using slot_id = quiesce::ordered_replies<reply>::slot_id;

  void execute(std::vector<std::string>& args, quiesce::connection_io& io);

  /// A slot for a reply made here, after the replies of the batch so far.
  slot_id reserve_local(quiesce::connection_io& io);

  /// Asks the store for the commands in `batch_` in one request, and fills
  /// `batch_slot_` with its replies.
  void ask_store(quiesce::connection_io& io);

  kv::store_actor find_store(quiesce::connection_io& io);

  void write_ready(quiesce::connection_io& io);

  std::shared_ptr<kv::store_locator> stores_;
  kv::store_actor store_;
  resp_parser parser_;
  std::vector<std::string> args_;
  /// Commands on keys parsed in a row from the current read, asked of the
  /// store in one request at its end (or before a command answered here),
  /// and the one slot of their replies.
  std::vector<kv::command> batch_;
  slot_id batch_slot_{};
  quiesce::ordered_replies<reply> replies_;
  /// After QUIT or malformed input (or the client's FIN): no more commands.
  bool closing_ = false;
  /// `on_stop` has been called.
  bool stopping_ = false;
  /// Reading is held: `max_owed_replies` replies are owed.
  bool holding_ = false;
  /// Commands read whose replies are not written yet.
  size_t owed_ = 0;

  /// Replies owed at which the connection stops reading until fewer are.
  static constexpr size_t max_owed_replies = 1024;
};
