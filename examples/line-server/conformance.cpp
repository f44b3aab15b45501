// The conformance kit run on the line protocol: a stop while idle closes at
// once, a stop while a line is half received finishes the line first, a
// forced exit aborts, and input split at every byte gets the same answer.

#define CAF_SUITE conformance.line
#include "caf/test/unit_test_impl.hpp"

#include "quiesce/testing/conformance.hpp"

#include "line.hpp"

CAF_TEST(the line protocol keeps the shutdown promise) {
  quiesce::testing::conformance_case c;
  c.make = [] { return std::make_unique<line_protocol>(); };
  c.request = "hello\n";
  c.response = "> hello\n";
  quiesce::testing::check_conformance(c);
}
