// A device's Ed25519 key and the signed bodies it sends to POST /enroll and POST /token, for the
// tests that drive the real mallornd's device identity (docs/security.md).
#pragma once
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "mallorn/core/signature.hpp"
#include "mallorn/server/identity/device_requests.hpp"

namespace mallorn::test {

inline std::string b64(const std::uint8_t* p, std::size_t n) {
  return server::identity::encode_base64({reinterpret_cast<const char*>(p), n});
}

struct device_key {
  core::ed25519_keypair pair = *core::ed25519_generate();
  std::string public_b64() const { return b64(pair.public_key.data(), pair.public_key.size()); }
  std::string enroll_body(const std::string& id) const {
    return nlohmann::json{{"device_id", id}, {"public_key", public_b64()}, {"tags", {{"site", "berlin"}}}}.dump();
  }
  std::string token_body(const std::string& id, std::int64_t timestamp = std::time(nullptr)) const {
    static int counter = 0;
    char nonce[33];
    std::snprintf(nonce, sizeof nonce, "%016llx%016x", static_cast<unsigned long long>(timestamp), ++counter);
    const std::string msg = server::identity::token_message(id, timestamp, nonce);
    auto sig = core::ed25519_sign(pair.private_key, {reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size()});
    return nlohmann::json{{"device_id", id}, {"timestamp", timestamp}, {"nonce", nonce}, {"signature", b64(sig->data(), sig->size())}}
        .dump();
  }
};

}  // namespace mallorn::test
