#pragma once

/// @file
/// The config file (`caf-application.ini` in the working directory, or
/// `--config-file=F`), read and checked before CAF takes it. CAF 0.17.6's
/// own reading keeps a value of the wrong type and an unknown key only as
/// warnings that it never shows, and uses the default instead: `port=-1`
/// in the file was a server on 8080. Here the file is held to the same
/// rules as the command line (options.hpp), and every problem names the
/// file, the line and the key: a syntax error (with its column), an unknown
/// key or section, a key given twice, a value of the wrong type or out of
/// range, an option quiesce refuses.

#include <string>
#include <string_view>
#include <vector>

#include "caf/config_option_set.hpp"
#include "caf/config_value.hpp"

namespace quiesce {

/// The config file of one command line.
struct config_file {
  /// `--config-file`'s value, or caf-application.ini.
  std::string path;
  /// Whether the file exists (or was named: then it must).
  bool found = false;
  /// Its whole text.
  std::string text;
};

/// Finds the config file that `args` ask for (the first `--config-file=F`,
/// as CAF takes it, else caf-application.ini) and reads it into `out`. A
/// missing caf-application.ini is no file; a missing named file, or one that
/// cannot be read or is larger than 1 MiB (`/dev/zero` would never end), is
/// an error. Returns an empty string or the sentence for
/// a usage error.
std::string read_config_file(const caf::config_option_set& opts,
                             const std::vector<std::string>& args,
                             config_file& out);

/// One `key = value` of a config file.
struct config_entry {
  /// The section: `global` for `[global]` and for keys before any section.
  std::string category;
  std::string key;
  caf::config_value value;
  /// The value as written (empty for a list or a map).
  std::string raw;
  /// Where the key is, counting from 1.
  int line = 0;
};

/// The entries of config file text, in order, or a syntax error: its line
/// and column (from 1) and what is wrong.
struct config_parse_result {
  std::vector<config_entry> entries;
  bool ok = true;
  int line = 0;
  int column = 0;
  std::string error;
  /// Whether the text has a duration too large for a timespan (parsed as 0
  /// and left to the checks, which see the entry's raw text), and where
  /// the first one is.
  bool overflow = false;
  int overflow_line = 0;
  int overflow_column = 0;
  /// Whether the text has a number with a leading zero (`010`, `08080`,
  /// `010ms`: parsed as zero and left to the checks, which see the entry's
  /// raw text; CAF would read octal, or fail on an 8 or 9 with a syntax
  /// error about the next character), and where the first one is.
  bool leading_zero = false;
  int leading_zero_line = 0;
  int leading_zero_column = 0;
};

/// Parses `text` with CAF's own INI grammar (so that what passes here reads
/// the same in CAF), noting where each key is. A map under a key of a
/// section (`[a] b = {...}`) is one entry with a map value; in the global
/// section such a map is a section of its own (`stream { ... }`, as CAF's
/// `--dump-config` writes them).
config_parse_result parse_config_text(std::string_view text);

/// Checks config file text (of the file at `path`) against `opts` and the
/// rules of options.hpp. Returns an empty string or the sentence for a
/// usage error, e.g. "bad value in caf-application.ini line 2: port = -1
/// (expected uint16)".
std::string check_config_file(const caf::config_option_set& opts,
                              const std::string& path, std::string_view text);

} // namespace quiesce
