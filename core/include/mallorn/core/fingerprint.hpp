// The seed's quick model fingerprint: constant time in file size.
//   header_hash = MD5(first min(size, 64 KiB) bytes)
//   tail_hash   = MD5(last  min(size, 4 KiB) bytes)
//   combined    = header_hash XOR tail_hash (hex); short() = first 16 hex chars.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "mallorn/core/error.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/model_format.hpp"

namespace mallorn::core {

struct fingerprint {
  model_format format = model_format::raw;
  std::uint64_t file_size = 0;
  std::string header_hash;    // 32 hex chars
  std::string tail_hash;      // 32 hex chars
  std::string combined_hash;  // 32 hex chars

  std::string short_id() const { return combined_hash.substr(0, 16); }
  // Same version when sizes and combined hashes agree.
  bool matches(const fingerprint& other) const {
    return file_size == other.file_size && combined_hash == other.combined_hash;
  }
};

result<fingerprint> fingerprint_of(byte_source& src);
result<fingerprint> fingerprint_file(const std::filesystem::path& path);

}  // namespace mallorn::core
