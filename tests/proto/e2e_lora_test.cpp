// End to end over the simulated LoRa radio: devices -> UDP "air" with loss -> mallorn-lora-gateway
// (TS004 FEC) -> Mosquitto -> mallornd. Every device must rebuild its patch despite lost frames.
#include <gtest/gtest.h>


#include "proto/proto_rig.hpp"

using namespace mallorn::test;

namespace {

void lora_fleet(double loss, double max_ratio_on_largest) {
  proto_rig rig;
  rig.start_gateway(loss, 7);
  ASSERT_NE(rig.gateway_port, 0) << rig.gateway->err();
  std::vector<std::unique_ptr<child_process>> procs;
  for (std::size_t i = 0; i < rig.pairs.size(); ++i)
    procs.push_back(rig.device("lora-dev" + std::to_string(i), rig.pairs[i].v1,
                               {"--loss", std::to_string(loss), "--seed", std::to_string(100 + i)}));
  std::map<std::string, std::uint64_t> patch_size;
  for (std::size_t i = 0; i < procs.size(); ++i) {
    auto r = rig.result(*procs[i]);
    ASSERT_EQ(r["exit"], 0) << r.dump() << "\n" << rig.gateway->err();
    EXPECT_EQ(r["transport"], "lora");
    EXPECT_EQ(sha_of(rig.dir / ("lora-dev" + std::to_string(i) + ".out")), sha_of(rig.pairs[i].v2));
    patch_size[r["device_id"]] = r["patch_size"];
  }
  // The gateway rewrites its counters after each final report it forwards; the last device may
  // exit before the gateway has read its report from the air.
  auto all_committed = [&](const nlohmann::json& s) {
    if (!s.is_object() || s["devices"].size() != procs.size()) return false;
    for (const auto& d : s["devices"])
      if (d["state"] != "committed") return false;
    return true;
  };
  nlohmann::json stats;
  for (int i = 0; i < 200 && !all_committed(stats); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stats = rig.gateway_stats();
  }
  ASSERT_TRUE(stats.is_object());
  std::uint64_t lost = 0, largest = 0;
  double largest_ratio = 0;
  for (const auto& d : stats["devices"]) {
    lost += d["lost_down"].get<std::uint64_t>();
    const auto size = patch_size[d["device_id"]];
    if (size > largest) {
      largest = size;
      largest_ratio = double(d["bytes_down"].get<std::uint64_t>() + d["bytes_up"].get<std::uint64_t>()) / size;
    }
  }
  if (loss > 0) EXPECT_GT(lost, 0u) << "the radio was meant to lose frames";
  EXPECT_LE(largest_ratio, max_ratio_on_largest) << stats.dump();
  // Reports went through the gateway to the server.
  for (const auto& d : stats["devices"]) EXPECT_EQ(d["state"], "committed") << d.dump();
}

}  // namespace

TEST(ProtoLora, FleetUpdatesAt10PercentLoss) { lora_fleet(0.10, 1.30); }
TEST(ProtoLora, FleetUpdatesAt30PercentLoss) { lora_fleet(0.30, 1.80); }
