// The daemon's index: fingerprints of the model files in the store, the patch cache, and device
// reports, over storage::sql_database (SQLite by default, PostgreSQL for several replicas).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/core/fingerprint.hpp"
// Complete, not forward-declared: open()'s default `extra_migrations = {}` builds and destroys a
// vector of them wherever open() is called (clang refuses an incomplete element type there).
#include "mallorn/server/storage/sql_database.hpp"

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
  std::uint64_t target_number = 0;  // the target's version number written into the header (0: unknown, old row)
};

struct device_report {
  std::string device_id, model, from_version, to_version, state, error, client;
  std::uint64_t bytes_downloaded = 0;
  std::int64_t received_at = 0;
  std::string tags_json;  // a JSON object of the device's tags (for rollouts); "" = unchanged
};

// Bounds on report storage (every report comes from an unauthenticated device).
struct report_limits {
  std::size_t per_device = 20;     // history rows per device (device_state keeps the latest anyway)
  std::size_t total = 100000;      // history rows in total, and device_state rows in total
  std::int64_t retention_s = 30 * 86400;  // 0: no age limit
};

// One page of /admin/devices: device_state rows ordered by (device_id, model).
struct device_query {
  std::string after_device, after_model;  // cursor: rows strictly after this pair
  std::string model, state, prefix;       // filters ("" = any)
  std::size_t limit = 100;
};
struct device_page {
  std::vector<device_report> devices;  // received_at = last_seen
  std::uint64_t total = 0;             // rows matching the filters (all pages)
  bool more = false;
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
  // Lookups for a replica that did not build the patch itself (another one published the row).
  core::result<std::optional<patch_row>> find_patch(const std::string& source_sha256, const std::string& target_sha256,
                                                    const std::string& profile);
  core::result<std::optional<patch_row>> find_patch_by_id(const std::string& id);
  // Pins shared by replicas (table patch_pins): `owner` is serving `id` until `until` (unix
  // seconds; renewed while it serves). delete_patch_unless_pinned removes the row only when no
  // unexpired pin holds it (true: removed; the caller then removes the file).
  core::result<void> pin_patch(const std::string& id, const std::string& owner, std::int64_t until);
  core::result<bool> delete_patch_unless_pinned(const std::string& id, std::int64_t now);
  core::result<void> add_patch_usage(const std::string& id, std::uint64_t hits, std::uint64_t bytes,
                                     std::int64_t last_used);

  // Stable version numbers (docs/api.md "Version numbers"). `versions`: (version, sha256) of one
  // model, in store order. A version keeps its number while its content is unchanged; a new
  // version (or one whose content changed, or one deleted and added again) gets the model's next
  // number, in the order given. Versions absent from the list are forgotten; numbers are never
  // reused. Returns version -> number.
  core::result<std::map<std::string, std::uint64_t>> assign_version_numbers(
      const std::string& model, const std::vector<std::pair<std::string, std::string>>& versions);
  // Build jobs shared by replicas (table build_jobs, used by patch_cache): `claim_build`
  // atomically makes `owner` the builder of `key` for `lease_s` seconds unless another owner
  // holds an unexpired lease (a builder that died loses its claim when its lease runs out);
  // `renew_build` extends the lease (false: the claim was taken over); `finish_build` releases it.
  core::result<bool> claim_build(const std::string& key, const std::string& owner, std::int64_t now, std::int64_t lease_s);
  core::result<bool> renew_build(const std::string& key, const std::string& owner, std::int64_t now, std::int64_t lease_s);
  core::result<void> finish_build(const std::string& key, const std::string& owner);
  // Who holds an unexpired lease on `key` (nullopt: nobody is building it).
  core::result<std::optional<std::string>> build_owner(const std::string& key, std::int64_t now);
  // Forgets the numbers of models no longer in the store (their counters stay).
  core::result<void> retain_numbered_models(const std::set<std::string>& models);

  // Records a report: device_state (latest per device and model) is upserted and the device's
  // history trimmed to limits().per_device, in one transaction.
  core::result<void> insert_report(const device_report& r);
  // The newest report of each device (optionally of one device), newest first.
  core::result<std::vector<device_report>> latest_reports(const std::string& device_id = {}, std::size_t limit = 1000);
  core::result<device_page> list_devices(const device_query& q);
  // Applies the global cap and the retention to the history and to device_state; returns rows deleted.
  core::result<std::uint64_t> prune_reports(std::int64_t now);
  void set_report_limits(const report_limits& l) { limits_ = l; }
  const report_limits& limits() const { return limits_; }

  // One device's reports, newest first.
  core::result<std::vector<device_report>> device_history(const std::string& device_id, std::size_t limit);

  // The database itself, for features that keep their own tables (rollouts, identities, builds).
  storage::sql_database& database() { return *db_; }

 private:
  explicit index_db(std::unique_ptr<storage::sql_database> db);
  std::unique_ptr<storage::sql_database> db_;
  report_limits limits_;
};

}  // namespace mallorn::server
