#include "mallorn/core/fingerprint.hpp"

#include <openssl/evp.h>

#include <array>

#include "mallorn/core/hash.hpp"

namespace mallorn::core {
namespace {

constexpr std::uint64_t head_bytes = 64 * 1024;
constexpr std::uint64_t tail_bytes = 4 * 1024;

std::array<std::uint8_t, 16> md5(std::span<const std::uint8_t> bytes) {
  std::array<std::uint8_t, 16> d{};
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d.data(), &n, EVP_md5(), nullptr);
  return d;
}

}  // namespace

result<fingerprint> fingerprint_of(byte_source& src) {
  const std::uint64_t size = src.size();
  std::vector<std::uint8_t> head(std::min(size, head_bytes));
  std::vector<std::uint8_t> tail(std::min(size, tail_bytes));
  MALLORN_TRY(src.read_at(0, head));
  MALLORN_TRY(src.read_at(size - tail.size(), tail));
  auto h = md5(head), t = md5(tail);
  std::array<std::uint8_t, 16> combined{};
  for (std::size_t i = 0; i < combined.size(); ++i) combined[i] = h[i] ^ t[i];
  fingerprint fp;
  fp.format = sniff_format(head);
  fp.file_size = size;
  fp.header_hash = to_hex(h);
  fp.tail_hash = to_hex(t);
  fp.combined_hash = to_hex(combined);
  return fp;
}

result<fingerprint> fingerprint_file(const std::filesystem::path& path) {
  auto src = file_source::open(path);
  if (!src) return src.err();
  return fingerprint_of(**src);
}

}  // namespace mallorn::core
