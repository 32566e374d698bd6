// mallorn fleet rollout|group|devices: drives mallornd's rollout engine (docs/rollouts.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_args.hpp"
#include "cmd_fleet_http.hpp"
#include "commands.hpp"

namespace mallorn::cli {
namespace {

using nlohmann::json;

int fail(const std::string& message) {
  std::cerr << "mallorn fleet: " << message << "\n";
  return 1;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, sep);)
    if (!part.empty()) out.push_back(part);
  return out;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::optional<json> call(const fleet_server& s, const std::string& method, const std::string& path, const json& body = nullptr) {
  return fleet_call(s, method, path, body.is_null() ? std::string() : body.dump());
}

std::string num(const json& v) { return v.is_null() ? "-" : v.dump(); }

void rollout_table(const json& list) {
  std::printf("%-5s %-10s %7s  %-24s %-10s %-12s %8s %8s %9s %7s %8s %6s\n", "ID", "STATE", "STAGE", "MODEL", "VERSION",
              "GROUP", "OFFERED", "DOWNLOAD", "COMMITTED", "FAILED", "ROLLBACK", "FAIL%");
  for (const auto& r : list) {
    const auto& d = r["devices"];
    std::printf("%-5s %-10s %6.2f%%  %-24s %-10s %-12s %8s %8s %9s %7s %8s %5.1f%%\n", num(r["id"]).c_str(),
                r.value("state", "").c_str(), r.value("stage_percent", 0.0), r.value("model", "").c_str(),
                r.value("version", "").c_str(), r["group"].is_string() ? r["group"].get<std::string>().c_str() : "(all)",
                num(d["offered"]).c_str(), num(d["downloading"]).c_str(), num(d["committed"]).c_str(),
                num(d["failed"]).c_str(), num(d["rolled_back"]).c_str(), 100 * r.value("failure_rate", 0.0));
  }
}

void rollout_details(const json& r) {
  rollout_table(json::array({r}));
  std::printf("\nstages %s, stage_min_seconds %s, max_failure_rate %s, min_reports %s, bytes served %s\n",
              r["stages"].dump().c_str(), num(r["stage_min_seconds"]).c_str(), num(r["max_failure_rate"]).c_str(),
              num(r["min_reports"]).c_str(), num(r["bytes_served"]).c_str());
  if (r["window"].is_object()) std::printf("window %s\n", r["window"].dump().c_str());
  std::printf("reason: %s\n", r.value("reason", "").c_str());
  if (r.contains("history")) {
    std::printf("\n%-12s %-10s %-13s %-10s %-10s %s\n", "AT", "ACTOR", "EVENT", "FROM", "TO", "REASON");
    for (const auto& h : r["history"])
      std::printf("%-12s %-10s %-13s %-10s %-10s %s\n", num(h["at"]).c_str(), h.value("actor", "").c_str(),
                  h.value("event", "").c_str(), h.value("from", "").c_str(), h.value("to", "").c_str(),
                  h.value("reason", "").c_str());
  }
}

int rollout_cmd(const fleet_server& s, const parsed_args& a, bool as_json) {
  const auto& p = a.positional;
  if (p.size() < 2) return fail("usage: mallorn fleet rollout create|list|show|pause|resume|advance|abort ...");
  const std::string& verb = p[1];
  auto print = [&](const json& doc, auto&& table) {
    if (as_json) std::cout << doc.dump(2) << "\n";
    else table(doc);
    return 0;
  };
  if (verb == "list") {
    auto doc = call(s, "GET", "/admin/rollouts");
    if (!doc) return 1;
    return print(*doc, [](const json& d) { rollout_table(d["rollouts"]); });
  }
  if (verb == "create") {
    if (p.size() != 4 || !a.value("--stages")) return fail("usage: mallorn fleet rollout create MODEL VERSION --stages 1,10,50,100 [...]");
    json spec = {{"model", p[2]}, {"version", p[3]}, {"stages", json::array()}};
    for (const auto& st : split(*a.value("--stages"), ',')) {
      char* end = nullptr;
      const double v = std::strtod(st.c_str(), &end);
      if (!end || *end) return fail("--stages: '" + st + "' is not a number");
      spec["stages"].push_back(v);
    }
    if (auto g = a.value("--group")) spec["group"] = *g;
    for (const auto& [flag, field] : std::vector<std::pair<std::string, std::string>>{
             {"--stage-min-seconds", "stage_min_seconds"}, {"--min-reports", "min_reports"},
             {"--pause-timeout", "pause_timeout_seconds"}, {"--start-at", "start_at"}}) {
      if (auto v = a.value(flag)) {
        auto n = parse_uint(*v);
        if (!n) return fail(flag + " needs a whole number");
        spec[field] = *n;
      }
    }
    if (auto v = a.value("--max-failure-rate")) {
      char* end = nullptr;
      spec["max_failure_rate"] = std::strtod(v->c_str(), &end);
      if (!end || *end) return fail("--max-failure-rate needs a number");
    }
    if (auto w = a.value("--window")) {
      auto doc = json::parse(*w, nullptr, false);
      if (doc.is_discarded()) return fail("--window needs JSON, e.g. '{\"days\":[\"mon\"],\"start\":\"02:00\",\"end\":\"05:00\",\"tz\":\"Europe/Berlin\"}'");
      spec["window"] = doc;
    }
    auto doc = call(s, "POST", "/admin/rollouts", spec);
    if (!doc) return 1;
    return print(*doc, rollout_details);
  }
  if (p.size() != 3) return fail("usage: mallorn fleet rollout " + verb + " ID");
  const std::string path = "/admin/rollouts/" + p[2];
  if (verb == "show") {
    const bool watch = a.has("--watch");
    for (;;) {
      auto doc = call(s, "GET", path);
      if (!doc) return 1;
      if (watch && !as_json && ::isatty(STDOUT_FILENO)) std::cout << "\x1b[H\x1b[2J";
      print(*doc, rollout_details);
      std::cout.flush();
      const std::string state = doc->value("state", "");
      if (!watch || state == "completed" || state == "aborted") return 0;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  if (verb == "pause" || verb == "resume" || verb == "advance" || verb == "abort") {
    json body = nullptr;
    if (auto r = a.value("--reason")) body = {{"reason", *r}};
    auto doc = call(s, "POST", path + "/" + verb, body);
    if (!doc) return 1;
    return print(*doc, rollout_details);
  }
  return fail("unknown rollout command '" + verb + "'");
}

int group_cmd(const fleet_server& s, const parsed_args& a, bool as_json) {
  const auto& p = a.positional;
  if (p.size() < 2) return fail("usage: mallorn fleet group list|show|put|delete ...");
  const std::string& verb = p[1];
  auto table = [](const json& groups) {
    std::printf("%-20s %-50s %s\n", "NAME", "MATCH", "DEVICES");
    for (const auto& g : groups)
      std::printf("%-20s %-50s %zu\n", g.value("name", "").c_str(), g["match"].dump().c_str(), g["devices"].size());
  };
  if (verb == "list") {
    auto doc = call(s, "GET", "/admin/groups");
    if (!doc) return 1;
    if (as_json) std::cout << doc->dump(2) << "\n";
    else table((*doc)["groups"]);
    return 0;
  }
  if (p.size() != 3) return fail("usage: mallorn fleet group " + verb + " NAME");
  const std::string path = "/admin/groups/" + p[2];
  json doc;
  if (verb == "show") {
    auto r = call(s, "GET", path);
    if (!r) return 1;
    doc = *r;
  } else if (verb == "delete") {
    auto r = call(s, "DELETE", path);
    if (!r) return 1;
    doc = *r;
  } else if (verb == "put") {
    // --match 'site=berlin,hw=rpi4|rpi5,runtime?,debug!' (equality, in, present, absent)
    json spec = json::object();
    if (auto m = a.value("--match")) {
      spec["match"] = json::object();
      for (const auto& cond : split(*m, ',')) {
        if (cond.back() == '?' || cond.back() == '!') {
          spec["match"][cond.substr(0, cond.size() - 1)] = {{"present", cond.back() == '?'}};
          continue;
        }
        auto eq = cond.find('=');
        if (eq == std::string::npos) return fail("--match: '" + cond + "' is not KEY=VALUE, KEY=A|B, KEY? or KEY!");
        auto values = split(cond.substr(eq + 1), '|');
        if (values.size() == 1) spec["match"][cond.substr(0, eq)] = values[0];
        else spec["match"][cond.substr(0, eq)] = {{"in", values}};
      }
    }
    if (auto d = a.value("--devices")) spec["devices"] = split(*d, ',');
    auto r = call(s, "PUT", path, spec);
    if (!r) return 1;
    doc = *r;
  } else {
    return fail("unknown group command '" + verb + "'");
  }
  if (as_json) std::cout << doc.dump(2) << "\n";
  else if (doc.contains("name")) table(json::array({doc}));
  else std::cout << doc.dump() << "\n";
  return 0;
}

int devices_cmd(const fleet_server& s, const parsed_args& a, bool as_json) {
  if (a.positional.size() > 1 && is_admission_command(a.positional[1])) return fleet_admission(s, a.positional, as_json);
  auto doc = call(s, "GET", "/admin/devices" + (a.positional.size() > 1 ? "/" + a.positional[1] : std::string()));
  if (!doc) return 1;
  if (as_json) {
    std::cout << doc->dump(2) << "\n";
    return 0;
  }
  std::printf("%-24s %-24s %-10s %-10s %-13s %s\n", "DEVICE", "MODEL", "FROM", "TO", "STATE", "RECEIVED");
  for (const auto& d : (*doc)["devices"])
    std::printf("%-24s %-24s %-10s %-10s %-13s %s\n", d.value("device_id", "").c_str(), d.value("model", "").c_str(),
                d.value("from_version", "").c_str(), d.value("to_version", "").c_str(), d.value("state", "").c_str(),
                num(d["received_at"]).c_str());
  return 0;
}

}  // namespace

int cmd_fleet(const arg_list& args) {
  parsed_args a;
  if (auto err = parse_args(args,
                            {"--server", "--token-file", "--actor", "--stages", "--group", "--stage-min-seconds",
                             "--max-failure-rate", "--min-reports", "--pause-timeout", "--start-at", "--window",
                             "--reason", "--match", "--devices", "--limit"},
                            {"--json", "--watch"}, a))
    return fail(*err);
  if (a.positional.empty()) return fail("usage: mallorn fleet rollout|group|devices ... (see --help)");
  fleet_server s;
  s.url = a.value("--server").value_or(env_or("MALLORN_SERVER", "http://127.0.0.1:8080"));
  s.token = env_or("MALLORN_TOKEN", "");
  if (auto f = a.value("--token-file")) {
    std::ifstream in(*f);
    if (!in || !std::getline(in, s.token)) return fail("cannot read the token from " + *f);
  }
  s.actor = a.value("--actor").value_or(env_or("USER", "cli"));
  const bool as_json = a.has("--json");
  const std::string& area = a.positional[0];
  if (area == "rollout") return rollout_cmd(s, a, as_json);
  if (area == "group") return group_cmd(s, a, as_json);
  if (area == "devices") return devices_cmd(s, a, as_json);
  if (area == "audit") return fleet_audit(s, a.value("--actor"), a.value("--limit"), as_json);
  return fail("unknown fleet command '" + area + "' (rollout, group, devices, audit)");
}

}  // namespace mallorn::cli
