// The dashboard's static files (server/ui/: HTML, CSS, JavaScript modules), read once at start into
// memory: serving them never touches the disk on an I/O thread, and a file changed on disk while
// the server runs cannot be served half-written.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "mallorn/core/error.hpp"

namespace mallorn::server {

struct ui_file {
  std::string content_type;
  std::string body;
  std::string etag;  // strong: "\"<sha256 prefix>\""
};

class ui_files {
 public:
  // Every regular file below `dir` with a known extension; bounded (ui_max_files, ui_max_bytes) so
  // a wrong --ui-dir cannot make the server read a whole disk.
  static core::result<std::shared_ptr<const ui_files>> load(const std::filesystem::path& dir);
  // The directory used when --ui-dir is not given: the installed share/mallorn/ui next to the
  // binary's prefix if it exists, else the source tree's server/ui (a build-tree run).
  static std::filesystem::path default_dir();

  // `relative` uses '/' separators, e.g. "index.html" or "pages/fleet.js".
  const ui_file* find(const std::string& relative) const;
  std::size_t size() const { return files_.size(); }

  static constexpr std::size_t ui_max_files = 256;
  static constexpr std::size_t ui_max_bytes = 4u << 20;

 private:
  std::map<std::string, ui_file> files_;
};

}  // namespace mallorn::server
