// The model store: DIR/<model>/<version>.<ext>, fingerprinted into the index, published as an
// immutable catalog snapshot that request handlers read without locks.
//
// Version order is natural/semver (version_order.hpp) unless DIR/<model>/index.json says
// otherwise: {"order": ["v1", "v2", ...], "channels": {"beta": "v3"}}. Versions missing from
// "order" follow the listed ones in natural order. The latest version is the default target;
// a device asking for a channel gets that channel's version instead.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/core/fingerprint.hpp"
#include "mallorn/server/index_db.hpp"

namespace mallorn::server {

struct model_version {
  std::string model, version;
  std::filesystem::path path;
  std::string sha256;  // hex
  core::fingerprint fingerprint;
  std::int64_t mtime_ns = 0;
  // 1-based position in the model's order (changes when versions are inserted or deleted).
  std::uint64_t rank = 0;
  // The stable release number (index_db::assign_version_numbers): given when the version was
  // first seen, never changed or reused. Written into patch headers as target_version and compared
  // by agents for downgrade protection.
  std::uint64_t number = 0;
  std::string extension;  // without the dot
};

struct model_entry {
  std::string name;
  std::vector<model_version> versions;  // oldest first
  std::map<std::string, std::string> channels;
  // The version devices on `channel` should run ("" or unknown channel = the latest).
  const model_version* target_for(const std::string& channel) const;
  const model_version* find(const std::string& version) const;
};

class catalog {
 public:
  std::map<std::string, model_entry> models;

  const model_entry* model(const std::string& name) const;
  const model_version* find(const std::string& model, const std::string& version) const;
  // Exact identification by content; `model` narrows the search when not empty.
  const model_version* find_by_sha256(const std::string& sha256, const std::string& model = {}) const;
  // The seed's short id (16 hex chars of the fingerprint). Returns every match (short ids are
  // not unique in principle).
  std::vector<const model_version*> find_by_short_id(const std::string& short_id, const std::string& model = {}) const;
  std::size_t version_count() const;
};

struct scan_report {
  std::size_t models = 0, versions = 0, hashed = 0;
  std::vector<std::string> warnings;
};

class model_store {
 public:
  model_store(std::filesystem::path root, index_db& db);

  // Re-reads the directory; files whose size and mtime are unchanged are not re-hashed. Runs one
  // scan at a time; readers keep the old snapshot until the new one is complete.
  core::result<scan_report> rescan();
  std::shared_ptr<const catalog> snapshot() const;

  // Adds `staged` (a complete, fsynced file inside staging_dir()) as <model>/<version>.<ext>
  // without ever replacing an existing file: the rename is atomic and refuses to overwrite.
  // Fails with invalid_argument if the version exists (with different content).
  core::result<model_version> add_version(const std::string& model, const std::string& version,
                                          const std::filesystem::path& staged);
  // Where uploads are written before add_version (same filesystem as the store, hidden from scans).
  std::filesystem::path staging_dir() const { return root_ / ".uploads"; }
  const std::filesystem::path& root() const { return root_; }

 private:
  core::result<model_version> index_file(const std::string& model, const std::string& version,
                                         const std::filesystem::path& path, scan_report& report);
  std::filesystem::path root_;
  index_db& db_;
  std::mutex scan_mutex_;
  mutable std::mutex snapshot_mutex_;
  std::shared_ptr<const catalog> snapshot_;
};

}  // namespace mallorn::server
