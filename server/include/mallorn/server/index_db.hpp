// The daemon's index: fingerprints of the model files in the store, the patch cache, and device
// reports, over storage::sql_database (SQLite by default, PostgreSQL for several replicas).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/core/fingerprint.hpp"

namespace mallorn::server::storage {
class sql_database;
struct migration;
}  // namespace mallorn::server::storage

namespace mallorn::server {

// What a scan learned about one model file; reused while (size, mtime) are unchanged.
struct indexed_model {
  std::string path;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::string sha256;  // hex
  core::fingerprint fingerprint;
};

struct patch_row {
  std::string id;  // = sha256 of the patch file (hex); the file is <patches>/<id>.mlrn
  std::string source_sha256, target_sha256, profile;
  std::string model, source_version, target_version;
  std::uint64_t size = 0;
  bool is_signed = false;
  std::int64_t created = 0, last_used = 0;  // unix seconds
  std::uint64_t hits = 0, bytes_served = 0;
  double build_seconds = 0;
};

struct device_report {
  std::string device_id, model, from_version, to_version, state, error, client;
  std::uint64_t bytes_downloaded = 0;
  std::int64_t received_at = 0;
};

class index_db {
 public:
  // A SQLite file (tests, tools).
  static core::result<std::unique_ptr<index_db>> open(const std::filesystem::path& file);
  // Any back-end; applies this index's migrations and `extra_migrations` (other features' tables).
  static core::result<std::unique_ptr<index_db>> open(std::unique_ptr<storage::sql_database> db,
                                                      std::vector<storage::migration> extra_migrations = {});
  static std::vector<storage::migration> migrations();
  ~index_db();
  index_db(const index_db&) = delete;
  index_db& operator=(const index_db&) = delete;

  core::result<std::optional<indexed_model>> find_model(const std::string& path);
  core::result<void> upsert_model(const indexed_model& m);
  // Forgets files that are no longer in the store.
  core::result<void> retain_models(const std::vector<std::string>& paths);

  core::result<std::vector<patch_row>> all_patches();
  core::result<void> insert_patch(const patch_row& p);
  core::result<void> delete_patch(const std::string& id);
  core::result<void> add_patch_usage(const std::string& id, std::uint64_t hits, std::uint64_t bytes,
                                     std::int64_t last_used);

  core::result<void> insert_report(const device_report& r);
  // The newest report of each device (optionally of one device), newest first.
  core::result<std::vector<device_report>> latest_reports(const std::string& device_id = {}, std::size_t limit = 1000);

  // One device's reports, newest first.
  core::result<std::vector<device_report>> device_history(const std::string& device_id, std::size_t limit);

  // The database itself, for features that keep their own tables (rollouts, identities, builds).
  storage::sql_database& database() { return *db_; }

 private:
  explicit index_db(std::unique_ptr<storage::sql_database> db);
  std::unique_ptr<storage::sql_database> db_;
};

}  // namespace mallorn::server
