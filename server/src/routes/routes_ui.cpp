// The dashboard's routes: its static files at /ui/ and the two read-only admin views it needs
// beyond the existing API (build activity, one device's report history).
#include <nlohmann/json.hpp>

#include "mallorn/server/request_path.hpp"
#include "mallorn/server/router.hpp"
#include "route_json.hpp"

namespace mallorn::server {
namespace {

// No inline script or style, nothing from another origin, never framed: the dashboard holds an
// admin token, so a page that injected markup still could not run code or send it elsewhere.
constexpr const char* ui_csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void secure_ui_headers(http_response& r) {
  r.set("Content-Security-Policy", ui_csp);
  r.set("X-Frame-Options", "DENY");
  r.set("X-Content-Type-Options", "nosniff");
  r.set("Referrer-Policy", "no-referrer");
  r.set("Cross-Origin-Opener-Policy", "same-origin");
}

}  // namespace

http_response router::ui(const http_request& req, const std::vector<std::string>& seg) {
  if (!cfg_.ui) return error_response(404, "ui_disabled", "the dashboard is off (mallornd --no-ui)");
  // "/ui" -> "/ui/", so the pages' relative module paths resolve under /ui/.
  const std::string path = req.target.substr(0, req.target.find('?'));
  if (seg.size() == 1 && path == "/ui") {
    http_response r;
    r.status = 308;
    r.set("Location", "/ui/");
    secure_ui_headers(r);
    return r;
  }
  std::string relative;
  for (std::size_t i = 1; i < seg.size(); ++i) {
    if (!is_valid_name(seg[i])) return error_response(404, "not_found", "no such dashboard file");
    relative += (relative.empty() ? "" : "/") + seg[i];
  }
  if (relative.empty()) relative = "index.html";
  const ui_file* f = cfg_.ui->find(relative);
  if (!f) return error_response(404, "not_found", "no such dashboard file");
  http_response r;
  secure_ui_headers(r);
  r.set("ETag", f->etag);
  // Revalidate every time: after an upgrade the browser must not mix old and new modules.
  r.set("Cache-Control", "no-cache");
  if (const std::string* inm = req.header("if-none-match"); inm && *inm == f->etag) {
    r.status = 304;
    return r;
  }
  r.set("Content-Type", f->content_type);
  r.body = f->body;
  return r;
}

http_response router::builds() {
  const cache_activity a = cache_.activity();
  nlohmann::json builds = nlohmann::json::array(), failures = nlohmann::json::array(),
                 evictions = nlohmann::json::array();
  for (const auto& b : a.builds)
    builds.push_back({{"model", b.model}, {"source_version", b.source_version}, {"target_version", b.target_version},
                      {"profile", b.profile}, {"state", b.state}});
  for (const auto& f : a.failures)
    failures.push_back({{"model", f.model}, {"source_version", f.source_version}, {"target_version", f.target_version},
                        {"profile", f.profile}, {"error", f.error}, {"seconds_ago", f.seconds_ago}});
  for (const auto& e : a.evictions) {
    auto j = patch_json(e.patch);
    j["evicted_at"] = e.evicted_at;
    evictions.push_back(std::move(j));
  }
  return json_response(200, {{"queued", cache_.queued()},
                             {"running", cache_.running()},
                             {"cache_bytes", cache_.total_bytes()},
                             {"cache_patches", cache_.count()},
                             {"builds", builds},
                             {"failures", failures},
                             {"evictions", evictions}});
}

http_response router::device_reports(const std::string& device_id) {
  auto history = db_.device_history(device_id, 200);
  if (!history) return error_response(503, "index_unavailable", "the index cannot be read right now");
  if (history->empty()) return error_response(404, "unknown_device", "no reports from this device");
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : *history)
    out.push_back({{"model", r.model}, {"from_version", r.from_version}, {"to_version", r.to_version},
                   {"state", r.state}, {"error", r.error}, {"bytes_downloaded", r.bytes_downloaded},
                   {"received_at", r.received_at}});
  return json_response(200, {{"device_id", device_id}, {"reports", out}});
}

http_response router::audit_view(const http_request& req) {
  if (!cfg_.audit) return error_response(404, "not_found", "this server keeps no audit log");
  auto target = parse_target(req.target);
  std::size_t limit = 100;
  std::int64_t before = 0;
  std::string actor;
  if (target) {
    auto number = [&](const char* key, std::int64_t max) -> std::optional<std::int64_t> {
      auto it = target->query.find(key);
      if (it == target->query.end()) return std::int64_t{0};
      if (it->second.empty() || it->second.size() > 18 || it->second.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
      auto v = std::stoll(it->second);
      return v > max ? std::nullopt : std::optional<std::int64_t>(v);
    };
    auto l = number("limit", 1000);
    auto b = number("before", INT64_MAX / 2);
    if (!l || !b) return error_response(400, "bad_query", "limit is 1..1000 and before a sequence number");
    if (*l) limit = static_cast<std::size_t>(*l);
    before = *b;
    if (auto it = target->query.find("actor"); it != target->query.end()) actor = it->second.substr(0, 64);
  }
  auto entries = cfg_.audit->list(limit, before, actor);
  if (!entries) return error_response(503, "index_unavailable", "the audit log cannot be read right now");
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : *entries)
    out.push_back({{"seq", e.seq}, {"at", e.at}, {"actor", e.actor}, {"scope", e.scope}, {"action", e.action},
                   {"target", e.target}, {"status", e.status}, {"client", e.client}});
  nlohmann::json doc = {{"entries", out}};
  if (entries->size() == limit && !entries->empty()) doc["next_before"] = entries->back().seq;
  return json_response(200, doc);
}

}  // namespace mallorn::server
