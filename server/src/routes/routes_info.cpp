// The informational and admin routes: manifest, fingerprint, report, healthz, uploads, rescan,
// devices.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <set>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/log_safe.hpp"
#include "mallorn/server/disk_guard.hpp"
#include "mallorn/server/fleet/rollout_engine.hpp"
#include "mallorn/server/request_path.hpp"
#include "mallorn/server/router.hpp"
#include "mallorn/server/storage/sql_database.hpp"
#include "route_json.hpp"

namespace mallorn::server {

http_response router::manifest() {
  auto cat = store_.snapshot();
  nlohmann::json models = nlohmann::json::object();
  for (const auto& [name, entry] : cat->models) {
    nlohmann::json versions = nlohmann::json::array();
    for (const auto& v : entry.versions) versions.push_back(fingerprint_json(v));
    models[name] = {{"latest", entry.versions.back().version}, {"channels", entry.channels}, {"versions", versions}};
  }
  nlohmann::json patches = nlohmann::json::array();
  for (const auto& p : cache_.list()) patches.push_back(patch_json(p));
  return json_response(200, {{"models", models}, {"patches", patches}});
}

http_response router::fingerprint(const std::vector<std::string>& seg) {
  if (!is_valid_name(seg[1]) || (seg.size() == 3 && !is_valid_name(seg[2])))
    return error_response(400, "bad_name", "invalid model or version name");
  auto cat = store_.snapshot();
  const model_entry* entry = cat->model(seg[1]);
  if (!entry) return error_response(404, "unknown_model", "the store has no model " + seg[1]);
  const model_version* v = seg.size() == 3 ? entry->find(seg[2]) : &entry->versions.back();
  if (!v) return error_response(404, "unknown_version", "the store has no " + seg[1] + " " + seg[2]);
  return json_response(200, fingerprint_json(*v));
}

http_response router::report(const http_request& req) {
  http_response error;
  auto doc = parse_json_object(req.body, error);
  if (!doc) return error;
  static const std::set<std::string> states = {"idle",      "checking",  "downloading", "downloaded",   "applying",
                                               "applied",   "verifying", "swapping",    "health_check", "committed",
                                               "rolling_back", "rolled_back", "failed",    "interrupted"};
  device_report r;
  auto field = [&](const char* name, std::string& out, std::size_t max_len, bool required) -> bool {
    if (!doc->contains(name) || (*doc)[name].is_null()) return !required;
    if (!(*doc)[name].is_string() || (*doc)[name].get_ref<const std::string&>().size() > max_len) return false;
    out = (*doc)[name].get<std::string>();
    return !(required && out.empty());
  };
  if (!field("device_id", r.device_id, 256, true) || !field("state", r.state, 32, true))
    return error_response(400, doc->contains("device_id") && doc->contains("state") ? "bad_field" : "missing_field",
                          "a report needs string 'device_id' and 'state'");
  if (!field("model", r.model, 128, false) || !field("from_version", r.from_version, 128, false) ||
      !field("to_version", r.to_version, 128, false) || !field("error", r.error, 4096, false))
    return error_response(400, "bad_field", "model, from_version, to_version and error must be short strings");
  if (!is_valid_device_id(r.device_id))
    return error_response(400, "bad_device_id", "'device_id' must match [A-Za-z0-9._:@+-]{1,128}");
  if (auto denied = bind_device_id(req, r.device_id)) return std::move(*denied);  // --device-auth
  if (!states.count(r.state))
    return error_response(400, "bad_state", "unknown state; see docs/api.md for the list");
  if (doc->contains("bytes_downloaded") && !(*doc)["bytes_downloaded"].is_null()) {
    const auto& b = (*doc)["bytes_downloaded"];
    if (!b.is_number_unsigned() && !(b.is_number_integer() && b.get<std::int64_t>() >= 0))
      return error_response(400, "bad_field", "'bytes_downloaded' must be a non-negative integer");
    r.bytes_downloaded = b.get<std::uint64_t>();
  }
  if (doc->contains("tags") && !(*doc)["tags"].is_null()) {
    // Tags select devices for rollouts: a small object of short strings.
    const auto& t = (*doc)["tags"];
    bool ok = t.is_object() && t.size() <= 16;
    if (ok)
      for (const auto& [k, v] : t.items())
        ok = ok && !k.empty() && k.size() <= 64 && v.is_string() && v.get_ref<const std::string&>().size() <= 128;
    if (!ok)
      return error_response(400, "bad_field", "'tags' must be an object of at most 16 string values (keys <= 64, values <= 128 characters)");
    r.tags_json = t.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  }
  r.client = req.client;
  r.received_at = static_cast<std::int64_t>(std::time(nullptr));
  // Read-only mode: the agent keeps the report in its outbox and sends it again later.
  if (read_only()) return disk_full_response();
  if (auto ok = db_.insert_report(r); !ok) {
    if (ok.err().sys_errno == ENOSPC || ok.err().sys_errno == EDQUOT) {
      if (cfg_.disk) cfg_.disk->note_full("the index database could not store a report");
      return disk_full_response();
    }
    return storage_unavailable(ok.err());
  }
  if (cfg_.rollouts) cfg_.rollouts->on_report(r);  // per-rollout counts and the health gate
  if (!r.error.empty() || r.state == "rolled_back" || r.state == "failed")
    spdlog::warn("device {} ({}): {} {} -> {}: {}", r.device_id, core::log_safe(r.model), r.state,
                 core::log_safe(r.from_version), core::log_safe(r.to_version), core::log_safe(r.error));
  return json_response(200, {{"ok", true}});
}

http_response router::healthz() {
  auto cat = store_.snapshot();
  // A replica that cannot reach its database cannot take reports or publish builds: the load
  // balancer should send devices elsewhere.
  const auto reachable = db_.database().ping();
  // ... nor one whose patch directory (a shared mount, with several replicas) or store is gone.
  const bool patches_ok = ::access(cache_.dir().c_str(), R_OK | W_OK | X_OK) == 0;
  const bool store_ok = ::access(store_.root().c_str(), R_OK | X_OK) == 0;
  const bool healthy = !draining() && reachable.ok() && patches_ok && store_ok;
  // Read-only (disk full) still serves check-update and downloads: healthy, but said so.
  const char* status = draining()                ? "draining"
                       : !reachable              ? "database_unreachable"
                       : !patches_ok || !store_ok ? "storage_unreachable"
                       : read_only()             ? "read_only"
                                                 : "ok";
  nlohmann::json body = {{"status", status},
                         {"replica", cfg_.replica},
                         {"database", {{"backend", db_.database().dialect() == storage::sql_dialect::postgres ? "postgresql" : "sqlite"},
                                       {"reachable", reachable.ok()}}},
                         {"storage", {{"patches", patches_ok}, {"models", store_ok}}},
                         {"models", cat->models.size()},
                         {"versions", cat->version_count()},
                         {"patches", cache_.count()},
                         {"builds_queued", cache_.queued()},
                         {"builds_running", cache_.running()}};
  if (cfg_.disk)
    body["disk"] = {{"read_only", cfg_.disk->degraded()},
                    {"free_bytes", cfg_.disk->free_bytes()},
                    {"min_free_bytes", cfg_.disk->min_free()}};
  if (!reachable) spdlog::warn("healthz: {}", reachable.err().what());
  if (!patches_ok || !store_ok)
    spdlog::warn("healthz: {} is not accessible", !patches_ok ? cache_.dir().string() : store_.root().string());
  auto r = json_response(healthy ? 200 : 503, body);
  if (!healthy) r.set("Retry-After", "5");
  return r;
}

http_response router::upload_model(const http_request& req, const std::string& model, const std::string& version) {
  std::error_code size_ec;
  if (req.body_file.empty() || std::filesystem::file_size(req.body_file, size_ec) == 0 || size_ec)
    return error_response(400, "empty_upload", "PUT the model file as the request body");
  if (const auto* want = req.header("x-content-sha256")) {
    auto got = core::sha256_of_file(req.body_file);
    if (!got) return error_response(500, "io_error", got.err().what());
    std::string expected = *want;
    std::transform(expected.begin(), expected.end(), expected.begin(), ::tolower);
    if (core::to_hex(*got) != expected)
      return error_response(400, "digest_mismatch", "the body's SHA-256 is " + core::to_hex(*got) + ", not " + expected);
  }
  auto added = store_.add_version(model, version, req.body_file);
  if (!added && (added.err().sys_errno == ENOSPC || added.err().sys_errno == EDQUOT)) {
    spdlog::warn("store: upload of {} {} failed: {}", model, version, added.err().what());
    if (cfg_.disk) cfg_.disk->note_full("storing an upload");
    return disk_full_response();
  }
  if (!added) {
    // The store's message names server paths: it goes to the log; the client gets a stable code.
    spdlog::warn("store: upload of {} {} failed: {}", model, version, added.err().what());
    if (added.err().code == core::errc::invalid_argument)
      return error_response(409, "conflict", model + " " + version + " already exists with different content");
    if (added.err().is_transient()) return unavailable_response(added.err().sys_errno);
    return error_response(500, "io_error", "the upload could not be stored; the server log says why");
  }
  spdlog::info("store: added {} {} ({} bytes, sha256 {})", model, version, added->fingerprint.file_size, added->sha256);
  auto r = json_response(201, fingerprint_json(*added));
  r.set("Location", model_url(*added));
  return r;
}

http_response router::rescan() {
  auto report = store_.rescan();
  if (!report) return error_response(500, "io_error", report.err().what());
  for (const auto& w : report->warnings) spdlog::warn("store: {}", w);
  spdlog::info("store: rescanned: {} models, {} versions, {} files hashed", report->models, report->versions, report->hashed);
  return json_response(200, {{"models", report->models},
                             {"versions", report->versions},
                             {"hashed", report->hashed},
                             {"warnings", report->warnings}});
}

namespace {
nlohmann::json device_json(const device_report& r) {
  nlohmann::json d = {{"device_id", r.device_id}, {"model", r.model}, {"from_version", r.from_version},
                      {"to_version", r.to_version}, {"state", r.state}, {"error", r.error},
                      {"bytes_downloaded", r.bytes_downloaded}, {"client", r.client}, {"received_at", r.received_at}};
  if (!r.tags_json.empty()) {
    auto tags = nlohmann::json::parse(r.tags_json, nullptr, false);
    if (!tags.is_discarded() && tags.is_object() && !tags.empty()) d["tags"] = tags;
  }
  return d;
}
}  // namespace

http_response router::devices(const http_request& req, const std::string& device_id) {
  if (!device_id.empty()) {
    auto reports = db_.latest_reports(device_id, 1000);
    if (!reports) return storage_unavailable(reports.err());
    if (reports->empty()) return error_response(404, "unknown_device", "no reports from " + device_id);
    auto history = db_.device_history(device_id, db_.limits().per_device);
    if (!history) return storage_unavailable(history.err());
    nlohmann::json out = nlohmann::json::array(), past = nlohmann::json::array();
    for (const auto& r : *reports) out.push_back(device_json(r));
    for (const auto& r : *history) past.push_back(device_json(r));
    return json_response(200, {{"devices", out}, {"history", past}});
  }
  // Paged: ?limit=N (1..1000, default 100) &after=<device_id>&after_model=<model> (the previous
  // page's "next"), filters ?model= &state= &prefix=.
  auto target = parse_target(req.target);
  device_query q;
  if (target) {
    const auto& p = target->query;
    auto get = [&](const char* k) { return p.count(k) ? p.at(k) : std::string(); };
    q.after_device = get("after");
    q.after_model = get("after_model");
    q.model = get("model");
    q.state = get("state");
    q.prefix = get("prefix");
    if (p.count("limit")) {
      const auto& l = p.at("limit");
      std::size_t n = 0;
      auto [ptr, ec] = std::from_chars(l.data(), l.data() + l.size(), n);
      if (ec != std::errc{} || ptr != l.data() + l.size() || n < 1 || n > 1000)
        return error_response(400, "bad_field", "'limit' must be a whole number in 1..1000");
      q.limit = n;
    }
    for (const auto* v : {&q.after_device, &q.prefix})
      if (v->size() > 256) return error_response(400, "bad_field", "'after' and 'prefix' are at most 256 characters");
    for (const auto* v : {&q.after_model, &q.model, &q.state})
      if (v->size() > 128) return error_response(400, "bad_field", "'after_model', 'model' and 'state' are at most 128 characters");
  }
  auto page = db_.list_devices(q);
  if (!page) return storage_unavailable(page.err());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : page->devices) out.push_back(device_json(r));
  nlohmann::json body = {{"devices", out}, {"total", page->total}, {"next", nullptr}};
  if (page->more && !page->devices.empty())
    body["next"] = {{"after", page->devices.back().device_id}, {"after_model", page->devices.back().model}};
  return json_response(200, body);
}

}  // namespace mallorn::server
