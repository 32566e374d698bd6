// The protocol's integration rig: a private Mosquitto, the real mallornd with its MQTT bridge on
// a store of real tflite-micro pairs, and helpers to run simulated devices and the LoRa gateway
// as real processes.
#pragma once
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "mallorn/core/hash.hpp"
#include "proto/child_process.hpp"
#include "support/daemon_process.hpp"
#include "support/model_store_fixture.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {

inline const std::vector<std::string>& mcu_pairs() {
  static const std::vector<std::string> names = {"tfm-hello-world-int8", "tfm-micro-speech_realign", "tfm-mnist-lstm"};
  return names;
}

inline std::string sha_of(const std::filesystem::path& p) {
  auto d = core::sha256_of_file(p);
  return d ? core::to_hex(*d) : std::string();
}

struct proto_rig {
  temp_dir dir{"proto"};
  std::vector<stored_pair> pairs;
  std::unique_ptr<mosquitto_broker> broker;
  std::unique_ptr<daemon_process> server;
  std::unique_ptr<child_process> gateway;
  std::uint16_t gateway_port = 0;
  const std::string token = "proto-test-admin-token-0123456789";

  explicit proto_rig(const std::vector<std::string>& extra_args = {}) {
    std::filesystem::create_directories(dir / "models");
    pairs = make_store(dir / "models", mcu_pairs());
    broker = std::make_unique<mosquitto_broker>(dir.path());
    std::ofstream(dir / "admin-token") << token << "\n";
    ::chmod((dir / "admin-token").c_str(), 0600);
    std::vector<std::string> args{"--models", (dir / "models").string(), "--data", (dir / "data").string(),
                                  "--rate-limit", "0", "--level", "3", "--no-neural", "--admin-token-file",
                                  (dir / "admin-token").string(), "--mqtt-broker", broker->url()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    server = std::make_unique<daemon_process>(dir.path(), args);
    wait_for_log("mqtt: connected", 1);
  }

  // Waits until mallornd's log holds `text` at least `times` times.
  bool wait_for_log(const std::string& text, int times, std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      const auto log = server->log();
      int n = 0;
      for (auto p = log.find(text); p != std::string::npos; p = log.find(text, p + 1)) ++n;
      if (n >= times) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  const stored_pair& pair(const std::string& name) const {
    for (const auto& p : pairs)
      if (p.model == name) return p;
    throw std::runtime_error("no pair " + name);
  }

  // Starts the LoRa gateway with downlink `loss`.
  void start_gateway(double loss, std::uint64_t seed = 1) {
    std::filesystem::remove(dir / "gateway.port");
    gateway = std::make_unique<child_process>(
        std::vector<std::string>{(bin_dir() / "mallorn-lora-gateway").string(), "--broker", broker->url(), "--port-file",
                                 (dir / "gateway.port").string(), "--loss", std::to_string(loss), "--seed",
                                 std::to_string(seed), "--stats", (dir / "gateway.json").string()},
        dir / "gateway.out", dir / "gateway.log");
    for (int i = 0; i < 300 && gateway_port == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::ifstream(dir / "gateway.port") >> gateway_port;
    }
  }

  // A simulated device running `model`, writing its update to DIR/<name>.out.
  std::unique_ptr<child_process> device(const std::string& name, const std::filesystem::path& model,
                                        std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {(bin_dir() / "mallorn-mcu-sim").string(), "--model", model.string(), "--out",
                                     (dir / (name + ".out")).string(), "--json", "--timeout", "90"};
    if (gateway_port) {
      argv.insert(argv.end(), {"--lora-gateway", std::to_string(gateway_port), "--device-id", name});
    } else {
      argv.insert(argv.end(), {"--broker", broker->url(), "--device-id", name});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<child_process>(argv, dir / (name + ".json"), dir / (name + ".err"));
  }

  // Waits for a device and returns its --json result (exit code in "exit").
  nlohmann::json result(child_process& p) {
    const int code = p.wait(std::chrono::seconds(120));
    auto j = nlohmann::json::parse(p.out(), nullptr, false);
    if (j.is_discarded()) j = nlohmann::json{{"unparsed", p.out()}, {"stderr", p.err()}};
    j["exit"] = code;
    return j;
  }

  // The latest report mallornd stored for a device (GET /admin/devices/<id>).
  nlohmann::json report(const std::string& device_id) {
    auto r = run_shell("curl -s -H 'Authorization: Bearer " + token + "' " + server->url("/admin/devices/" + device_id));
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("devices") || j["devices"].empty()) return nlohmann::json{{"raw", r.out}};
    return j["devices"][0];
  }

  nlohmann::json gateway_stats() { return nlohmann::json::parse(read_text(dir / "gateway.json"), nullptr, false); }
};

}  // namespace mallorn::test
