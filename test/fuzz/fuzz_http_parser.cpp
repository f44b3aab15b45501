// libFuzzer target: http::request_parser, differential. The input is fed
// whole, then again in pieces whose sizes come from the input's first bytes,
// then in pieces with a bound on the requests each feed may produce (the
// rest kept unparsed and resumed, as the HTTP behaviour does with its
// pipeline bound), then one byte at a time for short inputs; every way must
// give the same requests, the same failure, the same mid_request() and
// awaiting_body(). Invariants on top: the limits (header section 8 KiB,
// body 1 MiB, the codes 400/413/414/431/501/505 only), a failure is sticky,
// and a feed after it adds no request.

#include "actors/behaviours/http_request_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "test/fuzz/check.hpp"
#include "test/support/strings.hpp"

using quiesce::http::request;
using quiesce::http::request_parser;

using quiesce::fuzz::fail;
using quiesce::test::iequals;

namespace {

struct outcome {
  std::vector<request> requests;
  int status = 0;
  bool mid = false;
  std::optional<request> awaiting;
};

bool same(const request& x, const request& y) {
  return x.method == y.method && x.target == y.target
         && x.version_major == y.version_major
         && x.version_minor == y.version_minor && x.keep_alive == y.keep_alive
         && x.headers == y.headers && x.body == y.body;
}

std::string describe(const request& x) {
  return x.method + " " + x.target + " HTTP/" + std::to_string(x.version_major)
         + "." + std::to_string(x.version_minor) + " headers "
         + std::to_string(x.headers.size()) + " body "
         + std::to_string(x.body.size());
}

void check_request(const request& r) {
  FUZZ_CHECK(!r.method.empty());
  FUZZ_CHECK(r.body.size() <= request_parser::default_max_body_bytes);
  FUZZ_CHECK(r.version_major == 1
             && (r.version_minor == 0 || r.version_minor == 1));
  // The request line is part of the header section: it cannot exceed it.
  FUZZ_CHECK(r.target.size() <= request_parser::default_max_header_bytes);
  size_t header_bytes = r.method.size() + r.target.size();
  size_t hosts = 0;
  for (auto& [field, value] : r.headers) {
    FUZZ_CHECK(!field.empty());
    header_bytes += field.size() + value.size();
    hosts += iequals(field, "host") ? 1 : 0;
    // No field value keeps a control character, CR or LF.
    for (auto c : value) {
      auto u = static_cast<unsigned char>(c);
      FUZZ_CHECK_MSG((u >= 0x20 || u == '\t') && u != 0x7f, value);
    }
  }
  // Trailer fields are dropped: every field came from the header section,
  // within its 8 KiB limit.
  FUZZ_CHECK_MSG(header_bytes <= request_parser::default_max_header_bytes,
                 std::to_string(header_bytes));
  FUZZ_CHECK(hosts <= 1);
  if (r.version_minor == 1)
    FUZZ_CHECK(hosts == 1);
}

/// Feeds `pieces` to a new parser and checks what must hold after every feed.
/// With `max_requests`, each feed produces at most that many requests; the
/// rest is resumed (`feed({})`) before the next piece.
outcome feed(const std::vector<std::string_view>& pieces,
             size_t max_requests = request_parser::no_limit) {
  request_parser parser;
  outcome result;
  size_t fed = 0;
  for (auto piece : pieces) {
    auto before = result.status;
    auto count = result.requests.size();
    result.status = parser.feed(piece, result.requests, max_requests);
    FUZZ_CHECK(result.requests.size() - count <= max_requests);
    while (parser.unparsed() > 0 && result.status == 0) {
      FUZZ_CHECK(parser.mid_request());
      FUZZ_CHECK(!parser.in_header_section());
      auto resumed = result.requests.size();
      result.status = parser.feed({}, result.requests, max_requests);
      FUZZ_CHECK(result.requests.size() - resumed <= max_requests);
      FUZZ_CHECK_MSG(result.requests.size() > resumed || result.status != 0
                       || parser.unparsed() == 0,
                     "no progress on the bytes kept");
    }
    fed += piece.size();
    FUZZ_CHECK_MSG(result.status == 0 || result.status == 400
                     || result.status == 413 || result.status == 414
                     || result.status == 431 || result.status == 501
                     || result.status == 505,
                   std::to_string(result.status));
    FUZZ_CHECK(parser.failure() == result.status);
    if (before != 0) {
      FUZZ_CHECK_MSG(result.status == before, "failure not sticky");
      FUZZ_CHECK_MSG(result.requests.size() == count, "request after failure");
    }
    if (result.status != 0)
      FUZZ_CHECK(parser.awaiting_body() == nullptr);
    if (auto* head = parser.awaiting_body()) {
      FUZZ_CHECK(parser.mid_request());
      FUZZ_CHECK(head->body.empty());
    }
    // A header section within 8 KiB never gets 414 or 431: they need 8 KiB
    // of input at least (8192 bytes that do not end the section are enough
    // to know it is longer).
    if (result.status == 431 || result.status == 414)
      FUZZ_CHECK(fed >= request_parser::default_max_header_bytes);
    for (size_t i = count; i < result.requests.size(); ++i)
      check_request(result.requests[i]);
  }
  result.mid = parser.mid_request();
  if (auto* head = parser.awaiting_body())
    result.awaiting = *head;
  return result;
}

void check_same(const outcome& x, const outcome& ref, const char* how) {
  auto where = std::string{how} + ": ";
  FUZZ_CHECK_MSG(x.status == ref.status, where + std::to_string(x.status)
                                           + " vs "
                                           + std::to_string(ref.status));
  FUZZ_CHECK_MSG(x.mid == ref.mid, where + "mid_request");
  FUZZ_CHECK_MSG(x.awaiting.has_value() == ref.awaiting.has_value(),
                 where + "awaiting_body");
  if (x.awaiting)
    FUZZ_CHECK_MSG(same(*x.awaiting, *ref.awaiting),
                   where + describe(*x.awaiting) + " vs "
                     + describe(*ref.awaiting));
  FUZZ_CHECK_MSG(x.requests.size() == ref.requests.size(),
                 where + std::to_string(x.requests.size()) + " vs "
                   + std::to_string(ref.requests.size()) + " requests");
  for (size_t i = 0; i < x.requests.size(); ++i)
    FUZZ_CHECK_MSG(same(x.requests[i], ref.requests[i]),
                   where + "request " + std::to_string(i) + ": "
                     + describe(x.requests[i]) + " vs "
                     + describe(ref.requests[i]));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto whole = feed({input});
  // Pieces: sizes cycle through 1 + (byte % 97) of the input's first bytes,
  // so that the fuzzer controls the split points along with the content.
  {
    std::vector<std::string_view> pieces;
    size_t pos = 0;
    size_t k = 0;
    auto sizes = input.substr(0, 8);
    while (pos < input.size()) {
      size_t n
        = sizes.empty()
            ? 1
            : 1 + static_cast<unsigned char>(sizes[k++ % sizes.size()]) % 97;
      pieces.push_back(input.substr(pos, n));
      pos += n;
    }
    check_same(feed(pieces), whole, "pieces");
  }
  // Pieces as above, with a bound of 1 to 4 requests per feed.
  if (size >= 1) {
    std::vector<std::string_view> pieces;
    size_t pos = 0;
    size_t k = 0;
    auto sizes = input.substr(0, 8);
    while (pos < input.size()) {
      auto n = 1 + static_cast<unsigned char>(sizes[k++ % sizes.size()]) % 211;
      pieces.push_back(input.substr(pos, n));
      pos += n;
    }
    check_same(feed(pieces, 1 + data[size - 1] % 4), whole, "bounded");
  }
  // Two pieces, split at a position taken from the first two bytes.
  if (size >= 2) {
    size_t at = (static_cast<size_t>(data[0]) << 8 | data[1]) % (size + 1);
    check_same(feed({input.substr(0, at), input.substr(at)}), whole,
               "two pieces");
  }
  // One byte at a time (only for short inputs: it is the slow one), with
  // an empty piece in between.
  if (size <= 4096) {
    std::vector<std::string_view> pieces;
    for (size_t i = 0; i < size; ++i) {
      pieces.push_back(input.substr(i, 1));
      if (i % 7 == 3)
        pieces.push_back(input.substr(i, 0));
    }
    check_same(feed(pieces), whole, "bytewise");
  }
  return 0;
}
