// Hostile input to every rollout/group route and to check-update's tags: a clear 4xx, nothing
// created, nothing changed.
#include <gtest/gtest.h>

#include "rollout_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

// `body` is refused with `status` and a message containing `says`; no rollout appears.
void refused(rollout_rig& t, const std::string& body, const std::string& says, unsigned status = 400) {
  auto r = t.admin("POST", "/admin/rollouts", body);
  EXPECT_EQ(r.status, status) << body.substr(0, 200) << " -> " << r.body;
  EXPECT_NE(r.body.find(says), std::string::npos) << body.substr(0, 200) << " -> " << r.body;
  EXPECT_EQ(t.admin_json("GET", "/admin/rollouts")["rollouts"].size(), 0u);
}

json good(const rollout_rig& t) {
  return {{"model", t.pair.model}, {"version", "2"}, {"stages", {1, 10, 50, 100}}, {"max_failure_rate", 0.05}, {"min_reports", 20}};
}

}  // namespace

TEST(RolloutHostile, CreateRefusesBadRollouts) {
  rollout_rig t;
  auto with = [&](const char* key, json v) {
    auto g = good(t);
    g[key] = std::move(v);
    return g.dump();
  };
  refused(t, with("model", "no-such-model"), "no model");
  refused(t, with("version", "99"), "no " + t.pair.model + " 99");
  refused(t, with("group", "nobody"), "no group");
  refused(t, with("stages", {10, 5}), "strictly increasing");
  refused(t, with("stages", {10, 10}), "strictly increasing");
  refused(t, with("stages", json::array()), "'stages'");
  refused(t, with("stages", {0}), "(0, 100]");
  refused(t, with("stages", {101}), "(0, 100]");
  refused(t, with("stages", {"10"}), "(0, 100]");
  json huge = json::array();
  for (int i = 1; i <= 5000; ++i) huge.push_back(i / 50.0);
  refused(t, with("stages", huge), "1-20 percentages");
  refused(t, with("max_failure_rate", 1.5), "between 0 and 1");
  refused(t, with("max_failure_rate", -0.1), "between 0 and 1");
  refused(t, with("max_failure_rate", "0.1"), "between 0 and 1");
  refused(t, with("min_reports", 0), "'min_reports'");
  refused(t, with("min_reports", 2.5), "integer");
  refused(t, with("stage_min_seconds", -1), "'stage_min_seconds'");
  refused(t, with("stage_min_seconds", 1e300), "'stage_min_seconds'");
  refused(t, with("surprise", 1), "unknown field 'surprise'");
  refused(t, with("evil\x01key", 1), "odd name");
  refused(t, with("model", "bad\nname"), "'model' must be");
  refused(t, with("model", std::string(10000, 'a')), "'model' must be");
  refused(t, with("model", 42), "'model' must be a string");
  refused(t, with("window", {{"start", "25:00"}, {"end", "03:00"}}), "HH:MM");
  refused(t, with("window", {{"start", "02:00"}, {"end", "03:00"}, {"tz", "Europe/Atlantis"}}), "unknown time zone 'Europe/Atlantis'");
  refused(t, with("window", {{"start", "02:00"}, {"end", "03:00"}, {"tz", "../../etc/passwd"}}), "zone name");
  refused(t, with("window", {{"start", "02:00"}, {"end", "03:00"}, {"tz", "/etc/localtime"}}), "zone name");
  refused(t, with("window", {{"start", "02:00"}, {"end", "03:00"}, {"tz", "Europe"}}), "unknown time zone");
  refused(t, with("window", {{"start", "02:00"}, {"end", "03:00"}, {"tz", std::string(100, 'A')}}), "zone name");
  refused(t, with("window", {{"start", "02:00"}, {"end", "03:00"}, {"tz", 1}}), "'window.tz' must be a string");
  refused(t, with("window", {{"start", "02:00"}, {"end", "03:00"}, {"days", {"someday"}}}), "mon..sun");
  refused(t, with("window", {{"start", "02:00"}, {"end", "02:00"}}), "must differ");
  refused(t, with("window", "always"), "'window' must be an object");
  refused(t, "[1, 2, 3]", "JSON object");
  refused(t, "{\"model\": ", "not valid JSON");
  refused(t, std::string(50000, '['), "not valid JSON");
  refused(t, "", "not valid JSON");
  // Only the owner of the token may create.
  auto anon = t.rig.call("POST", "/admin/rollouts", good(t).dump());
  EXPECT_EQ(anon.status, 401u);
  // The good one is accepted (the checks above refused for their stated reason only).
  t.create(good(t));
}

TEST(RolloutHostile, ActionsIdsMethodsAndActors) {
  rollout_rig t;
  auto id = std::to_string(t.create(good(t))["id"].get<std::int64_t>());
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/999/pause").status, 404u);
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/-1/pause").status, 404u);
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/1x/pause").status, 404u);
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/99999999999999999999999/pause").status, 404u);
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/" + id + "/explode").status, 404u);
  EXPECT_EQ(t.admin("GET", "/admin/rollouts/" + id + "/pause").status, 405u);
  EXPECT_EQ(t.admin("DELETE", "/admin/rollouts").status, 405u);
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/" + id + "/pause", R"({"reason": "x", "force": true})").status, 400u);
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/" + id + "/pause", R"({"reason": "line\nbreak"})").status, 400u);
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/" + id + "/pause", std::string("{\"reason\": \"") + std::string(600, 'x') + "\"}").status, 400u);
  auto odd_actor = t.rig.call("POST", "/admin/rollouts/" + id + "/pause", "",
                              {{"authorization", "Bearer " + rollout_token}, {"x-mallorn-actor", "eve\x1b[31m"}});
  EXPECT_EQ(odd_actor.status, 400u);
  EXPECT_EQ(t.show(std::stoll(id))["state"], "running") << "nothing changed";
  auto paused = t.admin_json("POST", "/admin/rollouts/" + id + "/pause");
  EXPECT_EQ(paused["state"], "paused");
  EXPECT_EQ(t.show(std::stoll(id))["history"].back()["actor"], "alice");
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/" + id + "/advance").status, 409u) << "resume first";
}

TEST(RolloutHostile, GroupsRefuseBadSelectors) {
  rollout_rig t;
  auto put = [&](const std::string& name, const std::string& body) { return t.admin("PUT", "/admin/groups/" + name, body); };
  EXPECT_EQ(put("g", R"({})").status, 400u);
  EXPECT_EQ(put("g", R"({"match": {}})").status, 400u);
  EXPECT_EQ(put("g", R"({"match": {"site": 1}})").status, 400u);
  EXPECT_EQ(put("g", R"({"match": {"site": {"in": []}}})").status, 400u);
  EXPECT_EQ(put("g", R"({"match": {"site": {"regex": ".*"}}})").status, 400u);
  EXPECT_EQ(put("g", R"({"match": {"bad key": "x"}})").status, 400u);
  EXPECT_EQ(put("g", R"({"match": {"site": "a\u0000b"}})").status, 400u);
  EXPECT_EQ(put("g", R"({"devices": [1, 2]})").status, 400u);
  EXPECT_EQ(put("g", R"({"name": "other", "devices": ["a"]})").status, 400u);
  EXPECT_EQ(put("g", R"({"devices": ["a"], "extra": 1})").status, 400u);
  EXPECT_EQ(put("bad%01name", R"({"devices": ["a"]})").status, 400u);
  json many = json::array();
  for (int i = 0; i < 10001; ++i) many.push_back("d" + std::to_string(i));
  EXPECT_EQ(put("g", json{{"devices", many}}.dump()).status, 400u);
  json selectors = json::object();
  for (int i = 0; i < 33; ++i) selectors["k" + std::to_string(i)] = "v";
  EXPECT_EQ(put("g", json{{"match", selectors}}.dump()).status, 400u);
  EXPECT_EQ(t.admin_json("GET", "/admin/groups")["groups"].size(), 0u);
  EXPECT_EQ(t.admin("GET", "/admin/groups/missing").status, 404u);
  EXPECT_EQ(t.admin("DELETE", "/admin/groups/missing").status, 404u);
  EXPECT_EQ(put("g", R"({"devices": ["a"]})").status, 201u);
  EXPECT_EQ(put("g", R"({"devices": ["a", "b"]})").status, 200u);
  EXPECT_EQ(t.admin_json("GET", "/admin/groups/g")["devices"].size(), 2u);
  EXPECT_EQ(t.admin("DELETE", "/admin/groups/g").status, 200u);
}

TEST(RolloutHostile, CheckUpdateBoundsTags) {
  rollout_rig t;
  const std::string sha = server_rig::sha_of(t.pair.v1);
  auto ask = [&](const json& tags) {
    return t.rig.call("POST", "/check-update", json{{"sha256", sha}, {"device_id", "d"}, {"tags", tags}}.dump());
  };
  json thousands = json::object();
  for (int i = 0; i < 5000; ++i) thousands["k" + std::to_string(i)] = "v";
  auto r = ask(thousands);
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("more than 64 keys"), std::string::npos) << r.body;
  EXPECT_EQ(ask({{"site", std::string(300, 'x')}}).status, 400u);
  EXPECT_EQ(ask({{"site", "a\x07"}}).status, 400u);
  EXPECT_EQ(ask({{"si te", "a"}}).status, 400u);
  EXPECT_EQ(ask({{"site", 3}}).status, 400u);
  EXPECT_EQ(ask({{"site", {{"nested", "x"}}}}).status, 400u);
  EXPECT_EQ(ask(json::array({"a"})).status, 400u);
  auto ok = ask({{"site", "berlin"}, {"tz", "+02:00"}});
  EXPECT_TRUE(ok.status == 200u || ok.status == 202u) << ok.body;
}

TEST(RolloutHostile, WithoutTheEngineTheRoutesAnswer404) {
  server_rig rig(rollout_rig::config());
  auto r = rig.call("GET", "/admin/rollouts", "", {{"authorization", "Bearer " + rollout_token}});
  EXPECT_EQ(r.status, 404u);
}
