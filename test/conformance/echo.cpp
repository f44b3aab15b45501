#define CAF_SUITE conformance.echo

#include "quiesce/echo.hpp"

#include "quiesce/testing/conformance.hpp"

using namespace quiesce;

CAF_TEST(echo keeps the shutdown promise) {
  testing::conformance_case c;
  c.make = [] { return std::make_unique<behaviours::echo>(); };
  c.request = "hello, world\n";
  c.response = c.request;
  // Every byte is echoed as it arrives: nothing is ever in flight in the
  // behaviour, so every stop finds it idle.
  c.busy_while_partial = false;
  testing::check_conformance(c);
}
