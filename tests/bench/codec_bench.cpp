// Decode-speed and size probe for the context coder (transform context_ref) on real model pairs:
// for every tensor whose old and new bytes have the same length, the best zstd-based delta frame
// (XOR / element difference, with and without byte planing, zstd -19) against the context coder,
// and the context decoder's throughput, and the context coder's size without the old tensors (what
// the old weights are worth: little when a model was retrained from scratch). usage: mallorn_codec_bench [--decode-repeat N] OLD NEW [OLD NEW ...]
// (--decode-repeat decodes every payload N times, for profiling the decoder alone).
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "mallorn/core/body_format.hpp"
#include "mallorn/formats/model.hpp"

namespace body = mallorn::core::body;
using bytes = std::vector<std::uint8_t>;

static bytes read_file(const char* path) {
  std::ifstream f(path, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), {});
}

// CPU time of this thread: the machine may be shared, and wall time would measure the neighbours.
static double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

static unsigned width_of(const mallorn::formats::tensor_info& t) {
  unsigned w = mallorn::core::dtype_size(t.type);
  return w == 2 || w == 4 || w == 8 ? w : 1;
}

int main(int argc, char** argv) {
  int repeat = 1;
  if (argc > 2 && std::string(argv[1]) == "--decode-repeat") {
    repeat = std::max(1, std::atoi(argv[2]));
    argv += 2;
    argc -= 2;
  }
  if (argc < 3 || argc % 2 == 0) {
    std::fprintf(stderr, "usage: %s [--decode-repeat N] OLD NEW [OLD NEW ...]\n", argv[0]);
    return 2;
  }
  double total_bytes = 0, total_secs = 0, model_bytes[4] = {}, model_secs[4] = {};
  for (int a = 1; a + 1 < argc; a += 2) {
    auto old_file = read_file(argv[a]), new_file = read_file(argv[a + 1]);
    auto ol = mallorn::formats::parse_model(old_file), nl = mallorn::formats::parse_model(new_file);
    if (!ol || !nl) {
      std::fprintf(stderr, "%s: cannot parse\n", argv[a]);
      return 1;
    }
    std::map<std::string, const mallorn::formats::tensor_info*> by_name;
    for (const auto& t : ol->tensors) by_name[t.name] = &t;
    std::uint64_t raw = 0, zstd_best = 0, ctx = 0, chosen = 0, alone = 0;
    for (std::size_t i = 0; i < nl->tensors.size(); ++i) {
      const auto& t = nl->tensors[i];
      const mallorn::formats::tensor_info* s = nullptr;
      if (auto it = by_name.find(t.name); !t.name.empty() && it != by_name.end()) s = it->second;
      else if (t.name.empty() && i < ol->tensors.size()) s = &ol->tensors[i];
      if (!s || s->size != t.size || t.size < 256) continue;
      unsigned w = width_of(t);
      if (std::getenv("MALLORN_DUMP")) std::printf("T %llu %llu %llu %u %lld\n", (unsigned long long)s->offset, (unsigned long long)t.offset, (unsigned long long)t.size, w, (long long)(t.shape.empty() ? 1 : t.shape[0]));
      for (std::uint64_t off = 0; off < t.size; off += body::max_chunk) {
        std::uint64_t len = std::min<std::uint64_t>(body::max_chunk, t.size - off);
        std::span<const std::uint8_t> target(new_file.data() + t.offset + off, len), ref(old_file.data() + s->offset + off, len);
        if (std::equal(target.begin(), target.end(), ref.begin())) continue;
        std::uint64_t best = len;
        for (auto tf : {body::transform::xor_ref, body::transform::sub_ref})
          for (unsigned pw : {1u, w}) {
            body::data_frame f{body::channel::tensor, tf, static_cast<std::uint8_t>(pw), static_cast<std::uint8_t>(w), len};
            best = std::min<std::uint64_t>(best, body::encode_payload(f, target, ref, 19).size());
          }
        body::data_frame f{body::channel::tensor, body::transform::context_ref, 1, static_cast<std::uint8_t>(w), len};
        auto payload = body::encode_payload(f, target, ref, 19);
        f.payload = payload;
        std::vector<std::uint8_t> out;
        double t0 = cpu_seconds();
        auto r = body::decode_payload(f, ref, out);
        for (int k = 1; k < repeat && r; ++k) {
          out.clear();
          r = body::decode_payload(f, ref, out);
        }
        double dt = (cpu_seconds() - t0) / repeat;
        total_secs += dt;
        total_bytes += static_cast<double>(len);
        model_bytes[payload[0] % 4] += len;
        model_secs[payload[0] % 4] += dt;
        if (!r || !std::equal(out.begin(), out.end(), target.begin())) {
          std::fprintf(stderr, "%s: context round trip FAILED on %s\n", argv[a + 1], t.name.c_str());
          return 1;
        }
        // The same coder without the old tensor: what the old weights are worth to it.
        alone += body::encode_payload(f, target, {}, 19).size();
        raw += len, zstd_best += best, ctx += payload.size(), chosen += std::min<std::uint64_t>(best, payload.size());
      }
    }
    std::printf("%-60s same-size changed tensors %10llu B: best zstd delta %10llu, context coder %10llu (%.3f), "
                "per-frame min %10llu, coded without the old tensors %10llu\n",
                argv[a + 1], static_cast<unsigned long long>(raw), static_cast<unsigned long long>(zstd_best),
                static_cast<unsigned long long>(ctx), zstd_best ? static_cast<double>(ctx) / zstd_best : 0.0,
                static_cast<unsigned long long>(chosen), static_cast<unsigned long long>(alone));
  }
  std::printf("context decode: %.1f MB/s (%.1f MB in %.3f s of CPU time, one core)\n", total_bytes / 1e6 / total_secs,
              total_bytes / 1e6, total_secs);
  for (int m = 0; m < 4; ++m)
    if (model_bytes[m] > 0)
      std::printf("  model %d: %.1f MB decoded at %.1f MB/s\n", m, model_bytes[m] / 1e6, model_bytes[m] / 1e6 / model_secs[m]);
  return 0;
}
