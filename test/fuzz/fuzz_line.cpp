// libFuzzer target: the line framing of examples/line-server (line.cpp).
// The input is fed whole, then in pieces whose sizes come from its first
// bytes, with a stop after some piece. Invariants: every write is `> ` and
// one complete line ending in '\n', the lines in input order; the output is
// the same in any split; idle() is true exactly when no line is half
// received, and closing never comes from the behaviour; after on_stop, more
// data never crashes and framing goes on (the framework discards input once
// the behaviour is idle after a stop).

#include "examples/line-server/line.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "test/fuzz/fake_io.hpp"

using quiesce::fuzz::fake_io;

namespace {

/// What the framing must give for `input`: each complete line prefixed.
std::string expected_output(std::string_view input) {
  std::string result;
  size_t pos = 0;
  for (auto nl = input.find('\n'); nl != std::string_view::npos;
       nl = input.find('\n', pos)) {
    result += "> ";
    result += input.substr(pos, nl + 1 - pos);
    pos = nl + 1;
  }
  return result;
}

void check_writes(const fake_io& io) {
  size_t begin = 0;
  for (auto end : io.write_ends) {
    auto w = std::string_view{io.out}.substr(begin, end - begin);
    FUZZ_CHECK_MSG(w.size() >= 3 && w.substr(0, 2) == "> " && w.back() == '\n',
                   std::string{w});
    FUZZ_CHECK_MSG(w.find('\n') == w.size() - 1, "two lines in one write");
    begin = end;
  }
  FUZZ_CHECK_MSG(io.closes == 0, "the line protocol closed by itself");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto want = expected_output(input);
  auto half_line = !input.empty() && input.back() != '\n';

  {
    line_protocol b;
    fake_io io;
    FUZZ_CHECK_MSG(b.idle(), "idle before any input");
    b.on_data(input, io);
    FUZZ_CHECK_MSG(io.out == want, "whole");
    FUZZ_CHECK(b.idle() == !half_line);
    check_writes(io);
  }
  {
    line_protocol b;
    fake_io io;
    size_t pos = 0;
    size_t k = 0;
    auto sizes = input.substr(0, 8);
    size_t stop_after = size == 0 ? 0 : data[0] % 16u;
    size_t pieces = 0;
    while (pos < input.size()) {
      size_t n = 1 + static_cast<unsigned char>(sizes[k++ % sizes.size()]) % 41;
      auto piece = input.substr(pos, n);
      b.on_data(piece, io);
      pos += piece.size();
      if (++pieces == stop_after)
        b.on_stop(io);
      auto so_far = input.substr(0, pos);
      FUZZ_CHECK_MSG(io.out == expected_output(so_far), "pieces");
      FUZZ_CHECK_MSG(b.idle() == (so_far.empty() || so_far.back() == '\n'),
                     "idle() after a piece");
    }
    FUZZ_CHECK_MSG(io.out == want, "pieces, at the end");
    check_writes(io);
    // More data after a stop never crashes (on_stop is called once).
    if (pieces < stop_after || stop_after == 0)
      b.on_stop(io);
    b.on_data("tail\n", io);
    FUZZ_CHECK(b.idle());
  }
  return 0;
}
