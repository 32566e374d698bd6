// Power lost at every flash operation of an update (MCUboot's simulator style): whatever N, the
// device reports nothing, no new model appears, and the next boot on the same flash updates
// correctly, fetching only the blocks the download area does not already hold. In-process devices
// over the real broker and mallornd of the rig.
#include <gtest/gtest.h>

#include <algorithm>

#include "mallorn/proto/mcu_device.hpp"
#include "proto/proto_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;

namespace {

// One boot: the flash file as the last boot left it, a fresh download area and device logic.
// The MQTT link is shared by all boots only to keep the test fast (Paho takes about a second to
// set up and tear down its network threads); tests/proto/e2e_mqtt_test.cpp reboots as a process.
proto::device_result boot(proto_rig& rig, proto::device_link& link, const stored_pair& p, std::uint64_t cut_at,
                          std::uint64_t* ops = nullptr) {
  auto flash = proto::flash_sim::open(rig.dir / "flash.bin", 64 << 10, 4096);
  EXPECT_TRUE(flash.ok());
  flash->cut_power_at(cut_at);
  proto::flash_download sink(*flash, p.v1, rig.dir / "new.tflite");
  proto::device_options opts;
  opts.sha256 = sha_of(p.v1);
  opts.deadline = std::chrono::seconds(30);
  proto::mcu_device dev(opts, link, sink);
  auto r = dev.run();
  if (ops) *ops = flash->operations();
  return r;
}

}  // namespace

TEST(ProtoPowerCut, EveryFlashOperationIsASafePlaceToLosePower) {
  proto_rig rig;
  const auto& p = rig.pair("tfm-mnist-lstm");
  const auto want = sha_of(p.v2);
  auto link = proto::make_mqtt_link({rig.broker->url(), "cutter"});
  std::uint64_t total_ops = 0;
  auto clean = boot(rig, *link, p, 0, &total_ops);
  ASSERT_EQ(clean.outcome, "committed") << clean.error;
  ASSERT_GT(total_ops, 20u);  // sector erases + one write per block
  const std::uint64_t blocks = clean.blocks_received;
  std::uint64_t most_resumed = 0;
  for (std::uint64_t n = 1; n <= total_ops; ++n) {
    std::filesystem::remove(rig.dir / "new.tflite");
    std::filesystem::remove(rig.dir / "flash.bin");  // each cut lands in a download from scratch
    auto cut = boot(rig, *link, p, n);
    ASSERT_EQ(cut.outcome, "power_lost") << "cut at " << n << ": " << cut.error;
    ASSERT_FALSE(std::filesystem::exists(rig.dir / "new.tflite")) << "cut at " << n;
    auto next = boot(rig, *link, p, 0);
    ASSERT_EQ(next.outcome, "committed") << "after a cut at " << n << ": " << next.error;
    ASSERT_EQ(sha_of(rig.dir / "new.tflite"), want) << "after a cut at " << n;
    // The reboot resumed: what it held plus what it fetched is the patch, nothing twice.
    EXPECT_EQ(next.blocks_resumed + next.blocks_received, blocks) << "after a cut at " << n;
    EXPECT_LT(next.blocks_resumed, blocks);
    most_resumed = std::max(most_resumed, next.blocks_resumed);
  }
  // A cut late in the download keeps all but the block (sector) being written.
  EXPECT_GE(most_resumed + 4, blocks) << "a reboot re-fetched blocks it already held";
  link->close();
}
