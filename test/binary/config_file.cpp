// The config file (caf-application.ini in the working directory, or
// --config-file=F) is held to the rules of the command line: every problem
// is exit 2 with a message that names the file, the line and the key,
// where CAF alone dropped bad values and unknown keys without a word and
// ran with the defaults.

#define CAF_SUITE binary.config

#include "caf/test/unit_test.hpp"

#include <chrono>
#include <csignal>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/temp_dir.hpp"

namespace qt = quiesce::test;

namespace {

/// How long a server with a bad file may take to refuse it. Generous: it
/// exits at once; a server that runs anyway (ignoring the file) fails here
/// instead of at the 30 s watchdog.
constexpr auto refusal_limit = std::chrono::milliseconds{10'000};

struct fixture : qt::binary_fixture {
  fixture() {
    CAF_REQUIRE(dir.ok());
  }

  /// Starts an echo server on a free port in `dir`, with `text` as its
  /// caf-application.ini and `extra` options.
  qt::process& run_with_file(const std::string& text,
                             const std::vector<std::string>& extra = {}) {
    CAF_REQUIRE(qt::write_file(dir.file("caf-application.ini"), text));
    std::vector<std::string> args{"--protocol=echo", "--host=127.0.0.1",
                                  "--port=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    qt::process_options opts;
    opts.working_directory = dir.path();
    return run(args, opts);
  }

  /// Checks that `proc` exits 2 at once with a message that contains
  /// `what`, starts with `quiesce: ` and points to --help, and prints no
  /// `listening on` line.
  void expect_refused(qt::process& proc, const std::string& what) {
    auto code = proc.wait_exit(refusal_limit);
    CAF_CHECK_EQUAL(qt::describe_exit(code), qt::describe_exit(2));
    auto err = proc.stderr_text();
    CAF_CHECK_EQUAL(err.substr(0, 9), "quiesce: ");
    if (err.find(what) == std::string::npos)
      CAF_ERROR("standard error lacks `" << what << "`: " << err);
    CAF_CHECK_NOT_EQUAL(err.find("(see --help)"), std::string::npos);
    CAF_CHECK_EQUAL(proc.stdout_text(), "");
  }

  /// Checks that a server with `text` as its config file is refused with
  /// `what` in the message.
  void expect_file_refused(const std::string& text, const std::string& what) {
    expect_refused(run_with_file(text), what);
  }

  qt::temp_dir dir;
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(config_tests, fixture)

CAF_TEST(a negative port in the file is a usage error) {
  expect_file_refused("[global]\nport=-1\n",
                      "bad value in caf-application.ini line 2: port = -1 "
                      "(expected uint16)");
}

CAF_TEST(a port that is a string in the file is a usage error) {
  expect_file_refused("; the port\n[global]\nport=\"abc\"\n",
                      "bad value in caf-application.ini line 3: port = "
                      "\"abc\" (expected uint16)");
}

CAF_TEST(a body limit that is a string in the file is a usage error) {
  expect_file_refused("[http]\nmax-body=\"abc\"\n",
                      "bad value in caf-application.ini line 2: "
                      "http.max-body = \"abc\" (expected uint64)");
}

CAF_TEST(an unknown key in the file is a usage error) {
  // The typo that would ship the default drain timeout.
  expect_file_refused("[global]\ndrain_timeout=1s\n",
                      "unknown option in caf-application.ini line 2: "
                      "drain_timeout (did you mean drain-timeout?)");
}

CAF_TEST(an unknown section in the file is a usage error) {
  expect_file_refused("[htpp]\nmax-body=5\n",
                      "unknown option in caf-application.ini line 2: "
                      "htpp.max-body (there is no section [htpp])");
}

CAF_TEST(a syntax error in the file names line and column) {
  // CAF's grammar takes a second `key=value` on a line; the second `5s` is
  // a key with no `=`: the error is at the end of the line.
  expect_file_refused("[global]\nport=80\ndrain-timeout = 5s 5s\n",
                      "syntax error in caf-application.ini line 3 column 22 "
                      "(unexpected newline)");
  expect_file_refused("[global]\nprotocol=echo\n",
                      "syntax error in caf-application.ini line 2 column 10 "
                      "(unexpected character 'e'; a string is written in "
                      "double quotes");
  expect_file_refused("[global\nport=1\n",
                      "syntax error in caf-application.ini line 1 column 8");
}

CAF_TEST(a value out of range in the file is a usage error) {
  expect_file_refused("[scheduler]\nmax-threads=0\n",
                      "bad value in caf-application.ini line 2: "
                      "scheduler.max-threads = 0 (must be an integer from 1 "
                      "to 256)");
  expect_file_refused("[middleman]\nmax-consecutive-reads=0\n",
                      "bad value in caf-application.ini line 2: "
                      "middleman.max-consecutive-reads = 0");
  // CAF's parser would make about 801h of it.
  expect_file_refused("[global]\ndrain-timeout=1000000000h\n",
                      "bad value in caf-application.ini line 2: drain-timeout "
                      "= 1000000000h (must be a duration greater than 0s and "
                      "at most 24h)");
}

CAF_TEST(integers in the file are plain decimal or a usage error) {
  // CAF's parser read 010 as octal 8 and 0x10 as 16, and made a syntax
  // error about the next character of 08080.
  const std::string decimal
    = "(must be a decimal integer: digits only, no sign, no leading zero)";
  expect_file_refused("[global]\nport=010\n",
                      "bad value in caf-application.ini line 2: port = 010 "
                        + decimal);
  expect_file_refused("[global]\nport = 08080 ; the port\n",
                      "bad value in caf-application.ini line 2: port = 08080 "
                        + decimal);
  expect_file_refused("[http]\nmax-body=0x10\n",
                      "bad value in caf-application.ini line 2: "
                      "http.max-body = 0x10 "
                        + decimal);
  expect_file_refused("[scheduler]\nmax-threads=+4\n",
                      "bad value in caf-application.ini line 2: "
                      "scheduler.max-threads = +4 "
                        + decimal);
  expect_file_refused("[global]\ndrain-timeout=010ms\n",
                      "bad value in caf-application.ini line 2: drain-timeout "
                      "= 010ms (must be a duration whose count has no leading "
                      "zero");
}

CAF_TEST(an option quiesce refuses is refused in the file too) {
  expect_file_refused("[logger]\nverbosity='trace'\n",
                      "unsupported option in caf-application.ini line 2: "
                      "logger.verbosity = 'trace' (CAF's logger is compiled "
                      "out");
  expect_file_refused("[global]\ndump-config=true\n",
                      "option only for the command line in "
                      "caf-application.ini line 2: dump-config");
}

CAF_TEST(a key given twice in the file is a usage error) {
  expect_file_refused("[global]\ndrain-timeout=1s\n\n[global]\n"
                      "drain-timeout=2s\n",
                      "option given twice in caf-application.ini line 5: "
                      "drain-timeout (first on line 2)");
}

CAF_TEST(a valid file is applied and the command line wins) {
  auto& srv = run_with_file("; quiesce\n"
                            "[global]\n"
                            "protocol=\"echo\"\n"
                            "port=1\n"
                            "drain-timeout=250ms\n"
                            "idle-timeout=30s\n"
                            "[scheduler]\n"
                            "max-threads=1\n"
                            "policy='sharing'\n",
                            {"--drain-timeout=300ms"});
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  // The command line's port (0: a free one), not the file's 1.
  CAF_CHECK_NOT_EQUAL(*port, 1);
  // The file's protocol: echo.
  expect_echo_then_clean_stop(srv, *port, "echo");
  CAF_CHECK_NOT_EQUAL(srv.stderr_text().find("drain timeout 300.0ms"),
                      std::string::npos);
}

CAF_TEST(a bad file named with config file is refused by its path) {
  auto other = dir.file("other.ini");
  CAF_REQUIRE(qt::write_file(other, "[global]\nport=-1\n"));
  auto& proc = run({"--config-file=" + other, "--protocol=echo", "--port=0"});
  expect_refused(proc, "bad value in " + other + " line 2: port = -1");
}

CAF_TEST(a config file that cannot be read is a usage error) {
  auto sub = dir.file("a-directory");
  CAF_REQUIRE_EQUAL(::mkdir(sub.c_str(), 0700), 0);
  auto& proc = run({"--config-file=" + sub, "--protocol=echo", "--port=0"});
  expect_refused(proc,
                 "cannot read the config file '" + sub + "': Is a directory");
  ::rmdir(sub.c_str());
}

CAF_TEST(a config file over 1 MiB is refused without reading it all) {
  // Read whole before CAF sees it: without a bound, a named file that never
  // ends (--config-file=/dev/zero, a FIFO) takes all the memory there is.
  // 2 MiB of comments, valid text: refused for its size alone.
  std::string text;
  while (text.size() < (size_t{2} << 20))
    text += "; " + std::string(77, 'c') + "\n";
  expect_file_refused(text, "cannot read the config file "
                            "'caf-application.ini': larger than 1 MiB");
}

CAF_TEST_FIXTURE_SCOPE_END()
