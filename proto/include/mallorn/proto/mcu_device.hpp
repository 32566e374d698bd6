// The simulated microcontroller's update logic: announce the running model, take the offer,
// fetch the patch window by window into a patch_consumer (asking again only for blocks still
// missing), report progress, verify and install, report the result.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "mallorn/core/error.hpp"
#include "mallorn/proto/device_link.hpp"
#include "mallorn/proto/patch_consumer.hpp"

namespace mallorn::proto {

struct device_options {
  std::string sha256;   // of the running model (hex)
  std::string model, version;
  std::uint32_t free_ram = 64 << 10;
  std::uint32_t max_block = 1024;
  std::chrono::milliseconds deadline{120000};  // the whole update
};

struct device_result {
  std::string outcome;  // "committed", "up_to_date", "failed", "power_lost", "timeout", "unavailable"
  std::string error;
  offer_msg offer;
  std::string new_sha256;
  std::uint64_t requests = 0, blocks_received = 0, duplicate_blocks = 0;
  std::uint64_t blocks_resumed = 0;  // already in the download area from before a reboot
  link_stats link;
  double seconds = 0;
  bool ok() const { return outcome == "committed" || outcome == "up_to_date"; }
};

class mcu_device {
 public:
  mcu_device(device_options opts, device_link& link, patch_consumer& sink);
  device_result run();

 private:
  device_options opts_;
  device_link& link_;
  patch_consumer& sink_;
};

}  // namespace mallorn::proto
