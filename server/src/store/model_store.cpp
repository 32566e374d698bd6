#include "mallorn/server/model_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "mallorn/core/hash.hpp"
#include "mallorn/server/request_path.hpp"
#include "mallorn/server/version_order.hpp"

namespace mallorn::server {
namespace fs = std::filesystem;

const model_version* model_entry::find(const std::string& version) const {
  for (const auto& v : versions)
    if (v.version == version) return &v;
  return nullptr;
}

const model_version* model_entry::target_for(const std::string& channel) const {
  if (!channel.empty())
    if (auto it = channels.find(channel); it != channels.end())
      if (auto v = find(it->second)) return v;
  return versions.empty() ? nullptr : &versions.back();
}

const model_entry* catalog::model(const std::string& name) const {
  auto it = models.find(name);
  return it == models.end() ? nullptr : &it->second;
}

const model_version* catalog::find(const std::string& model_name, const std::string& version) const {
  auto m = model(model_name);
  return m ? m->find(version) : nullptr;
}

const model_version* catalog::find_by_sha256(const std::string& sha256, const std::string& model_name) const {
  for (const auto& [name, entry] : models) {
    if (!model_name.empty() && name != model_name) continue;
    for (const auto& v : entry.versions)
      if (v.sha256 == sha256) return &v;
  }
  return nullptr;
}

std::vector<const model_version*> catalog::find_by_short_id(const std::string& short_id,
                                                            const std::string& model_name) const {
  std::vector<const model_version*> out;
  for (const auto& [name, entry] : models) {
    if (!model_name.empty() && name != model_name) continue;
    for (const auto& v : entry.versions)
      if (v.fingerprint.short_id() == short_id) out.push_back(&v);
  }
  return out;
}

std::size_t catalog::version_count() const {
  std::size_t n = 0;
  for (const auto& [name, entry] : models) n += entry.versions.size();
  return n;
}

model_store::model_store(fs::path root, index_db& db)
    : root_(std::move(root)), db_(db), snapshot_(std::make_shared<catalog>()) {}

std::shared_ptr<const catalog> model_store::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

namespace {

std::int64_t mtime_ns_of(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Applies DIR/<model>/index.json: explicit order first, the rest in natural order; channels.
void order_versions(model_entry& entry, const fs::path& dir, scan_report& report) {
  std::sort(entry.versions.begin(), entry.versions.end(),
            [](const model_version& a, const model_version& b) { return compare_versions(a.version, b.version) < 0; });
  const auto index_file = dir / "index.json";
  std::error_code ec;
  if (!fs::exists(index_file, ec)) return;
  std::ifstream in(index_file);
  auto doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    report.warnings.push_back(index_file.string() + ": not a JSON object; using natural version order");
    return;
  }
  if (doc.contains("order") && doc["order"].is_array()) {
    std::map<std::string, std::size_t> position;
    for (const auto& v : doc["order"])
      if (v.is_string()) position.emplace(v.get<std::string>(), position.size());
    std::stable_sort(entry.versions.begin(), entry.versions.end(), [&](const model_version& a, const model_version& b) {
      auto pa = position.count(a.version) ? position[a.version] : position.size();
      auto pb = position.count(b.version) ? position[b.version] : position.size();
      return pa < pb;
    });
  }
  if (doc.contains("channels") && doc["channels"].is_object())
    for (const auto& [channel, version] : doc["channels"].items()) {
      if (!version.is_string() || !entry.find(version.get<std::string>())) {
        report.warnings.push_back(index_file.string() + ": channel '" + channel + "' names no version in the store");
        continue;
      }
      entry.channels[channel] = version.get<std::string>();
    }
}

}  // namespace

core::result<model_version> model_store::index_file(const std::string& model, const std::string& version,
                                                    const fs::path& path, scan_report& report) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return core::make_error(core::errc::io_error, "stat " + path.string() + " failed");
  model_version v;
  v.model = model;
  v.version = version;
  v.path = path;
  v.mtime_ns = mtime_ns_of(st);
  v.extension = path.extension().string().substr(1);
  auto known = db_.find_model(path.string());
  if (!known) return known.err();
  if (*known && (*known)->size == static_cast<std::uint64_t>(st.st_size) && (*known)->mtime_ns == v.mtime_ns) {
    v.sha256 = (*known)->sha256;
    v.fingerprint = (*known)->fingerprint;
    return v;
  }
  auto digest = core::sha256_of_file(path);
  if (!digest) return digest.err();
  auto fp = core::fingerprint_file(path);
  if (!fp) return fp.err();
  v.sha256 = core::to_hex(*digest);
  v.fingerprint = *fp;
  ++report.hashed;
  MALLORN_TRY(db_.upsert_model({path.string(), fp->file_size, v.mtime_ns, v.sha256, *fp}));
  return v;
}

core::result<scan_report> model_store::rescan() {
  std::lock_guard scan_lock(scan_mutex_);
  scan_report report;
  auto next = std::make_shared<catalog>();
  std::vector<std::string> seen_paths;
  std::error_code ec;
  if (!fs::is_directory(root_, ec))
    return core::make_error(core::errc::io_error, "model store " + root_.string() + " is not a directory");
  for (const auto& model_dir : fs::directory_iterator(root_, ec)) {
    const std::string model = model_dir.path().filename().string();
    if (!model_dir.is_directory(ec) || !is_valid_name(model)) continue;
    model_entry entry;
    entry.name = model;
    std::set<std::string> versions_seen;
    for (const auto& file : fs::directory_iterator(model_dir.path(), ec)) {
      const std::string name = file.path().filename().string();
      const auto listed = store_version_of(name);
      if (!listed || !file.is_regular_file(ec)) continue;
      const std::string& version = *listed;
      if (!versions_seen.insert(version).second) {
        report.warnings.push_back(model + "/" + name + ": version '" + version + "' exists with another extension; ignored");
        continue;
      }
      auto v = index_file(model, version, file.path(), report);
      if (!v) {
        report.warnings.push_back(v.err().what());
        continue;
      }
      seen_paths.push_back(file.path().string());
      entry.versions.push_back(std::move(*v));
    }
    if (entry.versions.empty()) continue;
    order_versions(entry, model_dir.path(), report);
    for (std::size_t i = 0; i < entry.versions.size(); ++i) entry.versions[i].rank = i + 1;
    report.versions += entry.versions.size();
    next->models.emplace(model, std::move(entry));
  }
  if (ec) return core::make_error(core::errc::io_error, "scanning " + root_.string() + ": " + ec.message());
  report.models = next->models.size();
  MALLORN_TRY(db_.retain_models(seen_paths));
  {
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = std::move(next);
  }
  return report;
}

namespace {
core::result<void> fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return core::make_error(core::errc::io_error, "open " + dir.string() + " failed");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return core::make_error(core::errc::io_error, "fsync " + dir.string() + " failed");
  return {};
}
}  // namespace

core::result<model_version> model_store::add_version(const std::string& model, const std::string& version,
                                                     const fs::path& staged) {
  if (!is_valid_name(model) || !is_valid_name(version))
    return core::make_error(core::errc::invalid_argument, "model and version names must match [A-Za-z0-9._+-]{1,128}");
  auto digest = core::sha256_of_file(staged);
  if (!digest) return digest.err();
  const std::string sha = core::to_hex(*digest);
  {
    auto current = snapshot();
    if (auto existing = current->find(model, version)) {
      if (existing->sha256 == sha) return *existing;  // idempotent re-upload
      return core::make_error(core::errc::invalid_argument,
                              model + "/" + version + " already exists with different content (sha256 " +
                                  existing->sha256 + ")");
    }
  }
  auto src = core::file_source::open(staged);
  if (!src) return src.err();
  std::vector<std::uint8_t> head(static_cast<std::size_t>(std::min<std::uint64_t>((*src)->size(), 64)));
  MALLORN_TRY((*src)->read_at(0, head));
  auto format = core::sniff_format(head);
  std::string ext(format == core::model_format::raw ? "bin" : core::format_id(format));

  const fs::path dir = root_ / model;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return core::make_error(core::errc::io_error, "creating " + dir.string() + ": " + ec.message());
  const fs::path final_path = dir / (version + "." + ext);
  if (store_version_of(final_path.filename().string()) != version)
    return core::make_error(core::errc::invalid_argument, "the store would not list " + model + "/" +
                                                              final_path.filename().string() + "; choose another version name");
  // link() never replaces an existing name: two concurrent uploads of one version cannot clobber
  // each other, and the final name appears complete or not at all.
  if (::link(staged.c_str(), final_path.c_str()) != 0)
    return core::make_error(errno == EEXIST ? core::errc::invalid_argument : core::errc::io_error,
                            "cannot publish " + final_path.string() + (errno == EEXIST ? ": it already exists" : ""));
  ::unlink(staged.c_str());
  // From here on a failure takes the published name back: a failed upload leaves nothing behind
  // (a leftover would make every retry a 409 conflict).
  auto unpublish = [&](core::error e) {
    ::unlink(final_path.c_str());
    (void)fsync_dir(dir);
    return e;
  };
  if (auto r = fsync_dir(dir); !r) return unpublish(r.err());
  if (auto r = fsync_dir(root_); !r) return unpublish(r.err());
  auto report = rescan();
  if (!report) return unpublish(report.err());
  if (auto v = snapshot()->find(model, version)) return *v;
  auto e = unpublish(core::make_error(core::errc::io_error, "uploaded " + final_path.string() + " but the rescan did not list it"));
  (void)rescan();
  return e;
}

}  // namespace mallorn::server
