#pragma once

/// @file
/// The seam between the framework and a protocol. A connection actor owns the
/// socket, FIN/close, `done`, forced exits and accounting; a behaviour only
/// turns bytes into bytes and says whether it has work in flight.
///
/// The framework's rules, which every behaviour can rely on:
/// - `on_data` gets the peer's bytes in order, as they arrive, in pieces of
///   any size (a message may be split at any byte).
/// - Bytes passed to `connection_io::write` are sent in order; they are
///   flushed when the callback returns.
/// - `on_stop` is called once, when the server stops. After it, the framework
///   closes the connection (FIN after every written byte) as soon as `idle()`
///   is true; until then it keeps delivering input, so a busy behaviour can
///   finish what is in flight. Input that arrives once the behaviour is idle
///   after the stop is read and discarded.
/// - `on_stop` is pure virtual: a protocol cannot forget to drain.
/// - Work elsewhere is a message: `connection_io::request` asks another actor
///   (a backend, a worker doing heavy work) and its reply comes back as
///   `on_reply`. While a request is pending the framework counts the
///   connection as busy, whatever `idle()` says: a stop waits for the reply
///   (or the request's timeout), so no protocol can drop an answer it waits
///   for. Other actors may push messages to the connection (`handle()`);
///   they arrive as `on_message`.
/// - `connection_io::ask`, recommended over `request`, makes the same request
///   with the reply's types in the call: the reply, or the error as text,
///   comes to callbacks given with that request, not to `on_reply` by token.
///   It counts as pending, and keeps the connection busy, in the same way.
/// - Never block in a callback: every connection of the server shares one I/O
///   thread. Waiting is a timer or a request; heavy work goes to an actor
///   spawned on `system()`.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "caf/actor.hpp"
#include "caf/actor_clock.hpp"
#include "caf/actor_cast.hpp"
#include "caf/behavior.hpp"
#include "caf/error.hpp"
#include "caf/expected.hpp"
#include "caf/message.hpp"
#include "caf/timespan.hpp"

#include "quiesce/messages.hpp"

namespace quiesce {

class connection_io;

template <class... Reply>
class ask_request;

namespace detail {

/// What a connection keeps of one `connection_io::ask` until it ends: the
/// behaviour's callbacks. The error callback is called through this base;
/// the reply callback by the typed reply handler that `ask_request::then`
/// makes, which knows the concrete type.
class ask_callbacks {
public:
  ask_callbacks(caf::timespan request_timeout, bool valid_handle)
      : timeout(request_timeout), has_receiver(valid_handle) {}

  virtual ~ask_callbacks();

  /// Calls the behaviour's error callback with `error`, already text.
  virtual void failed(const std::string& error, connection_io& io) = 0;

  /// The request's timeout, for the text of a timeout.
  caf::timespan timeout;

  /// False if the handle asked was invalid (CAF then answers
  /// `invalid_argument`, which would read like the receiver's own error).
  bool has_receiver;
};

} // namespace detail
class service_directory;

/// What a behaviour may do to its connection.
class connection_io {
public:
  virtual ~connection_io();

  /// Queues `bytes` for the peer. They are flushed when the current callback
  /// returns, and all of them reach the peer before the FIN.
  virtual void write(std::string_view bytes) = 0;

  /// Calls the behaviour's `on_timer(token)` after `delay`: waiting is a
  /// message, never a blocked thread (all connections share one I/O thread).
  /// Timers keep firing after `on_stop`; they end with the connection.
  virtual void start_timer(caf::timespan delay, uint64_t token) = 0;

  /// The time on the clock that runs the timers: a behaviour that notes
  /// when something happened can let one timer run and, when it fires,
  /// start it again for what is left (instead of a timer per event). The
  /// default asks the actor system's clock.
  virtual caf::actor_clock::time_point now() const;

  /// Closes the connection once every byte written so far has left: FIN,
  /// then the same linger as a stop. For a protocol that ends a connection
  /// itself (an HTTP `Connection: close`, a malformed request).
  virtual void close() = 0;

  /// Stops reading the socket while `hold` is true: a behaviour with enough
  /// work queued makes the client wait (TCP flow control) instead of
  /// buffering without bound. The framework also pauses reading on its own
  /// while too much output waits to be sent.
  virtual void hold_input(bool hold) = 0;

  /// The server's stop has reached this connection, but the behaviour may
  /// still be getting bytes the client sent before it (they waited unread
  /// in the kernel at the stop); `on_stop` follows once they are delivered
  /// (and always follows: also on a connection that winds down on its own).
  /// A behaviour that marks its last response (HTTP's `Connection: close`)
  /// holds back what would otherwise go out unmarked. It must not hold its
  /// input on that account: `on_stop` comes only after those bytes are read.
  virtual bool stop_requested() const = 0;

  /// This connection's actor, for other actors that push messages to it:
  /// `caf::anon_send(conn, deliver_atom_v, caf::make_message(...))` reaches
  /// `behaviour::on_message`.
  virtual connection_actor handle() const = 0;

  /// The actor system, to spawn a worker for work that would block.
  virtual caf::actor_system& system() const = 0;

  /// The actor of the server's service `name` (quiesce/service.hpp): the one
  /// running now, a new one after a restart, so look it up for each request
  /// instead of keeping it (a look-up takes a lock, no message). An invalid
  /// handle if the server has no service of that name.
  caf::actor service(std::string_view name) const;

  /// The same as the typed handle the service was declared with (what its
  /// spawn function returns); an invalid handle if it was declared with
  /// another type.
  template <class Handle>
  Handle service(std::string_view name) const {
    return caf::actor_cast<Handle>(find_service(name, typeid(Handle)));
  }

  /// Asks `dest` with the message `xs...`. Its reply, of the types `Reply...`
  /// (none for an empty reply), arrives as `behaviour::on_reply(token, ...)`;
  /// anything else (the timeout passed, `dest` is gone, an error reply, a
  /// reply of other types) as `behaviour::on_reply_error(token, ...)`.
  /// Until one of them has run, the connection is busy: a stop waits for it.
  /// A reply that arrives after the connection has closed is dropped.
  template <class... Reply, class Handle, class... Ts>
  void request(const Handle& dest, caf::timespan timeout, uint64_t token,
               Ts&&... xs) {
    static_assert(sizeof...(Ts) > 0, "a request needs a message");
    auto id = new_request(token);
    caf::behavior on_reply{
      [this, id](Reply&... ys) {
        reply_arrived(id, caf::make_message(std::move(ys)...));
      },
      [this, id](caf::error& err) { reply_arrived(id, std::move(err)); },
    };
    send_request(id, caf::actor_cast<caf::actor>(dest), timeout,
                 caf::make_message(std::forward<Ts>(xs)...),
                 std::move(on_reply));
  }

  /// Asks `dest` with the message `xs...`, expecting a reply of the types
  /// `Reply...` (none: an empty reply, as from a handler returning void).
  /// Nothing is sent until the callbacks are given to `then` on the result
  /// (`[[nodiscard]]`: a request without them does not compile):
  ///
  /// ```cpp
  /// io.ask<int64_t>(store_, 1s, incr_atom_v, key)
  ///   .then([this](int64_t n, connection_io& io) { ... },
  ///         [this](const std::string& error, connection_io& io) { ... });
  /// ```
  ///
  /// Exactly one of the two is called, like any other behaviour callback
  /// (its writes flushed when it returns): the reply's with the reply's
  /// values and the connection, or the error's with a text saying what went
  /// wrong ("request timed out after 1000ms", "the receiver is gone", "the
  /// reply has other types than asked for: ...", or the receiver's error as
  /// the actor system renders it). Until one of them has run, the
  /// connection is busy: a stop waits for it. A reply that arrives after
  /// the connection has sent its FIN is dropped, with its callbacks. A
  /// receiver that ends while it holds the request unanswered (CAF 0.17 has
  /// no broken-promise error) fails it at once with "the receiver is gone":
  /// the connection monitors each receiver, once.
  ///
  /// Recommended over `request`: the answer comes to the code that asked,
  /// with its types, and needs no token.
  template <class... Reply, class Handle, class... Ts>
  [[nodiscard]] ask_request<Reply...> ask(const Handle& dest,
                                          caf::timespan timeout, Ts&&... xs) {
    static_assert(sizeof...(Ts) > 0, "a request needs a message");
    return ask_request<Reply...>{*this, caf::actor_cast<caf::actor>(dest),
                                 timeout,
                                 caf::make_message(std::forward<Ts>(xs)...)};
  }

protected:
  template <class... Reply>
  friend class ask_request;

  /// Registers an ask whose callbacks are `callbacks`; returns its id.
  virtual uint64_t new_ask(std::unique_ptr<detail::ask_callbacks> callbacks)
    = 0;

  /// The reply to the ask `id` arrived: returns its callbacks if the
  /// behaviour is to run them, else nullptr (it timed out already, or the
  /// connection has sent its FIN). The ask is no longer pending.
  virtual std::unique_ptr<detail::ask_callbacks> take_ask(uint64_t id) = 0;

  /// A callback of an ask taken with `take_ask` has returned: flushes its
  /// writes and tells the connection's core, as after every callback.
  virtual void ask_done() = 0;

  /// Where `service` looks: the server's services; the default, none.
  virtual const service_directory* services() const;

  /// Registers a request of the behaviour's `token`; returns its id.
  virtual uint64_t new_request(uint64_t token) = 0;

  /// Sends `msg` to `dest` as the request `id` whose reply `on_reply`
  /// handles; it fails with `sec::request_timeout` after `timeout`.
  virtual void send_request(uint64_t id, const caf::actor& dest,
                            caf::timespan timeout, caf::message msg,
                            caf::behavior on_reply)
    = 0;

  /// The request `id` got its reply or failed (once; later ones are
  /// dropped).
  /// For an ask, only its failure comes here (its error callback gets the
  /// error as text); its reply goes through `take_ask`.
  virtual void reply_arrived(uint64_t id, caf::expected<caf::message> reply)
    = 0;

private:
  caf::actor find_service(std::string_view name,
                          const std::type_info& type) const;
};

/// A request made with `connection_io::ask`, not sent until `then` gives it
/// its callbacks.
template <class... Reply>
class [[nodiscard]] ask_request {
public:
  ask_request(connection_io& io, caf::actor dest, caf::timespan timeout,
              caf::message msg)
      : io_(&io), dest_(std::move(dest)), timeout_(timeout),
        msg_(std::move(msg)) {}

  /// Sends the request. `on_reply` is called as
  /// `on_reply(Reply&..., connection_io&)` (it may take the values by
  /// value, const reference or reference), `on_error` as
  /// `on_error(const std::string& error, connection_io&)`; see
  /// `connection_io::ask`.
  template <class OnReply, class OnError>
  void then(OnReply on_reply, OnError on_error) && {
    static_assert(std::is_invocable_v<OnReply&, Reply&..., connection_io&>,
                  "the reply callback must take the reply's values (the "
                  "types given to ask), then connection_io&");
    static_assert(
      std::is_invocable_v<OnError&, const std::string&, connection_io&>,
      "the error callback must take (const std::string&, connection_io&)");
    using callbacks = typed_callbacks<OnReply, OnError>;
    auto io = io_;
    auto id = io->new_ask(
      std::make_unique<callbacks>(std::move(on_reply), std::move(on_error),
                                  timeout_, static_cast<bool>(dest_)));
    caf::behavior handler{
      [io, id](Reply&... ys) {
        auto taken = io->take_ask(id);
        if (!taken)
          return;
        static_cast<callbacks&>(*taken).on_reply(ys..., *io);
        io->ask_done();
      },
      [io, id](caf::error& err) { io->reply_arrived(id, std::move(err)); },
    };
    io->send_request(id, dest_, timeout_, std::move(msg_), std::move(handler));
  }

private:
  template <class OnReply, class OnError>
  class typed_callbacks final : public detail::ask_callbacks {
  public:
    typed_callbacks(OnReply reply_fn, OnError error_fn,
                    caf::timespan request_timeout, bool valid_handle)
        : ask_callbacks(request_timeout, valid_handle),
          on_reply(std::move(reply_fn)), on_error_(std::move(error_fn)) {}

    void failed(const std::string& error, connection_io& io) override {
      on_error_(error, io);
    }

    OnReply on_reply;

  private:
    OnError on_error_;
  };

  connection_io* io_;
  caf::actor dest_;
  caf::timespan timeout_;
  caf::message msg_;
};

/// A protocol, run by one connection actor for one connection.
class behaviour {
public:
  virtual ~behaviour();

  /// Bytes from the peer arrived.
  virtual void on_data(std::string_view bytes, connection_io& io) = 0;

  /// The server is stopping: finish in-flight work, accept nothing new.
  virtual void on_stop(connection_io& io) = 0;

  /// True when nothing is in flight, so that closing now loses nothing. A
  /// connection that has sent nothing yet is idle.
  virtual bool idle() const = 0;

  /// A timer started with `connection_io::start_timer` fired.
  virtual void on_timer(uint64_t token, connection_io& io);

  /// (Not for `connection_io::ask`: its replies go to its own callbacks.)
  /// The reply to `connection_io::request(..., token, ...)` arrived. The
  /// default throws: a behaviour that makes requests must handle replies
  /// (the connection is then aborted and the error logged).
  virtual void on_reply(uint64_t token, caf::message& reply, connection_io& io);

  /// The request `token` failed: timeout, the receiver is gone, an error
  /// reply, or a reply of other types than asked for. The default throws,
  /// like `on_reply`.
  virtual void on_reply_error(uint64_t token, const caf::error& err,
                              connection_io& io);

  /// The peer has sent FIN: no more input will come, though output can
  /// still reach it (a half-closed client waiting for its answer). A
  /// behaviour that keeps a message half received as work in flight must
  /// give it up here (answer an error, or drop it) so that `idle()` can
  /// become true; otherwise the connection waits for input that never comes
  /// until a stop's deadline forces it. The default does nothing.
  virtual void on_input_end(connection_io& io);

  /// The server's stop delay began (`--stop-delay`): the server is about
  /// to stop, and clients should go elsewhere, but it still serves. A
  /// protocol that can say so tells the client to end the connection after
  /// its next answer (HTTP: `Connection: close`, then the close). Comes at
  /// most once, also at the start of a connection accepted during the
  /// delay; a `stop` may follow. The default does nothing: the protocol
  /// serves on as usual until the stop (echo has no way to say it).
  virtual void on_closing(connection_io& io);

  /// Another actor sent `(deliver_atom, msg)` to the connection. The default
  /// ignores it. Not delivered once the connection has sent its FIN.
  virtual void on_message(caf::message& msg, connection_io& io);
};

/// Makes the behaviour of one new connection.
using behaviour_factory = std::function<std::unique_ptr<behaviour>()>;

} // namespace quiesce
