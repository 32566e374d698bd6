// mallorn fleet devices admit|reject|revoke|pending and mallorn fleet audit: device admission and
// the audit log on a mallornd server (docs/security.md, docs/api.md).
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cmd_fleet_http.hpp"

namespace mallorn::cli {
namespace {

using nlohmann::json;

int fail(const std::string& message) {
  std::cerr << "mallorn fleet: " << message << "\n";
  return 1;
}

std::optional<json> call(const fleet_server& s, const std::string& method, const std::string& path) {
  return fleet_call(s, method, path, method == "POST" ? "{}" : "");
}

std::string when(const json& v) {
  if (!v.is_number_integer()) return "-";
  const std::time_t t = v.get<std::int64_t>();
  char buf[32];
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

bool is_admission_command(const std::string& word) {
  return word == "admit" || word == "reject" || word == "revoke" || word == "pending" || word == "enrolled";
}

int fleet_admission(const fleet_server& s, const std::vector<std::string>& p, bool as_json) {
  // p: devices VERB [ID]
  const std::string& verb = p[1];
  if (verb == "pending" || verb == "enrolled") {
    if (p.size() != 2) return fail("usage: mallorn fleet devices pending|enrolled");
    auto doc = call(s, "GET", verb == "pending" ? "/admin/enrollments?state=pending" : "/admin/enrollments");
    if (!doc) return 1;
    if (as_json) {
      std::cout << doc->dump(2) << "\n";
      return 0;
    }
    std::printf("%-32s %-9s %-44s %-22s %s\n", "DEVICE", "STATE", "PUBLIC KEY", "ENROLLED", "FROM");
    for (const auto& d : (*doc)["devices"])
      std::printf("%-32s %-9s %-44s %-22s %s\n", d.value("device_id", "").c_str(), d.value("state", "").c_str(),
                  d.value("public_key", "").c_str(), when(d["created_at"]).c_str(), d.value("client", "").c_str());
    return 0;
  }
  if (p.size() != 3) return fail("usage: mallorn fleet devices " + verb + " DEVICE");
  auto doc = call(s, "POST", "/admin/devices/" + p[2] + "/" + verb);
  if (!doc) return 1;
  if (as_json) std::cout << doc->dump(2) << "\n";
  else std::cout << doc->value("device_id", "") << ": " << doc->value("state", "") << "\n";
  return 0;
}

int fleet_audit(const fleet_server& s, const std::optional<std::string>& actor, const std::optional<std::string>& limit,
                bool as_json) {
  std::string path = "/admin/audit?limit=" + limit.value_or("50");
  if (actor) path += "&actor=" + *actor;
  auto doc = call(s, "GET", path);
  if (!doc) return 1;
  if (as_json) {
    std::cout << doc->dump(2) << "\n";
    return 0;
  }
  std::printf("%-6s %-22s %-16s %-7s %-24s %-6s %-40s %s\n", "SEQ", "AT", "ACTOR", "SCOPE", "ACTION", "STATUS", "TARGET",
              "CLIENT");
  for (const auto& e : (*doc)["entries"])
    std::printf("%-6s %-22s %-16s %-7s %-24s %-6s %-40s %s\n", e["seq"].dump().c_str(), when(e["at"]).c_str(),
                e.value("actor", "").c_str(), e.value("scope", "").c_str(), e.value("action", "").c_str(),
                e["status"].dump().c_str(), e.value("target", "").c_str(), e.value("client", "").c_str());
  return 0;
}

}  // namespace mallorn::cli
