// The `standard` profile body: a sequence of frames, in exactly the order a one-pass decoder
// needs them. Layout and limits: docs/patch-format.md ("Body").
//
//   frame   := type:u8  length:varint  payload[length]
//   ops     := decoded_len:varint  zstd(op*)            op := tag:varint [src_delta:zigzag]
//              tag = len << 2 | kind   (kind 0 copy-from-old, 1 gap bytes, 2 tensor bytes)
//   data    := channel:u8 transform:u8 plane_width:u8 elem_width:u8 out_len:varint
//              nseg:varint (ref_off_delta:zigzag ref_len:varint)*nseg  zstd-payload
//   end     := (empty)
//
// A gap op takes bytes from the gap channel (filled by `data` frames on channel 0 as needed);
// a tensor op takes exactly one `data` frame on channel 1. A data frame decodes to out_len bytes
// from its payload and the reference bytes (the old model's segments, concatenated).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::core::body {

inline constexpr std::uint64_t max_chunk = 4u << 20;        // decoded bytes of one data frame
inline constexpr std::uint64_t max_reference = 16u << 20;   // reference bytes of one data frame
inline constexpr std::uint64_t max_ops_decoded = 1u << 20;  // decoded bytes of one ops frame
inline constexpr std::uint64_t max_segments = 1u << 16;     // reference segments of one data frame
inline constexpr std::uint64_t max_ops_per_frame = 1u << 16;
inline constexpr std::uint64_t max_frame = max_chunk + max_chunk / 64 + (1u << 20);

enum class frame_type : std::uint8_t { ops = 1, data = 2, end = 0xff };
enum class channel : std::uint8_t { gap = 0, tensor = 1 };
enum class op_kind : std::uint8_t { copy = 0, gap = 1, tensor = 2 };

enum class transform : std::uint8_t {
  raw = 0,           // payload is the (byte-planed) output
  prefix = 1,        // zstd with the reference as prefix (generic binary delta); no planing
  xor_ref = 2,       // output = reference XOR residual          (ref_len == out_len)
  sub_ref = 3,       // output = reference + residual per element (wrapping, elem_width bytes)
  cast_f32_f16 = 4,  // output = f16(reference f32) XOR residual  (ref_len == 2*out_len)
  cast_f32_bf16 = 5, // output = bf16(reference f32) XOR residual (ref_len == 2*out_len)
  cast_f16_f32 = 6,  // output = f32(reference f16) XOR residual  (2*ref_len == out_len)
  cast_bf16_f32 = 7, // output = f32(reference bf16) XOR residual (2*ref_len == out_len)
  quant_f32_i8 = 8,  // output = clamp(round(fma(ref, a_g, b_g))) + residual, int8  (ref_len == 4*out_len)
  quant_f32_u8 = 9,  // the same for uint8; a_g, b_g per group of out_len/G elements (re-quantization)
  approx = 10,       // bsdiff-style: approximate matches in the reference + byte differences + extra bytes
  context_ref = 11,  // each byte plane range-coded with contexts from the reference (ref_len == out_len or 0)
  lzma = 12,         // raw LZMA2 with the reference as preset dictionary (any ref_len)
  bwt = 13,          // as raw / xor_ref / sub_ref (a mode byte says which) with bzip2 instead of zstd
  sparse_approx = 14,  // approx with the difference bytes as zero runs, sections stored / zstd / LZMA2
  index_bitmap = 15,   // ascending index vectors rewritten as row bitmaps, then raw / prefix / lzma / bwt
};
inline constexpr std::uint8_t max_transform = 15;

// The first payload byte of a `bwt` frame: what the bzip2 stream holds (before unplaning).
enum class bwt_mode : std::uint8_t {
  raw = 0,      // the output itself (reference length 0)
  xor_ref = 1,  // output XOR reference (reference length = output length)
  sub_ref = 2,  // output - reference, element-wise (reference length = output length)
};

// One bsdiff control triple: `add` bytes of reference+difference, `extra` literal bytes, then the
// reference position moves by `seek`.
struct approx_step {
  std::uint64_t add = 0;
  std::uint64_t extra = 0;
  std::int64_t seek = 0;
};
// Packs an approx payload: varint control length, varint diff length, then one zstd frame of
// control triples (varint add, varint extra, zigzag seek) || difference bytes || extra bytes.
std::vector<std::uint8_t> pack_approx(std::span<const approx_step> steps, std::span<const std::uint8_t> diff,
                                      std::span<const std::uint8_t> extra, int level);
// Packs a sparse_approx payload from the same parts: u8 coder (0 stored, 1 zstd without magic,
// 2 LZMA2), varint control length, varint sparse-difference length, then the coded sections
// control || sparse difference || extra. The smallest coder wins: on tiny patches every byte of a
// zstd frame header and every 128 KiB block of zero differences shows.
std::vector<std::uint8_t> pack_sparse_approx(std::span<const approx_step> steps, std::span<const std::uint8_t> diff,
                                             std::span<const std::uint8_t> extra, int level);

// A vector of little-endian unsigned integers that ascend strictly within runs (TFLite sparsity's
// DimensionMetadata.array_indices: one run per row of a compressed sparse row matrix), `offset`
// bytes into the data it describes.
struct index_vector {
  std::uint64_t offset = 0;
  std::uint64_t count = 0;  // elements
  std::uint8_t width = 1;   // 1, 2 or 4 bytes per element
};
// Packs an index_bitmap payload: each of `vectors` (sorted, non-overlapping, inside `target`) whose
// rows are smaller as bitmaps is rewritten as them; the rewritten bytes are coded by `inner` (raw,
// prefix, lzma or bwt) against `ref` as that transform would code them (raw and bwt: `ref` empty).
// Empty when no vector is worth rewriting or the inner coder failed. Layout: docs/patch-format.md.
std::vector<std::uint8_t> pack_index_bitmap(std::span<const index_vector> vectors, transform inner,
                                            std::span<const std::uint8_t> target, std::span<const std::uint8_t> ref,
                                            int level);

// Affine re-quantization parameters of one group of elements (see transform::quant_*).
struct quant_group {
  float a = 0;  // 1 / scale
  float b = 0;  // zero point
};
// Least-squares fit of q ~ a*x + b per group (groups are contiguous and equal-sized).
std::vector<quant_group> fit_quantization(std::span<const std::uint8_t> ref_f32, std::span<const std::uint8_t> target,
                                          bool is_signed, std::size_t groups);

struct segment {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct data_frame {
  channel ch = channel::gap;
  transform tf = transform::raw;
  std::uint8_t plane_width = 1;  // byte-planing group size (1 = none)
  std::uint8_t elem_width = 1;   // element width for sub_ref (1, 2, 4 or 8)
  std::uint64_t out_len = 0;
  std::vector<segment> reference;
  std::span<const std::uint8_t> payload;  // zstd frame
};

std::uint64_t reference_length(const std::vector<segment>& ref);

// --- byte planing (ZipNN-style): byte i of every w-byte group goes together -------------------
void plane(std::span<const std::uint8_t> in, unsigned width, std::vector<std::uint8_t>& out);
void unplane(std::span<const std::uint8_t> in, unsigned width, std::vector<std::uint8_t>& out);

// --- data frame payloads ----------------------------------------------------------------------
// Encodes `target` for the frame's transform against `ref` (the concatenated reference bytes) at
// zstd `level`; returns the zstd payload. Precondition: lengths consistent with the transform.
std::vector<std::uint8_t> encode_payload(const data_frame& f, std::span<const std::uint8_t> target,
                                         std::span<const std::uint8_t> ref, int level,
                                         std::span<const quant_group> quant = {});
// Decodes a frame into out (resized to out_len). invalid_patch on any inconsistency.
result<void> decode_payload(const data_frame& f, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& out);
// Checks a frame's fields against the limits and the transform's length rules.
result<void> check_data_frame(const data_frame& f, std::uint64_t source_size);

// --- frame (de)serialisation --------------------------------------------------------------------
void append_frame(std::vector<std::uint8_t>& body, frame_type type, std::span<const std::uint8_t> payload);
std::vector<std::uint8_t> encode_data_frame_payload(const data_frame& f);
result<data_frame> parse_data_frame(std::span<const std::uint8_t> payload);
// Container version 3's body: a gap frame's payload without the channel byte and the output length
// (the target size), which the header already says; and back to a data frame payload.
std::vector<std::uint8_t> encode_single_frame_body(const data_frame& f);
std::vector<std::uint8_t> expand_single_frame_body(std::span<const std::uint8_t> body, std::uint64_t target_size);

struct op {
  op_kind kind;
  std::uint64_t length;
  std::uint64_t src_offset = 0;  // copy only
};
// Ops frame payload: decoded length + zstd of the op list. `prev_copy_end` carries the
// delta-coding state across frames.
std::vector<std::uint8_t> encode_ops(std::span<const op> ops, std::uint64_t& prev_copy_end, int level);
result<std::vector<op>> decode_ops(std::span<const std::uint8_t> payload, std::uint64_t& prev_copy_end);

}  // namespace mallorn::core::body
