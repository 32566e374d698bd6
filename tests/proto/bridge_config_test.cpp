// mallornd's MQTT bridge options: off by default, set by flag, environment or JSON config, and
// bad values refused with the option named.
#include <gtest/gtest.h>

#include <fstream>

#include "mallorn/server/config.hpp"
#include "support/temp_dir.hpp"

using mallorn::server::load_config;

TEST(BridgeConfig, OffByDefaultAndSetFromEveryLayer) {
  auto d = load_config({}, nullptr);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->config.mqtt_broker.empty());
  EXPECT_EQ(d->config.mqtt_prefix, "mallorn/v1");
  EXPECT_EQ(d->config.mqtt_max_block, 4096u);

  auto f = load_config({"--mqtt-broker", "tcp://127.0.0.1:1883", "--mqtt-max-block=512", "--mqtt-prefix", "fleet/a"}, nullptr);
  ASSERT_TRUE(f.ok()) << f.err().what();
  EXPECT_EQ(f->config.mqtt_broker, "tcp://127.0.0.1:1883");
  EXPECT_EQ(f->config.mqtt_max_block, 512u);
  EXPECT_EQ(f->config.mqtt_prefix, "fleet/a");

  std::string var = "MALLORN_MQTT_BROKER=tcp://broker:1883";
  char* env[] = {var.data(), nullptr};
  auto e = load_config({}, env);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->config.mqtt_broker, "tcp://broker:1883");

  mallorn::test::temp_dir dir("bridgecfg");
  std::ofstream(dir / "c.json") << R"({"mqtt_broker": "tcp://json:1883", "mqtt_client_id": "edge-1"})";
  auto j = load_config({"--config", (dir / "c.json").string()}, nullptr);
  ASSERT_TRUE(j.ok()) << j.err().what();
  EXPECT_EQ(j->config.mqtt_broker, "tcp://json:1883");
  EXPECT_EQ(j->config.mqtt_client_id, "edge-1");
}

TEST(BridgeConfig, BadValuesAreRefused) {
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--mqtt-broker", "http://x:1883"},
                                                               {"--mqtt-broker", "tcp://nohost"},
                                                               {"--mqtt-max-block", "32"},
                                                               {"--mqtt-max-block", "70000"},
                                                               {"--mqtt-prefix", "a/#"},
                                                               {"--mqtt-prefix", "a/"}}) {
    auto r = load_config(bad, nullptr);
    ASSERT_FALSE(r.ok()) << bad[0] << " " << bad[1];
    EXPECT_NE(r.err().message.find(bad[0]), std::string::npos) << r.err().message;
  }
}
