// mallorn-agent's configuration file (JSON):
// {
//   "server": "https://updates.example:8443", "device_id": "cam-17",
//   "public_key": "/etc/mallorn/release.pub",     // with a key, unsigned patches are refused
//   "root_key": "/etc/mallorn/root.pub", "keyring_file": "/var/lib/mallorn/keyring.bin",
//   "keyring_grace": 0,                            // rotating release keys instead (docs/security.md)
//   "ca_file": "...", "client_cert": "...", "client_key": "...",   // TLS / mTLS (optional)
//   "device_key": "/var/lib/mallorn/device.key",   // enroll and use device tokens (made if missing)
//   "tags": {"site": "berlin", "hw": "rpi4"},        // sent with check-update (rollout groups)
//   "tags_command": ["/usr/bin/device-facts"],      // optional: prints a JSON object of more tags
//   "poll_interval": 300, "jitter": 0.2, "http_timeout": 30, "allow_downgrade": false,
//   "max_model_size": 4294967296,                 // bytes: no download (patch or model) is larger
//   "models": [ {"name": "detector", "dir": "/var/lib/mallorn/detector", "file": "model.tflite",
//                "health_check": ["/usr/bin/check-model", "--quick"], "health_timeout": 60} ]
// }
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/agent/http_client.hpp"
#include "mallorn/agent/keyring_trust.hpp"
#include "mallorn/core/error.hpp"
#include "mallorn/core/signature.hpp"

namespace mallorn::agent {

struct model_config {
  std::string name;
  std::filesystem::path dir;  // slots a/ and b/, `current`, the journal and the download
  std::string file = "model.bin";
  std::vector<std::string> health_check;  // empty: no health check
  std::chrono::seconds health_timeout{60};
};

struct agent_config {
  std::string server;
  std::string device_id;
  std::optional<core::ed25519_public_key> public_key;
  keyring_options keyring;  // when enabled, patches must be signed by a key the keyring trusts
  tls_options tls;
  std::filesystem::path device_key;  // set: enroll with this Ed25519 key, send device tokens
  std::chrono::seconds poll_interval{300};
  double jitter = 0.2;
  std::chrono::seconds http_timeout{30};
  bool allow_downgrade = false;
  // The largest download (patch or whole model) the agent accepts; a server announcing more is
  // refused before a byte is written.
  std::uint64_t max_model_size = std::uint64_t{4} << 30;
  std::map<std::string, std::string> tags;
  std::vector<std::string> tags_command;  // argv; empty: none
  std::vector<model_config> models;
};

core::result<agent_config> load_agent_config(const std::filesystem::path& file);

}  // namespace mallorn::agent
