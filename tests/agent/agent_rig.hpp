// A mallornd on loopback with one real model pair in its store, and devices provisioned with the
// old release, each with its own state directory and agent config.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/signature.hpp"
#include "support/daemon_process.hpp"
#include "support/model_store_fixture.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {

inline std::string sha_of(const std::filesystem::path& p) { return core::to_hex(*core::sha256_of_file(p)); }

struct fleet_rig {
  temp_dir dir{"agent"};
  stored_pair pair;
  std::unique_ptr<daemon_process> server;
  std::string device_server_url;  // what new devices are configured with (default: the server)
  nlohmann::json extra_config = nlohmann::json::object();  // merged into new devices' configs
  explicit fleet_rig(const std::string& name = "coral-mnv2-quant_2020-to-2021a",
                     const std::vector<std::string>& extra_server_args = {})
      : fleet_rig([&](const std::filesystem::path& store) { return make_store(store, {name}).at(0); },
                  extra_server_args) {}
  // `make_pair` fills the store (DIR/<model>/<version>.<ext>) and says what it put there.
  explicit fleet_rig(const std::function<stored_pair(const std::filesystem::path&)>& make_pair,
                     const std::vector<std::string>& extra_server_args = {}) {
    std::filesystem::create_directories(dir / "models");
    pair = make_pair(dir / "models");
    auto keys = core::ed25519_generate();
    EXPECT_TRUE(core::write_file_atomic(dir / "release.key", keys->private_key).ok());
    EXPECT_TRUE(core::write_file_atomic(dir / "release.pub", keys->public_key).ok());
    auto other = core::ed25519_generate();
    EXPECT_TRUE(core::write_file_atomic(dir / "other.pub", other->public_key).ok());
    std::ofstream(dir / "token") << "agent-test-admin-token-123\n";
    std::vector<std::string> args{"--models", (dir / "models").string(), "--data", (dir / "data").string(),
                                  "--level", "3", "--no-neural", "--rate-limit", "0", "--signing-key",
                                  (dir / "release.key").string(), "--admin-token-file", (dir / "token").string()};
    args.insert(args.end(), extra_server_args.begin(), extra_server_args.end());
    server = std::make_unique<daemon_process>(dir.path(), args);
  }
  // A device: its own state directory and config, provisioned with the old release.
  std::filesystem::path device(const std::string& id, const std::string& pubkey = "release.pub",
                               const std::string& health = "test -s \"$MALLORN_MODEL\"") {
    const auto home = dir / id;
    std::filesystem::create_directories(home);
    const std::string url =
        device_server_url.empty() ? "http://127.0.0.1:" + std::to_string(server->port()) : device_server_url;
    nlohmann::json cfg = {{"server", url},
                {"device_id", id},
                {"public_key", (dir / pubkey).string()},
                {"http_timeout", 10},
                {"models", {{{"name", pair.model}, {"dir", (home / "slots").string()}, {"file", "model.tflite"},
                             {"health_check", {"sh", "-c", health}}, {"health_timeout", 10}}}}};
    for (const auto& [k, v] : extra_config.items()) cfg[k] = v;
    std::ofstream(home / "agent.json") << cfg.dump(2);
    auto r = run_shell(agent() + " --config " + (home / "agent.json").string() + " install " + pair.model + " " +
                       pair.v1.string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return home;
  }
  static std::string agent() { return (bin_dir() / "mallorn-agent").string(); }
  // `env`: assignments put before the command, e.g. the fault shim's LD_PRELOAD=... settings.
  static shell_result check_once(const std::filesystem::path& home, const std::string& env = {}) {
    return run_shell(env + (env.empty() ? "" : " ") + agent() + " --config " + (home / "agent.json").string() +
                     " check-once --json 2>" + (home / "agent.log").string());
  }
  static std::string log(const std::filesystem::path& home) {
    std::ifstream in(home / "agent.log");
    return {std::istreambuf_iterator<char>(in), {}};
  }
  // check-once until the server has the patch ready (exit 3 = pending).
  static shell_result until_done(const std::filesystem::path& home, const std::string& env = {}) {
    shell_result r;
    for (int i = 0; i < 200; ++i) {
      r = check_once(home, env);
      if (r.exit_code != 3) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  }
  nlohmann::json devices() {
    auto r = run_shell("curl -s -H 'Authorization: Bearer agent-test-admin-token-123' " + server->url("/admin/devices"));
    return nlohmann::json::parse(r.out)["devices"];
  }
};

// Two unrelated real models as releases 1 and 2 of one model: a patch of about 1.8 MB, large
// enough to be cut many times.
inline stored_pair unrelated_pair(const std::filesystem::path& store) {
  std::filesystem::path from, to;
  for (const auto& p : model_pairs()) {
    if (p.name == "coral-mnv1-025-quant_2020-to-2021a") from = p.old_path;
    if (p.name == "coral-deeplabv3-edgetpu_2020-to-2021b") to = p.new_path;
  }
  stored_pair s{"segmenter", store / "segmenter" / "1.tflite", store / "segmenter" / "2.tflite"};
  std::filesystem::create_directories(store / "segmenter");
  std::filesystem::create_symlink(from, s.v1);
  std::filesystem::create_symlink(to, s.v2);
  return s;
}

inline std::filesystem::path current_model(const std::filesystem::path& home) { return home / "slots" / "current" / "model.tflite"; }


}  // namespace mallorn::test
