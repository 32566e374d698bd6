// The MQTT bridge under many invented device ids: download sessions are bounded in number
// (--mqtt-max-sessions), devices past the bound are told to wait, and every session of one patch
// shares one file descriptor (a device id is free to invent, a descriptor is not).
#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/mqtt_client.hpp"
#include "mallorn/proto/topics.hpp"
#include "proto/proto_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;

namespace {

std::size_t open_patch_descriptors(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(e.path(), link_ec).string();
    if (!link_ec && target.ends_with(".mlrn")) ++n;
  }
  return n;
}

}  // namespace

TEST(ProtoBridgeBounds, SessionsPerInventedDeviceIdsAreBoundedAndShareOneDescriptor) {
  proto_rig rig({"--mqtt-max-sessions", "5"});
  const auto& p = rig.pair("tfm-hello-world-int8");
  std::mutex mutex;
  std::map<std::string, proto::offer_msg> offers;  // latest offer per device
  proto::mqtt_options o;
  o.broker = rig.broker->url();
  o.client_id = "flooder";
  o.subscriptions = {{proto::all_devices_filter("mallorn/v1", proto::topic_kind::offer), 1}};
  o.on_message = [&](const std::string& t, std::span<const std::uint8_t> payload) {
    auto parts = proto::parse_device_topic("mallorn/v1", t);
    auto offer = proto::parse_offer(payload);
    if (!parts || !offer) return;
    std::lock_guard lock(mutex);
    offers[parts->device_id] = *offer;
  };
  proto::mqtt_client flooder(std::move(o));
  flooder.start();
  ASSERT_TRUE(flooder.wait_connected(std::chrono::seconds(10)));
  const std::string announce = nlohmann::json{{"sha256", sha_of(p.v1)}, {"max_block", 512}}.dump();
  auto ready_count = [&] {
    std::lock_guard lock(mutex);
    return std::count_if(offers.begin(), offers.end(),
                         [](const auto& kv) { return kv.second.status == proto::offer_status::ready; });
  };
  // The first device waits for the build, then gets its session.
  ASSERT_TRUE(flooder.publish(proto::device_topic("mallorn/v1", "flood-0", proto::topic_kind::announce), announce, 1, false).ok());
  for (int i = 0; i < 400 && ready_count() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(ready_count(), 1) << rig.server->log();
  // Then 29 more invented ids.
  for (int d = 1; d < 30; ++d)
    ASSERT_TRUE(flooder.publish(proto::device_topic("mallorn/v1", "flood-" + std::to_string(d), proto::topic_kind::announce),
                                announce, 1, false).ok());
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(mutex);
      if (offers.size() >= 30) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::size_t waiting = 0;
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(offers.size(), 30u) << rig.server->log();
    for (const auto& [id, offer] : offers)
      if (offer.status == proto::offer_status::wait) {
        ++waiting;
        EXPECT_EQ(offer.retry_after, 30u) << id;
      }
  }
  EXPECT_EQ(ready_count(), 5);
  EXPECT_EQ(waiting, 25u);
  EXPECT_LE(open_patch_descriptors(rig.server->pid()), 1u);
  auto metrics = run_shell("curl -s " + rig.server->url("/metrics")).out;
  EXPECT_NE(metrics.find("\nmallornd_mqtt_sessions 5\n"), std::string::npos) << metrics;
  flooder.stop(std::nullopt);
}
