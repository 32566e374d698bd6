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

std::vector<std::uint8_t> encode_v1(const patch_header& h, bool with_signature) {
  auto stats = encode_stats(h.tensor_stats);
  std::uint8_t flags = h.flags & ~header_flag::is_signed;
  if (with_signature) flags |= header_flag::is_signed;
  std::size_t total = header_fixed_size + stats.size() + header_check_size + (with_signature ? 64 : 0);

  std::vector<std::uint8_t> out(patch_magic.begin(), patch_magic.end());
  out.reserve(total);
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

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

std::uint64_t zigzag(std::int64_t v) { return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63); }
std::int64_t unzigzag(std::uint64_t v) { return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1); }

// Byte 5.. of a version 2 header: what follows the varint header size (docs/patch-format.md).
std::vector<std::uint8_t> v2_fields(const patch_header& h, std::uint8_t flags, const std::vector<std::uint8_t>& stats) {
  std::vector<std::uint8_t> out;
  // Bit 6: the tensor section (counts, stats) follows; a tensorless patch (raw files, vocab-only
  // GGUF, ...) leaves it out.
  bool tensors = h.tensors_modified || h.tensors_unchanged || h.tensors_added || h.tensors_removed || !h.tensor_stats.empty();
  // Bit 7: version 3's single-frame body (always set there, never in version 2).
  put_u8(out, static_cast<std::uint8_t>(static_cast<unsigned>(h.profile) | static_cast<unsigned>(h.format) << 1 |
                                        static_cast<unsigned>(h.compression) << 4 | (tensors ? 0x40u : 0u) |
                                        (h.single_frame_body() ? 0x80u : 0u)));
  put_u8(out, static_cast<std::uint8_t>(flags | h.level << 2 | (h.created_at ? 0x80 : 0)));
  if (h.created_at) put_varint(out, h.created_at);
  put_varint(out, h.source_size);
  put_varint(out, zigzag(static_cast<std::int64_t>(h.target_size - h.source_size)));
  put_varint(out, h.target_version);
  put_varint(out, h.body_size);
  if (tensors) {
    put_varint(out, h.tensors_modified);
    put_varint(out, h.tensors_unchanged);
    put_varint(out, h.tensors_added);
    put_varint(out, h.tensors_removed);
    put_varint(out, h.tensor_stats.size());
    if (!h.tensor_stats.empty()) put_varint(out, stats.size());
  }
  out.insert(out.end(), h.source_sha256.begin(), h.source_sha256.end());
  out.insert(out.end(), h.target_sha256.begin(), h.target_sha256.end());
  out.insert(out.end(), h.body_sha256.begin(), h.body_sha256.end());
  out.insert(out.end(), stats.begin(), stats.end());
  return out;
}

std::vector<std::uint8_t> encode_v2(const patch_header& h, bool with_signature) {
  auto stats = encode_stats(h.tensor_stats);
  std::uint8_t flags = h.flags & ~header_flag::is_signed;
  if (with_signature) flags |= header_flag::is_signed;
  auto fields = v2_fields(h, flags, stats);
  std::size_t rest = fields.size() + header_check_size + (with_signature ? 64 : 0);
  // The header size counts its own varint: take the smallest width that holds the total.
  std::size_t total = 0;
  for (std::size_t w = 1; w <= 10; ++w) {
    total = patch_magic.size() + 1 + w + rest;
    if (varint_size(total) == w) break;
  }
  std::vector<std::uint8_t> out(patch_magic.begin(), patch_magic.end());
  out.reserve(total);
  put_u8(out, h.version);
  put_varint(out, total);
  out.insert(out.end(), fields.begin(), fields.end());
  auto check = sha256_of(out);
  out.insert(out.end(), check.begin(), check.begin() + header_check_size);
  return out;
}

std::vector<std::uint8_t> encode_unsigned_part(const patch_header& h, bool with_signature) {
  return h.version == container_version ? encode_v1(h, with_signature) : encode_v2(h, with_signature);
}

// Checks shared by both versions once the small fields are known.
result<void> check_kinds(unsigned profile, unsigned format, unsigned flags, unsigned compression) {
  if (profile > static_cast<std::uint8_t>(patch_profile::mcu))
    return make_error(errc::invalid_patch, "header: unknown profile " + std::to_string(profile));
  if (format > static_cast<std::uint8_t>(model_format::safetensors))
    return make_error(errc::invalid_patch, "header: unknown model format " + std::to_string(format));
  if (flags & ~header_flag::known) return make_error(errc::invalid_patch, "header: unknown flags");
  if (compression > static_cast<std::uint8_t>(compression_method::lzss))
    return make_error(errc::invalid_patch, "header: unknown compression method");
  return {};
}

result<void> check_bytes(std::span<const std::uint8_t> bytes, std::size_t checked) {
  // Unsigned patches too must reject any damaged header byte, not only those that matter today.
  auto check = sha256_of(bytes.first(checked));
  if (std::memcmp(check.data(), bytes.data() + checked, header_check_size) != 0)
    return make_error(errc::invalid_patch, "header: check bytes do not match (damaged header)");
  return {};
}

result<header_probe> parse_v2(std::span<const std::uint8_t> bytes) {
  header_probe probe;
  byte_cursor c(bytes);
  c.take(5);
  // The header size varint is at most 3 bytes (max_header_size is 1 MiB).
  auto size = c.varint();
  if (!size) {
    if (bytes.size() >= 5 + 3) return make_error(errc::invalid_patch, "header: bad header size");
    return probe;
  }
  if (*size < c.pos() + header_check_size || *size > max_header_size)
    return make_error(errc::invalid_patch, "header: bad header size " + std::to_string(*size));
  probe.header_size = *size;
  if (bytes.size() < *size) return probe;
  auto all = bytes.first(*size);
  byte_cursor f(all.first(*size - header_check_size));
  f.take(c.pos());
  patch_header h;
  h.version = bytes[4];
  auto kinds = f.u8();
  auto flags_level = f.u8();
  if (!flags_level) return make_error(errc::invalid_patch, "header: truncated");
  unsigned profile = *kinds & 1u, format = (*kinds >> 1) & 7u, compression = (*kinds >> 4) & 3u;
  // Bit 7 is the single-frame body: set in every version 3 header and in no version 2 header.
  if ((*kinds >> 7) != (h.version == single_frame_container_version ? 1u : 0u))
    return make_error(errc::invalid_patch, "header: body form bit does not match the container version");
  if (h.single_frame_body() && static_cast<patch_profile>(*kinds & 1u) != patch_profile::standard)
    return make_error(errc::invalid_patch, "header: a single-frame body exists only in the standard profile");
  bool tensors = (*kinds & 0x40u) != 0;
  h.flags = *flags_level & 3u;
  h.level = static_cast<std::uint8_t>((*flags_level >> 2) & 31u);
  if (*flags_level & 0x80) {  // optional creation time
    auto t = f.varint();
    if (!t || *t == 0) return make_error(errc::invalid_patch, "header: bad creation time");
    h.created_at = *t;
  }
  MALLORN_TRY(check_kinds(profile, format, h.flags, compression));
  h.profile = static_cast<patch_profile>(profile);
  h.format = static_cast<model_format>(format);
  h.compression = static_cast<compression_method>(compression);
  std::uint64_t v[9] = {};
  for (int i = 0; i < (tensors ? 9 : 4); ++i) {
    auto x = f.varint();
    if (!x) return make_error(errc::invalid_patch, "header: truncated field " + std::to_string(i));
    v[i] = *x;
  }
  h.source_size = v[0];
  h.target_size = h.source_size + static_cast<std::uint64_t>(unzigzag(v[1]));
  if ((unzigzag(v[1]) < 0 && h.target_size > h.source_size) || (unzigzag(v[1]) > 0 && h.target_size < h.source_size))
    return make_error(errc::invalid_patch, "header: bad target size");
  h.target_version = v[2];
  h.body_size = v[3];
  for (int i = 4; i < 9; ++i)
    if (v[i] > 0xFFFFFFFFull) return make_error(errc::invalid_patch, "header: count out of range");
  h.tensors_modified = static_cast<std::uint32_t>(v[4]);
  h.tensors_unchanged = static_cast<std::uint32_t>(v[5]);
  h.tensors_added = static_cast<std::uint32_t>(v[6]);
  h.tensors_removed = static_cast<std::uint32_t>(v[7]);
  if (tensors && !(v[4] || v[5] || v[6] || v[7] || v[8]))
    return make_error(errc::invalid_patch, "header: empty tensor section");  // one encoding per header
  auto stats_count = static_cast<std::uint32_t>(v[8]);
  std::uint64_t stats_bytes = 0;
  if (stats_count) {
    auto n = f.varint();
    if (!n) return make_error(errc::invalid_patch, "header: truncated stats size");
    stats_bytes = *n;
  }
  auto hashes = f.take(96);
  if (!hashes) return make_error(errc::invalid_patch, "header: truncated hashes");
  std::memcpy(h.source_sha256.data(), hashes->data(), 32);
  std::memcpy(h.target_sha256.data(), hashes->data() + 32, 32);
  std::memcpy(h.body_sha256.data(), hashes->data() + 64, 32);
  std::uint64_t sig_bytes = h.is_signed() ? 64 : 0;
  if (f.pos() + stats_bytes + header_check_size + sig_bytes != *size)
    return make_error(errc::invalid_patch, "header: section sizes do not add up to the header size");
  std::size_t checked = f.pos() + stats_bytes;
  MALLORN_TRY(check_bytes(all, checked));
  auto stats = decode_stats(all.subspan(f.pos(), stats_bytes), stats_count);
  if (!stats) return stats.err();
  h.tensor_stats = std::move(*stats);
  if (h.is_signed()) {
    ed25519_signature sig;
    std::memcpy(sig.data(), all.data() + *size - 64, 64);
    h.signature = sig;
  }
  probe.header = std::move(h);
  return probe;
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
  if (bytes.size() >= 5 && (bytes[4] < container_version || bytes[4] > single_frame_container_version))
    return make_error(errc::unsupported_version, "container version " + std::to_string(bytes[4]) +
                                                     " is not supported (this build reads versions 1 to 3)");
  if (bytes.size() >= 5 && bytes[4] != container_version) return parse_v2(bytes);
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
  MALLORN_TRY(check_kinds(profile, format, h.flags, compression));
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
  MALLORN_TRY(check_bytes(bytes, header_fixed_size + stats_bytes));
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
