// The keyring over MQTT: mallornd --keyring --mqtt-broker keeps the binary keyring retained on
// <prefix>/keyring (real Mosquitto, real mallornd), so an MCU gateway that subscribes late still
// gets it, and a newer keyring file is republished.
#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>

#include "child_process.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/keyring.hpp"
#include "mallorn/proto/mqtt_client.hpp"
#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {
namespace {

core::keyring signed_ring(std::uint64_t v, const core::ed25519_keypair& root) {
  core::keyring k;
  k.version = v;
  k.issued = 1000;
  k.expires = 4000000000;
  k.root_keys = {root.public_key};
  EXPECT_TRUE(core::sign_keyring(k, root.private_key).ok());
  return k;
}

void write_json(const std::filesystem::path& p, const core::keyring& k) {
  std::ofstream(p.string() + ".tmp") << core::encode_keyring_json(k);
  std::filesystem::rename(p.string() + ".tmp", p);
}

// Subscribes to the keyring topic and collects what arrives.
struct keyring_listener {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<std::uint8_t>> got;
  std::unique_ptr<proto::mqtt_client> client;
  keyring_listener(const std::string& broker, const std::string& id) {
    proto::mqtt_options o;
    o.broker = broker;
    o.client_id = id;
    o.subscriptions = {{"mallorn/v1/keyring", 1}};
    o.on_message = [this](const std::string&, std::span<const std::uint8_t> p) {
      std::lock_guard l(mu);
      got.emplace_back(p.begin(), p.end());
      cv.notify_all();
    };
    client = std::make_unique<proto::mqtt_client>(std::move(o));
    client->start();
  }
  std::optional<core::keyring> wait_version(std::uint64_t v) {
    std::unique_lock l(mu);
    std::optional<core::keyring> found;
    cv.wait_for(l, std::chrono::seconds(20), [&] {
      for (const auto& g : got)
        if (auto k = core::decode_keyring_binary(g); k && k->version == v) found = *k;
      return found.has_value();
    });
    return found;
  }
};

TEST(MqttKeyring, RetainedOnConnectAndRepublishedWhenNewer) {
  temp_dir dir{"mqtt-keyring"};
  mosquitto_broker broker(dir.path());
  auto root = *core::ed25519_generate();
  write_json(dir / "ring.json", signed_ring(1, root));
  std::filesystem::create_directories(dir / "models");
  daemon_process server(dir.path(), {"--models", (dir / "models").string(), "--data", (dir / "data").string(), "--keyring",
                                     (dir / "ring.json").string(), "--mqtt-broker", broker.url()});
  ASSERT_TRUE(server.listening()) << server.log();
  // A late subscriber gets the retained copy.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  keyring_listener late(broker.url(), "late-gateway");
  auto k1 = late.wait_version(1);
  ASSERT_TRUE(k1.has_value()) << server.log();
  EXPECT_EQ(core::count_valid_signatures(*k1, k1->root_keys), 1u);
  write_json(dir / "ring.json", signed_ring(2, root));
  EXPECT_TRUE(late.wait_version(2).has_value()) << server.log();
  keyring_listener later(broker.url(), "later-gateway");
  EXPECT_TRUE(later.wait_version(2).has_value());
}

}  // namespace
}  // namespace mallorn::test
