// The patch container's header: readable and authenticable before any body byte arrives.
// Byte layout: docs/patch-format.md. All integers little-endian.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/model_format.hpp"
#include "mallorn/core/signature.hpp"

namespace mallorn::core {

inline constexpr std::array<std::uint8_t, 4> patch_magic{'M', 'L', 'R', 'N'};
// Version 1: fixed-width fields (176 bytes before the stats). Still written for the mcu profile,
// whose C99 applier (mallorn_lite) reads only this form.
inline constexpr std::uint8_t container_version = 1;
// Version 2: the compact form (varints, no timestamp) written by the standard-profile differ, so
// that tiny patches are not dominated by their header. Same hashes, check and signature.
inline constexpr std::uint8_t compact_container_version = 2;
// Version 3: the version 2 layout for a body that is a single data frame (the whole target from one
// gap frame: no ops, frame header or end frame). Written only for such bodies, so readers of
// versions 1 and 2 still read every other patch; they refuse these with unsupported_version.
inline constexpr std::uint8_t single_frame_container_version = 3;
// v1's fixed part; reading this many bytes (or the whole patch if shorter) always reveals the
// header size, in either version.
inline constexpr std::size_t header_fixed_size = 176;
inline constexpr std::size_t header_check_size = 4;  // truncated SHA-256 of the header before it
inline constexpr std::size_t max_header_size = 1u << 20;

// Which body encoding follows: `standard` (zstd frames, for Linux-class devices) or `mcu`
// (small-window profile for microcontrollers; see docs/patch-format.md).
enum class patch_profile : std::uint8_t { standard = 0, mcu = 1 };
enum class compression_method : std::uint8_t { none = 0, zstd = 1, lzss = 2 };
const char* profile_name(patch_profile p) noexcept;           // "standard", "mcu"
const char* compression_name(compression_method c) noexcept;  // "none", "zstd", "lzss"

namespace header_flag {
inline constexpr std::uint8_t is_signed = 1u << 0;
inline constexpr std::uint8_t neural = 1u << 1;
inline constexpr std::uint8_t known = is_signed | neural;
}  // namespace header_flag

// How the differ encoded one target tensor (reported per tensor in the header).
enum class tensor_encoding : std::uint8_t {
  copy = 0,        // unchanged: copied from the old model
  xor_delta = 1,   // XOR against the old tensor
  sub_delta = 2,   // element-wise wrapping difference against the old tensor
  cast_delta = 3,  // old tensor cast to the new dtype, residual encoded
  ref_delta = 4,   // zstd with the old tensor as reference (shifted/partly moved data)
  literal = 5,     // new or reshaped tensor, compressed on its own
  generic = 6,     // left to the generic binary delta with the metadata
};
const char* tensor_encoding_name(tensor_encoding e) noexcept;

struct tensor_stat {
  std::string name;
  tensor_encoding encoding = tensor_encoding::literal;
  std::uint64_t target_bytes = 0;  // tensor bytes in the new model
  std::uint64_t patch_bytes = 0;   // compressed bytes spent on it in the body
};

struct patch_header {
  std::uint8_t version = container_version;
  // Version 3 only: the body is one gap data frame's payload (docs/patch-format.md, "Single-frame body").
  bool single_frame_body() const { return version == single_frame_container_version; }
  patch_profile profile = patch_profile::standard;
  model_format format = model_format::raw;
  std::uint8_t flags = 0;
  compression_method compression = compression_method::zstd;
  std::uint8_t level = 3;
  std::uint64_t source_size = 0;
  std::uint64_t target_size = 0;
  sha256_digest source_sha256{};
  sha256_digest target_sha256{};
  std::uint64_t target_version = 0;  // monotonically increasing; agents refuse to go backwards
  std::uint64_t created_at = 0;      // unix seconds; 0 = unknown (version 2 stores it only when set)
  std::uint64_t body_size = 0;
  sha256_digest body_sha256{};
  std::uint32_t tensors_modified = 0;
  std::uint32_t tensors_unchanged = 0;
  std::uint32_t tensors_added = 0;
  std::uint32_t tensors_removed = 0;
  // Tensors that were not plain copies (unchanged tensors are only counted).
  std::vector<tensor_stat> tensor_stats;
  std::optional<ed25519_signature> signature;

  bool is_signed() const { return (flags & header_flag::is_signed) != 0; }
  bool neural() const { return (flags & header_flag::neural) != 0; }
};

// Serialises the header (with the signature when present). header_size is computed.
std::vector<std::uint8_t> encode_header(const patch_header& h);
// What the signature covers: the encoded header with the signed flag set (including its check
// bytes), without the trailing 64 signature bytes. Because the header holds body_size and body_sha256, this covers the body.
std::vector<std::uint8_t> signed_message(const patch_header& h);

struct header_probe {
  std::size_t header_size = 0;  // 0 until at least the fixed part is available
  std::optional<patch_header> header;  // set once all header_size bytes were given
};
// Parses the header at the start of `bytes`. With too few bytes it returns a probe without a
// header (header_size tells how many are needed once known). Malformed -> invalid_patch;
// unknown container version -> unsupported_version. Reads versions 1, 2 and 3.
result<header_probe> parse_header(std::span<const std::uint8_t> bytes);

// Adds/replaces the signature.
result<void> sign_header(patch_header& h, const ed25519_private_key& key);
// signature_error unless signed and valid for `key`.
result<void> verify_header_signature(const patch_header& h, const ed25519_public_key& key);

}  // namespace mallorn::core
