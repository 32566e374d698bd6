// The JSON control messages and topic names: round trips, and malformed payloads refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/topics.hpp"

using namespace mallorn::proto;

namespace {
std::span<const std::uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
const std::string sha(64, 'a');
}  // namespace

TEST(ControlMessages, AnnounceRoundTrip) {
  announce_msg a{"mnist", sha, "", "1", "beta", 8192, 512};
  auto back = parse_announce(bytes(to_json(a)));
  ASSERT_TRUE(back.ok()) << back.err().what();
  EXPECT_EQ(back->model, "mnist");
  EXPECT_EQ(back->sha256, sha);
  EXPECT_EQ(back->channel, "beta");
  EXPECT_EQ(back->free_ram, 8192u);
  EXPECT_EQ(back->max_block, 512u);
}

TEST(ControlMessages, MalformedAnnouncesAreRefused) {
  for (const std::string& bad : std::vector<std::string>{"", "[]", "{", "not json", R"({"max_block":512})", R"({"sha256":"xyz","max_block":512})",
                                R"({"sha256":")" + sha + R"(","max_block":"512"})", R"({"sha256":")" + sha + R"(","max_block":32})",
                                R"({"sha256":")" + sha + R"(","max_block":512,"free_ram":-1})",
                                R"({"short_id":"0123","max_block":512})", R"({"sha256":")" + sha + R"(","max_block":512,"model":7})"})
    EXPECT_FALSE(parse_announce(bytes(bad)).ok()) << bad;
  EXPECT_FALSE(parse_announce(bytes(std::string(5000, ' ') + "{}")).ok());  // oversize
}

TEST(ControlMessages, OfferRoundTripAndConsistency) {
  offer_msg o;
  o.status = offer_status::ready;
  o.session = 77;
  o.model = "m";
  o.target_version = "2";
  o.target_sha256 = sha;
  o.patch_id = o.patch_sha256 = std::string(64, 'b');
  o.patch_size = 3000;
  o.block_size = 1024;
  o.blocks = 3;
  o.target_size = 5000;
  o.is_signed = true;
  auto back = parse_offer(bytes(to_json(o)));
  ASSERT_TRUE(back.ok()) << back.err().what();
  EXPECT_EQ(back->session, 77u);
  EXPECT_EQ(back->blocks, 3u);
  EXPECT_TRUE(back->is_signed);
  o.blocks = 4;  // does not match patch_size / block_size
  EXPECT_FALSE(parse_offer(bytes(to_json(o))).ok());
  offer_msg w;
  w.status = offer_status::wait;
  w.retry_after = 3;
  auto wb = parse_offer(bytes(to_json(w)));
  ASSERT_TRUE(wb.ok());
  EXPECT_EQ(wb->retry_after, 3u);
  EXPECT_FALSE(parse_offer(bytes(R"({"status":"maybe"})")).ok());
  EXPECT_FALSE(parse_offer(bytes(R"({"status":"ready","session":1})")).ok());
}

TEST(ControlMessages, StatusRoundTripAndRefusals) {
  status_msg s{9, device_state::committed, 100, 100, "1", "2", ""};
  auto back = parse_status(bytes(to_json(s)));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->final());
  EXPECT_EQ(back->to_version, "2");
  EXPECT_FALSE(parse_status(bytes(R"({"state":"exploded"})")).ok());
  EXPECT_FALSE(parse_status(bytes(R"({"state":"failed","received":-5})")).ok());
  EXPECT_FALSE(parse_status(bytes(R"({"state":"failed","error":42})")).ok());
}

TEST(Topics, NamesAndParsing) {
  EXPECT_EQ(device_topic("mallorn/v1", "dev-1", topic_kind::request), "mallorn/v1/dev/dev-1/req");
  EXPECT_EQ(all_devices_filter("p", topic_kind::announce), "p/dev/+/announce");
  auto parts = parse_device_topic("mallorn/v1", "mallorn/v1/dev/dev-1/blk");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->device_id, "dev-1");
  EXPECT_EQ(parts->kind, topic_kind::block);
  EXPECT_FALSE(parse_device_topic("mallorn/v1", "mallorn/v1/dev/dev-1/other"));
  EXPECT_FALSE(parse_device_topic("mallorn/v1", "mallorn/v1/dev/a/b/req"));
  EXPECT_FALSE(parse_device_topic("mallorn/v1", "other/dev/x/req"));
  EXPECT_FALSE(valid_device_id(""));
  EXPECT_FALSE(valid_device_id("a+b"));
  EXPECT_FALSE(valid_device_id(std::string(65, 'a')));
  EXPECT_TRUE(valid_device_id("cam-1.floor_2"));
}
