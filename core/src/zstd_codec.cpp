#include "zstd_codec.hpp"

// For ZSTD_c_format / ZSTD_d_format (experimental section, stable since zstd 1.4): they are only
// parameter ids passed to the exported setParameter, so the shared libzstd serves them.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <memory>

namespace mallorn::core::detail {
namespace {

struct cctx_free { void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); } };
struct dctx_free { void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); } };

ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, cctx_free> c(ZSTD_createCCtx());
  return c.get();
}
ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, dctx_free> d(ZSTD_createDCtx());
  return d.get();
}

int ceil_log2(std::uint64_t v) {
  int l = 0;
  while ((1ull << l) < v) ++l;
  return l;
}

// The decoder accepts windows up to this (references are at most 16 MiB + a 4 MiB chunk).
constexpr int max_window_log = 25;

}  // namespace

std::vector<std::uint8_t> zstd_compress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> prefix,
                                        int level, bool magicless) {
  ZSTD_CCtx* c = thread_cctx();
  ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
  if (magicless) ZSTD_CCtx_setParameter(c, ZSTD_c_format, ZSTD_f_zstd1_magicless);
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, std::clamp(level, 1, ZSTD_maxCLevel()));
  // The frame's length and integrity are carried by the container; save the bytes.
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
  ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0);
  if (!prefix.empty()) {
    // As `zstd --patch-from`: the window must reach back over the whole reference.
    int wlog = std::clamp(ceil_log2(prefix.size() + src.size()), 10, max_window_log);
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog);
    if (prefix.size() >= (1u << 20)) ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, 1);
    ZSTD_CCtx_refPrefix(c, prefix.data(), prefix.size());
  } else {
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, std::clamp(ceil_log2(src.size()), 10, max_window_log));
  }
  std::vector<std::uint8_t> out(ZSTD_compressBound(src.size()));
  std::size_t n = ZSTD_compress2(c, out.data(), out.size(), src.data(), src.size());
  if (ZSTD_isError(n)) {
    // Only possible on allocation failure; an empty result makes the caller pick another encoding.
    return {};
  }
  out.resize(n);
  return out;
}

static result<std::size_t> decompress_into(std::span<const std::uint8_t> src, std::span<const std::uint8_t> prefix,
                                           std::span<std::uint8_t> out, bool magicless) {
  ZSTD_DCtx* d = thread_dctx();
  ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
  ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, max_window_log);
  if (magicless) ZSTD_DCtx_setParameter(d, ZSTD_d_format, ZSTD_f_zstd1_magicless);
  if (!prefix.empty()) ZSTD_DCtx_refPrefix(d, prefix.data(), prefix.size());
  std::size_t n = ZSTD_decompressDCtx(d, out.data(), out.size(), src.data(), src.size());
  if (ZSTD_isError(n))
    return make_error(errc::invalid_patch, std::string("zstd: ") + ZSTD_getErrorName(n));
  return n;
}

result<std::size_t> zstd_decompress_bounded(std::span<const std::uint8_t> src, std::span<std::uint8_t> out,
                                            bool magicless) {
  return decompress_into(src, {}, out, magicless);
}

result<void> zstd_decompress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> prefix,
                             std::span<std::uint8_t> out, bool magicless) {
  auto got = decompress_into(src, prefix, out, magicless);
  if (!got) return got.err();
  std::size_t n = *got;
  if (n != out.size())
    return make_error(errc::invalid_patch, "zstd: frame decoded to " + std::to_string(n) + " bytes, expected " +
                                               std::to_string(out.size()));
  return {};
}

}  // namespace mallorn::core::detail
