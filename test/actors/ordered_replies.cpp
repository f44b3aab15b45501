#define CAF_SUITE actors.ordered_replies

// The in-order reply queue (quiesce/ordered_replies.hpp) on its own: slots
// filled in any order come out in request order, nothing passes an empty
// slot, misuse returns false and changes nothing, and every slot of a long
// pipeline filled in a random order is taken exactly once.

#include "quiesce/ordered_replies.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "caf/test/unit_test.hpp"

using quiesce::ordered_replies;
using quiesce::take_step;

namespace {

using queue = ordered_replies<std::string>;

/// Takes what is ready and returns it, in the order handed.
std::vector<std::string> take(queue& q) {
  std::vector<std::string> out;
  auto n = q.take_ready([&](std::string& x) { out.push_back(std::move(x)); });
  CAF_CHECK_EQUAL(n, out.size());
  return out;
}

using strings = std::vector<std::string>;

} // namespace

CAF_TEST(an empty queue takes nothing) {
  queue q;
  CAF_CHECK(q.empty());
  CAF_CHECK_EQUAL(q.size(), 0u);
  CAF_CHECK(take(q).empty());
}

CAF_TEST(slots are numbered in reserve order) {
  queue q;
  CAF_CHECK_EQUAL(q.reserve(), 0u);
  CAF_CHECK_EQUAL(q.reserve(), 1u);
  CAF_CHECK_EQUAL(q.reserve(), 2u);
  CAF_CHECK_EQUAL(q.size(), 3u);
  CAF_CHECK(!q.empty());
  // Ids are never reused, also after taking and clearing.
  q.fill(0, "a");
  take(q);
  q.clear();
  CAF_CHECK(q.empty());
  CAF_CHECK_EQUAL(q.reserve(), 3u);
}

CAF_TEST(slots filled out of order are taken in order) {
  queue q;
  auto a = q.reserve();
  auto b = q.reserve();
  auto c = q.reserve();
  CAF_CHECK(q.fill(c, "c"));
  CAF_CHECK(q.fill(b, "b"));
  // The first slot is empty: nothing passes it.
  CAF_CHECK(take(q).empty());
  CAF_CHECK_EQUAL(q.size(), 3u);
  CAF_CHECK(q.fill(a, "a"));
  CAF_CHECK_EQUAL(take(q), (strings{"a", "b", "c"}));
  CAF_CHECK(q.empty());
}

CAF_TEST(taking stops at the first empty slot) {
  queue q;
  auto a = q.reserve();
  auto b = q.reserve();
  auto c = q.reserve();
  auto d = q.reserve();
  q.fill(a, "a");
  q.fill(c, "c");
  q.fill(d, "d");
  CAF_CHECK_EQUAL(take(q), (strings{"a"}));
  CAF_CHECK_EQUAL(q.size(), 3u);
  CAF_CHECK(!q.filled(b));
  CAF_CHECK(q.filled(c));
  // Taking again while the gap stays takes nothing.
  CAF_CHECK(take(q).empty());
  q.fill(b, "b");
  CAF_CHECK_EQUAL(take(q), (strings{"b", "c", "d"}));
  CAF_CHECK(q.empty());
}

CAF_TEST(a reply built in place is taken once its slot is filled) {
  queue q;
  auto a = q.reserve();
  auto b = q.reserve();
  *q.find(a) = "built in place";
  q.fill(b, "b");
  CAF_CHECK_EQUAL(q.front(), "built in place");
  CAF_CHECK(!q.filled(a));
  CAF_CHECK(take(q).empty());
  CAF_CHECK(q.fill(a));
  CAF_CHECK_EQUAL(take(q), (strings{"built in place", "b"}));
}

CAF_TEST(front and back are the oldest and newest slot) {
  queue q;
  auto a = q.reserve();
  q.reserve();
  q.back() = "newest";
  q.front() = "oldest";
  CAF_CHECK(q.fill(a));
  const auto& cq = q;
  CAF_CHECK_EQUAL(cq.front(), "oldest");
  CAF_CHECK_EQUAL(cq.back(), "newest");
  std::string all;
  cq.for_each([&](const std::string& x) { all += x + ";"; });
  CAF_CHECK_EQUAL(all, "oldest;newest;");
}

CAF_TEST(misuse returns false and changes nothing) {
  queue q;
  // Never reserved.
  CAF_CHECK(!q.fill(0, "x"));
  CAF_CHECK(!q.fill(0));
  CAF_CHECK(q.find(0) == nullptr);
  CAF_CHECK(q.empty());
  auto a = q.reserve();
  auto b = q.reserve();
  CAF_CHECK(!q.fill(b + 1, "x"));
  CAF_CHECK(!q.fill(UINT64_MAX, "x"));
  CAF_CHECK_EQUAL(q.size(), 2u);
  // Filled twice: the first value stays.
  CAF_CHECK(q.fill(a, "first"));
  CAF_CHECK(!q.fill(a, "second"));
  CAF_CHECK(!q.fill(a));
  CAF_CHECK_EQUAL(*q.find(a), "first");
  // Taken: gone.
  CAF_CHECK_EQUAL(take(q), (strings{"first"}));
  CAF_CHECK(!q.fill(a, "late"));
  CAF_CHECK(!q.filled(a));
  CAF_CHECK(q.find(a) == nullptr);
  CAF_CHECK_EQUAL(q.size(), 1u);
  // Cleared: gone.
  q.clear();
  CAF_CHECK(!q.fill(b, "late"));
  CAF_CHECK(q.find(b) == nullptr);
  CAF_CHECK(q.empty());
  CAF_CHECK(take(q).empty());
}

CAF_TEST(the callback keeps a reply or ends the call) {
  queue q;
  for (auto x : {"a", "b", "c"})
    q.fill(q.reserve(), x);
  strings seen;
  // `last`: taken, and no more in this call.
  auto n = q.take_ready([&](std::string& x) {
    seen.push_back(x);
    return take_step::last;
  });
  CAF_CHECK_EQUAL(n, 1u);
  CAF_CHECK_EQUAL(seen, (strings{"a"}));
  CAF_CHECK_EQUAL(q.size(), 2u);
  // `keep`: not taken; it stays at the front, filled.
  n = q.take_ready([&](std::string& x) {
    seen.push_back(x);
    return x == "c" ? take_step::keep : take_step::next;
  });
  CAF_CHECK_EQUAL(n, 1u);
  CAF_CHECK_EQUAL(seen, (strings{"a", "b", "c"}));
  CAF_CHECK_EQUAL(q.size(), 1u);
  CAF_CHECK_EQUAL(q.front(), "c");
  CAF_CHECK_EQUAL(take(q), (strings{"c"}));
}

CAF_TEST(the callback sees its slot still queued and may change the queue) {
  queue q;
  auto a = q.reserve();
  auto b = q.reserve();
  q.fill(a, "a");
  strings seen;
  std::vector<size_t> sizes;
  q.take_ready([&](std::string& x) {
    seen.push_back(x);
    sizes.push_back(q.size());
    if (x == "a") {
      // The slot handed is filled: it cannot be filled again. A later one
      // filled now is taken in the same call; one reserved now waits.
      CAF_CHECK(!q.fill(a, "again"));
      CAF_CHECK(q.fill(b, "b"));
      q.reserve();
      // Nested: takes nothing.
      CAF_CHECK_EQUAL(q.take_ready([](std::string&) {}), 0u);
    }
  });
  CAF_CHECK_EQUAL(seen, (strings{"a", "b"}));
  CAF_CHECK_EQUAL(sizes, (std::vector<size_t>{2, 2}));
  CAF_CHECK_EQUAL(q.size(), 1u);
  // A clear from the callback ends the call and leaves the queue empty.
  auto c = q.reserve();
  q.fill(c - 1, "c");
  q.fill(c, "d");
  seen.clear();
  auto n = q.take_ready([&](std::string& x) {
    seen.push_back(x);
    q.clear();
  });
  CAF_CHECK_EQUAL(n, 1u);
  CAF_CHECK_EQUAL(seen, (strings{"c"}));
  CAF_CHECK(q.empty());
  CAF_CHECK_EQUAL(q.reserve(), c + 1);
}

CAF_TEST(a callback that throws leaves its slot at the front) {
  queue q;
  for (auto x : {"a", "b", "c"})
    q.fill(q.reserve(), x);
  strings seen;
  auto thrown = false;
  try {
    q.take_ready([&](std::string& x) {
      if (x == "b")
        throw std::runtime_error("write failed");
      seen.push_back(x);
    });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  CAF_CHECK(thrown);
  CAF_CHECK_EQUAL(seen, (strings{"a"}));
  CAF_CHECK_EQUAL(q.size(), 2u);
  CAF_CHECK_EQUAL(take(q), (strings{"b", "c"}));
}

CAF_TEST(ten thousand slots filled at random are each taken once in order) {
  constexpr size_t n = 10000;
  ordered_replies<size_t> q;
  std::vector<uint64_t> order(n);
  for (size_t i = 0; i < n; ++i) {
    order[i] = q.reserve();
    CAF_REQUIRE_EQUAL(order[i], i);
  }
  std::mt19937_64 rng{20240612};
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<size_t> taken;
  size_t calls_taking = 0;
  for (auto id : order) {
    CAF_REQUIRE(q.fill(id, static_cast<size_t>(id)));
    auto before = taken.size();
    q.take_ready([&](size_t& x) { taken.push_back(x); });
    if (taken.size() > before)
      ++calls_taking;
    // Everything before the first empty slot is out, nothing after it.
    CAF_REQUIRE_EQUAL(taken.size() + q.size(), n);
    if (!q.empty())
      CAF_REQUIRE(!q.filled(taken.size()));
  }
  CAF_CHECK(q.empty());
  CAF_REQUIRE_EQUAL(taken.size(), n);
  std::vector<size_t> expected(n);
  std::iota(expected.begin(), expected.end(), size_t{0});
  CAF_CHECK(taken == expected);
  // A random order leaves gaps: most fills take nothing.
  CAF_CHECK_LESS(calls_taking, n / 2);
  // Every slot is gone: none can be filled again.
  for (uint64_t id = 0; id < n; ++id)
    CAF_REQUIRE(!q.fill(id, 0));
}
