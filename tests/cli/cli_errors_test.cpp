// The CLI's failure contract: exit 1 for failed operations, 2 for bad command lines; the error
// is named on stderr ("mallorn: <Code>: ...") and in --json; no output file ever appears.
#include "cli_fixture.hpp"

namespace fs = std::filesystem;
using mallorn::test::CliTest;

namespace {
// Asserts the --json failure object and the stderr line of a failed command.
void expect_failure(const mallorn::test::cli_result& r, const std::string& code) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto j = r.json();
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["error"]["code"], code);
  EXPECT_TRUE(j["error"]["code_num"].is_number_integer());
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  EXPECT_EQ(r.err.rfind("mallorn: " + code + ": ", 0), 0u) << r.err;
}
}  // namespace

TEST_F(CliTest, WrongPublicKeyRefusedAndWritesNothing) {
  ASSERT_EQ(mallorn("keygen -o rel").exit_code, 0);
  ASSERT_EQ(mallorn("keygen -o other").exit_code, 0);
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn --sign rel.key").exit_code, 0);
  auto r = mallorn("patch " + old_model() + " p.mlrn -o out.tflite --pubkey other.pub --json");
  expect_failure(r, "SignatureError");
  EXPECT_EQ(r.json()["error"]["code_num"], 4);
  EXPECT_FALSE(r.json()["signature_valid"].get<bool>());
  auto v = mallorn("verify " + old_model() + " p.mlrn --pubkey other.pub --json");
  expect_failure(v, "SignatureError");

  // A key is configured: an unsigned patch is refused too.
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o u.mlrn").exit_code, 0);
  expect_failure(mallorn("patch " + old_model() + " u.mlrn -o out.tflite --pubkey rel.pub --json"), "SignatureError");
  EXPECT_TRUE(stray_files({"rel.key", "rel.pub", "other.key", "other.pub", "p.mlrn", "u.mlrn"}).empty());
}

TEST_F(CliTest, WrongSizeKeyFilesAreSignatureErrors) {
  ASSERT_EQ(mallorn("keygen -o rel").exit_code, 0);
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn").exit_code, 0);
  auto pub_as_key = mallorn("sign p.mlrn --key rel.pub -o s.mlrn --json");
  expect_failure(pub_as_key, "SignatureError");
  EXPECT_NE(pub_as_key.err.find("64 bytes"), std::string::npos);
  expect_failure(mallorn("diff " + old_model() + " " + new_model() + " -o s.mlrn --sign rel.pub --json"), "SignatureError");
  expect_failure(mallorn("verify " + old_model() + " p.mlrn --pubkey rel.key --json"), "SignatureError");
  expect_failure(mallorn("sign p.mlrn --key missing.key -o s.mlrn --json"), "IoError");
  EXPECT_FALSE(fs::exists(at("s.mlrn")));
}

TEST_F(CliTest, WrongOldModelIsSourceHashMismatch) {
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn").exit_code, 0);
  // Same size, different bytes: only the hash can tell.
  sh("cp " + old_model() + " bent.tflite && printf 'X' | dd of=bent.tflite bs=1 seek=1000 conv=notrunc 2>/dev/null");
  for (const auto& wrong : {new_model(), std::string("bent.tflite")}) {
    SCOPED_TRACE(wrong);
    auto r = mallorn("patch " + wrong + " p.mlrn -o out.tflite --json");
    expect_failure(r, "SourceHashMismatch");
    EXPECT_EQ(r.json()["error"]["code_num"], 2);
    EXPECT_FALSE(r.json()["source_valid"].get<bool>());
    auto v = mallorn("verify " + wrong + " p.mlrn --json");
    expect_failure(v, "SourceHashMismatch");
  }
  EXPECT_TRUE(stray_files({"p.mlrn", "bent.tflite"}).empty());
}

TEST_F(CliTest, DamagedPatchesAreInvalidAndWriteNothing) {
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn").exit_code, 0);
  auto size = fs::file_size(at("p.mlrn"));
  sh("head -c " + std::to_string(size / 2) + " p.mlrn > half.mlrn; head -c 100 p.mlrn > stub.mlrn; "
     "head -c " + std::to_string(size - 1) + " p.mlrn > short1.mlrn");
  for (const char* bad : {"half.mlrn", "stub.mlrn", "short1.mlrn"}) {
    SCOPED_TRACE(bad);
    auto r = mallorn(std::string("patch ") + old_model() + " " + bad + " -o out.tflite --json");
    expect_failure(r, "InvalidPatch");
    EXPECT_FALSE(r.json()["patch_valid"].get<bool>());
  }
  expect_failure(mallorn("info stub.mlrn --json"), "InvalidPatch");
  expect_failure(mallorn("info " + old_model() + " --json"), "InvalidPatch");
  // A flipped byte in the last body frame: caught by the body/target hash before the rename.
  sh("cp p.mlrn flip.mlrn && printf '\\001' | dd of=flip.mlrn bs=1 seek=" + std::to_string(size - 3) +
     " conv=notrunc 2>/dev/null");
  auto flipped = mallorn("patch " + old_model() + " flip.mlrn -o out.tflite");
  EXPECT_EQ(flipped.exit_code, 1);
  EXPECT_EQ(flipped.err.rfind("mallorn: ", 0), 0u);
  EXPECT_FALSE(fs::exists(at("out.tflite")));
  EXPECT_TRUE(stray_files({"p.mlrn", "half.mlrn", "stub.mlrn", "short1.mlrn", "flip.mlrn"}).empty());
}

TEST_F(CliTest, DowngradeRefused) {
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn --target-version 3").exit_code, 0);
  expect_failure(mallorn("patch " + old_model() + " p.mlrn -o out.tflite --min-version 4 --json"), "DowngradeRefused");
  EXPECT_FALSE(fs::exists(at("out.tflite")));
  EXPECT_EQ(mallorn("patch " + old_model() + " p.mlrn -o out.tflite --min-version 3").exit_code, 0);
}

TEST_F(CliTest, MissingFilesAreIoErrors) {
  expect_failure(mallorn("diff nope.tflite " + new_model() + " -o p.mlrn --json"), "IoError");
  expect_failure(mallorn("fingerprint nope.tflite --json"), "IoError");
  expect_failure(mallorn("info nope.mlrn --json"), "IoError");
  EXPECT_TRUE(stray_files({}).empty());
}

TEST_F(CliTest, UsageErrorsExit2) {
  EXPECT_EQ(mallorn("").exit_code, 2);
  EXPECT_EQ(mallorn("frobnicate").exit_code, 2);
  EXPECT_EQ(mallorn("help frobnicate").exit_code, 2);
  EXPECT_EQ(mallorn("diff onlyone -o x").exit_code, 2);
  EXPECT_EQ(mallorn("diff a b").exit_code, 2) << "no -o";
  EXPECT_EQ(mallorn("diff a b -o c --level 99").exit_code, 2);
  EXPECT_EQ(mallorn("diff a b -o c --level 0").exit_code, 2);
  EXPECT_EQ(mallorn("diff a b -o c --level 3x").exit_code, 2);
  EXPECT_EQ(mallorn("diff a b -o c --target-version -1").exit_code, 2);
  EXPECT_EQ(mallorn("diff a b -o c --bogus").exit_code, 2);
  EXPECT_EQ(mallorn("patch a b").exit_code, 2);
  EXPECT_EQ(mallorn("patch a b -o c --min-version x").exit_code, 2);
  EXPECT_EQ(mallorn("verify a").exit_code, 2);
  EXPECT_EQ(mallorn("info").exit_code, 2);
  EXPECT_EQ(mallorn("keygen").exit_code, 2);
  EXPECT_EQ(mallorn("sign p -o q").exit_code, 2) << "no --key";
  auto j = mallorn("diff a b --json");
  EXPECT_EQ(j.exit_code, 2);
  EXPECT_EQ(j.json()["error"]["code"], "Usage");
  EXPECT_NE(j.err.find("--help"), std::string::npos);
  EXPECT_TRUE(stray_files({}).empty());
}
