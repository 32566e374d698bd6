// LoRa frames: every frame type round-trips, control frames fit the smallest (51-byte) frame,
// malformed frames are refused; the radio link's loss and duty-cycle accounting.
#include <gtest/gtest.h>

#include <random>

#include "mallorn/proto/radio_frames.hpp"
#include "mallorn/proto/radio_link.hpp"

using namespace mallorn::proto;

TEST(RadioFrames, ControlFramesRoundTripAndFitTheSmallestFrame) {
  radio_announce a{0x01020304};
  a.sha256.fill(0xab);
  a.free_ram = 4096;
  a.max_block = 512;
  radio_offer o{7, 0, 99, 35000, 1024, 233};
  o.patch_sha256.fill(0x11);
  const std::vector<radio_frame> frames = {a, radio_request{7, 99, 3, 150, 40, 12, {0xff, 0x0f}}, radio_more{7, 99, 3, 4, 120},
                                           radio_status{7, 99, 2, 35000, 0}, o, radio_ack{7, 99}};
  for (const auto& f : frames) {
    const auto bytes = encode(f);
    EXPECT_LE(bytes.size(), min_frame_size);
    auto back = decode_frame(bytes);
    ASSERT_TRUE(back.ok()) << back.err().what();
    EXPECT_EQ(back->index(), f.index());
    EXPECT_EQ(encode(*back), bytes);
  }
}

TEST(RadioFrames, FragmentRoundTrip) {
  std::vector<std::uint8_t> payload(233, 0x5a);
  auto bytes = encode(radio_fragment{9, 2, 140, payload});
  ASSERT_EQ(bytes.size(), 242u);
  auto back = decode_frame(bytes);
  ASSERT_TRUE(back.ok());
  const auto& f = std::get<radio_fragment>(*back);
  EXPECT_EQ(f.gen, 2);
  EXPECT_EQ(f.index, 140);
  EXPECT_EQ(f.payload.size(), 233u);
}

TEST(RadioFrames, MalformedFramesAreRefused) {
  auto more = encode(radio_more{7, 99, 3, 4, 120});
  auto refuse = [](std::vector<std::uint8_t> b, const char* why) { EXPECT_FALSE(decode_frame(b).ok()) << why; };
  refuse({}, "empty");
  refuse({0x12, 1, 2}, "short");
  refuse(std::vector<std::uint8_t>(more.begin(), more.end() - 1), "truncated more");
  auto longer = more;
  longer.push_back(0);
  refuse(longer, "trailing byte");
  auto unknown = more;
  unknown[0] = 0x55;
  refuse(unknown, "unknown type");
  refuse(std::vector<std::uint8_t>(243, 0x21), "over 242 bytes");
  refuse(encode(radio_request{7, 99, 3, 0, 40, 12, {0xff, 0xff}}), "bits past count");
  refuse(encode(radio_request{7, 99, 3, 0, 40, 12, {0x00, 0x00}}), "no block");
  refuse(encode(radio_fragment{9, 2, 0, std::vector<std::uint8_t>(10)}), "index 0");
  refuse(encode(radio_status{7, 99, 9, 0, 0}), "unknown state");
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> b(rng() % 60);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    if (!b.empty()) b[0] = static_cast<std::uint8_t>(0x10 + rng() % 0x12);
    (void)decode_frame(b);
  }
}

TEST(RadioLink, AirtimeFollowsTheLoRaFormula) {
  // SF7/125 kHz, CR 4/5, 8 preamble symbols: 10 bytes take 41.2 ms, 242 bytes 379.1 ms.
  EXPECT_NEAR(lora_airtime_s(10, 7, 125000), 0.0412, 0.0005);
  EXPECT_NEAR(lora_airtime_s(242, 7, 125000), 0.3791, 0.001);
  EXPECT_GT(lora_airtime_s(51, 12, 125000), lora_airtime_s(51, 7, 125000) * 20);
}

TEST(RadioLink, LossRateAndDutyCycleClock) {
  radio_link link({0.3, 242, 0.01, 7, 125000, 42});
  int heard = 0;
  for (int i = 0; i < 10000; ++i) heard += link.transmit(100);
  EXPECT_NEAR(heard / 10000.0, 0.7, 0.02);
  const auto c = link.counters();
  EXPECT_EQ(c.frames, 10000u);
  EXPECT_EQ(c.lost, static_cast<std::uint64_t>(10000 - heard));
  EXPECT_NEAR(c.clock_s, c.air_time_s * 100, 1e-6);  // 1%: silent 99 times as long as on
  EXPECT_FALSE(validate({0.95, 242, 0.01}).ok());
  EXPECT_FALSE(validate({0.1, 50, 0.01}).ok());
  EXPECT_FALSE(validate({0.1, 243, 0.01}).ok());
  EXPECT_FALSE(validate({0.1, 242, 0}).ok());
  EXPECT_TRUE(validate({0.3, 51, 1}).ok());
}
