// The one translation unit of each test executable that holds CAF's test
// runner (main, the watchdog, the suite registry).
#include "caf/test/unit_test_impl.hpp"
