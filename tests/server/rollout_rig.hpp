// The server's parts in-process (server_rig) plus the rollout engine on the same SQLite index,
// with a clock the test moves: stage timers and maintenance windows without sleeping.
#pragma once
#include <atomic>

#include "mallorn/server/fleet/rollout_engine.hpp"
#include "server_rig.hpp"

namespace mallorn::test {

inline const std::string rollout_token = "rollout-test-token-0123456789";

struct rollout_rig {
  server_rig rig;
  std::shared_ptr<std::atomic<std::int64_t>> now = std::make_shared<std::atomic<std::int64_t>>(1767225600);  // 2026-01-01 00:00 UTC, a Thursday
  std::unique_ptr<server::fleet::rollout_engine> engine;
  stored_pair pair;  // the small model: versions "1" and "2"

  rollout_rig() : rig(config()) {
    for (const auto& p : rig.pairs)
      if (p.model == "tfm-hello-world-int8") pair = p;
    reopen();
    rig.stats.add_section([this](std::string& out) {
      if (engine) engine->render_metrics(out);
    });
  }
  static server::router_config config() {
    server::router_config c;
    c.admin_token = rollout_token;
    return c;
  }
  // A fresh engine (and router) on the same database, as after a restart of mallornd.
  void reopen() {
    rig.routes.reset();
    engine.reset();
    server::fleet::engine_options opts;
    opts.now = [clock = now] { return clock->load(); };
    engine = std::move(server::fleet::rollout_engine::open(*rig.db, opts).value());
    auto c = config();
    c.rollouts = engine.get();
    rig.routes = std::make_unique<server::router>(c, *rig.store, *rig.cache, *rig.db, rig.stats, *rig.limiter);
  }
  server::http_response admin(const std::string& method, const std::string& target, const std::string& body = {}) {
    return rig.call(method, target, body, {{"authorization", "Bearer " + rollout_token}, {"x-mallorn-actor", "alice"}});
  }
  nlohmann::json admin_json(const std::string& method, const std::string& target, const std::string& body = {},
                            unsigned want = 200) {
    auto r = admin(method, target, body);
    EXPECT_EQ(r.status, want) << method << " " << target << ": " << r.body;
    return nlohmann::json::parse(r.body, nullptr, false);
  }
  // A device running `model_file` asks for an update.
  nlohmann::json check(const std::string& device, const nlohmann::json& tags = nlohmann::json::object(),
                       std::filesystem::path model_file = {}) {
    if (model_file.empty()) model_file = pair.v1;
    nlohmann::json body = {{"sha256", server_rig::sha_of(model_file)}, {"model", pair.model}, {"device_id", device}};
    if (!tags.empty()) body["tags"] = tags;
    auto r = rig.call("POST", "/check-update", body.dump());
    EXPECT_TRUE(r.status == 200 || r.status == 202) << r.body;
    return nlohmann::json::parse(r.body, nullptr, false);
  }
  static bool offered(const nlohmann::json& answer) {
    return answer.value("update_available", false) && answer.value("target_version", "") == "2";
  }
  void report(const std::string& device, const std::string& state, std::uint64_t bytes = 0) {
    nlohmann::json body = {{"device_id", device}, {"model", pair.model}, {"from_version", "1"},
                           {"to_version", "2"}, {"state", state}, {"bytes_downloaded", bytes}};
    auto r = rig.call("POST", "/report", body.dump());
    EXPECT_EQ(r.status, 200u) << r.body;
  }
  nlohmann::json create(nlohmann::json spec) {
    if (!spec.contains("model")) spec["model"] = pair.model;
    if (!spec.contains("version")) spec["version"] = "2";
    return admin_json("POST", "/admin/rollouts", spec.dump(), 201);
  }
  nlohmann::json show(std::int64_t id) { return admin_json("GET", "/admin/rollouts/" + std::to_string(id)); }
};

}  // namespace mallorn::test
