// Release keys that rotate, end to end: the real mallorn-agent against real mallornd processes
// serving a keyring (`mallornd --keyring`) made with the real `mallorn keyring` CLI.
//   K1 signs release 2 (applies) -> keyring v2 revokes K1, adds K2 -> a K1-signed release 3 is
//   refused -> a K2-signed release 4 applies -> a server handing out keyring v1 again is refused
//   -> an expired keyring stops updates (and a grace period lets them go on) -> the root rotates.
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/keyring.hpp"
#include "support/daemon_process.hpp"
#include "support/models.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {
namespace {

namespace fs = std::filesystem;

fs::path model_file(const std::string& pair, const char* which) { return models_dir() / "pairs" / pair / which; }

class KeyringRotation : public ::testing::Test {
 protected:
  temp_dir dir_{"agent-keyring"};
  fs::path home_ = dir_ / "device";

  std::string cli(const std::string& args) {
    auto r = run_shell("cd '" + dir_.path().string() + "' && '" + (bin_dir() / "mallorn").string() + "' " + args + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
    return r.out;
  }
  // A store with releases 1..n of model "classifier" (real TFLite models).
  fs::path store(const std::string& name, int n) {
    const fs::path sources[] = {model_file("coral-mnv1-025-quant_2020-to-2021a", "old.tflite"),
                                model_file("coral-mnv1-025-quant_2020-to-2021a", "new.tflite"),
                                model_file("coral-mnv1-025-quant_2021a-to-2021b", "new.tflite"),
                                model_file("coral-mnv1-025-edgetpu_2021a-to-2021b", "new.tflite")};
    const fs::path d = dir_ / name / "classifier";
    fs::create_directories(d);
    for (int i = 0; i < n; ++i) fs::create_symlink(sources[i], d / (std::to_string(i + 1) + ".tflite"));
    return d.parent_path();
  }
  std::unique_ptr<daemon_process> server(const std::string& name, int releases, const std::string& signing_key,
                                         const std::string& keyring, bool must_start = true) {
    const fs::path work = dir_ / (name + "-work");
    fs::create_directories(work);
    auto d = std::make_unique<daemon_process>(
        work, std::vector<std::string>{"--models", store(name, releases).string(), "--data", (work / "data").string(), "--level",
                                       "3", "--no-neural", "--rate-limit", "0", "--signing-key", (dir_ / signing_key).string(),
                                       "--keyring", (dir_ / keyring).string(),
                                       "--admin-token-file", (dir_ / "token").string()});
    if (must_start) EXPECT_TRUE(d->listening()) << d->log();
    return d;
  }
  void point_device_at(const daemon_process& d, const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json cfg = {{"server", d.url()},
                          {"device_id", "cam-1"},
                          {"root_key", (dir_ / "root.pub").string()},
                          {"keyring_file", (home_ / "keyring.bin").string()},
                          {"http_timeout", 10},
                          {"models", {{{"name", "classifier"}, {"dir", (home_ / "slots").string()}, {"file", "model.tflite"}}}}};
    for (const auto& [k, v] : extra.items()) cfg[k] = v;
    std::ofstream(home_ / "agent.json") << cfg.dump(2);
  }
  shell_result check(const std::string& env = {}) {
    shell_result r;
    for (int i = 0; i < 200; ++i) {  // exit 3: the server is still building the patch
      r = run_shell(env + " '" + (bin_dir() / "mallorn-agent").string() + "' --config " + (home_ / "agent.json").string() +
                    " check-once --json 2>>" + (home_ / "agent.log").string());
      if (r.exit_code != 3) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  }
  std::uint64_t stored_version() {
    auto bytes = core::read_file(home_ / "keyring.bin");
    if (!bytes) return 0;
    auto k = core::decode_keyring(*bytes);
    return k ? k->version : 0;
  }
  std::string installed() { return core::to_hex(*core::sha256_of_file(home_ / "slots" / "current" / "model.tflite")); }
  std::string sha(const fs::path& p) { return core::to_hex(*core::sha256_of_file(p)); }
  std::string agent_log() {
    std::ifstream in(home_ / "agent.log");
    return {std::istreambuf_iterator<char>(in), {}};
  }
};

TEST_F(KeyringRotation, RevokeRotateRollbackExpiryAndRootRotation) {
  for (const char* k : {"root", "root2", "k1", "k2"}) cli(std::string("keygen -o ") + k);
  std::ofstream(dir_ / "token") << "keyring-test-admin-token\n";
  cli("keyring init -o ring-v1.json --root root.pub --expires 30");
  cli("keyring add-key ring-v1.json --key k1.pub --models classifier");
  cli("keyring sign ring-v1.json --key root.key");
  cli("keyring revoke ring-v1.json --key k1.pub -o ring-v2.json");
  cli("keyring add-key ring-v2.json --key k2.pub");
  cli("keyring sign ring-v2.json --key root.key");
  fs::copy_file(dir_ / "ring-v1.json", dir_ / "served.json");

  fs::create_directories(home_);
  const fs::path v1 = model_file("coral-mnv1-025-quant_2020-to-2021a", "old.tflite");
  {
    auto a = server("a", 2, "k1.key", "served.json");
    point_device_at(*a);
    auto inst = run_shell((bin_dir() / "mallorn-agent").string() + " --config " + (home_ / "agent.json").string() +
                          " install classifier " + v1.string() + " 2>&1");
    ASSERT_EQ(inst.exit_code, 0) << inst.out;
    // 1. Keyring v1 trusts K1: the K1-signed release 2 applies.
    auto r = check();
    ASSERT_EQ(r.exit_code, 0) << r.out << agent_log();
    EXPECT_EQ(stored_version(), 1u);
    EXPECT_EQ(installed(), sha(model_file("coral-mnv1-025-quant_2020-to-2021a", "new.tflite")));
    // Publishing the keyring (the file mallornd serves) is in the audit log.
    auto audit = run_shell("curl -s -H 'Authorization: Bearer keyring-test-admin-token' " + a->url("/admin/audit"));
    EXPECT_NE(audit.out.find("keyring.publish"), std::string::npos) << audit.out;
    EXPECT_NE(audit.out.find("served.json v1: served at start"), std::string::npos) << audit.out;
  }
  fs::copy_file(dir_ / "ring-v2.json", dir_ / "served.json", fs::copy_options::overwrite_existing);
  {
    // 2. Keyring v2 revokes K1: a K1-signed release 3 is refused, the device stays on 2.
    auto a = server("b", 3, "k1.key", "served.json");
    point_device_at(*a);
    auto r = check();
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(stored_version(), 2u);
    EXPECT_NE(r.out.find("not signed by any release key keyring v2 trusts"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("1 revoked"), std::string::npos) << r.out;
    EXPECT_EQ(installed(), sha(model_file("coral-mnv1-025-quant_2020-to-2021a", "new.tflite")));
  }
  {
    // 3. A K2-signed release 4 applies.
    auto a = server("c", 4, "k2.key", "served.json");
    point_device_at(*a);
    auto r = check();
    ASSERT_EQ(r.exit_code, 0) << r.out << agent_log();
    EXPECT_EQ(installed(), sha(model_file("coral-mnv1-025-edgetpu_2021a-to-2021b", "new.tflite")));
  }
  {
    // 4. A server handing out keyring v1 again: refused, v2 stays in force.
    auto a = server("d", 4, "k2.key", "ring-v1.json");
    point_device_at(*a);
    auto r = check();
    EXPECT_EQ(r.exit_code, 0) << r.out;  // up to date; the old keyring changed nothing
    EXPECT_EQ(stored_version(), 2u);
    EXPECT_NE(agent_log().find("rollback refused"), std::string::npos) << agent_log();

    // 5. Past the expiry (30 days): updates stop with a clear error and a report; a grace period lets them go on.
    const std::string later = "MALLORN_AGENT_NOW=" + std::to_string(std::time(nullptr) + 31 * 86400);
    r = check(later);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("expired"), std::string::npos) << r.out;
    auto devices = run_shell("curl -s -H 'Authorization: Bearer keyring-test-admin-token' " + a->url("/admin/devices/cam-1"));
    EXPECT_NE(devices.out.find("expired"), std::string::npos) << "the device reported why it stopped: " << devices.out;
    point_device_at(*a, {{"keyring_grace", 2 * 86400}});
    r = check(later);
    EXPECT_EQ(r.exit_code, 0) << r.out;
  }
  // 6. Root rotation: v3 names root2 and is signed by root and root2; after it, root alone is not enough.
  cli("keyring rotate-root ring-v2.json --root root2.pub -o ring-v3.json");
  cli("keyring sign ring-v3.json --key root.key");
  {
    auto a = server("e", 4, "k2.key", "ring-v3.json", false);
    EXPECT_FALSE(a->listening()) << "mallornd must refuse a keyring its own (new) root did not sign";
  }
  cli("keyring sign ring-v3.json --key root2.key");
  cli("keyring renew ring-v3.json -o ring-v4.json");
  cli("keyring sign ring-v4.json --key root2.key");
  fs::copy_file(dir_ / "ring-v3.json", dir_ / "rotated.json");
  {
    auto a = server("f", 4, "k2.key", "rotated.json");
    point_device_at(*a);
    EXPECT_EQ(check().exit_code, 0);
    EXPECT_EQ(stored_version(), 3u);
    // v4 signed by the new root alone is taken; the server re-reads the file when it changes.
    fs::copy_file(dir_ / "ring-v4.json", dir_ / "rotated.json", fs::copy_options::overwrite_existing);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the server re-reads at most once a second
    EXPECT_EQ(check().exit_code, 0);
    EXPECT_EQ(stored_version(), 4u);
  }
}

}  // namespace
}  // namespace mallorn::test
