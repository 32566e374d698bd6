// `mallorn keyring`: the commands, their JSON output, version bumps, and bad input.
#include "cli_fixture.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/keyring.hpp"

namespace mallorn::test {
namespace {

class KeyringCli : public CliTest {
 protected:
  void SetUp() override {
    for (const char* k : {"root", "root2", "k1", "k2"}) ASSERT_EQ(mallorn(std::string("keygen -o ") + k).exit_code, 0);
  }
};

TEST_F(KeyringCli, InitAddSignRevokeRotateExport) {
  ASSERT_EQ(mallorn("keyring init -o ring.json --root root.pub --expires 10").exit_code, 0);
  ASSERT_EQ(mallorn("keyring add-key ring.json --key k1.pub --models a,b").exit_code, 0);
  auto shown = mallorn("keyring show ring.json --json");
  ASSERT_EQ(shown.exit_code, 0);
  EXPECT_EQ(shown.json()["version"], 1);
  EXPECT_FALSE(shown.json()["signed_by_own_roots"].get<bool>());
  ASSERT_EQ(mallorn("keyring sign ring.json --key root.key").exit_code, 0);
  shown = mallorn("keyring show ring.json --json");
  EXPECT_TRUE(shown.json()["signed_by_own_roots"].get<bool>());
  EXPECT_EQ(shown.json()["keys"][0]["models"], nlohmann::json({"a", "b"}));
  EXPECT_LE(shown.json()["expires"].get<std::uint64_t>() - shown.json()["issued"].get<std::uint64_t>(), 10u * 86400);

  // Editing a signed keyring starts v2, unsigned; a second edit of the draft stays v2.
  ASSERT_EQ(mallorn("keyring revoke ring.json --key k1.pub").exit_code, 0);
  ASSERT_EQ(mallorn("keyring add-key ring.json --key k2.pub").exit_code, 0);
  shown = mallorn("keyring show ring.json --json");
  EXPECT_EQ(shown.json()["version"], 2);
  EXPECT_EQ(shown.json()["signatures"].size(), 0u);
  EXPECT_EQ(shown.json()["revoked"].size(), 1u);
  EXPECT_EQ(shown.json()["keys"].size(), 1u);
  EXPECT_NE(mallorn("keyring add-key ring.json --key k1.pub").exit_code, 0) << "a revoked key cannot come back";
  ASSERT_EQ(mallorn("keyring sign ring.json --key root.key").exit_code, 0);

  ASSERT_EQ(mallorn("keyring rotate-root ring.json --root root2.pub -o ring3.json").exit_code, 0);
  ASSERT_EQ(mallorn("keyring sign ring3.json --key root.key").exit_code, 0);
  ASSERT_EQ(mallorn("keyring sign ring3.json --key root2.key").exit_code, 0);
  auto r3 = core::decode_keyring(*core::read_file(at("ring3.json")));
  auto r2 = core::decode_keyring(*core::read_file(at("ring.json")));
  ASSERT_TRUE(r3.ok() && r2.ok());
  EXPECT_EQ(r3->version, 3u);
  EXPECT_TRUE(core::verify_keyring_update(*r2, *r3, r3->issued + 1).ok());

  auto ex = mallorn("keyring export ring3.json --binary -o ring3.bin --json");
  ASSERT_EQ(ex.exit_code, 0);
  auto bin = core::read_file(at("ring3.bin"));
  ASSERT_TRUE(bin.ok());
  EXPECT_EQ(ex.json()["size"], bin->size());
  EXPECT_EQ(*core::encode_keyring_binary(*core::decode_keyring_binary(*bin)), *core::encode_keyring_binary(*r3));
  EXPECT_EQ(mallorn("keyring show ring3.bin").exit_code, 0) << "show reads the binary form too";
}

TEST_F(KeyringCli, BadInputGetsClearErrorsAndWritesNothing) {
  EXPECT_EQ(mallorn("keyring").exit_code, 2);
  EXPECT_EQ(mallorn("keyring frobnicate").exit_code, 2);
  EXPECT_EQ(mallorn("keyring init -o ring.json").exit_code, 2);
  EXPECT_EQ(mallorn("keyring init -o ring.json --root root.pub --expires 0").exit_code, 2);
  EXPECT_EQ(mallorn("keyring init -o ring.json --root root.pub --threshold 2").exit_code, 2);
  EXPECT_EQ(mallorn("keyring init -o ring.json --root root.key").exit_code, 1) << "a private key is not a public key";
  EXPECT_FALSE(std::filesystem::exists(at("ring.json")));
  ASSERT_EQ(mallorn("keyring init -o ring.json --root root.pub").exit_code, 0);
  const auto before = core::read_file(at("ring.json"));
  EXPECT_EQ(mallorn("keyring add-key ring.json --key k1.pub --models " + std::string(65, 'm')).exit_code, 1);
  EXPECT_EQ(mallorn("keyring add-key ring.json --key k1.pub --not-before 20 --not-after 10").exit_code, 1);
  EXPECT_EQ(mallorn("keyring revoke ring.json --keyid 1234").exit_code, 2);
  EXPECT_EQ(mallorn("keyring sign ring.json --key root.pub").exit_code, 1);
  EXPECT_EQ(*core::read_file(at("ring.json")), *before) << "refused edits leave the file as it was";
  sh("printf '{\"signed\": {}, \"signatures\": []}' > bad.json; head -c 3000 /dev/urandom > noise.bin");
  for (const char* f : {"bad.json", "noise.bin", "missing.json"}) {
    auto r = mallorn(std::string("keyring show ") + f + " --json");
    EXPECT_EQ(r.exit_code, 1) << f;
    EXPECT_FALSE(r.json()["ok"].get<bool>()) << f;
  }
}

}  // namespace
}  // namespace mallorn::test
