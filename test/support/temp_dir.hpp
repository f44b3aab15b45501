#pragma once

/// @file
/// A temporary directory for a test's files (config files, FIFOs), removed
/// with them at the end of the test.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

namespace quiesce::test {

/// A temporary directory, removed with every file made by `file`.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/quiesce-test-XXXXXX";
    if (auto* p = ::mkdtemp(tmpl))
      path_ = p;
  }

  temp_dir(const temp_dir&) = delete;

  temp_dir& operator=(const temp_dir&) = delete;

  ~temp_dir() {
    for (auto& f : files_)
      ::unlink(f.c_str());
    if (!path_.empty())
      ::rmdir(path_.c_str());
  }

  bool ok() const {
    return !path_.empty();
  }

  /// The directory (e.g. a server's working directory).
  const std::string& path() const {
    return path_;
  }

  /// The path of file `name` in the directory; removed with it.
  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

private:
  std::string path_;
  std::vector<std::string> files_;
};

/// Writes `text` to the file at `path` (replacing it); false on failure.
inline bool write_file(const std::string& path, const std::string& text) {
  auto* f = std::fopen(path.c_str(), "w");
  if (f == nullptr)
    return false;
  auto ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

} // namespace quiesce::test
