// The fleet admin routes: /admin/rollouts[/<id>[/pause|resume|advance|abort]] and
// /admin/groups[/<name>]. The rules live in fleet::rollout_engine; this file turns HTTP into calls.
#include <spdlog/spdlog.h>

#include <charconv>

#include "mallorn/server/fleet/rollout_engine.hpp"
#include "mallorn/server/router.hpp"
#include "route_json.hpp"

namespace mallorn::server {
namespace {

nlohmann::json rollout_json(const fleet::rollout& r) {
  nlohmann::json counts = nlohmann::json::object();
  for (std::size_t i = 0; i < fleet::device_progress_count; ++i)
    counts[std::string(fleet::progress_name(static_cast<fleet::device_progress>(i)))] = r.counts.by_state[i];
  auto out = r.spec.to_json();
  out["id"] = r.id;
  out["version_number"] = r.version_number;
  out["state"] = std::string(fleet::state_name(r.state));
  out["reason"] = r.reason;
  out["stage"] = r.stage;
  out["stage_percent"] = r.state == fleet::rollout_state::completed ? r.spec.stages.back() : r.stage_percent();
  out["created_at"] = r.created_at;
  out["created_by"] = r.created_by;
  out["updated_at"] = r.updated_at;
  out["stage_started_at"] = r.stage_started_at;
  out["paused_at"] = r.paused_at ? nlohmann::json(r.paused_at) : nlohmann::json(nullptr);
  out["devices"] = counts;
  out["reports"] = r.counts.reports();
  out["failure_rate"] = r.counts.failure_rate();
  out["bytes_served"] = r.counts.bytes_served;
  return out;
}

std::optional<std::int64_t> parse_id(const std::string& s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

http_response method_not_allowed(const std::string& allow) {
  auto r = error_response(405, "method_not_allowed", "this route accepts " + allow);
  r.set("Allow", allow);
  return r;
}

// Who did it, for the rollout journal: the optional X-Mallorn-Actor header (a person sharing a
// token), else the token's name. The audit log records the token's name either way.
std::optional<std::string> actor_of(const http_request& req, const std::string& token_name) {
  const std::string* a = req.header("x-mallorn-actor");
  if (!a || a->empty()) return token_name.empty() ? std::string("admin") : token_name;
  if (!fleet::is_printable(*a, 64)) return std::nullopt;
  return *a;
}

// A body that may be empty (actions) or an object with an optional "reason".
std::optional<std::string> reason_of(const http_request& req, http_response& error) {
  if (req.body.empty()) return std::string();
  auto doc = parse_json_object(req.body, error);
  if (!doc) return std::nullopt;
  for (const auto& [k, v] : doc->items()) {
    (void)v;
    if (k != "reason") {
      error = error_response(400, "bad_field", "an action accepts only {\"reason\": \"...\"}");
      return std::nullopt;
    }
  }
  if (!doc->contains("reason")) return std::string();
  const auto& r = (*doc)["reason"];
  if (!r.is_string() || !fleet::is_printable(r.get_ref<const std::string&>(), 512)) {
    error = error_response(400, "bad_field", "'reason' must be at most 512 printable characters");
    return std::nullopt;
  }
  return r.get<std::string>();
}

}  // namespace

http_response router::fleet_route(const http_request& req, const std::vector<std::string>& seg) {
  if (!cfg_.rollouts) return error_response(404, "not_found", "this server runs without the rollout engine");
  auto& engine = *cfg_.rollouts;
  const std::string& m = req.method;
  const bool get = m == "GET" || m == "HEAD";
  const admin_credential* credential = authenticate(req);
  auto actor = actor_of(req, credential ? credential->name : std::string());
  if (!actor) return error_response(400, "bad_header", "X-Mallorn-Actor must be at most 64 printable characters");

  if (seg[1] == "groups") {
    if (seg.size() == 2) {
      if (get) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& g : engine.groups()) out.push_back(g.to_json());
        return json_response(200, {{"groups", out}});
      }
      if (m != "POST") return method_not_allowed("GET, HEAD, POST");
    } else if (seg.size() != 3) {
      return error_response(404, "not_found", "no such admin route");
    }
    const std::string name = seg.size() == 3 ? seg[2] : std::string();
    if (seg.size() == 3 && !fleet::is_fleet_name(name))
      return error_response(400, "bad_name", "group names are 1-64 characters of A-Z a-z 0-9 . _ -");
    if (get) {
      auto g = engine.group(name);
      if (!g) return error_response(404, "unknown_group", "no group " + name);
      return json_response(200, g->to_json());
    }
    if (m == "DELETE" && !name.empty()) {
      if (!engine.group(name)) return error_response(404, "unknown_group", "no group " + name);
      auto d = engine.delete_group(name);
      if (!d) return error_response(d.err().code == core::errc::invalid_argument ? 409 : 500, "group_in_use", d.err().message);
      spdlog::info("fleet: group {} deleted by {}", name, *actor);
      return json_response(200, {{"deleted", name}});
    }
    if (m != "PUT" && m != "POST") return method_not_allowed(name.empty() ? "GET, HEAD, POST" : "GET, HEAD, PUT, DELETE");
    http_response error;
    auto doc = parse_json_object(req.body, error);
    if (!doc) return error;
    if (!name.empty()) {
      if (doc->contains("name") && (*doc)["name"] != name)
        return error_response(400, "bad_field", "'name' differs from the group in the path");
      (*doc)["name"] = name;
    }
    auto g = fleet::parse_group(*doc);
    if (!g) return error_response(400, "bad_group", g.err().message);
    const bool existed = engine.group(g->name).has_value();
    if (auto put = engine.put_group(*g); !put) return error_response(500, "io_error", put.err().what());
    spdlog::info("fleet: group {} {} by {}", g->name, existed ? "changed" : "created", *actor);
    return json_response(existed ? 200 : 201, g->to_json());
  }

  // /admin/rollouts
  if (seg.size() == 2) {
    if (get) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : engine.list()) out.push_back(rollout_json(r));
      return json_response(200, {{"rollouts", out}});
    }
    if (m != "POST") return method_not_allowed("GET, HEAD, POST");
    http_response error;
    auto doc = parse_json_object(req.body, error);
    if (!doc) return error;
    auto spec = fleet::parse_rollout(*doc);
    if (!spec) return error_response(400, "bad_rollout", spec.err().message);
    auto cat = store_.snapshot();
    const model_entry* entry = cat->model(spec->model);
    if (!entry) return error_response(400, "unknown_model", "the store has no model '" + spec->model + "'");
    const model_version* v = entry->find(spec->version);
    if (!v) return error_response(400, "unknown_version", "the store has no " + spec->model + " " + spec->version);
    if (!spec->group.empty() && !engine.group(spec->group))
      return error_response(400, "unknown_group", "no group '" + spec->group + "'; create it with PUT /admin/groups/<name>");
    auto created = engine.create(*spec, static_cast<std::int64_t>(v->number), *actor);
    if (!created)
      return error_response(created.err().code == core::errc::invalid_argument ? 400 : 500, "bad_rollout",
                            created.err().message);
    auto r = json_response(201, rollout_json(*created));
    r.set("Location", "/admin/rollouts/" + std::to_string(created->id));
    return r;
  }
  auto id = parse_id(seg[2]);
  if (!id || seg.size() > 4) return error_response(404, "unknown_rollout", "no such rollout");
  if (!engine.find(*id)) return error_response(404, "unknown_rollout", "no rollout " + std::to_string(*id));
  if (seg.size() == 3) {
    if (!get) return method_not_allowed("GET, HEAD");
    auto r = engine.find(*id);
    auto out = rollout_json(*r);
    auto history = engine.history(*id);
    if (!history) return error_response(500, "io_error", history.err().what());
    nlohmann::json h = nlohmann::json::array();
    for (const auto& t : *history)
      h.push_back({{"at", t.at}, {"actor", t.actor}, {"event", t.event}, {"from", t.from_state}, {"to", t.to_state},
                   {"stage", t.stage}, {"reason", t.reason}});
    out["history"] = h;
    return json_response(200, out);
  }
  static const std::map<std::string, fleet::rollout_event> actions = {{"pause", fleet::rollout_event::pause},
                                                                      {"resume", fleet::rollout_event::resume},
                                                                      {"advance", fleet::rollout_event::advance},
                                                                      {"abort", fleet::rollout_event::abort}};
  auto action = actions.find(seg[3]);
  if (action == actions.end()) return error_response(404, "unknown_action", "actions are pause, resume, advance, abort");
  if (m != "POST") return method_not_allowed("POST");
  http_response error;
  auto reason = reason_of(req, error);
  if (!reason) return error;
  auto done = engine.act(*id, action->second, *actor, *reason);
  if (!done) return error_response(409, "invalid_transition", done.err().message);
  return json_response(200, rollout_json(*done));
}

}  // namespace mallorn::server
