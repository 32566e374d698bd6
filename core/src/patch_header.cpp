#include "mallorn/core/patch_header.hpp"

#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "mallorn/core/bytes.hpp"

namespace mallorn::core {
namespace {

// The stats section starts with one byte telling whether the entry list is zstd-compressed:
// names of thousands of tensors are very repetitive, and small patches must stay small.
constexpr std::uint8_t stats_plain = 0;
constexpr std::uint8_t stats_zstd = 1;
constexpr std::size_t max_stats_plain = 16u << 20;

std::vector<std::uint8_t> encode_stats(const std::vector<tensor_stat>& stats) {
  std::vector<std::uint8_t> plain;
  for (const auto& s : stats) {
    put_u8(plain, static_cast<std::uint8_t>(s.encoding));
    put_varint(plain, s.name.size());
    plain.insert(plain.end(), s.name.begin(), s.name.end());
    put_varint(plain, s.target_bytes);
    put_varint(plain, s.patch_bytes);
  }
  std::vector<std::uint8_t> out;
  if (plain.empty()) return out;
  std::vector<std::uint8_t> packed(ZSTD_compressBound(plain.size()));
  std::size_t n = ZSTD_compress(packed.data(), packed.size(), plain.data(), plain.size(), 19);
  if (!ZSTD_isError(n) && n + 9 < plain.size()) {
    out.push_back(stats_zstd);
    put_varint(out, plain.size());
    out.insert(out.end(), packed.begin(), packed.begin() + n);
  } else {
    out.push_back(stats_plain);
    out.insert(out.end(), plain.begin(), plain.end());
  }
  return out;
}

result<std::vector<tensor_stat>> decode_stats(std::span<const std::uint8_t> section, std::uint32_t count) {
  std::vector<tensor_stat> stats;
  if (section.empty()) {
    if (count != 0) return make_error(errc::invalid_patch, "header: tensor stats missing");
    return stats;
  }
  std::vector<std::uint8_t> unpacked;
  std::span<const std::uint8_t> plain = section.subspan(1);
  if (section[0] == stats_zstd) {
    byte_cursor c(plain);
    auto n = c.varint();
    if (!n || *n > max_stats_plain) return make_error(errc::invalid_patch, "header: bad tensor stats size");
    unpacked.resize(*n);
    auto rest = plain.subspan(c.pos());
    std::size_t got = ZSTD_decompress(unpacked.data(), unpacked.size(), rest.data(), rest.size());
    if (ZSTD_isError(got) || got != *n) return make_error(errc::invalid_patch, "header: corrupt tensor stats");
    plain = unpacked;
  } else if (section[0] != stats_plain) {
    return make_error(errc::invalid_patch, "header: unknown tensor stats encoding");
  }
  byte_cursor c(plain);
  stats.reserve(std::min<std::uint32_t>(count, 1u << 16));
  for (std::uint32_t i = 0; i < count; ++i) {
    tensor_stat s;
    auto enc = c.u8();
    auto name_len = c.varint();
    if (!enc || *enc > static_cast<std::uint8_t>(tensor_encoding::generic) || !name_len)
      return make_error(errc::invalid_patch, "header: bad tensor stat " + std::to_string(i));
    auto name = c.take(*name_len);
    auto tb = name ? c.varint() : std::nullopt;
    auto pb = tb ? c.varint() : std::nullopt;
    if (!pb) return make_error(errc::invalid_patch, "header: truncated tensor stat " + std::to_string(i));
    s.encoding = static_cast<tensor_encoding>(*enc);
    s.name.assign(name->begin(), name->end());
    s.target_bytes = *tb;
    s.patch_bytes = *pb;
    stats.push_back(std::move(s));
  }
  if (c.remaining() != 0) return make_error(errc::invalid_patch, "header: trailing bytes in tensor stats");
  return stats;
}

std::vector<std::uint8_t> encode_unsigned_part(const patch_header& h, bool with_signature) {
  auto stats = encode_stats(h.tensor_stats);
  std::uint8_t flags = h.flags & ~header_flag::is_signed;
  if (with_signature) flags |= header_flag::is_signed;
  std::size_t total = header_fixed_size + stats.size() + header_check_size + (with_signature ? 64 : 0);

  std::vector<std::uint8_t> out;
  out.reserve(total);
  out.insert(out.end(), patch_magic.begin(), patch_magic.end());
  put_u8(out, h.version);
  put_u8(out, static_cast<std::uint8_t>(h.profile));
  put_u8(out, static_cast<std::uint8_t>(h.format));
  put_u8(out, flags);
  put_le(out, total, 4);
  put_u8(out, static_cast<std::uint8_t>(h.compression));
  put_u8(out, h.level);
  put_le(out, 0, 2);
  put_le(out, h.source_size, 8);
  put_le(out, h.target_size, 8);
  out.insert(out.end(), h.source_sha256.begin(), h.source_sha256.end());
  out.insert(out.end(), h.target_sha256.begin(), h.target_sha256.end());
  put_le(out, h.target_version, 8);
  put_le(out, h.created_at, 8);
  put_le(out, h.body_size, 8);
  out.insert(out.end(), h.body_sha256.begin(), h.body_sha256.end());
  put_le(out, h.tensors_modified, 4);
  put_le(out, h.tensors_unchanged, 4);
  put_le(out, h.tensors_added, 4);
  put_le(out, h.tensors_removed, 4);
  put_le(out, h.tensor_stats.size(), 4);
  put_le(out, stats.size(), 4);
  out.insert(out.end(), stats.begin(), stats.end());
  auto check = sha256_of(out);
  out.insert(out.end(), check.begin(), check.begin() + header_check_size);
  return out;
}

}  // namespace

const char* profile_name(patch_profile p) noexcept { return p == patch_profile::mcu ? "mcu" : "standard"; }

const char* compression_name(compression_method c) noexcept {
  switch (c) {
    case compression_method::none: return "none";
    case compression_method::zstd: return "zstd";
    case compression_method::lzss: return "lzss";
  }
  return "unknown";
}

const char* tensor_encoding_name(tensor_encoding e) noexcept {
  switch (e) {
    case tensor_encoding::copy: return "copy";
    case tensor_encoding::xor_delta: return "xor_delta";
    case tensor_encoding::sub_delta: return "sub_delta";
    case tensor_encoding::cast_delta: return "cast_delta";
    case tensor_encoding::ref_delta: return "ref_delta";
    case tensor_encoding::literal: return "literal";
    case tensor_encoding::generic: return "generic";
  }
  return "unknown";
}

std::vector<std::uint8_t> encode_header(const patch_header& h) {
  auto out = encode_unsigned_part(h, h.signature.has_value());
  if (h.signature) out.insert(out.end(), h.signature->begin(), h.signature->end());
  return out;
}

std::vector<std::uint8_t> signed_message(const patch_header& h) { return encode_unsigned_part(h, true); }

result<header_probe> parse_header(std::span<const std::uint8_t> bytes) {
  header_probe probe;
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), patch_magic.data(), 4) != 0)
    return make_error(errc::invalid_patch, "not a Mallorn patch (bad magic)");
  if (bytes.size() >= 5 && bytes[4] != container_version)
    return make_error(errc::unsupported_version,
                      "container version " + std::to_string(bytes[4]) + " is not supported (this build reads version " +
                          std::to_string(container_version) + ")");
  if (bytes.size() < header_fixed_size) return probe;

  byte_cursor c(bytes);
  c.take(4);
  patch_header h;
  h.version = *c.u8();
  auto profile = *c.u8();
  auto format = *c.u8();
  h.flags = *c.u8();
  auto header_size = *c.le(4);
  auto compression = *c.u8();
  h.level = *c.u8();
  auto reserved = *c.le(2);
  if (profile > static_cast<std::uint8_t>(patch_profile::mcu))
    return make_error(errc::invalid_patch, "header: unknown profile " + std::to_string(profile));
  if (format > static_cast<std::uint8_t>(model_format::safetensors))
    return make_error(errc::invalid_patch, "header: unknown model format " + std::to_string(format));
  if (h.flags & ~header_flag::known) return make_error(errc::invalid_patch, "header: unknown flags");
  if (compression > static_cast<std::uint8_t>(compression_method::lzss))
    return make_error(errc::invalid_patch, "header: unknown compression method");
  if (reserved != 0) return make_error(errc::invalid_patch, "header: reserved bytes are not zero");
  if (header_size < header_fixed_size || header_size > max_header_size)
    return make_error(errc::invalid_patch, "header: bad header size " + std::to_string(header_size));
  h.profile = static_cast<patch_profile>(profile);
  h.format = static_cast<model_format>(format);
  h.compression = static_cast<compression_method>(compression);
  probe.header_size = header_size;
  if (bytes.size() < header_size) return probe;

  h.source_size = *c.le(8);
  h.target_size = *c.le(8);
  std::memcpy(h.source_sha256.data(), c.take(32)->data(), 32);
  std::memcpy(h.target_sha256.data(), c.take(32)->data(), 32);
  h.target_version = *c.le(8);
  h.created_at = *c.le(8);
  h.body_size = *c.le(8);
  std::memcpy(h.body_sha256.data(), c.take(32)->data(), 32);
  h.tensors_modified = static_cast<std::uint32_t>(*c.le(4));
  h.tensors_unchanged = static_cast<std::uint32_t>(*c.le(4));
  h.tensors_added = static_cast<std::uint32_t>(*c.le(4));
  h.tensors_removed = static_cast<std::uint32_t>(*c.le(4));
  auto stats_count = static_cast<std::uint32_t>(*c.le(4));
  auto stats_bytes = *c.le(4);
  std::uint64_t sig_bytes = h.is_signed() ? 64 : 0;
  if (header_fixed_size + stats_bytes + header_check_size + sig_bytes != header_size)
    return make_error(errc::invalid_patch, "header: section sizes do not add up to the header size");
  // Unsigned patches too must reject any damaged header byte, not only those that matter today.
  std::size_t checked = header_fixed_size + stats_bytes;
  auto check = sha256_of(bytes.first(checked));
  if (std::memcmp(check.data(), bytes.data() + checked, header_check_size) != 0)
    return make_error(errc::invalid_patch, "header: check bytes do not match (damaged header)");
  auto stats = decode_stats(*c.take(stats_bytes), stats_count);
  if (!stats) return stats.err();
  h.tensor_stats = std::move(*stats);
  c.take(header_check_size);
  if (h.is_signed()) {
    ed25519_signature sig;
    std::memcpy(sig.data(), c.take(64)->data(), 64);
    h.signature = sig;
  }
  probe.header = std::move(h);
  return probe;
}

result<void> sign_header(patch_header& h, const ed25519_private_key& key) {
  h.signature.reset();
  h.flags |= header_flag::is_signed;
  auto sig = ed25519_sign(key, signed_message(h));
  if (!sig) return sig.err();
  h.signature = *sig;
  return {};
}

result<void> verify_header_signature(const patch_header& h, const ed25519_public_key& key) {
  if (!h.is_signed() || !h.signature)
    return make_error(errc::signature_error, "patch is not signed but a public key is configured");
  if (!ed25519_verify(key, signed_message(h), *h.signature))
    return make_error(errc::signature_error, "signature does not verify with the given public key");
  return {};
}

}  // namespace mallorn::core
