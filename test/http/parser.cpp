#define CAF_SUITE http.parser

#include "actors/behaviours/http_request_parser.hpp"

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "caf/test/unit_test.hpp"

using quiesce::http::request;
using quiesce::http::request_parser;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

constexpr size_t max_header = request_parser::default_max_header_bytes;
constexpr size_t max_body = request_parser::default_max_body_bytes;

/// What a test expects of one request.
struct expected_request {
  std::string method;
  std::string target;
  unsigned version_major = 1;
  unsigned version_minor = 1;
  bool keep_alive = true;
  header_list headers;
  std::string body;
};

std::string describe(const header_list& xs) {
  std::string result = "[";
  for (auto& [field, value] : xs) {
    if (result.size() > 1)
      result += ", ";
    result += field + ": " + value;
  }
  return result + "]";
}

/// A short form of `body` for messages: large bodies by their size only.
std::string describe_body(const std::string& body) {
  if (body.size() > 64)
    return "<" + std::to_string(body.size()) + " bytes>";
  return "\"" + body + "\"";
}

std::string describe(const request& x) {
  return x.method + " " + x.target + " HTTP/" + std::to_string(x.version_major)
         + "." + std::to_string(x.version_minor)
         + (x.keep_alive ? " keep-alive " : " close ") + describe(x.headers)
         + " body " + describe_body(x.body);
}

bool same(const request& x, const request& y) {
  return x.method == y.method && x.target == y.target
         && x.version_major == y.version_major
         && x.version_minor == y.version_minor && x.keep_alive == y.keep_alive
         && x.headers == y.headers && x.body == y.body;
}

/// Empty when `x` is what `want` describes, else what differs.
std::string mismatch(const request& x, const expected_request& want) {
  std::string result;
  auto differs = [&](const char* what, const std::string& got,
                     const std::string& expected) {
    result
      += std::string{what} + ": got " + got + ", expected " + expected + "; ";
  };
  if (x.method != want.method)
    differs("method", x.method, want.method);
  if (x.target != want.target)
    differs("target", x.target, want.target);
  if (x.version_major != want.version_major
      || x.version_minor != want.version_minor)
    differs("version",
            std::to_string(x.version_major) + "."
              + std::to_string(x.version_minor),
            std::to_string(want.version_major) + "."
              + std::to_string(want.version_minor));
  if (x.keep_alive != want.keep_alive)
    differs("keep_alive", x.keep_alive ? "true" : "false",
            want.keep_alive ? "true" : "false");
  if (x.headers != want.headers)
    differs("headers", describe(x.headers), describe(want.headers));
  if (x.body != want.body)
    differs("body", describe_body(x.body), describe_body(want.body));
  return result;
}

/// What feeding one input in some pieces gave.
struct outcome {
  std::vector<request> requests;
  /// What the last `feed` returned.
  int status = 0;
  /// Once a `feed` failed, every later one returned the same code.
  bool sticky = true;
  /// `mid_request()` after the last piece.
  bool mid = false;
  /// What `awaiting_body()` showed after the last piece.
  std::optional<request> awaiting;
};

outcome feed_pieces(const std::vector<std::string_view>& pieces) {
  request_parser parser;
  outcome result;
  for (auto piece : pieces) {
    auto before = result.status;
    result.status = parser.feed(piece, result.requests);
    if (before != 0 && result.status != before)
      result.sticky = false;
  }
  if (parser.failure() != result.status)
    result.sticky = false;
  result.mid = parser.mid_request();
  if (auto* head = parser.awaiting_body())
    result.awaiting = *head;
  return result;
}

outcome feed_whole(std::string_view input) {
  return feed_pieces({input});
}

/// `input` in two pieces, the first `n` bytes long (0 and the size give an
/// empty piece).
outcome feed_split(std::string_view input, size_t n) {
  return feed_pieces({input.substr(0, n), input.substr(n)});
}

outcome feed_bytewise(std::string_view input) {
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < input.size(); ++i)
    pieces.push_back(input.substr(i, 1));
  return feed_pieces(pieces);
}

/// Empty when `x` gave the same as `ref`, else what differs.
std::string difference(const outcome& x, const outcome& ref) {
  if (x.status != ref.status)
    return "status " + std::to_string(x.status) + " instead of "
           + std::to_string(ref.status);
  if (!x.sticky)
    return "a feed after the failure returned another code";
  if (x.mid != ref.mid)
    return std::string{"mid_request() "} + (x.mid ? "true" : "false")
           + " instead of " + (ref.mid ? "true" : "false");
  if (x.awaiting.has_value() != ref.awaiting.has_value())
    return std::string{"awaiting_body() "} + (x.awaiting ? "shows" : "hides")
           + " a head";
  if (x.awaiting && !same(*x.awaiting, *ref.awaiting))
    return "awaiting_body() shows " + describe(*x.awaiting) + " instead of "
           + describe(*ref.awaiting);
  if (x.requests.size() != ref.requests.size())
    return std::to_string(x.requests.size()) + " requests instead of "
           + std::to_string(ref.requests.size());
  for (size_t i = 0; i < x.requests.size(); ++i)
    if (!same(x.requests[i], ref.requests[i]))
      return "request " + std::to_string(i) + " is " + describe(x.requests[i])
             + " instead of " + describe(ref.requests[i]);
  return {};
}

/// Feeds `input` whole, split in two at every byte boundary, and one byte at
/// a time; returns the first way of feeding it that differs from the whole
/// feed (empty when all agree).
std::string first_split_difference(std::string_view input,
                                   const outcome& whole) {
  for (size_t n = 0; n <= input.size(); ++n) {
    auto diff = difference(feed_split(input, n), whole);
    if (!diff.empty())
      return "split after byte " + std::to_string(n) + ": " + diff;
  }
  auto diff = difference(feed_bytewise(input), whole);
  if (!diff.empty())
    return "one byte at a time: " + diff;
  return {};
}

/// A valid input, what it must give, and `mid_request()` at its end.
struct valid_case {
  const char* name;
  std::string input;
  std::vector<expected_request> expected;
  bool mid_at_end = false;
};

void check_valid(const valid_case& c) {
  CAF_MESSAGE(c.name);
  auto whole = feed_whole(c.input);
  CAF_CHECK_EQUAL(whole.status, 0);
  CAF_CHECK_EQUAL(whole.mid, c.mid_at_end);
  CAF_CHECK_EQUAL(whole.requests.size(), c.expected.size());
  for (size_t i = 0; i < whole.requests.size() && i < c.expected.size(); ++i)
    CAF_CHECK_EQUAL(mismatch(whole.requests[i], c.expected[i]), "");
  CAF_CHECK_EQUAL(first_split_difference(c.input, whole), "");
}

/// A request with a header section of exactly `size` bytes: the request
/// line, `Host`, one `X-Fill` header padded to fit, and the empty line.
std::string header_section_of(size_t size) {
  const std::string line = "GET / HTTP/1.1\r\nHost: x\r\n";
  const std::string field = "X-Fill: ";
  auto fixed = line.size() + field.size() + 2 + 2;
  return line + field + std::string(size - fixed, 'a') + "\r\n" + "\r\n";
}

std::string chunked_body(size_t chunks, size_t chunk_size, char fill) {
  std::string result;
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", chunk_size);
  for (size_t i = 0; i < chunks; ++i)
    result += size_line + std::string(chunk_size, fill) + "\r\n";
  return result;
}

const std::string chunked_post = "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n";

const header_list chunked_headers
  = {{"Host", "x"}, {"Transfer-Encoding", "chunked"}};

/// `GET <target>` with `Host: x` and `fields`.
std::string get(std::string_view target, std::string_view fields = "") {
  return "GET " + std::string{target} + " HTTP/1.1\r\nHost: x\r\n"
         + std::string{fields} + "\r\n";
}

/// An input the parser must refuse, with the status, and the requests
/// before the refused one (which must come out).
struct refused_case {
  const char* name;
  std::string input;
  int status;
  size_t requests_before = 0;
};

/// Checks `c` fed whole, split in two at every byte and byte by byte: the
/// same status, the same requests, everywhere.
void check_refused(const refused_case& c) {
  CAF_MESSAGE(c.name << " -> " << c.status);
  auto whole = feed_whole(c.input);
  if (whole.status != c.status)
    CAF_ERROR(c.name << ": status " << whole.status << " instead of "
                     << c.status);
  if (whole.requests.size() != c.requests_before)
    CAF_ERROR(c.name << ": " << whole.requests.size() << " requests before "
                     << "the refused one instead of " << c.requests_before);
  CAF_CHECK(!whole.mid);
  CAF_CHECK(!whole.awaiting);
  auto diff = first_split_difference(c.input, whole);
  if (!diff.empty())
    CAF_ERROR(c.name << ": " << diff);
}

} // namespace

// -- valid requests, in every split -------------------------------------------

CAF_TEST(a GET with headers) {
  check_valid({"GET with headers",
               "GET /index.html HTTP/1.1\r\n"
               "Host: example.com\r\n"
               "User-Agent: quiesce-test/1.0\r\n"
               "Accept: */*\r\n"
               "X-Empty:\r\n"
               "X-Spaces: \t a  b \t \r\n"
               "X-Obs-Text: caf\xc3\xa9\r\n"
               "X-Last: yes\r\n"
               "\r\n",
               {{"GET",
                 "/index.html",
                 1,
                 1,
                 true,
                 {{"Host", "example.com"},
                  {"User-Agent", "quiesce-test/1.0"},
                  {"Accept", "*/*"},
                  {"X-Empty", ""},
                  {"X-Spaces", "a  b"},
                  {"X-Obs-Text", "caf\xc3\xa9"},
                  {"X-Last", "yes"}},
                 ""}}});
}

CAF_TEST(a POST with a Content Length body) {
  // The body holds an empty line and a NUL: only the length delimits it.
  const std::string body{"hello,\r\n\r\nworld\0 end", 20};
  check_valid({"POST with Content-Length",
               "POST /echo HTTP/1.1\r\n"
               "Host: example.com\r\n"
               "Content-Type: text/plain\r\n"
               "Content-Length: 20\r\n"
               "\r\n"
                 + body,
               {{"POST",
                 "/echo",
                 1,
                 1,
                 true,
                 {{"Host", "example.com"},
                  {"Content-Type", "text/plain"},
                  {"Content-Length", "20"}},
                 body}}});
}

CAF_TEST(a POST with a chunked body with chunk extensions and trailers) {
  // Trailer fields are checked and dropped: they never join the header.
  check_valid({"POST chunked",
               "POST /echo HTTP/1.1\r\n"
               "Host: example.com\r\n"
               "Transfer-Encoding: chunked\r\n"
               "\r\n"
               "5;name=value\r\n"
               "hello\r\n"
               "7;a=1;b=\"q\\\"\" ; c\r\n"
               ", world\r\n"
               "A\r\n"
               "0123456789\r\n"
               "000000000000000F\r\n"
               "0123456789abcde\r\n"
               "0;last\r\n"
               "X-Checksum: 1234\r\n"
               "X-Trailer-Two: yes\r\n"
               "\r\n",
               {{"POST",
                 "/echo",
                 1,
                 1,
                 true,
                 {{"Host", "example.com"}, {"Transfer-Encoding", "chunked"}},
                 "hello, world01234567890123456789abcde"}}});
}

CAF_TEST(a chunked request with trailers leaves the next request alone) {
  check_valid({"chunked with trailers, then a GET",
               chunked_post
                 + "3;ext\r\nabc\r\n0\r\nX-T1: 1\r\nX-T2: 2\r\n\r\n"
                   "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n",
               {{"POST", "/echo", 1, 1, true, chunked_headers, "abc"},
                {"GET", "/next", 1, 1, true, {{"Host", "example.com"}}, ""}}});
}

CAF_TEST(a chunked body of one empty last chunk) {
  check_valid({"only the last chunk",
               chunked_post + "0\r\n\r\n" + get("/next"),
               {{"POST", "/echo", 1, 1, true, chunked_headers, ""},
                {"GET", "/next", 1, 1, true, {{"Host", "x"}}, ""}}});
}

CAF_TEST(HTTP 1.0 without keep alive closes) {
  // HTTP/1.0 needs no Host.
  check_valid({"HTTP/1.0",
               "GET /old HTTP/1.0\r\n\r\n",
               {{"GET", "/old", 1, 0, false, {}, ""}}});
}

CAF_TEST(HTTP 1.0 with keep alive stays open) {
  check_valid({"HTTP/1.0 keep-alive",
               "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
               {{"GET", "/", 1, 0, true, {{"Connection", "keep-alive"}}, ""}}});
}

CAF_TEST(HTTP 1.1 with Connection close closes) {
  check_valid({"HTTP/1.1 Connection: close",
               "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n"
               "\r\n",
               {{"GET",
                 "/",
                 1,
                 1,
                 false,
                 {{"Host", "example.com"}, {"Connection", "close"}},
                 ""}}});
  // close wins over keep-alive, on HTTP/1.0 too.
  check_valid(
    {"HTTP/1.0 Connection: keep-alive, close",
     "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
     {{"GET", "/", 1, 0, false, {{"Connection", "keep-alive, close"}}, ""}}});
}

CAF_TEST(the target keeps its query string) {
  check_valid(
    {"query string",
     get("/delay/100?x=1&y=%20z"),
     {{"GET", "/delay/100?x=1&y=%20z", 1, 1, true, {{"Host", "x"}}, ""}}});
}

CAF_TEST(an unknown method that is a token comes out as a request) {
  // The server answers it 501: not a parse error.
  check_valid({"BREW and FOO",
               "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n"
               "FOO / HTTP/1.1\r\nHost: x\r\n\r\n"
               "M-1!#$%&'*+.^_`|~ / HTTP/1.1\r\nHost: x\r\n\r\n",
               {{"BREW", "/pot", 1, 1, true, {{"Host", "x"}}, ""},
                {"FOO", "/", 1, 1, true, {{"Host", "x"}}, ""},
                {"M-1!#$%&'*+.^_`|~", "/", 1, 1, true, {{"Host", "x"}}, ""}}});
}

CAF_TEST(absolute form and asterisk form targets come out as sent) {
  check_valid(
    {"absolute-form",
     get("http://h/") + get("https://h:8443/a/b?q=1") + get("http://h")
       + get("HTTP://h?x") + "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
     {{"GET", "http://h/", 1, 1, true, {{"Host", "x"}}, ""},
      {"GET", "https://h:8443/a/b?q=1", 1, 1, true, {{"Host", "x"}}, ""},
      {"GET", "http://h", 1, 1, true, {{"Host", "x"}}, ""},
      {"GET", "HTTP://h?x", 1, 1, true, {{"Host", "x"}}, ""},
      {"OPTIONS", "*", 1, 1, true, {{"Host", "x"}}, ""}}});
}

CAF_TEST(a Host of any valid form or empty is accepted) {
  check_valid({"Host forms",
               "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
               "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
               "GET / HTTP/1.1\r\nhost: Example.COM\r\n\r\n"
               "GET / HTTP/1.1\r\nHost:\r\n\r\n",
               {{"GET", "/", 1, 1, true, {{"Host", "127.0.0.1:8080"}}, ""},
                {"GET", "/", 1, 1, true, {{"Host", "[::1]:80"}}, ""},
                {"GET", "/", 1, 1, true, {{"host", "Example.COM"}}, ""},
                {"GET", "/", 1, 1, true, {{"Host", ""}}, ""}}});
}

CAF_TEST(three pipelined requests in one buffer) {
  check_valid(
    {"three pipelined requests",
     "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n"
     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
     "GET /delay/5 HTTP/1.0\r\nX-Third: 3\r\n\r\n",
     {{"GET", "/a", 1, 1, true, {{"Host", "example.com"}}, ""},
      {"POST",
       "/echo",
       1,
       1,
       true,
       {{"Host", "x"}, {"Content-Length", "5"}},
       "hello"},
      {"GET", "/delay/5", 1, 0, false, {{"X-Third", "3"}}, ""}}});
}

CAF_TEST(a complete request followed by the start of the next one) {
  check_valid({"complete request, then part of one",
               get("/a") + "GET /b HTTP/1.1\r\nHo",
               {{"GET", "/a", 1, 1, true, {{"Host", "x"}}, ""}},
               true});
}

CAF_TEST(empty lines before a request line are ignored) {
  // RFC 9112 2.2; some clients send CR LF after a body.
  check_valid({"empty lines",
               "\r\n\r\n" + get("/a") + "\r\n" + get("/b"),
               {{"GET", "/a", 1, 1, true, {{"Host", "x"}}, ""},
                {"GET", "/b", 1, 1, true, {{"Host", "x"}}, ""}}});
}

// -- strictness: what two parsers could frame differently is refused ----------

CAF_TEST(request smuggling inputs get 400 in every split) {
  // H1: http-parser 2.9 skipped everything up to the CR in a chunk
  // extension, so that `2;\n` was a chunk-size line ending in `AB\r\n`; a
  // parser that ends the line at the bare LF reads another request.
  const std::string smuggle = "POST /echo HTTP/1.1\r\nHost: x\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"
                              "2;\nAB\r\nCD\r\n0\r\n\r\n"
                              "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::vector<refused_case> cases = {
    {"H1: a bare LF in a chunk extension", smuggle, 400},
    {"a bare LF after the chunk size", chunked_post + "2\nAB\r\n0\r\n\r\n",
     400},
    {"a bare CR after the chunk size", chunked_post + "2\rAB\r\n0\r\n\r\n",
     400},
    {"junk after the chunk size", chunked_post + "2x\r\nAB\r\n0\r\n\r\n", 400},
    {"a space after the chunk size", chunked_post + "2 \r\nAB\r\n0\r\n\r\n",
     400},
    {"a 0x prefix", chunked_post + "0x2\r\nAB\r\n0\r\n\r\n", 400},
    {"a negative chunk size", chunked_post + "-2\r\nAB\r\n0\r\n\r\n", 400},
    {"an empty chunk size", chunked_post + "\r\nAB\r\n0\r\n\r\n", 400},
    {"a chunk size over 64 bits",
     chunked_post + "10000000000000000\r\nAB\r\n0\r\n\r\n", 400},
    {"a chunk size of 17 digits (leading zeros)",
     chunked_post + "00000000000000002\r\nAB\r\n0\r\n\r\n", 400},
    {"a last chunk of 17 zeros", chunked_post + "00000000000000000\r\n\r\n",
     400},
    {"chunk data longer than its size", chunked_post + "2\r\nABCD\r\n0\r\n\r\n",
     400},
    {"no CR LF after the chunk data", chunked_post + "2\r\nAB0\r\n\r\n", 400},
    {"a bare LF after the chunk data", chunked_post + "2\r\nAB\n0\r\n\r\n",
     400},
    {"a chunk extension without a name", chunked_post + "2;\r\nAB\r\n", 400},
    {"a chunk extension with a bad value", chunked_post + "2;a=b c\r\nAB\r\n",
     400},
    {"a control character in a quoted chunk extension",
     chunked_post + "2;a=\"x\ny\"\r\nAB\r\n0\r\n\r\n", 400},
    {"a NUL in a quoted chunk extension",
     chunked_post + std::string{"2;a=\"x\0y\"\r\nAB\r\n0\r\n\r\n", 20}, 400},
    {"obsolete line folding in the trailer section",
     chunked_post + "0\r\nX-T: a\r\n b\r\n\r\n", 400},
    {"a bare LF in the trailer section",
     chunked_post + "0\r\nX-T: a\nX-U: b\r\n\r\n", 400},
    {"Content-Length in the trailer section",
     chunked_post + "0\r\nContent-Length: 5\r\n\r\n", 400},
    {"a chunk-size line over 8 KiB",
     chunked_post + "1;a=" + std::string(9000, 'b') + "\r\nx\r\n0\r\n\r\n",
     400},
    {"a trailer section over 8 KiB",
     chunked_post + "0\r\nX-T: " + std::string(9000, 'b') + "\r\n\r\n", 431},
    {"a request before the smuggling one comes out", get("/first") + smuggle,
     400, 1},
  };
  for (auto& c : cases)
    check_refused(c);
}

CAF_TEST(a bare LF or CR in chunk framing fails before its line ends) {
  // Beast looks for the CR LF that ends a chunk-size line (or the empty
  // line that ends the trailer section) before it checks the line: a bare
  // LF or CR already received is 400 at once, not a wait for bytes that
  // may never come (the body has no timeout).
  const std::vector<refused_case> cases = {
    {"a bare LF in a chunk extension", chunked_post + "2;a\n", 400},
    {"a bare LF after a chunk size", chunked_post + "2\n", 400},
    {"a bare CR in a chunk extension", chunked_post + "2;a\rb", 400},
    {"a bare LF in the trailer section",
     chunked_post + "2\r\nAB\r\n0\r\nX: y\n", 400},
    {"an empty line with a bare LF ending the trailer section",
     chunked_post + "0\r\nX: y\r\n\n", 400},
    {"a bare CR in the trailer section", chunked_post + "0\r\nX: y\rZ", 400},
  };
  for (auto& c : cases)
    check_refused(c);
}

CAF_TEST(transfer codings and lengths that frame ambiguously get 400) {
  const std::string te_post = "POST /echo HTTP/1.1\r\nHost: x\r\n";
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const std::vector<refused_case> cases = {
    // M4, RFC 9112 6.1: HTTP/1.0 has no Transfer-Encoding.
    {"Transfer-Encoding on HTTP/1.0",
     "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + body, 400},
    {"chunked in two fields",
     te_post
       + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
       + body,
     400},
    {"chunked twice in one field",
     te_post + "Transfer-Encoding: chunked, chunked\r\n\r\n" + body, 400},
    {"Transfer-Encoding, then Content-Length",
     te_post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" + body,
     400},
    {"Content-Length, then Transfer-Encoding",
     te_post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
     400},
    {"Content-Length with a coding that is not chunked",
     te_post + "Content-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400},
    // RFC 9112 6.3: chunked not last, the length cannot be determined.
    {"chunked not last", te_post + "Transfer-Encoding: chunked, gzip\r\n\r\n",
     400},
    {"no chunked at all", te_post + "Transfer-Encoding: gzip\r\n\r\nabc", 400},
    {"identity", te_post + "Transfer-Encoding: identity\r\n\r\nabc", 400},
    {"an empty Transfer-Encoding", te_post + "Transfer-Encoding:\r\n\r\n", 400},
    {"chunked with a parameter",
     te_post + "Transfer-Encoding: chunked;x=1\r\n\r\n" + body, 400},
    {"a coding that is not a token",
     te_post + "Transfer-Encoding: g(z)ip, chunked\r\n\r\n" + body, 400},
    // RFC 9112 6.1: a coding the server does not understand.
    {"gzip before chunked",
     te_post + "Transfer-Encoding: gzip, chunked\r\n\r\n" + body, 501},
    {"gzip before chunked in two fields",
     te_post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
       + body,
     501},
    {"two different Content-Lengths",
     te_post + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
    {"the same Content-Length twice",
     te_post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
    {"a Content-Length list", te_post + "Content-Length: 3, 3\r\n\r\nabc", 400},
    {"a Content-Length with a sign", te_post + "Content-Length: +3\r\n\r\nabc",
     400},
    {"a Content-Length that is not a number",
     te_post + "Content-Length: abc\r\n\r\n", 400},
    {"a negative Content-Length", te_post + "Content-Length: -1\r\n\r\n", 400},
    {"a Content-Length over 64 bits",
     te_post + "Content-Length: 18446744073709551616\r\n\r\n", 400},
  };
  for (auto& c : cases)
    check_refused(c);
}

CAF_TEST(request lines are strict and versions other than 1.0 and 1.1 get 505) {
  const std::vector<refused_case> cases = {
    {"garbage request line", "HELLO WORLD\r\n\r\n", 400},
    {"TLS handshake bytes", std::string{"\x16\x03\x01\x02\x00\x01", 6}, 400},
    {"a method that is not a token", "GE(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"a method with obs-text", "G\xc3\x89T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"a tab after the method", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"a space before the method", " GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"two spaces before the version", "GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
     400},
    {"a control character in the target",
     "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"no version (HTTP/0.9)", "GET /\r\n\r\n", 400},
    {"a space after the version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
    {"a bare LF after the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n",
     400},
    {"HTTP/1.x", "GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400},
    {"HTTX/1.1", "GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400},
    {"http/1.1 in lower case", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
    {"HTTP/11", "GET / HTTP/11\r\nHost: x\r\n\r\n", 400},
    {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400},
    {"bad version", "GET / HTTP/9x\r\n\r\n", 400},
    // L2: well-formed, but not a version this server speaks.
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
    {"HTTP/9.9", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505},
    {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
    // M6: origin-form, absolute-form, `*` (OPTIONS) or CONNECT's
    // authority-form; nothing else.
    {"a target without a slash", get("index.html"), 400},
    {"asterisk-form for GET", get("*"), 400},
    {"absolute-form without an authority", get("http:///a"), 400},
    {"absolute-form without //", get("http:/a"), 400},
    {"absolute-form without a scheme", get("://h/"), 400},
    {"absolute-form with userinfo", get("http://u@h/"), 400},
    {"a scheme that starts with a digit", get("1http://h/"), 400},
    {"an empty line alone: a bare LF", "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
     400},
    {"an empty line with a bare CR", "\r\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
     400},
  };
  for (auto& c : cases)
    check_refused(c);
}

CAF_TEST(header fields are strict) {
  const std::vector<refused_case> cases = {
    // L1, RFC 9112 3.2.
    {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
    {"two Host fields", get("/", "Host: y\r\n"), 400},
    {"two Host fields on HTTP/1.0",
     "GET / HTTP/1.0\r\nHost: x\r\nHost: x\r\n\r\n", 400},
    {"a Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"a Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    {"a Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400},
    // RFC 9112 5.1, 5.2: no whitespace before the colon, no folding.
    {"space in a field name", get("/", "Bad Header: x\r\n"), 400},
    {"space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
    {"tab before the colon", get("/", "X-A\t: x\r\n"), 400},
    {"a header line without a colon", get("/", "NoColon\r\n"), 400},
    {"an empty field name", get("/", ": x\r\n"), 400},
    {"a separator in a field name", get("/", "X(a): x\r\n"), 400},
    {"obsolete line folding", get("/", "X-A: a\r\n b\r\n"), 400},
    {"obsolete line folding with a tab", get("/", "X-A: a\r\n\tb\r\n"), 400},
    {"obsolete line folding of an empty value", get("/", "X-A:\r\n b\r\n"),
     400},
    {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
     400},
    {"bare LF line endings", "GET / HTTP/1.1\nHost: x\n\n", 400},
    {"a bare LF after a field", get("/", "X-A: a\nX-B: b\r\n"), 400},
    {"a bare CR in a value", get("/", "X-A: a\rb\r\n"), 400},
    {"a NUL in a value", get("/", std::string{"X-A: a\0b\r\n", 10}), 400},
    {"a control character in a value", get("/", "X-A: a\x01b\r\n"), 400},
    {"a DEL in a value", get("/", "X-A: a\x7f\r\n"), 400},
    {"a control character in a name", get("/", "X\x01: a\r\n"), 400},
    {"an empty line ended by a bare LF", "GET / HTTP/1.1\r\nHost: x\r\n\n",
     400},
    {"a Connection list with a quoted string",
     get("/", "Connection: \"close\"\r\n"), 400},
  };
  for (auto& c : cases)
    check_refused(c);
}

// -- limits -------------------------------------------------------------------

// The header section is counted from the first byte of the request line (or
// of the empty lines before it) up to and including the CR LF CR LF that
// ends it. "Over 8 KiB" fails: 8192 bytes are fine.

CAF_TEST(a header section of exactly 8192 bytes is accepted) {
  auto input = header_section_of(max_header);
  CAF_REQUIRE_EQUAL(input.size(), 8192u);
  const expected_request want{
    "GET", "/",
    1,     1,
    true,  {{"Host", "x"}, {"X-Fill", std::string(8192 - 25 - 8 - 4, 'a')}},
    ""};
  for (auto& result : {feed_whole(input), feed_bytewise(input)}) {
    CAF_CHECK_EQUAL(result.status, 0);
    CAF_CHECK_EQUAL(result.requests.size(), 1u);
    if (!result.requests.empty())
      CAF_CHECK_EQUAL(mismatch(result.requests[0], want), "");
    CAF_CHECK(!result.mid);
  }
  // With two empty lines before it, the same request is 4 bytes over.
  CAF_CHECK_EQUAL(feed_whole("\r\n\r\n" + input).status, 431);
  CAF_CHECK_EQUAL(
    feed_whole("\r\n\r\n" + header_section_of(max_header - 4)).requests.size(),
    1u);
}

CAF_TEST(a header section of 8193 bytes gets 431) {
  auto input = header_section_of(max_header + 1);
  CAF_REQUIRE_EQUAL(input.size(), 8193u);
  CAF_MESSAGE("whole");
  auto whole = feed_whole(input);
  CAF_CHECK_EQUAL(whole.status, 431);
  CAF_CHECK_EQUAL(whole.requests.size(), 0u);
  CAF_MESSAGE("one byte at a time");
  auto bytewise = feed_bytewise(input);
  CAF_CHECK_EQUAL(bytewise.status, 431);
  CAF_CHECK_EQUAL(bytewise.requests.size(), 0u);
}

CAF_TEST(a header section that grows past 8 KiB fails before it ends) {
  // No empty line yet: the parser need not wait for one to know.
  std::string input = "GET / HTTP/1.1\r\nX-Fill: " + std::string(9000, 'a');
  auto whole = feed_whole(input);
  CAF_CHECK_EQUAL(whole.status, 431);
  CAF_CHECK_EQUAL(whole.requests.size(), 0u);
  // 9000 bytes of empty lines: no request, but no end either.
  std::string blank;
  for (int i = 0; i < 4500; ++i)
    blank += "\r\n";
  CAF_CHECK_EQUAL(feed_whole(blank).status, 431);
}

CAF_TEST(a request line over 8 KiB gets 414 and a header section 431) {
  // L10: 414 URI Too Long for the request line, whatever follows.
  auto long_target = "/" + std::string(max_header, 'a');
  check_refused({"a request line over the limit", get(long_target), 414});
  check_refused({"a request line over the limit, without its end",
                 "GET " + long_target, 414});
  check_refused({"a method over the limit", std::string(9000, 'G'), 414});
  // A request line of exactly 8190 bytes and its CR LF: the request line
  // fits, the section does not.
  std::string line
    = "GET /" + std::string(max_header - 2 - 14, 'a') + " HTTP/1.1";
  CAF_REQUIRE_EQUAL(line.size() + 2, max_header);
  check_refused({"a request line that fits, in a section that does not",
                 line + "\r\nHost: x\r\n\r\n", 431});
  // One byte longer: its LF is byte 8193.
  auto longer = "GET /a" + line.substr(5);
  check_refused({"a request line whose LF is over the limit",
                 longer + "\r\nHost: x\r\n\r\n", 414});
}

CAF_TEST(empty lines that use up the limit before a short request line 431) {
  // The empty lines before a request count towards the header section's
  // limit, not the request line's: 4095 of them leave 2 bytes for a request
  // line of 16. The section is over the limit (431), the request line is not
  // (414 used to come from where the limit was reached).
  std::string blank;
  for (int i = 0; i < 4095; ++i)
    blank += "\r\n";
  CAF_REQUIRE_EQUAL(blank.size(), max_header - 2);
  check_refused({"4095 empty lines and a short request",
                 blank + "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 431});
  // The limit reached at the method's first byte, or between the request
  // line's CR and its LF: the same.
  check_refused(
    {"4096 empty lines and a request", blank + "\r\n" + get("/"), 431});
  auto up_to_cr = blank.substr(0, max_header - 16);
  CAF_REQUIRE_EQUAL(std::string{"GET /a HTTP/1.1\r"}.size(), 16u);
  check_refused({"empty lines up to the request line's CR",
                 up_to_cr + "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 431});
  // 2 bytes fewer of empty lines, and the whole section fits.
  auto fits = blank.substr(0, max_header - 28) + get("/");
  CAF_REQUIRE_EQUAL(fits.size(), max_header - 1);
  auto whole = feed_whole(fits);
  CAF_CHECK_EQUAL(whole.status, 0);
  CAF_CHECK_EQUAL(whole.requests.size(), 1u);
  CAF_CHECK_EQUAL(feed_whole("\r\n" + fits).status, 431);
}

CAF_TEST(the header limit applies to each pipelined request on its own) {
  auto one = header_section_of(max_header);
  auto input = one + one + one;
  auto whole = feed_whole(input);
  CAF_CHECK_EQUAL(whole.status, 0);
  CAF_CHECK_EQUAL(whole.requests.size(), 3u);
  auto bytewise = feed_bytewise(input);
  CAF_CHECK_EQUAL(bytewise.status, 0);
  CAF_CHECK_EQUAL(bytewise.requests.size(), 3u);
}

CAF_TEST(a Content Length body of exactly 1 MiB is accepted) {
  std::string body(max_body, 'b');
  auto input = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
               + std::to_string(max_body) + "\r\n\r\n" + body;
  auto whole = feed_whole(input);
  CAF_CHECK_EQUAL(whole.status, 0);
  CAF_CHECK_EQUAL(whole.requests.size(), 1u);
  whole.requests.resize(1);
  CAF_CHECK_EQUAL(whole.requests[0].body.size(), max_body);
  CAF_CHECK(whole.requests[0].body == body);
}

CAF_TEST(a Content Length body of 1 MiB and 1 byte gets 413) {
  auto head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
              + std::to_string(max_body + 1) + "\r\n\r\n";
  CAF_MESSAGE("with the whole body");
  auto whole = feed_whole(head + std::string(max_body + 1, 'b'));
  CAF_CHECK_EQUAL(whole.status, 413);
  CAF_CHECK_EQUAL(whole.requests.size(), 0u);
  CAF_MESSAGE("the declared length fails before any body byte");
  auto declared = feed_whole(head);
  CAF_CHECK_EQUAL(declared.status, 413);
  CAF_CHECK_EQUAL(declared.requests.size(), 0u);
  auto declared_bytewise = feed_bytewise(head);
  CAF_CHECK_EQUAL(declared_bytewise.status, 413);
}

CAF_TEST(a chunked body of exactly 1 MiB is accepted) {
  auto input
    = chunked_post + chunked_body(16, max_body / 16, 'c') + "0\r\n\r\n";
  auto whole = feed_whole(input);
  CAF_CHECK_EQUAL(whole.status, 0);
  CAF_CHECK_EQUAL(whole.requests.size(), 1u);
  whole.requests.resize(1);
  CAF_CHECK_EQUAL(whole.requests[0].body.size(), max_body);
  CAF_CHECK(whole.requests[0].body == std::string(max_body, 'c'));
}

CAF_TEST(a chunked body of 1 MiB and 1 byte gets 413) {
  auto over = chunked_post + chunked_body(16, max_body / 16, 'c')
              + chunked_body(1, 1, 'c');
  CAF_MESSAGE("complete");
  auto whole = feed_whole(over + "0\r\n\r\n");
  CAF_CHECK_EQUAL(whole.status, 413);
  CAF_CHECK_EQUAL(whole.requests.size(), 0u);
  CAF_MESSAGE("as soon as its size line would pass the limit");
  auto early = feed_whole(over.substr(0, over.size() - 3));
  CAF_CHECK_EQUAL(early.status, 413);
  CAF_MESSAGE("one large chunk, in pieces, before its data");
  auto big = chunked_post + chunked_body(1, max_body + 1, 'c');
  auto pieces = feed_pieces({std::string_view{big}.substr(0, 1000),
                             std::string_view{big}.substr(1000)});
  CAF_CHECK_EQUAL(pieces.status, 413);
  CAF_CHECK_EQUAL(pieces.requests.size(), 0u);
  CAF_CHECK_EQUAL(feed_whole(chunked_post + "FFFFFFFFFFFFFFFF\r\nx").status,
                  413);
}

// -- failures -----------------------------------------------------------------

CAF_TEST(a request before malformed bytes still comes out) {
  auto result = feed_whole(get("/a") + "HELLO WORLD\r\n\r\n");
  CAF_CHECK_EQUAL(result.status, 400);
  CAF_CHECK_EQUAL(result.requests.size(), 1u);
  result.requests.resize(1);
  CAF_CHECK_EQUAL(result.requests[0].target, "/a");
}

CAF_TEST(after a failure feed returns it again and produces nothing) {
  const std::vector<std::pair<int, std::string>> cases = {
    {400, "HELLO WORLD\r\n\r\n"},
    {413, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + std::to_string(max_body + 1) + "\r\n\r\n"},
    {414, "GET /" + std::string(9000, 'a')},
    {431, "GET / HTTP/1.1\r\nX-Fill: " + std::string(9000, 'a')},
    {501, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked"
          "\r\n\r\n"},
    {505, "GET / HTTP/2.0\r\n"},
  };
  for (auto& [status, input] : cases) {
    CAF_MESSAGE("after " << status);
    request_parser parser;
    std::vector<request> out;
    CAF_CHECK_EQUAL(parser.feed(input, out), status);
    CAF_CHECK_EQUAL(parser.failure(), status);
    for (auto more : {"GET / HTTP/1.1\r\n\r\n", "\r\n\r\n", "G", ""}) {
      CAF_CHECK_EQUAL(parser.feed(more, out), status);
      CAF_CHECK_EQUAL(out.size(), 0u);
      CAF_CHECK_EQUAL(parser.failure(), status);
    }
    CAF_CHECK(!parser.mid_request());
    CAF_CHECK(!parser.in_header_section());
  }
}

CAF_TEST(head_request tells a HEAD from its request line) {
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK(!parser.head_request());
  CAF_CHECK_EQUAL(parser.feed("HEA", out), 0);
  CAF_CHECK(!parser.head_request());
  CAF_CHECK_EQUAL(parser.feed("D / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                + std::to_string(max_body + 1) + "\r\n\r\n",
                              out),
                  413);
  CAF_CHECK(parser.head_request());
  request_parser other;
  CAF_CHECK_EQUAL(other.feed("HEADER / HTTP/1.1\r\n\r\n", out), 400);
  CAF_CHECK(!other.head_request());
}

// -- mid_request --------------------------------------------------------------

CAF_TEST(mid_request is false before any byte and after a complete request) {
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("", out), 0);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed(get("/"), out), 0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("POST /echo HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 2\r\n\r\nab",
                              out),
                  0);
  CAF_CHECK_EQUAL(out.size(), 2u);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed(chunked_post + "1\r\nx\r\n0\r\n\r\n", out), 0);
  CAF_CHECK_EQUAL(out.size(), 3u);
  CAF_CHECK(!parser.mid_request());
}

CAF_TEST(mid_request is true from the first byte of a request line) {
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK_EQUAL(parser.feed("G", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK(parser.in_header_section());
  CAF_CHECK_EQUAL(parser.feed("ET / HTTP/1.1\r\nHost: x\r\n", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("\r", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(out.size(), 0u);
  CAF_CHECK_EQUAL(parser.feed("\n", out), 0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK(!parser.in_header_section());
}

CAF_TEST(mid_request is false after an empty line between requests) {
  // RFC 9112 2.2: a server SHOULD ignore empty lines before a request line
  // (some clients send CRLF after a body). They start no request: a stop
  // must not wait for one. They are a header section begun, though.
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK_EQUAL(parser.feed("POST /echo HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 2\r\n\r\nab\r",
                              out),
                  0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK(parser.in_header_section());
  CAF_CHECK_EQUAL(parser.feed("\n", out), 0);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK(parser.in_header_section());
  CAF_CHECK_EQUAL(parser.feed("\r\n" + get("/next"), out), 0);
  CAF_CHECK_EQUAL(out.size(), 2u);
  if (out.size() == 2)
    CAF_CHECK_EQUAL(out[1].target, "/next");
  CAF_CHECK(!parser.in_header_section());
}

CAF_TEST(mid_request is true while a body is incomplete) {
  request_parser parser;
  std::vector<request> out;
  CAF_MESSAGE("Content-Length");
  CAF_CHECK_EQUAL(parser.feed("POST /echo HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 10\r\n\r\n",
                              out),
                  0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK(!parser.in_header_section());
  CAF_CHECK_EQUAL(parser.feed("01234", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(out.size(), 0u);
  CAF_CHECK_EQUAL(parser.feed("56789", out), 0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
  CAF_MESSAGE("chunked");
  CAF_CHECK_EQUAL(parser.feed(chunked_post + "3\r\nabc\r\n", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("0\r\n", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("X-Trailer: 1\r\n", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK_EQUAL(parser.feed("\r\n", out), 0);
  CAF_CHECK_EQUAL(out.size(), 2u);
  CAF_CHECK(!parser.mid_request());
}

// -- awaiting_body: a complete head, no body yet ------------------------------

CAF_TEST(awaiting_body shows a head from its end to the first body byte) {
  const std::string head = "POST /echo HTTP/1.1\r\nHost: example.com\r\n"
                           "Expect: 100-continue\r\nContent-Length: 3\r\n"
                           "\r\n";
  const expected_request want{"POST",
                              "/echo",
                              1,
                              1,
                              true,
                              {{"Host", "example.com"},
                               {"Expect", "100-continue"},
                               {"Content-Length", "3"}},
                              ""};
  auto whole = feed_whole(head);
  CAF_CHECK_EQUAL(whole.status, 0);
  CAF_CHECK(whole.mid);
  CAF_REQUIRE(whole.awaiting);
  CAF_CHECK_EQUAL(mismatch(*whole.awaiting, want), "");
  CAF_CHECK_EQUAL(first_split_difference(head, whole), "");
  // Before the end of the header section: nothing.
  for (size_t n = 0; n < head.size(); ++n)
    if (feed_whole(head.substr(0, n)).awaiting)
      CAF_ERROR("a head after " << n << " of " << head.size() << " bytes");
  // From the first byte of the body on: nothing, in every split.
  for (auto input : {head + "a", head + "ab"}) {
    auto started = feed_whole(input);
    CAF_CHECK(started.mid);
    CAF_CHECK(!started.awaiting);
    CAF_CHECK_EQUAL(first_split_difference(input, started), "");
  }
  auto done = feed_whole(head + "abc");
  CAF_CHECK(!done.awaiting);
  CAF_CHECK_EQUAL(done.requests.size(), 1u);
}

CAF_TEST(awaiting_body of a chunked request ends with its first size byte) {
  auto whole = feed_whole(chunked_post);
  CAF_REQUIRE(whole.awaiting);
  CAF_CHECK_EQUAL(whole.awaiting->target, "/echo");
  CAF_CHECK_EQUAL(first_split_difference(chunked_post, whole), "");
  auto started = feed_whole(chunked_post + "3");
  CAF_CHECK(!started.awaiting);
  CAF_CHECK_EQUAL(first_split_difference(chunked_post + "3", started), "");
}

CAF_TEST(awaiting_body shows nothing for a request without a body) {
  for (auto input :
       {get("/", "Expect: 100-continue\r\n"),
        std::string{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                    "\r\n"}}) {
    auto whole = feed_whole(input);
    CAF_CHECK(!whole.awaiting);
    CAF_CHECK(!whole.mid);
    CAF_CHECK_EQUAL(whole.requests.size(), 1u);
    CAF_CHECK_EQUAL(first_split_difference(input, whole), "");
  }
}

CAF_TEST(awaiting_body shows the head after pipelined requests) {
  // The first one has a body, which must not count for the second. And an
  // HTTP/1.0 head: the version and keep_alive are shown as they are.
  const std::string input
    = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
      "POST /b HTTP/1.0\r\nContent-Length: 2\r\n\r\n";
  auto whole = feed_whole(input);
  CAF_CHECK_EQUAL(whole.requests.size(), 1u);
  CAF_REQUIRE(whole.awaiting);
  CAF_CHECK_EQUAL(
    mismatch(*whole.awaiting,
             {"POST", "/b", 1, 0, false, {{"Content-Length", "2"}}, ""}),
    "");
  CAF_CHECK_EQUAL(first_split_difference(input, whole), "");
}

CAF_TEST(awaiting_body shows nothing after a failure) {
  auto whole = feed_whole("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: "
                          + std::to_string(max_body + 1) + "\r\n\r\n");
  CAF_CHECK_EQUAL(whole.status, 413);
  CAF_CHECK(!whole.awaiting);
}

// -- max_requests: parsing stops, the rest is kept ----------------------------

CAF_TEST(feed stops after max_requests and keeps the rest for the next) {
  std::string input;
  for (int i = 0; i < 10; ++i)
    input += get("/" + std::to_string(i));
  input += "GET /partial HTTP/1.1\r\nHo";
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK_EQUAL(parser.feed(input, out, 3), 0);
  CAF_CHECK_EQUAL(out.size(), 3u);
  // The rest is kept, unparsed: a request waits, no header section is
  // being timed.
  CAF_CHECK_EQUAL(parser.unparsed(), input.size() - 3 * get("/0").size());
  CAF_CHECK(parser.mid_request());
  CAF_CHECK(!parser.in_header_section());
  // New bytes join the kept ones, behind them.
  CAF_CHECK_EQUAL(parser.feed("st: x\r\n", out, 0), 0);
  CAF_CHECK_EQUAL(out.size(), 3u);
  CAF_CHECK_EQUAL(parser.unparsed(), input.size() - 3 * get("/0").size() + 7);
  CAF_CHECK_EQUAL(parser.feed({}, out, 5), 0);
  CAF_CHECK_EQUAL(out.size(), 8u);
  CAF_CHECK_EQUAL(parser.feed({}, out), 0);
  CAF_CHECK_EQUAL(out.size(), 10u);
  CAF_CHECK_EQUAL(parser.unparsed(), 0u);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK(parser.in_header_section());
  CAF_CHECK_EQUAL(parser.feed("\r\n", out, 1), 0);
  CAF_REQUIRE_EQUAL(out.size(), 11u);
  for (int i = 0; i < 10; ++i)
    CAF_CHECK_EQUAL(out[static_cast<size_t>(i)].target,
                    "/" + std::to_string(i));
  CAF_CHECK_EQUAL(out[10].target, "/partial");
  CAF_CHECK(!parser.mid_request());
  // A bound of 1 with nothing after the request keeps nothing.
  CAF_CHECK_EQUAL(parser.feed(get("/last"), out, 1), 0);
  CAF_CHECK_EQUAL(parser.unparsed(), 0u);
  CAF_CHECK(!parser.mid_request());
}

// -- end_input: a stop
// ----------------------------------------------------------

CAF_TEST(end_input ends at once between requests) {
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK_EQUAL(parser.feed(get("/a") + "\r", out), 0);
  parser.end_input();
  CAF_CHECK(parser.input_ended());
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK(!parser.in_header_section());
  CAF_CHECK_EQUAL(parser.feed("\n" + get("/b"), out), 0);
  CAF_CHECK_EQUAL(out.size(), 1u);
}

CAF_TEST(end_input finishes the request begun and nothing after it) {
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK_EQUAL(parser.feed("GET /a HTTP/1.1\r\nHo", out), 0);
  parser.end_input();
  CAF_CHECK(!parser.input_ended());
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("st: x\r\n\r\n" + get("/b"), out), 0);
  CAF_CHECK(parser.input_ended());
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
}

CAF_TEST(end_input counts bytes kept unparsed as received before it) {
  std::string input = get("/a") + get("/b") + get("/c") + "GET /d HT";
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK_EQUAL(parser.feed(input, out, 1), 0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  parser.end_input();
  CAF_CHECK(!parser.input_ended());
  CAF_CHECK_EQUAL(parser.feed({}, out, 1), 0);
  CAF_CHECK_EQUAL(out.size(), 2u);
  CAF_CHECK_EQUAL(parser.feed({}, out), 0);
  CAF_CHECK_EQUAL(out.size(), 3u);
  CAF_CHECK(!parser.input_ended()); // /d is half received
  CAF_CHECK_EQUAL(parser.feed("TP/1.1\r\nHost: x\r\n\r\n" + get("/e"), out), 0);
  CAF_CHECK(parser.input_ended());
  CAF_REQUIRE_EQUAL(out.size(), 4u);
  CAF_CHECK_EQUAL(out[3].target, "/d");
}

// -- requests quiesce does not upgrade ----------------------------------------

// quiesce upgrades nothing: it answers these as plain HTTP requests (501 for
// CONNECT, the route for the rest), so the parser must report them and go on
// parsing as before.

CAF_TEST(an Upgrade request comes out as a request) {
  check_valid(
    {"Upgrade (as curl --http2 sends it)",
     "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
     "Upgrade: h2c\r\n\r\n",
     {{"GET",
       "/a",
       1,
       1,
       true,
       {{"Host", "x"},
        {"Connection", "Upgrade, HTTP2-Settings"},
        {"Upgrade", "h2c"}},
       ""}}});
  check_valid(
    {"Upgrade, then a GET",
     "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
     "Upgrade: websocket\r\n\r\n"
       + get("/b"),
     {{"GET",
       "/a",
       1,
       1,
       true,
       {{"Host", "x"}, {"Connection", "Upgrade"}, {"Upgrade", "websocket"}},
       ""},
      {"GET", "/b", 1, 1, true, {{"Host", "x"}}, ""}}});
}

CAF_TEST(the header limit still applies after an Upgrade request) {
  auto result
    = feed_whole("GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                 "Upgrade: websocket\r\n\r\n"
                 + header_section_of(max_header + 100));
  CAF_CHECK_EQUAL(result.status, 431);
}

CAF_TEST(a CONNECT request comes out as a request) {
  check_valid({"CONNECT",
               "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
               "\r\n",
               {{"CONNECT",
                 "example.com:443",
                 1,
                 1,
                 true,
                 {{"Host", "example.com:443"}},
                 ""}}});
}
