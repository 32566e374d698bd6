// The simulated flash: erase-before-write, power loss at operation N, persistence across reopen.
#include <gtest/gtest.h>

#include "mallorn/proto/flash_sim.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn::proto;

TEST(FlashSim, EnforcesEraseBeforeWrite) {
  mallorn::test::temp_dir dir("flash");
  auto f = flash_sim::open(dir / "f.bin", 4 * 256, 256);
  ASSERT_TRUE(f.ok());
  const std::vector<std::uint8_t> a(100, 0x12);
  ASSERT_TRUE(f->write(10, a).ok());
  auto again = f->write(50, a);  // overlaps programmed bytes
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.err().message.find("unerased"), std::string::npos);
  ASSERT_TRUE(f->erase_sector(0).ok());
  EXPECT_TRUE(f->write(50, a).ok());
  EXPECT_FALSE(f->write(1000, a).ok());  // past the end
  EXPECT_FALSE(f->erase_sector(4).ok());
}

TEST(FlashSim, PowerLossLeavesTheOperationHalfDoneAndStopsEverything) {
  mallorn::test::temp_dir dir("flash");
  {
    auto f = flash_sim::open(dir / "f.bin", 2 * 256, 256);
    ASSERT_TRUE(f.ok());
    f->cut_power_at(2);
    const std::vector<std::uint8_t> a(100, 0x00);
    ASSERT_TRUE(f->write(0, a).ok());
    auto cut = f->write(200, a);  // operation 2: only 50 bytes land
    ASSERT_FALSE(cut.ok());
    EXPECT_NE(cut.err().message.find("power lost"), std::string::npos);
    EXPECT_FALSE(f->powered());
    EXPECT_FALSE(f->erase_sector(1).ok());
  }
  // After the "reboot" the half-written bytes are there and must be erased before rewriting.
  auto f = flash_sim::open(dir / "f.bin", 2 * 256, 256);
  ASSERT_TRUE(f.ok());
  std::vector<std::uint8_t> back(100);
  ASSERT_TRUE(f->read(200, back).ok());
  EXPECT_EQ(back[0], 0x00);
  EXPECT_EQ(back[49], 0x00);
  EXPECT_EQ(back[50], 0xFF);
  EXPECT_FALSE(f->write(200, std::vector<std::uint8_t>(10, 1)).ok());
}
