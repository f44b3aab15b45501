// `--log-format=json` (issue 14, Logs): every line the server writes on
// standard error, the master's and its workers', is one JSON object with
// `time`, `level`, `component` and `message`; the stop summary carries its
// counts and duration as JSON numbers, the same as the text run's line
// says. The text format stays the default. A bad value is exit 2.

#define CAF_SUITE binary.logs

#include "caf/test/unit_test.hpp"

#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/binary_fixture.hpp"
#include "support/json.hpp"
#include "support/temp_dir.hpp"

namespace qt = quiesce::test;

namespace {

using kind = qt::json_value::kind;

/// The lines of `text` (without their newlines); a last line without a
/// newline counts too.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> result;
  size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string::npos)
      eol = text.size();
    result.push_back(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return result;
}

/// Whether `x` reads like 2026-11-27T22:04:06.123Z.
bool rfc3339_millis(const std::string& x) {
  const std::string shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (x.size() != shape.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i) {
    auto digit = std::isdigit(static_cast<unsigned char>(x[i])) != 0;
    if (shape[i] == 'd' ? !digit : x[i] != shape[i])
      return false;
  }
  return true;
}

/// The number after `key=` in `text` (e.g. "drained=3"), or -1.
double number_after(const std::string& text, const std::string& key) {
  auto pos = text.find(" " + key + "=");
  if (pos == std::string::npos)
    return -1;
  return std::strtod(text.c_str() + pos + key.size() + 2, nullptr);
}

/// Every line of a JSON run, read back; what it found.
struct json_log {
  std::vector<qt::json_object> lines;
  /// The lines whose component and message start are those asked for.
  std::vector<qt::json_object> find(const std::string& component,
                                    const std::string& message_start) const {
    std::vector<qt::json_object> result;
    for (auto& x : lines) {
      auto c = x.find("component");
      auto m = x.find("message");
      if (c != x.end() && c->second.text == component && m != x.end()
          && m->second.text.rfind(message_start, 0) == 0)
        result.push_back(x);
    }
    return result;
  }
};

/// Reads every line of `text` as a JSON object with the members every line
/// has; a failed check for each one that is not.
json_log read_json_log(const std::string& text) {
  json_log result;
  const std::set<std::string> levels{"debug", "info", "warning", "error"};
  for (auto& line : lines_of(text)) {
    std::string error;
    auto obj = qt::parse_json_object(line, &error);
    if (!obj) {
      CAF_ERROR("not a JSON object (" << error << "): " << line);
      continue;
    }
    auto& x = *obj;
    for (auto key : {"time", "level", "component", "message"})
      if (x.count(key) == 0 || x[key].type != kind::string)
        CAF_ERROR("no string `" << key << "` in: " << line);
    if (!rfc3339_millis(x["time"].text))
      CAF_ERROR("`time` is no RFC 3339 UTC time with milliseconds: " << line);
    if (levels.count(x["level"].text) == 0)
      CAF_ERROR("unknown `level`: " << line);
    if (x.count("worker") > 0 && x["worker"].type != kind::number)
      CAF_ERROR("`worker` is no number: " << line);
    result.lines.push_back(std::move(x));
  }
  return result;
}

/// Checks that the summary `x` has its fields as numbers and that they say
/// what its message says.
void check_summary_fields(qt::json_object& x) {
  auto message = x["message"].text;
  for (auto key : {"drained", "forced", "open_at_stop", "duration_ms"})
    if (x[key].type != kind::number)
      CAF_ERROR("`" << key << "` is no number in the summary: " << message);
  CAF_CHECK_EQUAL(x["drained"].number, number_after(message, "drained"));
  CAF_CHECK_EQUAL(x["forced"].number, number_after(message, "forced"));
  // The message rounds to 0.1 ms.
  auto in_text = number_after(message, "duration");
  CAF_CHECK_GREATER_OR_EQUAL(in_text, 0.0);
  CAF_CHECK_LESS_OR_EQUAL(std::abs(x["duration_ms"].number - in_text), 0.051);
}

/// Checks that each process (the lines without `worker`, and each worker's)
/// has exactly one line with the stop summary's fields (`drained`,
/// `open_at_stop`; the services' line has a `forced` of its own), and that
/// the admin
/// listener's own summary line is not one of them.
void check_one_summary_per_process(json_log& log, size_t processes) {
  std::map<std::string, size_t> by_process;
  for (auto& x : log.lines)
    if (x.count("drained") > 0 || x.count("open_at_stop") > 0)
      ++by_process[x.count("worker") > 0 ? x["worker"].text : "-"];
  CAF_CHECK_EQUAL(by_process.size(), processes);
  for (auto& [process, count] : by_process)
    CAF_CHECK_EQUAL(process + ": " + std::to_string(count), process + ": 1");
  auto admin = log.find("admin", "admin listener closed: ");
  CAF_REQUIRE_EQUAL(admin.size(), 1u);
  CAF_CHECK_EQUAL(admin.front().count("drained"), 0u);
}

struct fixture : qt::binary_fixture {
  /// Starts an HTTP server with `extra` options (debug level: one line per
  /// connection event), opens `n` keep-alive connections, each answered
  /// once, and stops it with SIGTERM; checks exit 0. Its standard error.
  std::string run_and_stop(const std::vector<std::string>& extra, size_t n,
                           const std::string& opened_marker) {
    std::vector<std::string> args{"--log-level=debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto port = start_http(args);
    if (port == 0)
      return {};
    auto conns = connect_clients(port, n);
    for (auto& fd : conns) {
      CAF_CHECK(qt::send_all(fd.get(), "GET / HTTP/1.1\r\nHost: q\r\n\r\n"));
      CAF_CHECK_EQUAL(qt::read_through(fd.get(), "\r\n\r\n").ending(),
                      "complete");
    }
    // Every connection is open in the server (none waits in the backlog):
    // each counts as drained at the stop.
    if (!server().wait_stderr(opened_marker, n))
      CAF_ERROR("the server opened fewer than " << n << " connections");
    CAF_REQUIRE(server().signal(SIGTERM));
    for (auto& fd : conns)
      CAF_CHECK_EQUAL(qt::read_until_eof(fd.get()).ending(), "clean EOF");
    conns.clear();
    expect_exit(0);
    return server().stderr_text();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(log_tests, fixture)

CAF_TEST(a json run writes one object per line and the summary as numbers) {
  constexpr size_t n = 3;
  auto text
    = run_and_stop({"--workers=1", "--log-format=json", "--admin=127.0.0.1:0"},
                   n, " opened\"}");
  auto log = read_json_log(text);
  CAF_CHECK_GREATER(log.lines.size(), 3 * n);
  check_one_summary_per_process(log, 1);
  auto summary = log.find("supervisor", "stopped: ");
  CAF_REQUIRE_EQUAL(summary.size(), 1u);
  auto& x = summary.front();
  check_summary_fields(x);
  CAF_CHECK_EQUAL(x["drained"].text, std::to_string(n));
  CAF_CHECK_EQUAL(x["forced"].text, "0");
  CAF_CHECK_EQUAL(x["open_at_stop"].text, std::to_string(n));
  CAF_CHECK_EQUAL(x.count("worker"), 0u);
  // The listening line is still the plain one on standard output.
  CAF_CHECK_EQUAL(server().stdout_text().rfind("listening on 127.0.0.1:", 0),
                  0u);
}

CAF_TEST(the text format is the default and its summary says the same) {
  constexpr size_t n = 3;
  auto text = run_and_stop({"--workers=1"}, n, " opened\n");
  std::string summary;
  for (auto& line : lines_of(text)) {
    // 2026-11-27T22:04:06.123Z LEVEL COMPONENT: MESSAGE
    auto space = line.find(' ');
    if (!rfc3339_millis(line.substr(0, space))
        || line.find(": ", space) == std::string::npos)
      CAF_ERROR("not a text log line: " << line);
    if (line.find(" info supervisor: stopped: ") != std::string::npos)
      summary = line;
  }
  CAF_REQUIRE(!summary.empty());
  // The same run as the JSON one: the same counts.
  CAF_CHECK_EQUAL(number_after(summary, "drained"), static_cast<double>(n));
  CAF_CHECK_EQUAL(number_after(summary, "forced"), 0.0);
  CAF_CHECK_EQUAL(text.find('{'), std::string::npos);
}

CAF_TEST(with workers the lines of the master and of every worker are json) {
  constexpr size_t n = 4;
  auto text
    = run_and_stop({"--workers=2", "--log-format=json", "--admin=127.0.0.1:0"},
                   n, " opened\"}");
  auto log = read_json_log(text);
  check_one_summary_per_process(log, 3);
  std::set<std::string> workers;
  for (auto& x : log.lines)
    if (x.count("worker") > 0)
      workers.insert(x["worker"].text);
  CAF_CHECK_EQUAL(workers, (std::set<std::string>{"1", "2"}));
  // The master's summary: the sums, and how many workers answered.
  auto summary = log.find("master", "stopped: ");
  CAF_REQUIRE_EQUAL(summary.size(), 1u);
  auto& x = summary.front();
  check_summary_fields(x);
  CAF_CHECK_EQUAL(x.count("worker"), 0u);
  CAF_CHECK_EQUAL(x["drained"].text, std::to_string(n));
  CAF_CHECK_EQUAL(x["forced"].text, "0");
  CAF_CHECK_EQUAL(x["open_at_stop"].text, std::to_string(n));
  CAF_CHECK(x["workers"].type == kind::number);
  CAF_CHECK_EQUAL(x["workers"].text, "2");
  // Each worker's own line has the fields too; they add up to the sums.
  auto own = log.find("supervisor", "this worker's drain is over");
  CAF_REQUIRE_EQUAL(own.size(), 2u);
  double drained = 0;
  for (auto& y : own) {
    CAF_CHECK(y["worker"].type == kind::number);
    CAF_CHECK(y["drained"].type == kind::number);
    drained += y["drained"].number;
  }
  CAF_CHECK_EQUAL(drained, static_cast<double>(n));
}

CAF_TEST(a reload to json turns the master and the new workers to json) {
  qt::temp_dir dir;
  CAF_REQUIRE(dir.ok());
  auto file = dir.file("caf-application.ini");
  CAF_REQUIRE(qt::write_file(file, "[global]\n"));
  qt::process_options opts;
  opts.working_directory = dir.path();
  auto& srv = run(
    {"--protocol=http", "--host=127.0.0.1", "--port=0", "--workers=2"}, opts);
  CAF_REQUIRE(srv.wait_listening());
  CAF_REQUIRE(qt::write_file(file, "[global]\nlog-format=\"json\"\n"));
  CAF_REQUIRE(srv.signal(SIGHUP));
  // The old workers keep their text lines until they exit.
  CAF_REQUIRE(srv.wait_stderr("\"message\":\"reload: generation 2 ready"));
  CAF_REQUIRE(srv.wait_stderr(") exited with code 0\"}", 2));
  CAF_REQUIRE(srv.signal(SIGTERM));
  CAF_CHECK_EQUAL(qt::describe_exit(srv.wait_exit()), qt::describe_exit(0));
  auto all = lines_of(srv.stderr_text());
  size_t i = 0;
  while (i < all.size()
         && all[i].find(" master: SIGHUP received: reloading")
              == std::string::npos)
    ++i;
  CAF_REQUIRE_LESS(i, all.size());
  std::string after;
  size_t old_lines = 0;
  for (++i; i < all.size(); ++i) {
    // A text line of an old worker: "TIME LEVEL worker N COMPONENT: ...".
    auto colon = all[i].find(": ");
    auto old_worker
      = [&](const char* name) { return all[i].find(name) < colon; };
    if (all[i].rfind("{", 0) != 0
        && (old_worker(" worker 1 ") || old_worker(" worker 2 "))) {
      ++old_lines;
      continue;
    }
    after += all[i] + "\n";
  }
  auto log = read_json_log(after);
  CAF_MESSAGE(log.lines.size() << " JSON lines after the reload, " << old_lines
                               << " text lines of old workers");
  std::set<std::string> workers;
  for (auto& x : log.lines)
    if (x.count("worker") > 0)
      workers.insert(x["worker"].text);
  CAF_CHECK_EQUAL(workers, (std::set<std::string>{"3", "4"}));
  auto summary = log.find("master", "stopped: ");
  CAF_REQUIRE_EQUAL(summary.size(), 1u);
  check_summary_fields(summary.front());
}

CAF_TEST(a bad log format is a usage error naming it) {
  for (std::string value : {"xml", "", "JSON", "json "}) {
    auto& proc = run({"--protocol=http", "--host=127.0.0.1", "--port=0",
                      "--log-format=" + value});
    CAF_CHECK_EQUAL(qt::describe_exit(proc.wait_exit()), qt::describe_exit(2));
    CAF_CHECK_NOT_EQUAL(proc.stderr_text().find("'--log-format=" + value + "'"),
                        std::string::npos);
    CAF_CHECK_EQUAL(proc.stdout_text(), "");
  }
  // In the config file too, naming the file and the line.
  qt::temp_dir dir;
  CAF_REQUIRE(dir.ok());
  CAF_REQUIRE(qt::write_file(dir.file("caf-application.ini"),
                             "[global]\nlog-format=\"yaml\"\n"));
  qt::process_options opts;
  opts.working_directory = dir.path();
  auto& proc = run({"--protocol=http", "--host=127.0.0.1", "--port=0"}, opts);
  CAF_CHECK_EQUAL(qt::describe_exit(proc.wait_exit()), qt::describe_exit(2));
  CAF_CHECK_NOT_EQUAL(proc.stderr_text().find("line 2: log-format"),
                      std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
