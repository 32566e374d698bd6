// The agent's device identity when the server runs --device-auth (docs/agent.md, "Device
// identity"): an Ed25519 device key made at first start, enrollment (POST /enroll), and a
// short-lived bearer token (POST /token, a signed timestamp + nonce) renewed before it expires.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "mallorn/core/error.hpp"
#include "mallorn/core/signature.hpp"

namespace mallorn::agent {

class http_client;

// Loads the device key, or makes one (0600, written atomically) when the file does not exist.
core::result<core::ed25519_keypair> load_or_create_device_key(const std::filesystem::path& file);

// Where enrollment stands, as the server said.
enum class enrollment_status { unknown, pending, admitted, refused };

class device_credentials {
 public:
  device_credentials(std::string device_id, core::ed25519_keypair key, std::map<std::string, std::string> tags,
                     std::function<std::int64_t()> wall_clock = nullptr);

  // A token that is valid for a while yet; else enrolls (if needed) and asks for one. nullopt:
  // none to be had now (waiting for admission, refused, server unreachable): see status().
  std::optional<std::string> token(http_client& client);
  // The server answered 401 to our token: forget it, so the next token() asks for a new one.
  void invalidate();
  enrollment_status status() const;
  const std::string& last_problem() const { return problem_; }

 private:
  core::result<enrollment_status> enroll(http_client& client);
  core::result<void> fetch_token(http_client& client);
  std::string device_id_;
  core::ed25519_keypair key_;
  std::map<std::string, std::string> tags_;
  std::function<std::int64_t()> wall_clock_;
  mutable std::mutex mutex_;
  enrollment_status status_ = enrollment_status::unknown;
  std::string token_, problem_;
  std::chrono::steady_clock::time_point renew_at_{};
};

}  // namespace mallorn::agent
