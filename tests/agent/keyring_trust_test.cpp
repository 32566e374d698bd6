// The agent's keyring store (agent/src/keyring_trust.cpp) without a server: hostile candidates
// change nothing on disk, config combinations are checked, and the patch check uses the keyring
// in force at the time of the call.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mallorn/agent/keyring_trust.hpp"
#include "mallorn/core/io.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {
namespace {

core::keyring ring(std::uint64_t v, const core::ed25519_keypair& root, const core::ed25519_keypair& release) {
  core::keyring k;
  k.version = v;
  k.issued = 100;
  k.expires = 10000;
  k.root_keys = {root.public_key};
  k.keys.push_back({});
  k.keys[0].public_key = release.public_key;
  EXPECT_TRUE(core::sign_keyring(k, root.private_key).ok());
  return k;
}

TEST(AgentKeyring, HostileCandidatesChangeNothing) {
  temp_dir dir{"agent-keyring-unit"};
  auto root = *core::ed25519_generate(), k1 = *core::ed25519_generate();
  agent::keyring_options o;
  o.root_key = root.public_key;
  o.file = dir / "keyring.bin";
  agent::keyring_trust trust(o);
  EXPECT_FALSE(trust.check_fresh(500).ok()) << "no keyring yet: nothing is trusted";
  auto v2 = *core::encode_keyring_binary(ring(2, root, k1));
  ASSERT_TRUE(trust.accept(v2, 500).ok());
  const auto stored = *core::read_file(o.file);
  std::vector<std::vector<std::uint8_t>> hostile = {{}, {'{'}, std::vector<std::uint8_t>(70000, '['),
                                                    *core::encode_keyring_binary(ring(1, root, k1))};
  auto truncated = v2;
  truncated.pop_back();
  hostile.push_back(truncated);
  auto flipped = v2;
  flipped[60] ^= 1;
  hostile.push_back(flipped);
  for (const auto& h : hostile) {
    EXPECT_FALSE(trust.accept(h, 500).ok()) << h.size();
    EXPECT_EQ(*core::read_file(o.file), stored);
  }
  EXPECT_TRUE(trust.check_fresh(9999).ok());
  EXPECT_FALSE(trust.check_fresh(10000).ok());
}

TEST(AgentKeyring, ConfigNeedsAFileAndARoot) {
  temp_dir dir{"agent-keyring-cfg"};
  auto root = *core::ed25519_generate();
  ASSERT_TRUE(core::write_file_atomic(dir / "root.pub", root.public_key).ok());
  using nlohmann::json;
  EXPECT_FALSE(agent::load_keyring_options(json{{"root_key", (dir / "root.pub").string()}}).ok());
  EXPECT_FALSE(agent::load_keyring_options(json{{"keyring_file", "/x"}}).ok());
  EXPECT_FALSE(agent::load_keyring_options(json{{"root_key", "/nonexistent.pub"}, {"keyring_file", "/x"}}).ok());
  EXPECT_FALSE(agent::load_keyring_options(json{{"root_key", (dir / "root.pub").string()}, {"keyring_file", "/x"}, {"keyring_grace", -5}}).ok());
  auto ok = agent::load_keyring_options(json{{"root_key", (dir / "root.pub").string()}, {"keyring_file", "/x"}, {"keyring_grace", 60}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->grace_seconds, 60u);
  auto off = agent::load_keyring_options(json::object());
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled()) << "no keyring settings: the single public_key keeps working";
}

}  // namespace
}  // namespace mallorn::test
