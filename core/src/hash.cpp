#include "mallorn/core/hash.hpp"

#include <openssl/evp.h>

namespace mallorn::core {

sha256::sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr); }
sha256::~sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void sha256::update(std::span<const std::uint8_t> bytes) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}

sha256_digest sha256::finish() {
  sha256_digest d{};
  unsigned int n = 0;
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  EVP_DigestFinal_ex(ctx, d.data(), &n);
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  return d;
}

sha256_digest sha256_of(std::span<const std::uint8_t> bytes) {
  sha256 h;
  h.update(bytes);
  return h.finish();
}

result<sha256_digest> sha256_of(byte_source& src) {
  sha256 h;
  std::vector<std::uint8_t> block(std::min<std::uint64_t>(src.size(), 1u << 20));
  for (std::uint64_t at = 0; at < src.size();) {
    auto n = std::min<std::uint64_t>(block.size(), src.size() - at);
    std::span<std::uint8_t> piece(block.data(), n);
    MALLORN_TRY(src.read_at(at, piece));
    h.update(piece);
    at += n;
  }
  return h.finish();
}

result<sha256_digest> sha256_of_file(const std::filesystem::path& path) {
  auto src = file_source::open(path);
  if (!src) return src.err();
  return sha256_of(**src);
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

bool from_hex(std::string_view hex, std::span<std::uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace mallorn::core
