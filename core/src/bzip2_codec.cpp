#include "bzip2_codec.hpp"

#include <bzlib.h>

#include <climits>

namespace mallorn::core::detail {
namespace {

error bad(const std::string& what) { return make_error(errc::invalid_patch, "bwt: " + what); }

constexpr int block_size_100k = 9;  // the largest block: the best ratio, ~7.6 MiB encoder / 3.6 MiB decoder state
constexpr int work_factor = 0;      // libbz2's default fallback threshold for repetitive input

}  // namespace

std::vector<std::uint8_t> bzip2_compress(std::span<const std::uint8_t> src) {
  if (src.size() > UINT_MAX / 2) return {};
  // bzip2's documented worst case: 1% + 600 bytes over the input.
  std::vector<std::uint8_t> out(src.size() + src.size() / 100 + 600);
  auto out_len = static_cast<unsigned>(out.size());
  int r = BZ2_bzBuffToBuffCompress(reinterpret_cast<char*>(out.data()), &out_len,
                                   const_cast<char*>(reinterpret_cast<const char*>(src.data())),
                                   static_cast<unsigned>(src.size()), block_size_100k, 0, work_factor);
  if (r != BZ_OK) return {};
  out.resize(out_len);
  return out;
}

result<void> bzip2_decompress(std::span<const std::uint8_t> payload, std::span<std::uint8_t> out) {
  if (payload.size() > UINT_MAX || out.size() > UINT_MAX) return bad("frame too large");
  bz_stream s{};
  if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK) return bad("cannot start the decoder");
  s.next_in = const_cast<char*>(reinterpret_cast<const char*>(payload.data()));
  s.avail_in = static_cast<unsigned>(payload.size());
  s.next_out = reinterpret_cast<char*>(out.data());
  s.avail_out = static_cast<unsigned>(out.size());
  int r = BZ_OK;
  // libbz2 returns BZ_OK while it makes progress; a stream that neither ends nor progresses stops.
  while (r == BZ_OK) {
    unsigned in_before = s.avail_in, out_before = s.avail_out;
    r = BZ2_bzDecompress(&s);
    if (r == BZ_OK && s.avail_in == in_before && s.avail_out == out_before) break;
  }
  unsigned in_left = s.avail_in, out_left = s.avail_out;
  BZ2_bzDecompressEnd(&s);
  if (r != BZ_STREAM_END) return bad(r == BZ_OK ? "stream does not end where the output does" : "corrupt stream");
  if (in_left != 0 || out_left != 0) return bad("stream length does not match the frame");
  return {};
}

}  // namespace mallorn::core::detail
