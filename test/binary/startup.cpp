#define CAF_SUITE binary.startup

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "caf/test/unit_test.hpp"

#include "support/binary_fixture.hpp"

using namespace quiesce::test;

namespace {

/// A temporary directory, removed with everything in it.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/quiesce-test-XXXXXX";
    if (auto* p = ::mkdtemp(tmpl))
      path_ = p;
  }

  ~temp_dir() {
    for (auto& f : files_)
      ::unlink(f.c_str());
    if (!path_.empty())
      ::rmdir(path_.c_str());
  }

  bool ok() const {
    return !path_.empty();
  }

  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

private:
  std::string path_;
  std::vector<std::string> files_;
};

bool write_file(const std::string& path, const std::string& text) {
  auto* f = std::fopen(path.c_str(), "w");
  if (f == nullptr)
    return false;
  auto ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

struct fixture : binary_fixture {};

} // namespace

CAF_TEST_FIXTURE_SCOPE(startup_tests, fixture)

CAF_TEST(a signal during start up ends the process cleanly) {
  // The server reads its config file during start-up. A FIFO as that file
  // holds it there, with its signal mask in place, until the test writes:
  // the SIGTERM then lands before the `listening on` line, deterministically.
  temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto fifo = dir.file("config.ini");
  CAF_REQUIRE_EQUAL(::mkfifo(fifo.c_str(), 0600), 0);
  auto& srv = run({"--config-file=" + fifo, "--protocol=echo", "--port=0"});
  CAF_REQUIRE(srv.started());
  // Blocks until the server has opened the FIFO for reading.
  unique_fd writer{::open(fifo.c_str(), O_WRONLY | O_CLOEXEC)};
  CAF_REQUIRE(writer);
  CAF_REQUIRE(srv.signal(SIGTERM));
  std::string text = "[global]\nlog-level=\"info\"\n";
  CAF_REQUIRE(::write(writer.get(), text.data(), text.size())
              == static_cast<ssize_t>(text.size()));
  writer.reset();
  CAF_CHECK_EQUAL(srv.wait_exit(), 0);
  CAF_CHECK(srv.stderr_text().find("SIGTERM received") != std::string::npos);
  CAF_CHECK(srv.stderr_text().find("stopped: drained=0 forced=0")
            != std::string::npos);
}

CAF_TEST(the config file sets options and the command line wins) {
  temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto ini = dir.file("quiesce.ini");
  // If the file's host won over the command line, the bind would fail.
  CAF_REQUIRE(write_file(ini, "[global]\n"
                              "protocol=\"echo\"\n"
                              "host=\"no-such-host.invalid\"\n"
                              "drain-timeout=250ms\n"));
  auto& srv = run({"--config-file=" + ini, "--host=127.0.0.1", "--port=0"});
  auto port = srv.wait_listening();
  CAF_REQUIRE(port);
  CAF_CHECK(srv.stdout_text().find("protocol=echo") != std::string::npos);
  auto conn = connect_loopback(*port);
  CAF_REQUIRE(conn.fd);
  CAF_REQUIRE(send_all(conn.fd.get(), "ini"));
  CAF_CHECK_EQUAL(read_exactly(conn.fd.get(), 3).bytes, "ini");
  CAF_REQUIRE(srv.signal(SIGTERM));
  CAF_CHECK_EQUAL(read_until_eof(conn.fd.get()).ending(), "clean EOF");
  conn.fd.reset();
  CAF_CHECK_EQUAL(srv.wait_exit(), 0);
  CAF_CHECK(srv.stderr_text().find("drain timeout 250.0ms")
            != std::string::npos);
}

CAF_TEST(a missing config file is a usage error) {
  auto& srv = run(
    {"--config-file=/nonexistent/quiesce.ini", "--protocol=echo", "--port=0"});
  CAF_CHECK_EQUAL(srv.wait_exit(), 2);
  CAF_CHECK(srv.stderr_text().find("/nonexistent/quiesce.ini")
            != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
