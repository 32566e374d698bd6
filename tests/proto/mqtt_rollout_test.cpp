// Rollouts over MQTT: the bridge makes the same decision as HTTP check-update. A real Mosquitto,
// the real mallornd with its bridge, simulated devices as processes: a device in the rollout's
// group updates, one outside it is told it is up to date, the bridge's reports count in the
// rollout, and after an abort a new device is no longer offered the version.
#include <gtest/gtest.h>

#include "proto/proto_rig.hpp"

using namespace mallorn::test;
using nlohmann::json;

namespace {

json admin(proto_rig& rig, const std::string& method, const std::string& path, const std::string& body = {}) {
  auto r = run_shell("curl -s -X " + method + " -H 'Authorization: Bearer " + rig.token + "' -H 'X-Mallorn-Actor: ops' " +
                     (body.empty() ? std::string() : "-d '" + body + "' ") + rig.server->url(path));
  return json::parse(r.out, nullptr, false);
}

}  // namespace

TEST(ProtoMqttRollout, BridgeHonoursRolloutsAndFeedsTheirCounts) {
  proto_rig rig;
  const auto& p = rig.pair("tfm-hello-world-int8");
  auto group = admin(rig, "PUT", "/admin/groups/mqtt-lab", R"({"devices": ["lab-1"]})");
  ASSERT_EQ(group["name"], "mqtt-lab") << group;
  auto created = admin(rig, "POST", "/admin/rollouts",
                       json{{"model", p.model}, {"version", "2"}, {"group", "mqtt-lab"}, {"stages", {100}}}.dump());
  ASSERT_TRUE(created.contains("id")) << created;
  const std::string id = std::to_string(created["id"].get<int>());

  auto in = rig.result(*rig.device("lab-1", p.v1));
  ASSERT_EQ(in["exit"], 0) << in.dump();
  EXPECT_EQ(in["outcome"], "committed");
  EXPECT_EQ(sha_of(rig.dir / "lab-1.out"), sha_of(p.v2));
  auto out = rig.result(*rig.device("field-1", p.v1));
  EXPECT_EQ(out["outcome"], "up_to_date") << "not in the rollout's group: " << out.dump();
  EXPECT_FALSE(std::filesystem::exists(rig.dir / "field-1.out"));

  // The bridge's report counts in the rollout (the engine hears MQTT reports too).
  json shown;
  for (int i = 0; i < 600; ++i) {  // up to 30 s: the bridge's worker stores it asynchronously
    shown = admin(rig, "GET", "/admin/rollouts/" + id);
    if (shown.contains("devices") && shown["devices"]["committed"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(shown["devices"]["committed"], 1) << shown.dump();

  // Aborted: no new device is offered the version, not even one in the group.
  auto put = admin(rig, "PUT", "/admin/groups/mqtt-lab", R"({"devices": ["lab-1", "lab-2"]})");
  EXPECT_EQ(put["name"], "mqtt-lab") << put;
  EXPECT_EQ(admin(rig, "POST", "/admin/rollouts/" + id + "/abort")["state"], "aborted");
  auto late = rig.result(*rig.device("lab-2", p.v1));
  EXPECT_EQ(late["outcome"], "up_to_date") << late.dump();
}
