#pragma once

/// @file
/// RESP2, the request side of Redis's protocol, as a pure state machine:
/// bytes in, commands (or an error) out. No socket, no actor: the behaviour
/// (kv.hpp) feeds it what `on_data` gets, and the tests feed it input split
/// at every byte.
///
/// A request is an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`,
/// what redis-cli sends) or an inline command: a line of words separated by
/// spaces (`PING\r\n`, what telnet sends; no quoting, unlike Redis). An
/// array of zero or negative length and an empty line are no command, as in
/// Redis.
///
/// Limits, checked on the length fields before anything is allocated:
/// - a bulk string longer than `max_bulk` (64 MiB; Redis's
///   proto-max-bulk-len is 512 MiB): "Protocol error: invalid bulk length";
/// - an array of more than `max_args` elements (1 Mi; Redis allows up to
///   INT_MAX): "Protocol error: invalid multibulk length";
/// - a line (a length field or an inline command) longer than `max_line`
///   (64 KiB, Redis's PROTO_INLINE_MAX_SIZE) without its end: "Protocol
///   error: too big inline request" (or "... mbulk count string", "...
///   bulk count string").
/// Bulk data is kept as it arrives, never reserved ahead from its length.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct resp_limits {
  size_t max_bulk = size_t{64} * 1024 * 1024;
  size_t max_args = size_t{1024} * 1024;
  size_t max_line = size_t{64} * 1024;
};

class resp_parser {
public:
  enum class result {
    /// A whole command is in `args`.
    command,
    /// Every byte given is consumed; the command is not complete yet.
    need_more,
    /// The input is not RESP (`error()` says why, Redis's words); the parser
    /// stays in this state: the connection is to be closed.
    error,
  };

  explicit resp_parser(resp_limits limits = {}) : limits_(limits) {}

  /// Consumes bytes from the front of `in` up to the end of the next command
  /// (`in` then starts after it) or all of them (`need_more`). On `command`,
  /// `args` holds its words (the command's name first).
  result next(std::string_view& in, std::vector<std::string>& args);

  /// Why the input was refused: "Protocol error: ...".
  const std::string& error() const {
    return error_;
  }

  /// Bytes of an unfinished command are held.
  bool partial() const {
    return state_ != state::start && state_ != state::failed;
  }

private:
  enum class state {
    start,
    array_line,
    inline_line,
    bulk_line,
    bulk_data,
    failed
  };

  enum class line { complete, incomplete, too_long };

  /// Adds bytes of `in` to `line_` up to a '\n' (consumed, with a '\r'
  /// before it dropped).
  line read_line(std::string_view& in);

  /// Reads a line: nullopt once it is complete in `line_`, else what `next`
  /// returns (more input needed, or the error "too big ..." if too long).
  std::optional<result> take_line(std::string_view& in, const char* too_big);

  result fail(std::string what);

  resp_limits limits_;
  state state_ = state::start;
  std::string line_;
  std::vector<std::string> args_;
  size_t args_left_ = 0;
  /// Bulk data bytes still to come, then its "\r\n" (`crlf_left_` bytes).
  size_t data_left_ = 0;
  size_t crlf_left_ = 0;
  std::string error_;
};

/// Replies, encoded.
namespace resp {

std::string simple(std::string_view text);

/// `-text\r\n`; a CR or LF in `text` becomes a space, as Redis does.
std::string error(std::string_view text);

std::string integer(int64_t n);

std::string bulk(std::string_view data);

inline const std::string nil = "$-1\r\n";

} // namespace resp
