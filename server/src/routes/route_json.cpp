#include "route_json.hpp"

#include <cstring>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include "mallorn/core/model_format.hpp"
#include "mallorn/server/disk_guard.hpp"

namespace mallorn::server {

http_response json_response(unsigned status, const nlohmann::json& body) {
  http_response r;
  r.status = status;
  // replace: messages echo client strings (a version name in a 404...), which need not be UTF-8;
  // a strict dump() would throw out of the handler (found by router_fuzz).
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body += '\n';
  r.set("Content-Type", "application/json");
  return r;
}

http_response error_response(unsigned status, const std::string& code, const std::string& message) {
  return json_response(status, {{"error", {{"code", code}, {"message", message}}}});
}

http_response unavailable_response(int sys_errno) {
  if (!core::is_transient_errno(sys_errno))
    return error_response(500, "io_error", "the server cannot read this file; the operator has to look at its log");
  auto r = error_response(503, "unavailable", std::string("the server is short of resources (") +
                                                  std::strerror(sys_errno) + "); retry later");
  r.set("Retry-After", "5");
  return r;
}

http_response disk_full_response() {
  auto r = error_response(503, "disk_full",
                          "the server's disk is full: it serves what it has and stores nothing new; retry later");
  r.set("Retry-After", std::to_string(disk_guard::retry_after_seconds));
  return r;
}

std::optional<std::uint64_t> free_bytes(const std::filesystem::path& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

http_response storage_unavailable(const core::error& e) {
  spdlog::error("index database unavailable: {}", e.what());
  auto r = error_response(503, "storage_unavailable", "the index database is unavailable; retry later");
  r.set("Retry-After", "5");
  return r;
}

nlohmann::json fingerprint_json(const model_version& v) {
  const auto& fp = v.fingerprint;
  return {{"model", v.model},
          {"version", v.version},
          {"format", std::string(core::format_id(fp.format))},
          {"file_size", fp.file_size},
          {"header_hash", fp.header_hash},
          {"tail_hash", fp.tail_hash},
          {"combined_hash", fp.combined_hash},
          {"short_id", fp.short_id()},
          {"sha256", v.sha256},
          {"rank", v.rank},
          {"number", v.number},
          {"url", model_url(v)}};
}

nlohmann::json patch_json(const patch_row& p) {
  return {{"patch_id", p.id},
          {"patch_url", patch_url(p.id)},
          {"patch_size", p.size},
          {"patch_sha256", p.id},
          {"model", p.model},
          {"source_version", p.source_version},
          {"target_version", p.target_version},
          {"source_sha256", p.source_sha256},
          {"target_sha256", p.target_sha256},
          {"profile", p.profile},
          {"signed", p.is_signed},
          {"created", p.created},
          {"hits", p.hits},
          {"bytes_served", p.bytes_served},
          {"target_number", p.target_number},
          {"build_seconds", p.build_seconds}};
}

std::string patch_url(const std::string& id) { return "/patch/" + id; }
std::string model_url(const model_version& v) { return "/model/" + v.model + "/" + v.version; }

std::optional<nlohmann::json> parse_json_object(const std::string& body, http_response& error) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    error = error_response(400, "malformed_json", "the request body is not valid JSON");
    return std::nullopt;
  }
  if (!doc.is_object()) {
    error = error_response(400, "malformed_json", "the request body must be a JSON object");
    return std::nullopt;
  }
  return doc;
}

}  // namespace mallorn::server
