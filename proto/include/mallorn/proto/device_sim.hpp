// mallorn-mcu-sim as a library: options, one simulated device's update, its JSON result.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/proto/mcu_device.hpp"

namespace mallorn::proto {

struct sim_config {
  bool help = false, json = false;
  std::string broker;              // MQTT mode
  std::uint16_t lora_gateway = 0;  // LoRa mode: the gateway's UDP port
  std::string device_id, prefix = "mallorn/v1";
  std::uint32_t lora_addr = 0;
  std::filesystem::path model, out, flash;
  std::uint64_t flash_size = 4 << 20;
  std::uint32_t sector_size = 4096;
  std::uint64_t power_cut_at = 0;
  radio_params radio;
  device_options device;
};

std::string sim_usage();
core::result<sim_config> parse_sim_args(const std::vector<std::string>& args);
// Runs one update; setup errors (unreadable model, bad flash file) are errors, everything after
// the link is up is an outcome in device_result.
core::result<device_result> run_sim(const sim_config& cfg);
std::string result_json(const sim_config& cfg, const device_result& r);
// {"ok":false,"outcome":"failed","error":...} for errors before the update started.
std::string setup_error_json(const core::error& e);
// 0 committed / up to date, 1 failed, 3 power lost.
int exit_code(const device_result& r);

}  // namespace mallorn::proto
