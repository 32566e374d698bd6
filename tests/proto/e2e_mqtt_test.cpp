// End to end over MQTT: real Mosquitto, real mallornd with its bridge, simulated devices as
// processes updating real tflite-micro models; power loss, unknown models, a broker restart and
// SIGTERM with the bridge running.
#include <gtest/gtest.h>

#include "proto/proto_rig.hpp"

using namespace mallorn::test;

TEST(ProtoMqtt, FleetUpdatesRealMcuModels) {
  proto_rig rig;
  ASSERT_TRUE(rig.server->listening());
  std::vector<std::pair<std::string, const stored_pair*>> fleet;
  std::vector<std::unique_ptr<child_process>> procs;
  for (const auto& p : rig.pairs)
    for (int i = 0; i < 2; ++i) {
      fleet.emplace_back(p.model.substr(4, 8) + "-" + std::to_string(i), &p);
      procs.push_back(rig.device(fleet.back().first, p.v1));
    }
  auto current = rig.device("current", rig.pairs[0].v2);  // already runs the latest version
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    auto r = rig.result(*procs[i]);
    const auto& [name, pair] = fleet[i];
    ASSERT_EQ(r["exit"], 0) << name << ": " << r.dump();
    EXPECT_EQ(r["outcome"], "committed") << name;
    EXPECT_EQ(r["transport"], "mqtt");
    EXPECT_EQ(sha_of(rig.dir / (name + ".out")), sha_of(pair->v2)) << name;
    EXPECT_EQ(r["new_sha256"], sha_of(pair->v2));
    EXPECT_EQ(r["duplicate_blocks"], 0);
    // The mcu profile, applied by mallorn_lite from flash slot to flash slot.
    EXPECT_TRUE(std::filesystem::exists(rig.dir / (name + ".out.slot-b"))) << name;
  }
  auto c = rig.result(*current);
  EXPECT_EQ(c["outcome"], "up_to_date") << c.dump();
  EXPECT_FALSE(std::filesystem::exists(rig.dir / "current.out"));
  // The bridge stored each device's result where HTTP reports go.
  for (const auto& [name, pair] : fleet) {
    auto rep = rig.report(name);
    ASSERT_TRUE(rep.is_object()) << name;
    EXPECT_EQ(rep.value("state", ""), "committed") << rep.dump();
    EXPECT_EQ(rep.value("to_version", ""), "2") << rep.dump();
    EXPECT_EQ(rep.value("model", ""), pair->model);
  }
}

TEST(ProtoMqtt, PowerLossMidDownloadLeavesNothingAndTheNextBootUpdates) {
  proto_rig rig;
  const auto& p = rig.pair("tfm-mnist-lstm");
  // The sector erases and the download trailer come first, then two operations per block (the
  // block, then its bitmap byte): operation 40 falls well into the download.
  auto cut = rig.device("cut", p.v1, {"--power-cut-at", "40"});
  auto r = rig.result(*cut);
  EXPECT_EQ(r["exit"], 3) << r.dump();
  EXPECT_EQ(r["outcome"], "power_lost");
  EXPECT_FALSE(std::filesystem::exists(rig.dir / "cut.out"));
  auto again = rig.device("cut", p.v1);  // same flash file, power back
  auto r2 = rig.result(*again);
  ASSERT_EQ(r2["exit"], 0) << r2.dump();
  EXPECT_EQ(sha_of(rig.dir / "cut.out"), sha_of(p.v2));
  // The reboot kept the blocks already in flash and fetched only the rest.
  EXPECT_GT(r2["blocks_resumed"].get<int>(), 5) << r2.dump();
  EXPECT_EQ(r2["blocks_resumed"].get<int>() + r2["blocks_received"].get<int>(),
            (r2["patch_size"].get<int>() + 1023) / 1024)
      << r2.dump();
}

TEST(ProtoMqtt, UnknownModelAndBadCommandLines) {
  proto_rig rig;
  std::ofstream(rig.dir / "stranger.tflite") << "not a model the server knows";
  auto r = rig.result(*rig.device("stranger", rig.dir / "stranger.tflite"));
  EXPECT_EQ(r["exit"], 1);
  EXPECT_EQ(r["outcome"], "unavailable") << r.dump();
  EXPECT_FALSE(std::filesystem::exists(rig.dir / "stranger.out"));
  // A patch that does not fit the download area is refused before anything is written.
  auto small = rig.result(*rig.device("small", rig.pair("tfm-mnist-lstm").v1, {"--flash-size", "8K"}));
  EXPECT_EQ(small["exit"], 1);
  EXPECT_EQ(small["outcome"], "failed") << small.dump();
  EXPECT_EQ(rig.report("small").value("error", ""), "patch_too_large");
  auto bad = rig.result(*rig.device("bad id", rig.pair("tfm-mnist-lstm").v1));
  EXPECT_EQ(bad["exit"], 2);
  auto bogus = run_shell((bin_dir() / "mallorn-lora-gateway").string() + " --broker bogus 2>&1");
  EXPECT_EQ(bogus.exit_code, 2) << bogus.out;
  auto help = run_shell((bin_dir() / "mallorn-mcu-sim").string() + " --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--power-cut-at"), std::string::npos);
}

TEST(ProtoMqtt, BridgeReconnectsAfterTheBrokerRestarts) {
  proto_rig rig;
  rig.broker->stop();
  ASSERT_TRUE(rig.wait_for_log("connection to", 1)) << rig.server->log();
  rig.broker->start();
  ASSERT_TRUE(rig.wait_for_log("mqtt: connected", 2, std::chrono::seconds(30))) << rig.server->log();
  const auto& p = rig.pair("tfm-micro-speech_realign");
  auto r = rig.result(*rig.device("after-restart", p.v1));
  ASSERT_EQ(r["exit"], 0) << r.dump();
  EXPECT_EQ(sha_of(rig.dir / "after-restart.out"), sha_of(p.v2));
}

TEST(ProtoMqtt, SigtermStillDrainsWithTheBridge) {
  proto_rig rig;
  auto r = rig.result(*rig.device("d", rig.pair("tfm-hello-world-int8").v1));
  ASSERT_EQ(r["exit"], 0) << r.dump();
  rig.server->signal(SIGTERM);
  const int status = rig.server->wait_exit(std::chrono::seconds(20));
  ASSERT_TRUE(WIFEXITED(status)) << rig.server->log();
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(rig.server->log().find("mqtt: bridge stopped"), std::string::npos);
}
