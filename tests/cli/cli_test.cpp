// Drives the real `mallorn` binary on real model pairs: round trips, --json fields, signing,
// fingerprints against coreutils, help texts.
#include <cstdio>

#include "cli_fixture.hpp"
#include "support/coreutils_fingerprint.hpp"

namespace fs = std::filesystem;
using mallorn::test::CliTest;
using mallorn::test::first_word;
using mallorn::test::run_shell;


// Every CI pair: diff at the default level, patch, and the output is the new model byte for byte.
TEST_F(CliTest, RoundTripEveryRealPair) {
  auto pairs = mallorn::test::model_pairs();
  ASSERT_FALSE(pairs.empty()) << "no pairs under " << mallorn::test::models_dir();
  for (const auto& p : pairs) {
    SCOPED_TRACE(p.name);
    auto d = mallorn("diff " + p.old_path.string() + " " + p.new_path.string() + " -o p.mlrn");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto a = mallorn("patch " + p.old_path.string() + " p.mlrn -o out.bin");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(run_shell("cmp -s '" + at("out.bin").string() + "' '" + p.new_path.string() + "'").exit_code, 0);
    fs::remove(at("out.bin"));
  }
}

TEST_F(CliTest, DiffPatchInfoVerifyJson) {
  auto d = mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn --neural --level 9 --target-version 7 --json");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto j = d.json();
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["format"], "tflite");
  EXPECT_EQ(j["patch_size"].get<std::uint64_t>(), fs::file_size(at("p.mlrn")));
  EXPECT_EQ(j["target_size"].get<std::uint64_t>(), fs::file_size(new_model()));
  EXPECT_EQ(j["source_size"].get<std::uint64_t>(), fs::file_size(old_model()));
  EXPECT_NEAR(j["ratio"].get<double>(), double(fs::file_size(at("p.mlrn"))) / fs::file_size(new_model()), 1e-9);
  for (const char* k : {"tensors_modified", "tensors_unchanged", "tensors_added", "tensors_removed"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_GT(j["tensors_unchanged"].get<int>() + j["tensors_modified"].get<int>(), 0);

  auto info = mallorn("info p.mlrn --json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto ij = info.json();
  EXPECT_EQ(ij["format"], "TFLite");
  EXPECT_EQ(ij["version"], 2);  // the compact header
  EXPECT_EQ(ij["profile"], "standard");
  EXPECT_EQ(ij["compression"], "zstd");
  EXPECT_EQ(ij["level"], 9);
  EXPECT_TRUE(ij["neural"].get<bool>());
  EXPECT_FALSE(ij["signed"].get<bool>());
  EXPECT_EQ(ij["target_version"], 7);
  EXPECT_EQ(ij["created_at"].get<std::uint64_t>(), 0u);  // the compact header stores no timestamp by default
  EXPECT_EQ(ij["source_size"].get<std::uint64_t>(), fs::file_size(old_model()));
  EXPECT_EQ(ij["target_size"].get<std::uint64_t>(), fs::file_size(new_model()));
  EXPECT_EQ(ij["source_hash"], first_word("sha256sum " + old_model()));
  EXPECT_EQ(ij["target_hash"], first_word("sha256sum " + new_model()));
  EXPECT_EQ(ij["patch_size"].get<std::uint64_t>(), fs::file_size(at("p.mlrn")));
  EXPECT_EQ(ij["tensors_modified"], j["tensors_modified"]);
  ASSERT_TRUE(ij["tensors"].is_array());
  for (const auto& t : ij["tensors"]) {
    EXPECT_TRUE(t.contains("name"));
    EXPECT_TRUE(t["encoding"].is_string());
    EXPECT_TRUE(t["target_bytes"].is_number_unsigned());
    EXPECT_TRUE(t["patch_bytes"].is_number_unsigned());
  }
  auto text = mallorn("info p.mlrn");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find(first_word("sha256sum " + new_model())), std::string::npos);

  auto v = mallorn("verify " + old_model() + " p.mlrn --json");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  auto vj = v.json();
  EXPECT_TRUE(vj["ok"].get<bool>());
  EXPECT_TRUE(vj["source_valid"].get<bool>());
  EXPECT_TRUE(vj["patch_valid"].get<bool>());
  EXPECT_TRUE(vj["signature_valid"].is_null()) << "no --pubkey: nothing was checked";
  EXPECT_EQ(vj["expected_target"], ij["target_hash"]);
  EXPECT_EQ(vj["actual_target"], ij["target_hash"]);
  EXPECT_EQ(mallorn::test::CliTest::stray_files({"p.mlrn"}).size(), 0u) << "verify writes nothing";

  auto p = mallorn("patch " + old_model() + " p.mlrn -o out.tflite --min-version 7 --json");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto pj = p.json();
  EXPECT_TRUE(pj["ok"].get<bool>());
  EXPECT_EQ(pj["expected_target"], pj["actual_target"]);
  EXPECT_EQ(pj["output"], "out.tflite");
  EXPECT_EQ(run_shell("cmp '" + at("out.tflite").string() + "' " + new_model()).exit_code, 0);
}

TEST_F(CliTest, KeygenSignVerify) {
  auto k = mallorn("keygen -o rel --json");
  ASSERT_EQ(k.exit_code, 0) << k.err;
  EXPECT_EQ(k.json()["public_key"], "rel.pub");
  EXPECT_EQ(fs::file_size(at("rel.key")), 64u);
  EXPECT_EQ(fs::file_size(at("rel.pub")), 32u);
  EXPECT_EQ(fs::status(at("rel.key")).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  // The public key file is the second half of the private key file (seed || public key).
  EXPECT_EQ(sh("tail -c 32 rel.key | od -An -tx1"), sh("od -An -tx1 rel.pub"));

  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn").exit_code, 0);
  auto s = mallorn("sign p.mlrn --key rel.key -o s.mlrn --json");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.json()["patch_size"].get<std::uint64_t>(), fs::file_size(at("s.mlrn")));
  EXPECT_TRUE(mallorn("info s.mlrn --json").json()["signed"].get<bool>());

  auto ok = mallorn("verify " + old_model() + " s.mlrn --pubkey rel.pub --json");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(ok.json()["signature_valid"].get<bool>());
  EXPECT_TRUE(ok.json()["valid"].get<bool>());
  auto applied = mallorn("patch " + old_model() + " s.mlrn -o out.tflite --pubkey rel.pub");
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(run_shell("cmp '" + at("out.tflite").string() + "' " + new_model()).exit_code, 0);

  // Signing at diff time gives the same kind of patch.
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o ds.mlrn --sign rel.key").exit_code, 0);
  EXPECT_EQ(mallorn("verify " + old_model() + " ds.mlrn --pubkey rel.pub").exit_code, 0);
}

TEST_F(CliTest, FingerprintMatchesCoreutils) {
  for (const auto& model : {old_model(), (mallorn::test::models_dir() / "pairs" / "tfm-hello-world-int8" / "old.tflite").string()}) {
    SCOPED_TRACE(model);
    auto r = mallorn("fingerprint " + model + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = r.json();
    auto expected = mallorn::test::fingerprint_with_coreutils(model);
    EXPECT_EQ(j["header_hash"], expected.header_hash);
    EXPECT_EQ(j["tail_hash"], expected.tail_hash);
    EXPECT_EQ(j["combined_hash"], expected.combined_hash);
    EXPECT_EQ(j["short_id"], expected.combined_hash.substr(0, 16));
    EXPECT_EQ(j["file_size"].get<std::uint64_t>(), fs::file_size(model));
    EXPECT_EQ(j["format"], "tflite");
  }
}

TEST_F(CliTest, HelpForEveryCommand) {
  for (const char* c : {"diff", "patch", "verify", "info", "fingerprint", "keygen", "sign"}) {
    SCOPED_TRACE(c);
    auto r = mallorn(std::string(c) + " --help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find(std::string("usage: mallorn ") + c), std::string::npos);
    auto h = mallorn(std::string("help ") + c);
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_EQ(h.out, r.out);
  }
  auto top = mallorn("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* c : {"diff", "patch", "verify", "info", "fingerprint", "keygen", "sign"})
    EXPECT_NE(top.out.find(c), std::string::npos) << c;
  auto v = mallorn("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("mallorn ", 0), 0u);
}

// The device case: the output replaces the old model itself, and only once it verified.
TEST_F(CliTest, PatchInPlace) {
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn").exit_code, 0);
  sh("cp " + old_model() + " model.tflite");
  auto r = mallorn("patch model.tflite p.mlrn -o model.tflite");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(run_shell("cmp '" + at("model.tflite").string() + "' " + new_model()).exit_code, 0);
  // Applying again fails (the source is now the new model) and leaves it untouched.
  EXPECT_EQ(mallorn("patch model.tflite p.mlrn -o model.tflite").exit_code, 1);
  EXPECT_EQ(run_shell("cmp '" + at("model.tflite").string() + "' " + new_model()).exit_code, 0);
  EXPECT_TRUE(stray_files({"p.mlrn", "model.tflite"}).empty());
}
