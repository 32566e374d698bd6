// SHA-256 (streaming, OpenSSL EVP) and hex helpers.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "mallorn/core/error.hpp"
#include "mallorn/core/io.hpp"

namespace mallorn::core {

using sha256_digest = std::array<std::uint8_t, 32>;

class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(std::span<const std::uint8_t> bytes);
  // Finishes and resets, so the object can hash the next message.
  sha256_digest finish();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

sha256_digest sha256_of(std::span<const std::uint8_t> bytes);
// Hashes a source in bounded memory (1 MiB reads).
result<sha256_digest> sha256_of(byte_source& src);
result<sha256_digest> sha256_of_file(const std::filesystem::path& path);

std::string to_hex(std::span<const std::uint8_t> bytes);
// Returns false on odd length or non-hex characters.
bool from_hex(std::string_view hex, std::span<std::uint8_t> out);

}  // namespace mallorn::core
