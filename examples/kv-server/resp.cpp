#include "resp.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace {

/// A length field: an optional '-' and digits, nothing else.
bool parse_length(std::string_view text, int64_t& n) {
  auto end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, n);
  return !text.empty() && ec == std::errc{} && ptr == end;
}

} // namespace

resp_parser::line resp_parser::read_line(std::string_view& in) {
  auto end = in.find('\n');
  auto take = end == std::string_view::npos ? in.size() : end;
  line_.append(in.data(), take);
  in.remove_prefix(end == std::string_view::npos ? take : take + 1);
  if (end != std::string_view::npos && !line_.empty() && line_.back() == '\r')
    line_.pop_back();
  if (line_.size() > limits_.max_line)
    return line::too_long;
  return end == std::string_view::npos ? line::incomplete : line::complete;
}

std::optional<resp_parser::result> resp_parser::take_line(std::string_view& in,
                                                          const char* too_big) {
  switch (read_line(in)) {
    case line::complete:
      return std::nullopt;
    case line::incomplete:
      return result::need_more;
    default:
      return fail(std::string{"Protocol error: "} + too_big);
  }
}

resp_parser::result resp_parser::fail(std::string what) {
  state_ = state::failed;
  error_ = std::move(what);
  line_.clear();
  args_.clear();
  return result::error;
}

resp_parser::result resp_parser::next(std::string_view& in,
                                      std::vector<std::string>& args) {
  for (;;) {
    switch (state_) {
      case state::failed:
        return result::error;
      case state::start:
        if (in.empty())
          return result::need_more;
        state_ = in.front() == '*' ? state::array_line : state::inline_line;
        break;
      case state::array_line: {
        if (auto r = take_line(in, "too big mbulk count string"))
          return *r;
        int64_t n = 0;
        auto ok = parse_length(std::string_view{line_}.substr(1), n);
        line_.clear();
        if (!ok || n > static_cast<int64_t>(limits_.max_args))
          return fail("Protocol error: invalid multibulk length");
        if (n <= 0) { // no command, as in Redis
          state_ = state::start;
          break;
        }
        args_.clear();
        args_.reserve(std::min(static_cast<size_t>(n), size_t{16}));
        args_left_ = static_cast<size_t>(n);
        state_ = state::bulk_line;
        break;
      }
      case state::inline_line: {
        if (auto r = take_line(in, "too big inline request"))
          return *r;
        args_.clear();
        size_t pos = 0;
        while (pos < line_.size()) {
          auto begin = line_.find_first_not_of(" \t", pos);
          if (begin == std::string::npos)
            break;
          auto end = std::min(line_.find_first_of(" \t", begin), line_.size());
          args_.emplace_back(line_, begin, end - begin);
          pos = end;
        }
        line_.clear();
        state_ = state::start;
        if (args_.empty()) // an empty line: no command
          break;
        args.clear();
        args.swap(args_);
        return result::command;
      }
      case state::bulk_line: {
        if (auto r = take_line(in, "too big bulk count string"))
          return *r;
        if (line_.empty() || line_.front() != '$')
          return fail(std::string{"Protocol error: expected '$', got '"}
                      + (line_.empty() ? ' ' : line_.front()) + "'");
        int64_t len = 0;
        auto ok = parse_length(std::string_view{line_}.substr(1), len);
        line_.clear();
        if (!ok || len < 0 || static_cast<uint64_t>(len) > limits_.max_bulk)
          return fail("Protocol error: invalid bulk length");
        args_.emplace_back();
        data_left_ = static_cast<size_t>(len);
        crlf_left_ = 2;
        state_ = state::bulk_data;
        break;
      }
      case state::bulk_data: {
        auto take = std::min(data_left_, in.size());
        args_.back().append(in.data(), take);
        in.remove_prefix(take);
        data_left_ -= take;
        while (data_left_ == 0 && crlf_left_ > 0 && !in.empty()) {
          if (in.front() != (crlf_left_ == 2 ? '\r' : '\n'))
            return fail("Protocol error: expected CRLF after bulk data");
          in.remove_prefix(1);
          --crlf_left_;
        }
        if (data_left_ > 0 || crlf_left_ > 0)
          return result::need_more;
        if (--args_left_ > 0) {
          state_ = state::bulk_line;
          break;
        }
        state_ = state::start;
        args.clear();
        args.swap(args_);
        return result::command;
      }
    }
  }
}

namespace resp {

std::string simple(std::string_view text) {
  std::string result{"+"};
  result += text;
  return result += "\r\n";
}

std::string error(std::string_view text) {
  std::string result{"-"};
  result += text;
  std::replace(result.begin(), result.end(), '\r', ' ');
  std::replace(result.begin(), result.end(), '\n', ' ');
  return result += "\r\n";
}

std::string integer(int64_t n) {
  return ":" + std::to_string(n) + "\r\n";
}

std::string bulk(std::string_view data) {
  std::string result = "$" + std::to_string(data.size()) + "\r\n";
  result += data;
  return result += "\r\n";
}

} // namespace resp
