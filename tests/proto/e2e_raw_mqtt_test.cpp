// The bridge seen from a raw MQTT client: malformed payloads on every topic it listens to are
// dropped without harm (a real device still updates afterwards), a bad announce gets an
// 'unavailable' offer naming the problem, and range requests are answered with the right blocks.
#include <gtest/gtest.h>

#include <mutex>

#include "mallorn/core/io.hpp"
#include "mallorn/proto/block_messages.hpp"
#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/mqtt_client.hpp"
#include "mallorn/proto/topics.hpp"
#include "proto/proto_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;

namespace {

// A hand-driven device: publishes what the test says and collects what arrives.
struct raw_device {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> got;
  std::unique_ptr<proto::mqtt_client> client;
  std::string id;

  raw_device(const std::string& broker, std::string device_id) : id(std::move(device_id)) {
    proto::mqtt_options o;
    o.broker = broker;
    o.client_id = "raw-" + id;
    o.subscriptions = {{proto::device_topic("mallorn/v1", id, proto::topic_kind::offer), 1},
                       {proto::device_topic("mallorn/v1", id, proto::topic_kind::block), 0}};
    o.on_message = [this](const std::string& t, std::span<const std::uint8_t> p) {
      std::lock_guard lock(mutex);
      got.emplace_back(t, std::vector<std::uint8_t>(p.begin(), p.end()));
    };
    client = std::make_unique<proto::mqtt_client>(std::move(o));
    client->start();
    EXPECT_TRUE(client->wait_connected(std::chrono::seconds(10)));
  }
  void send(proto::topic_kind k, const std::string& payload) {
    ASSERT_TRUE(client->publish(proto::device_topic("mallorn/v1", id, k), payload, 1, false).ok());
  }
  // Waits for a message on `kind` matching `pred`.
  std::optional<std::vector<std::uint8_t>> wait(proto::topic_kind kind, const std::function<bool(std::span<const std::uint8_t>)>& pred,
                                                int tries = 400) {
    const auto topic = proto::device_topic("mallorn/v1", id, kind);
    for (int i = 0; i < tries; ++i) {
      {
        std::lock_guard lock(mutex);
        for (const auto& [t, p] : got)
          if (t == topic && pred(p)) return p;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return std::nullopt;
  }
};

std::string text(std::span<const std::uint8_t> p) { return {p.begin(), p.end()}; }

}  // namespace

TEST(ProtoRawMqtt, MalformedPayloadsAreDroppedAndTheBridgeKeepsServing) {
  proto_rig rig;
  raw_device dev(rig.broker->url(), "raw-1");
  dev.send(proto::topic_kind::announce, "{not json");
  auto offer = dev.wait(proto::topic_kind::offer, [](auto p) { return text(p).find("unavailable") != std::string::npos; });
  ASSERT_TRUE(offer) << rig.server->log();
  EXPECT_NE(text(*offer).find("not a JSON object"), std::string::npos) << text(*offer);
  for (const std::string& junk : {std::string("\x01\x02"), std::string(5000, 'x'), std::string("\x01\0\0\0\0\0\0\0\0\0\0", 11)})
    dev.send(proto::topic_kind::request, junk);
  dev.send(proto::topic_kind::status, R"({"state":"exploded"})");
  dev.send(proto::topic_kind::status, std::string(10000, '{'));
  // Still alive and serving a real device.
  const auto& p = rig.pair("tfm-micro-speech_realign");
  auto r = rig.result(*rig.device("after-junk", p.v1));
  ASSERT_EQ(r["exit"], 0) << r.dump();
  EXPECT_TRUE(rig.server->running());
}

TEST(ProtoRawMqtt, RangeRequestsGetTheBlocksCoveringThem) {
  proto_rig rig;
  const auto& p = rig.pair("tfm-mnist-lstm");
  raw_device dev(rig.broker->url(), "raw-range");
  dev.send(proto::topic_kind::announce, nlohmann::json{{"sha256", sha_of(p.v1)}, {"max_block", 1000}}.dump());
  auto offer_bytes = dev.wait(proto::topic_kind::offer, [](auto b) { return text(b).find("\"ready\"") != std::string::npos; });
  ASSERT_TRUE(offer_bytes) << rig.server->log();
  auto offer = proto::parse_offer(*offer_bytes);
  ASSERT_TRUE(offer.ok()) << offer.err().what();
  EXPECT_EQ(offer->block_size, 1000u);
  // Bytes 2500..4499 live in blocks 2, 3 and 4.
  const auto req = proto::encode(proto::range_request{offer->session, 2500, 2000});
  dev.send(proto::topic_kind::request, std::string(req.begin(), req.end()));
  auto patch = core::read_file(rig.dir / "data" / "patches" / (offer->patch_id + ".mlrn"));
  ASSERT_TRUE(patch.ok());
  for (std::uint32_t index : {2u, 3u, 4u}) {
    auto blk = dev.wait(proto::topic_kind::block, [&](auto b) {
      auto m = proto::decode_block(b);
      return m.ok() && m->index == index;
    });
    ASSERT_TRUE(blk) << "block " << index;
    auto m = proto::decode_block(*blk);
    EXPECT_EQ(m->session, offer->session);
    EXPECT_TRUE(std::equal(m->data.begin(), m->data.end(), patch->begin() + index * 1000));
  }
  // A request for another session is ignored.
  const auto stale = proto::encode(proto::range_request{offer->session + 1, 0, 10});
  dev.send(proto::topic_kind::request, std::string(stale.begin(), stale.end()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(dev.wait(proto::topic_kind::block, [](auto b) {
    auto m = proto::decode_block(b);
    return m.ok() && m->index == 0;
  }, 20).has_value());
}
