#pragma once

/// @file
/// Replies in request order, for a pipelined protocol: a client may send many
/// requests before it reads an answer, and the answers must go out in the
/// order the requests came, however they complete (a timer, a request to
/// another actor). HTTP/1.1's pipelining and Redis's RESP need this.
///
/// Each request takes a slot when it is parsed (`reserve`), in order; its
/// reply fills the slot when it is known (`fill`), in any order; `take_ready`
/// hands the filled slots at the front to the writer, in order, and stops at
/// the first one still empty. A behaviour with replies queued is not idle.
///
/// ```cpp
/// quiesce::ordered_replies<std::string> replies_;
///
/// void on_data(...) {  // for each request parsed:
///   auto slot = replies_.reserve();
///   if (answer_now)
///     replies_.fill(slot, "+PONG\r\n");
///   else  // the callbacks fill the request's slot
///     io.ask<std::string>(store_, 1s, get_atom_v, key)
///       .then([this, slot](std::string& value, connection_io& conn) {
///               replies_.fill(slot, bulk(value));
///               write_ready(conn);
///             },
///             [this, slot](const std::string& error, connection_io& conn) {
///               replies_.fill(slot, "-ERR " + error + "\r\n");
///               write_ready(conn);
///             });
///   write_ready(io);
/// }
///
/// void write_ready(connection_io& io) {
///   replies_.take_ready([&](std::string& r) { io.write(r); });
/// }
///
/// bool idle() const { return replies_.empty(); }
/// ```
///
/// Misuse has a stated outcome, never undefined behaviour: `fill` of a slot
/// that was never reserved, was already filled, or is gone (taken or
/// cleared) returns false and changes nothing; so `find` returns nullptr.
/// Only `front` and `back` of an empty queue are, as for the standard
/// containers, a precondition (asserted in debug builds).
///
/// Small on purpose: the slots live in one `std::vector` (libstdc++'s
/// `std::deque` allocates 576 bytes up front, which every idle connection
/// would keep; see docs/performance.md), nothing is allocated until the
/// first `reserve`, and a flushed prefix is erased at once per `take_ready`.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace quiesce {

/// What a `take_ready` callback says of the reply it was handed.
enum class take_step {
  /// Taken: the slot is removed; the next one is handed if it is filled.
  next,
  /// Taken: the slot is removed, and no more are handed in this call (the
  /// reply closes the connection, say).
  last,
  /// Not taken: the slot stays at the front, filled, and no more are
  /// handed in this call (the reply must wait for something else).
  keep,
};

/// A queue of reply slots, taken in request order, filled in any order and
/// flushed in order. `T` is the reply (bytes, or a struct written later);
/// it must be default-constructible and movable.
template <class T>
class ordered_replies {
public:
  /// A slot's id: ids count up from 0 in `reserve` order and are never
  /// reused, so one can serve as the token of a timer or a request.
  using slot_id = uint64_t;

  /// Takes the next slot, empty (its value is a `T{}`, not filled).
  slot_id reserve() {
    entries_.push_back(entry{});
    return first_ + entries_.size() - 1;
  }

  /// Fills the slot `id` with `value`. Returns false, changing nothing, if
  /// `id` was never reserved, is filled already, or is gone (taken or
  /// cleared).
  bool fill(slot_id id, T value) {
    auto* e = waiting(id);
    if (e == nullptr)
      return false;
    e->value = std::move(value);
    e->filled = true;
    return true;
  }

  /// Marks the slot `id` filled with the value built in place (see `find`).
  /// Returns false, changing nothing, in the same cases as `fill(id, value)`.
  bool fill(slot_id id) {
    auto* e = waiting(id);
    if (e == nullptr)
      return false;
    e->filled = true;
    return true;
  }

  /// The value of the slot `id`, filled or not, to build a reply in place;
  /// nullptr if `id` was never reserved or is gone. Valid until the next
  /// `reserve`, `take_ready` or `clear`.
  T* find(slot_id id) noexcept {
    auto i = index_of(id);
    return i < entries_.size() ? &entries_[i].value : nullptr;
  }

  const T* find(slot_id id) const noexcept {
    auto i = index_of(id);
    return i < entries_.size() ? &entries_[i].value : nullptr;
  }

  /// Whether the slot `id` is reserved, filled and not taken yet.
  bool filled(slot_id id) const noexcept {
    auto i = index_of(id);
    return i < entries_.size() && entries_[i].filled;
  }

  /// Hands every filled slot at the front to `f`, in order, stopping at the
  /// first empty one; returns how many were taken. `f` takes a `T&` (it may
  /// move from it, unless it keeps it) and returns `void` (taken, go on) or
  /// a `take_step`.
  ///
  /// While `f` runs, the slot it was handed still counts in `size()` and is
  /// `front()` (`size() == 1`: it is the last reply owed). `f` may fill
  /// and reserve (after a `reserve`, its `T&` is no longer valid) and
  /// clear (which ends the call). A `take_ready` from within `f` takes
  /// nothing and returns 0. If `f` throws, the slot it was handed stays at
  /// the front; those before it are taken.
  template <class F>
  size_t take_ready(F&& f) {
    if (taking_)
      return 0;
    taking_ = true;
    // Also if `f` throws: the slots taken so far are gone, the rest stay.
    struct finish {
      ordered_replies& q;
      ~finish() {
        q.entries_.erase(q.entries_.begin(),
                         q.entries_.begin()
                           + static_cast<std::ptrdiff_t>(q.head_));
        q.first_ += q.head_;
        q.head_ = 0;
        q.taking_ = false;
      }
    } guard{*this};
    size_t taken = 0;
    while (head_ < entries_.size() && entries_[head_].filled) {
      auto id = first_ + head_;
      auto step = take_step::next;
      if constexpr (std::is_void_v<decltype(f(entries_[head_].value))>)
        f(entries_[head_].value);
      else
        step = f(entries_[head_].value);
      if (step == take_step::keep)
        break;
      ++taken;
      if (first_ + head_ != id)
        break; // f cleared the queue: the slot is gone already
      ++head_;
      if (step == take_step::last)
        break;
    }
    return taken;
  }

  /// How many slots are reserved and not taken (filled or not).
  size_t size() const noexcept {
    return entries_.size() - head_;
  }

  bool empty() const noexcept {
    return size() == 0;
  }

  /// The oldest slot's value, filled or not. The queue must not be empty.
  T& front() noexcept {
    assert(!empty());
    return entries_[head_].value;
  }

  const T& front() const noexcept {
    assert(!empty());
    return entries_[head_].value;
  }

  /// The newest slot's value, filled or not (a protocol may mark the last
  /// reply owed as the one that closes). The queue must not be empty.
  T& back() noexcept {
    assert(!empty());
    return entries_.back().value;
  }

  const T& back() const noexcept {
    assert(!empty());
    return entries_.back().value;
  }

  /// Calls `f(const T&)` on every slot's value, oldest first, filled or not.
  template <class F>
  void for_each(F&& f) const {
    for (auto i = head_; i < entries_.size(); ++i)
      f(entries_[i].value);
  }

  /// Drops every slot; their ids are gone (`fill` returns false for them).
  /// Ids of later slots go on counting up.
  void clear() noexcept {
    first_ += entries_.size();
    entries_.clear();
    head_ = 0;
  }

private:
  struct entry {
    T value{};
    bool filled = false;
  };

  /// Where the slot `id` is in `entries_` if it is reserved and not taken
  /// yet, else `entries_.size()`.
  size_t index_of(slot_id id) const noexcept {
    if (id < first_ + head_ || id - first_ >= entries_.size())
      return entries_.size();
    return static_cast<size_t>(id - first_);
  }

  /// The slot `id` if it can be filled: reserved, not filled, not taken.
  entry* waiting(slot_id id) noexcept {
    auto i = index_of(id);
    if (i == entries_.size() || entries_[i].filled)
      return nullptr;
    return &entries_[i];
  }

  /// Slots not taken yet, from the one with id `first_` on; while
  /// `take_ready` runs, the first `head_` of them are taken and erased when
  /// it returns.
  std::vector<entry> entries_;
  slot_id first_ = 0;
  size_t head_ = 0;
  bool taking_ = false;
};

} // namespace quiesce
