#pragma once

// The fuzz targets' checks: a violated invariant prints what and aborts,
// which libFuzzer reports as a crash and saves the input.

#include <cstdio>
#include <cstdlib>
#include <string>

namespace quiesce::fuzz {

[[noreturn]] inline void fail(const char* what,
                              const std::string& detail = {}) {
  std::fprintf(stderr, "INVARIANT VIOLATED: %s %s\n", what, detail.c_str());
  std::abort();
}

} // namespace quiesce::fuzz

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      ::quiesce::fuzz::fail(#cond);                                            \
  } while (false)

/// `detail` (a std::string) is only built when the check fails.
#define FUZZ_CHECK_MSG(cond, detail)                                           \
  do {                                                                         \
    if (!(cond))                                                               \
      ::quiesce::fuzz::fail(#cond, detail);                                    \
  } while (false)
