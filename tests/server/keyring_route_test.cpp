// GET /keyring through the router (no sockets): both forms, ETag/304, hostile queries and
// methods, and the reload rules of keyring_source (newer taken, older or broken files ignored).
#include <gtest/gtest.h>

#include <fstream>
#include <thread>
#include <vector>

#include "mallorn/core/keyring.hpp"
#include "mallorn/server/keyring_source.hpp"
#include "server_rig.hpp"

using mallorn::test::server_rig;
namespace core = mallorn::core;
namespace server = mallorn::server;

namespace {

core::keyring signed_ring(std::uint64_t version, const core::ed25519_keypair& root, bool sign = true) {
  core::keyring k;
  k.version = version;
  k.issued = 1000;
  k.expires = 4000000000;
  k.root_keys = {root.public_key};
  k.keys.push_back({});
  k.keys[0].public_key = core::ed25519_generate()->public_key;
  if (sign) EXPECT_TRUE(core::sign_keyring(k, root.private_key).ok());
  return k;
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p.string() + ".tmp") << text;
  std::filesystem::rename(p.string() + ".tmp", p);
}

}  // namespace

TEST(KeyringRoute, ServesBothFormsAndRefusesHostileRequests) {
  mallorn::test::temp_dir dir{"keyring-route"};
  auto root = *core::ed25519_generate();
  write(dir / "ring.json", core::encode_keyring_json(signed_ring(3, root)));
  auto src = server::keyring_source::open(dir / "ring.json");
  ASSERT_TRUE(src.ok()) << src.err().what();
  server::router_config cfg;
  cfg.keyring = *src;
  server_rig rig(cfg);

  auto json = rig.call("GET", "/keyring");
  ASSERT_EQ(json.status, 200u);
  auto k = core::decode_keyring_json(json.body);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->version, 3u);
  auto bin = rig.call("GET", "/keyring?format=binary");
  ASSERT_EQ(bin.status, 200u);
  EXPECT_EQ(*bin.header("Content-Type"), "application/octet-stream");
  auto kb = core::decode_keyring(std::vector<std::uint8_t>(bin.body.begin(), bin.body.end()));
  ASSERT_TRUE(kb.ok());
  EXPECT_EQ(*core::encode_keyring_binary(*kb), *core::encode_keyring_binary(*k));
  EXPECT_EQ(rig.call("GET", "/keyring", {}, {{"if-none-match", *json.header("ETag")}}).status, 304u);

  EXPECT_EQ(rig.call("GET", "/keyring?format=xml").status, 400u);
  EXPECT_EQ(rig.call("GET", "/keyring?format=%00%ff").status, 400u);
  EXPECT_EQ(rig.call("POST", "/keyring", "{}").status, 405u);
  EXPECT_EQ(rig.call("GET", "/keyring/extra").status, 404u);
  EXPECT_EQ(rig.call("HEAD", "/keyring").status, 200u);

  server_rig without;
  auto none = without.call("GET", "/keyring");
  EXPECT_EQ(none.status, 404u);
  EXPECT_NE(none.body.find("no_keyring"), std::string::npos);
}

TEST(KeyringRoute, ReloadsNewerFilesAndIgnoresOlderOrBrokenOnes) {
  mallorn::test::temp_dir dir{"keyring-reload"};
  auto root = *core::ed25519_generate();
  const auto file = dir / "ring.json";
  write(file, core::encode_keyring_json(signed_ring(1, root, false)));
  EXPECT_FALSE(server::keyring_source::open(file).ok()) << "an unsigned keyring is not served";
  write(file, "{\"signed\": 1");
  EXPECT_FALSE(server::keyring_source::open(file).ok());
  EXPECT_FALSE(server::keyring_source::open(dir / "missing.json").ok());

  write(file, core::encode_keyring_json(signed_ring(5, root)));
  auto src = server::keyring_source::open(file);
  ASSERT_TRUE(src.ok());
  std::vector<server::keyring_publication> published;  // what mallornd's audit log records
  (*src)->on_publication([&](const server::keyring_publication& p) { published.push_back(p); });
  auto wait_and_get = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // re-read at most once a second
    return (*src)->current()->version;
  };
  // The older file has the size and modification time of the served one (as when both are
  // written within one tick of the file system's clock): it is still seen as a change.
  const auto v5_mtime = std::filesystem::last_write_time(file);
  const auto v5_size = std::filesystem::file_size(file);
  write(file, core::encode_keyring_json(signed_ring(4, root)));
  std::filesystem::last_write_time(file, v5_mtime);
  ASSERT_EQ(std::filesystem::file_size(file), v5_size);
  EXPECT_EQ(wait_and_get(), 5u) << "never back to an older version";
  write(file, std::string(70000, '['));
  EXPECT_EQ(wait_and_get(), 5u) << "a broken file changes nothing";
  const auto served = (*src)->current()->binary;
  write(file, core::encode_keyring_json(signed_ring(5, root)));  // other content, same version
  EXPECT_EQ(wait_and_get(), 5u);
  EXPECT_EQ((*src)->current()->binary, served) << "another keyring under the same version is ignored";
  write(file, core::encode_keyring_json(signed_ring(6, root)));
  EXPECT_EQ(wait_and_get(), 6u);
  // Every change was reported: three refusals, then v6 served.
  ASSERT_EQ(published.size(), 4u);
  EXPECT_FALSE(published[0].accepted);
  EXPECT_EQ(published[0].version, 4u);
  EXPECT_NE(published[0].reason.find("older"), std::string::npos) << published[0].reason;
  EXPECT_FALSE(published[1].accepted);
  EXPECT_EQ(published[1].version, 0u);
  EXPECT_FALSE(published[2].accepted);
  EXPECT_EQ(published[2].served_before, 5u);
  EXPECT_TRUE(published[3].accepted);
  EXPECT_EQ(published[3].version, 6u);
  EXPECT_EQ(published[3].served_before, 5u);
}
