// The keyring mallornd serves at GET /keyring (`mallornd --keyring FILE`, docs/security.md).
// The file is re-read when it changes on disk, so publishing a new version is `mallorn keyring
// sign ... -o FILE` (written atomically); a file that does not parse, or holds an older version
// than the one being served, is logged and ignored: the server never goes back to an older keyring.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::server {

struct served_keyring {
  std::uint64_t version = 0;
  std::string json;                 // the JSON view
  std::vector<std::uint8_t> binary; // the compact form (what mallorn_lite stores)
  std::vector<std::uint8_t> signed_part;  // what the signatures cover
  std::string etag;
};

class keyring_source {
 public:
  // Fails when FILE is missing, malformed, or not signed by its own root threshold.
  static core::result<std::shared_ptr<keyring_source>> open(const std::filesystem::path& file);
  // The newest good keyring (reloaded at most once a second when the file changed).
  std::shared_ptr<const served_keyring> current();

 private:
  explicit keyring_source(std::filesystem::path file) : file_(std::move(file)) {}
  core::result<std::shared_ptr<const served_keyring>> load() const;
  std::filesystem::path file_;
  std::mutex mu_;
  std::shared_ptr<const served_keyring> served_;
  std::filesystem::file_time_type seen_mtime_{};
  std::uintmax_t seen_size_ = 0;
  std::int64_t checked_at_ = 0;
};

struct http_response;
// GET /keyring (JSON) and GET /keyring?format=binary; If-None-Match answers 304.
http_response keyring_response(keyring_source* src, const std::map<std::string, std::string>& query,
                               const std::string* if_none_match);

}  // namespace mallorn::server
