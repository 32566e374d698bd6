#include "mallorn/agent/device_credentials.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <array>
#include <ctime>
#include <nlohmann/json.hpp>

#include "mallorn/agent/http_client.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/key_file.hpp"

namespace mallorn::agent {
namespace {

std::string base64(const std::uint8_t* data, std::size_t size) {
  std::string out((size + 2) / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n > 0 ? n : 0));
  return out;
}

// The server's answer's error code and message, for logs.
std::string problem_of(const http_reply& r) {
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  std::string what = "HTTP " + std::to_string(r.status);
  if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
    what += " " + doc["error"].value("code", std::string()) + ": " + doc["error"].value("message", std::string());
  }
  return what.size() > 300 ? what.substr(0, 300) : what;
}

}  // namespace

core::result<core::ed25519_keypair> load_or_create_device_key(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    auto made = core::ed25519_generate();
    if (!made) return made.err();
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
    // The temp file is created under this umask too: the key is never readable by others.
    const mode_t old = ::umask(077);
    auto written = core::write_file_atomic(file, made->private_key);
    ::umask(old);
    if (!written) return written.err().with("writing the device key");
    spdlog::info("made a new device key {}", file.string());
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 0077))
    spdlog::warn("device key {} is readable by group or others (mode {:o})", file.string(), st.st_mode & 0777);
  auto key = core::load_private_key_file(file);
  if (!key) return key.err();
  core::ed25519_keypair pair;
  pair.private_key = *key;
  std::copy(key->begin() + 32, key->end(), pair.public_key.begin());
  return pair;
}

device_credentials::device_credentials(std::string device_id, core::ed25519_keypair key,
                                       std::map<std::string, std::string> tags, std::function<std::int64_t()> wall_clock)
    : device_id_(std::move(device_id)), key_(key), tags_(std::move(tags)), wall_clock_(std::move(wall_clock)) {
  if (!wall_clock_) wall_clock_ = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
}

enrollment_status device_credentials::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

void device_credentials::invalidate() {
  std::lock_guard lock(mutex_);
  token_.clear();
}

std::optional<std::string> device_credentials::token(http_client& client) {
  std::lock_guard lock(mutex_);
  if (!token_.empty() && std::chrono::steady_clock::now() < renew_at_) return token_;
  // Ask for a token first: an admitted device needs no enrollment round trip.
  auto fetched = fetch_token(client);
  if (fetched) return token_;
  auto enrolled = enroll(client);
  if (!enrolled) {
    problem_ = enrolled.err().message;
    return std::nullopt;
  }
  if (*enrolled != enrollment_status::admitted) return std::nullopt;
  fetched = fetch_token(client);
  if (!fetched) return std::nullopt;
  return token_;
}

core::result<enrollment_status> device_credentials::enroll(http_client& client) {
  nlohmann::json body = {{"device_id", device_id_}, {"public_key", base64(key_.public_key.data(), key_.public_key.size())}};
  if (!tags_.empty()) body["tags"] = tags_;
  auto reply = client.post_json("/enroll", body.dump());
  if (!reply) return reply.err();
  const auto before = status_;
  if (reply->status == 200) {
    status_ = enrollment_status::admitted;
  } else if (reply->status == 202) {
    status_ = enrollment_status::pending;
    problem_ = "waiting for an operator to admit this device (mallorn fleet devices admit " + device_id_ + ")";
    if (before != status_) spdlog::warn("device '{}' enrolled: {}", device_id_, problem_);
  } else {
    problem_ = "enrollment refused: " + problem_of(*reply);
    if (reply->status == 409 || reply->status == 403) status_ = enrollment_status::refused;
    spdlog::error("device '{}': {}", device_id_, problem_);
  }
  return status_;
}

core::result<void> device_credentials::fetch_token(http_client& client) {
  std::array<std::uint8_t, 16> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1)
    return core::make_error(core::errc::io_error, "no randomness for a nonce");
  const std::int64_t now = wall_clock_();
  const std::string nonce_hex = core::to_hex(nonce);
  // The exact text mallornd verifies (docs/api.md, POST /token).
  const std::string message = "mallorn-device-token-v1\n" + device_id_ + "\n" + std::to_string(now) + "\n" + nonce_hex;
  auto sig = core::ed25519_sign(key_.private_key, {reinterpret_cast<const std::uint8_t*>(message.data()), message.size()});
  if (!sig) return sig.err();
  nlohmann::json body = {{"device_id", device_id_},
                         {"timestamp", now},
                         {"nonce", nonce_hex},
                         {"signature", base64(sig->data(), sig->size())}};
  auto reply = client.post_json("/token", body.dump());
  if (!reply) {
    problem_ = reply.err().message;
    return reply.err();
  }
  if (reply->status != 200) {
    problem_ = "no device token: " + problem_of(*reply);
    if (reply->status == 403 && reply->body.find("an operator has to admit") == std::string::npos)
      status_ = enrollment_status::refused;  // rejected or revoked (the loop keeps asking, slowly)
    return core::make_error(core::errc::io_error, problem_);
  }
  auto doc = nlohmann::json::parse(reply->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("token") || !doc["token"].is_string() || !doc.contains("expires_in") ||
      !doc["expires_in"].is_number_integer() || doc["token"].get_ref<const std::string&>().size() > 256)
    return core::make_error(core::errc::io_error, "bad /token answer");
  const auto ttl = std::max<std::int64_t>(1, doc["expires_in"].get<std::int64_t>());
  token_ = doc["token"].get<std::string>();
  // Renew when four fifths of the lifetime have passed: a little clock drift or a slow request
  // never uses an expired token.
  renew_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(ttl * 4 / 5);
  if (status_ != enrollment_status::admitted) spdlog::info("device '{}' is admitted: got a device token", device_id_);
  status_ = enrollment_status::admitted;
  problem_.clear();
  return {};
}

}  // namespace mallorn::agent
