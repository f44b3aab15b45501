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
  /// The fields of a chunked body's trailer section. The parser may report
  /// all of them after the header fields or none of them, but never some of
  /// them, and never in another request.
  header_list trailers = {};
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
  auto with_trailers = want.headers;
  with_trailers.insert(with_trailers.end(), want.trailers.begin(),
                       want.trailers.end());
  if (x.headers != want.headers && x.headers != with_trailers) {
    auto expected = describe(want.headers);
    if (!want.trailers.empty())
      expected += " or " + describe(with_trailers);
    differs("headers", describe(x.headers), expected);
  }
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
/// line, one `X-Fill` header padded to fit, and the empty line.
std::string header_section_of(size_t size) {
  const std::string line = "GET / HTTP/1.1\r\n";
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

const std::string chunked_post
  = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";

} // namespace

// -- valid requests, in every split -------------------------------------------

CAF_TEST(a GET with headers) {
  check_valid({"GET with headers",
               "GET /index.html HTTP/1.1\r\n"
               "Host: example.com\r\n"
               "User-Agent: quiesce-test/1.0\r\n"
               "Accept: */*\r\n"
               "X-Empty:\r\n"
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
  check_valid({"POST chunked",
               "POST /echo HTTP/1.1\r\n"
               "Host: example.com\r\n"
               "Transfer-Encoding: chunked\r\n"
               "\r\n"
               "5;name=value\r\n"
               "hello\r\n"
               "7;a=1;b=\"q\"\r\n"
               ", world\r\n"
               "A\r\n"
               "0123456789\r\n"
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
                 "hello, world0123456789",
                 {{"X-Checksum", "1234"}, {"X-Trailer-Two", "yes"}}}}});
}

CAF_TEST(a chunked request with trailers leaves the next request alone) {
  check_valid({"chunked with trailers, then a GET",
               chunked_post
                 + "3;ext\r\nabc\r\n0\r\nX-T1: 1\r\nX-T2: 2\r\n\r\n"
                   "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n",
               {{"POST",
                 "/echo",
                 1,
                 1,
                 true,
                 {{"Transfer-Encoding", "chunked"}},
                 "abc",
                 {{"X-T1", "1"}, {"X-T2", "2"}}},
                {"GET", "/next", 1, 1, true, {{"Host", "example.com"}}, ""}}});
}

CAF_TEST(HTTP 1.0 without keep alive closes) {
  check_valid({"HTTP/1.0",
               "GET /old HTTP/1.0\r\nHost: example.com\r\n\r\n",
               {{"GET", "/old", 1, 0, false, {{"Host", "example.com"}}, ""}}});
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
}

CAF_TEST(the target keeps its query string) {
  check_valid({"query string",
               "GET /delay/100?x=1&y=%20z HTTP/1.1\r\nHost: example.com\r\n"
               "\r\n",
               {{"GET",
                 "/delay/100?x=1&y=%20z",
                 1,
                 1,
                 true,
                 {{"Host", "example.com"}},
                 ""}}});
}

CAF_TEST(three pipelined requests in one buffer) {
  check_valid(
    {"three pipelined requests",
     "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n"
     "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
     "GET /delay/5 HTTP/1.1\r\nX-Third: 3\r\n\r\n",
     {{"GET", "/a", 1, 1, true, {{"Host", "example.com"}}, ""},
      {"POST", "/echo", 1, 1, true, {{"Content-Length", "5"}}, "hello"},
      {"GET", "/delay/5", 1, 1, true, {{"X-Third", "3"}}, ""}}});
}

CAF_TEST(a complete request followed by the start of the next one) {
  check_valid({"complete request, then part of one",
               "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nHo",
               {{"GET", "/a", 1, 1, true, {}, ""}},
               true});
}

// -- limits -------------------------------------------------------------------

// The header section is counted from the first byte of the request line up to
// and including the CR LF CR LF that ends it: request line, every header
// line, and the empty line. "Over 8 KiB" fails: 8192 bytes are fine.

CAF_TEST(a header section of exactly 8192 bytes is accepted) {
  auto input = header_section_of(max_header);
  CAF_REQUIRE_EQUAL(input.size(), 8192u);
  const expected_request want{
    "GET", "/", 1, 1, true, {{"X-Fill", std::string(8192 - 16 - 8 - 4, 'a')}},
    ""};
  for (auto& result : {feed_whole(input), feed_bytewise(input)}) {
    CAF_CHECK_EQUAL(result.status, 0);
    CAF_CHECK_EQUAL(result.requests.size(), 1u);
    if (!result.requests.empty())
      CAF_CHECK(mismatch(result.requests[0], want).empty());
    CAF_CHECK(!result.mid);
  }
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
  auto input = "POST /echo HTTP/1.1\r\nContent-Length: "
               + std::to_string(max_body) + "\r\n\r\n" + body;
  auto whole = feed_whole(input);
  CAF_CHECK_EQUAL(whole.status, 0);
  CAF_CHECK_EQUAL(whole.requests.size(), 1u);
  whole.requests.resize(1);
  CAF_CHECK_EQUAL(whole.requests[0].body.size(), max_body);
  CAF_CHECK(whole.requests[0].body == body);
}

CAF_TEST(a Content Length body of 1 MiB and 1 byte gets 413) {
  auto head = "POST /echo HTTP/1.1\r\nContent-Length: "
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
  CAF_MESSAGE("as soon as it grows past the limit, without its last chunk");
  auto early = feed_whole(over);
  CAF_CHECK_EQUAL(early.status, 413);
  CAF_MESSAGE("one large chunk, in pieces");
  auto big = chunked_post + chunked_body(1, max_body + 1, 'c');
  auto pieces = feed_pieces({std::string_view{big}.substr(0, 1000),
                             std::string_view{big}.substr(1000)});
  CAF_CHECK_EQUAL(pieces.status, 413);
  CAF_CHECK_EQUAL(pieces.requests.size(), 0u);
}

// -- malformed input ----------------------------------------------------------

CAF_TEST(malformed requests get 400 in every split) {
  const std::vector<std::pair<const char*, std::string>> cases = {
    {"garbage request line", "HELLO WORLD\r\n\r\n"},
    {"TLS handshake bytes", std::string{"\x16\x03\x01\x02\x00\x01", 6}},
    {"bad version", "GET / HTTP/9x\r\n\r\n"},
    // A field name is a token (RFC 9110 5.1), and whitespace between a field
    // name and its colon must be rejected with 400 (RFC 9112 5.1).
    {"space in a field name", "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"},
    {"space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n"},
    {"header line without a colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n"},
    {"bad chunk size", chunked_post + "zz\r\nabc\r\n0\r\n\r\n"},
    {"Content-Length not a number",
     "POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n"},
    {"negative Content-Length",
     "POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n"},
    {"two different Content-Lengths",
     "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
     "abcd"},
    {"Content-Length with chunked",
     "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n"
     "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
  };
  for (auto& [name, input] : cases) {
    CAF_MESSAGE(name);
    auto whole = feed_whole(input);
    CAF_CHECK_EQUAL(whole.status, 400);
    CAF_CHECK_EQUAL(whole.requests.size(), 0u);
    CAF_CHECK_EQUAL(first_split_difference(input, whole), "");
  }
}

CAF_TEST(a request before malformed bytes still comes out) {
  auto result = feed_whole("GET /a HTTP/1.1\r\n\r\nHELLO WORLD\r\n\r\n");
  CAF_CHECK_EQUAL(result.status, 400);
  CAF_CHECK_EQUAL(result.requests.size(), 1u);
  result.requests.resize(1);
  CAF_CHECK_EQUAL(result.requests[0].target, "/a");
}

CAF_TEST(after a failure feed returns it again and produces nothing) {
  const std::vector<std::pair<int, std::string>> cases = {
    {400, "HELLO WORLD\r\n\r\n"},
    {413, "POST /echo HTTP/1.1\r\nContent-Length: "
            + std::to_string(max_body + 1) + "\r\n\r\n"},
    {431, "GET / HTTP/1.1\r\nX-Fill: " + std::string(9000, 'a')},
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
  }
}

// -- mid_request --------------------------------------------------------------

CAF_TEST(mid_request is false before any byte and after a complete request) {
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("", out), 0);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("GET / HTTP/1.1\r\n\r\n", out), 0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(
    parser.feed("POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", out), 0);
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
  CAF_CHECK_EQUAL(parser.feed("ET / HTTP/1.1\r\nHost: x\r\n", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("\r", out), 0);
  CAF_CHECK(parser.mid_request());
  CAF_CHECK_EQUAL(out.size(), 0u);
  CAF_CHECK_EQUAL(parser.feed("\n", out), 0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
}

CAF_TEST(mid_request is false after an empty line between requests) {
  // RFC 9112 2.2: a server SHOULD ignore empty lines before a request line
  // (some clients send CRLF after a body). They start no request: a stop
  // must not wait for one.
  request_parser parser;
  std::vector<request> out;
  CAF_CHECK_EQUAL(
    parser.feed("POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nab\r\n", out),
    0);
  CAF_CHECK_EQUAL(out.size(), 1u);
  CAF_CHECK(!parser.mid_request());
  CAF_CHECK_EQUAL(parser.feed("\r\nGET /next HTTP/1.1\r\n\r\n", out), 0);
  CAF_CHECK_EQUAL(out.size(), 2u);
  if (out.size() == 2)
    CAF_CHECK_EQUAL(out[1].target, "/next");
}

CAF_TEST(mid_request is true while a body is incomplete) {
  request_parser parser;
  std::vector<request> out;
  CAF_MESSAGE("Content-Length");
  CAF_CHECK_EQUAL(
    parser.feed("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n", out), 0);
  CAF_CHECK(parser.mid_request());
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
  for (auto input : {"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
                     "POST /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n"}) {
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
  const std::string input = "POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
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
  auto whole = feed_whole("POST /echo HTTP/1.1\r\nContent-Length: "
                          + std::to_string(max_body + 1) + "\r\n\r\n");
  CAF_CHECK_EQUAL(whole.status, 413);
  CAF_CHECK(!whole.awaiting);
}

// -- requests http_parser treats as the end of HTTP ---------------------------

// quiesce upgrades nothing: it answers these as plain HTTP requests (501 for
// CONNECT, the route for the rest), so the parser must report them and go on
// parsing as before.

CAF_TEST(an Upgrade request comes out as a request) {
  check_valid(
    {"Upgrade (as curl --http2 sends it)",
     "GET /a HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
     "Upgrade: h2c\r\n\r\n",
     {{"GET",
       "/a",
       1,
       1,
       true,
       {{"Connection", "Upgrade, HTTP2-Settings"}, {"Upgrade", "h2c"}},
       ""}}});
  check_valid(
    {"Upgrade, then a GET",
     "GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
     "GET /b HTTP/1.1\r\n\r\n",
     {{"GET",
       "/a",
       1,
       1,
       true,
       {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}},
       ""},
      {"GET", "/b", 1, 1, true, {}, ""}}});
}

CAF_TEST(the header limit still applies after an Upgrade request) {
  auto result = feed_whole(
    "GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
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
