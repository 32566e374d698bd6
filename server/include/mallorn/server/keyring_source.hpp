// The keyring mallornd serves at GET /keyring (`mallornd --keyring FILE`, docs/security.md).
// The file is re-read when it changes on disk, so publishing a new version is `mallorn keyring
// sign ... -o FILE` (written atomically); a file that does not parse, or holds an older version
// than the one being served, is logged and ignored: the server never goes back to an older keyring.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
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

// A keyring the operator published (the file changed) and what the server did with it: the
// audit log records each one (keyring publication is an admin action done through a file).
struct keyring_publication {
  std::uint64_t version = 0;       // what the file holds (0: unreadable)
  std::uint64_t served_before = 0;
  bool accepted = false;
  std::string reason;              // why it was refused, or "serving vN"
};

class keyring_source {
 public:
  using publication_listener = std::function<void(const keyring_publication&)>;
  // Fails when FILE is missing, malformed, or not signed by its own root threshold.
  static core::result<std::shared_ptr<keyring_source>> open(const std::filesystem::path& file);
  // The newest good keyring (reloaded at most once a second when the file changed).
  std::shared_ptr<const served_keyring> current();
  // Called (under the source's lock, from whichever thread noticed the change) for every changed
  // file after open(): accepted or refused.
  void on_publication(publication_listener listener) {
    std::lock_guard lock(mu_);
    listener_ = std::move(listener);
  }

 private:
  explicit keyring_source(std::filesystem::path file) : file_(std::move(file)) {}
  core::result<std::shared_ptr<const served_keyring>> load() const;
  std::filesystem::path file_;
  std::mutex mu_;
  std::shared_ptr<const served_keyring> served_;
  // What stat() said of the file last time. A rename over it (how `mallorn keyring sign -o`
  // publishes) gives a new inode, so two versions of equal size written within one tick of the
  // file system's clock (mtime alone cannot tell them apart) are still seen as a change.
  struct file_identity {
    std::uint64_t device = 0, inode = 0, size = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const file_identity&) const = default;
  };
  static bool identify(const std::filesystem::path& file, file_identity& out);
  file_identity seen_{};
  std::int64_t checked_at_ = 0;
  publication_listener listener_;
};

struct http_response;
// GET /keyring (JSON) and GET /keyring?format=binary; If-None-Match answers 304.
http_response keyring_response(keyring_source* src, const std::map<std::string, std::string>& query,
                               const std::string* if_none_match);

}  // namespace mallorn::server
