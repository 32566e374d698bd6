#include "lzma_codec.hpp"

#include <lzma.h>

#include <algorithm>
#include <memory>

namespace mallorn::core::detail {
namespace {

error bad(const std::string& what) { return make_error(errc::invalid_patch, "lzma: " + what); }

struct stream_end {
  void operator()(lzma_stream* s) const { lzma_end(s); }
};

std::uint32_t dict_size_for(std::size_t dict, std::size_t out) {
  return static_cast<std::uint32_t>(std::max<std::size_t>(dict + out, LZMA_DICT_SIZE_MIN));
}

bool set_props(lzma_options_lzma& o, unsigned props) {
  if (props >= 9 * 5 * 5) return false;
  o.lc = props % 9;
  o.lp = props / 9 % 5;
  o.pb = props / 45;
  return o.lc + o.lp <= LZMA_LCLP_MAX;
}

std::vector<std::uint8_t> compress_with(std::span<const std::uint8_t> src, std::span<const std::uint8_t> dict,
                                        unsigned props) {
  lzma_options_lzma opt;
  if (lzma_lzma_preset(&opt, 9 | LZMA_PRESET_EXTREME)) return {};
  set_props(opt, props);
  opt.dict_size = dict_size_for(dict.size(), src.size());
  opt.preset_dict = dict.empty() ? nullptr : dict.data();
  opt.preset_dict_size = static_cast<std::uint32_t>(dict.size());
  lzma_filter filters[2] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_raw_encoder(&s, filters) != LZMA_OK) return {};
  std::unique_ptr<lzma_stream, stream_end> guard(&s);
  std::vector<std::uint8_t> out(1 + src.size() + src.size() / 16 + 1024);
  out[0] = static_cast<std::uint8_t>(props);
  s.next_in = src.data();
  s.avail_in = src.size();
  s.next_out = out.data() + 1;
  s.avail_out = out.size() - 1;
  lzma_ret r = lzma_code(&s, LZMA_FINISH);
  if (r != LZMA_STREAM_END) return {};  // incompressible beyond the bound, or out of memory
  out.resize(out.size() - s.avail_out);
  return out;
}

}  // namespace

std::vector<std::uint8_t> lzma_compress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> dict) {
  std::vector<std::uint8_t> best;
  for (unsigned props : {(2u * 5 + 0) * 9 + 3, (2u * 5 + 2) * 9 + 0}) {  // lc3 lp0 pb2 (default); lc0 lp2 pb2
    auto p = compress_with(src, dict, props);
    if (!p.empty() && (best.empty() || p.size() < best.size())) best = std::move(p);
  }
  return best;
}

result<void> lzma_decompress(std::span<const std::uint8_t> payload, std::span<const std::uint8_t> dict,
                             std::span<std::uint8_t> out) {
  if (payload.empty()) return bad("empty payload");
  lzma_options_lzma opt{};
  if (lzma_lzma_preset(&opt, 6)) return bad("no preset");
  if (!set_props(opt, payload[0])) return bad("bad properties byte");
  opt.dict_size = dict_size_for(dict.size(), out.size());
  opt.preset_dict = dict.empty() ? nullptr : dict.data();
  opt.preset_dict_size = static_cast<std::uint32_t>(dict.size());
  lzma_filter filters[2] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_raw_decoder(&s, filters) != LZMA_OK) return bad("cannot start the decoder");
  std::unique_ptr<lzma_stream, stream_end> guard(&s);
  s.next_in = payload.data() + 1;
  s.avail_in = payload.size() - 1;
  s.next_out = out.data();
  s.avail_out = out.size();
  lzma_ret r = lzma_code(&s, LZMA_FINISH);
  if (r != LZMA_STREAM_END) return bad(r == LZMA_OK || r == LZMA_BUF_ERROR ? "stream does not end where the output does"
                                                                           : "corrupt stream");
  if (s.avail_out != 0 || s.avail_in != 0) return bad("stream length does not match the frame");
  return {};
}

}  // namespace mallorn::core::detail
