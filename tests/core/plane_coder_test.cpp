// The context coder (transform context_ref): every model round-trips on real retrained tensors and
// on every element width, with and without a reference; damaged payloads give a clean error; and a
// patch using it applies identically however the body is split.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "../../core/src/mixing_coder.hpp"
#include "../../core/src/plane_coder.hpp"
#include "mallorn/core/body_format.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_header.hpp"
#include "mallorn/formats/model.hpp"
#include "support/models.hpp"
#include "support/patch_roundtrip.hpp"
#include "support/synthetic_models.hpp"

namespace body = mallorn::core::body;
namespace detail = mallorn::core::detail;
using bytes_t = std::vector<std::uint8_t>;

namespace {

struct tensor_pair {
  std::string name;
  bytes_t old_bytes, new_bytes;
  unsigned width;
};

bytes_t load(const std::string& pair, const char* which) {
  auto dir = mallorn::test::models_dir() / "pairs" / pair;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().stem() == which) {
      auto r = mallorn::core::read_file(f.path());
      return r.ok() ? *r : bytes_t{};
    }
  return {};
}

// Same-named tensors of a real pair whose bytes changed but kept their length.
std::vector<tensor_pair> changed_tensors(const std::string& pair) {
  auto o = load(pair, "old"), n = load(pair, "new");
  auto ol = mallorn::formats::parse_model(o), nl = mallorn::formats::parse_model(n);
  std::vector<tensor_pair> out;
  if (!ol || !nl) return out;
  std::map<std::string, const mallorn::formats::tensor_info*> by_name;
  for (const auto& t : ol->tensors) by_name[t.name] = &t;
  for (const auto& t : nl->tensors) {
    auto it = by_name.find(t.name);
    if (it == by_name.end() || it->second->size != t.size || t.size < 64) continue;
    bytes_t a(o.begin() + it->second->offset, o.begin() + it->second->offset + t.size);
    bytes_t b(n.begin() + t.offset, n.begin() + t.offset + t.size);
    if (a == b) continue;
    unsigned w = mallorn::core::dtype_size(t.type);
    out.push_back({t.name, std::move(a), std::move(b), w == 2 || w == 4 || w == 8 ? w : 1});
  }
  return out;
}

std::uint64_t varint_at(const bytes_t& b, std::size_t& at) {
  std::uint64_t v = 0;
  for (int shift = 0; at < b.size(); shift += 7) {
    auto x = b[at++];
    v |= std::uint64_t{x & 0x7fu} << shift;
    if (!(x & 0x80)) break;
  }
  return v;
}

// Whether payload byte `pos` lies in a range-coded stream (not in stored raw bits or planes), per
// the layout in docs/patch-format.md.
bool in_range_coded_part(const bytes_t& payload, unsigned width, std::size_t pos) {
  std::size_t at = 1;
  if (payload[0] == detail::residual_model) {
    auto len = varint_at(payload, at);
    return pos >= at && pos < at + len;
  }
  std::vector<std::pair<std::uint64_t, bool>> planes;
  for (unsigned k = 0; k < width; ++k) {
    auto tag = varint_at(payload, at);
    planes.push_back({tag >> 1, (tag & 1) != 0});
  }
  for (auto [len, raw] : planes) {
    if (pos >= at && pos < at + len) return !raw;
    at += len;
  }
  return false;
}

bytes_t decode(const bytes_t& payload, const bytes_t& ref, unsigned width, std::size_t out_len, bool& ok) {
  bytes_t out(out_len);
  ok = detail::context_decode(payload, ref, width, out).ok();
  return out;
}

}  // namespace

// A retrained f32 model (tfm-mnist-lstm) and a retrained int8 one (tfm-custom-model-rf-keras): each
// model, with the old tensor as reference and without, gives back the new bytes exactly.
TEST(ContextCoder, EveryModelRoundTripsOnRealRetrainedTensors) {
  for (const char* pair : {"tfm-mnist-lstm", "tfm-custom-model-rf-keras"}) {
    auto tensors = changed_tensors(pair);
    ASSERT_GE(tensors.size(), 5u) << pair;
    std::uint64_t raw = 0, best = 0;
    for (const auto& t : tensors) {
      for (unsigned m = 0; m < detail::context_models; ++m)
        for (bool with_ref : {true, false}) {
          bytes_t ref = with_ref ? t.old_bytes : bytes_t{};
          auto payload = detail::context_encode(t.new_bytes, ref, t.width, m);
          bool ok = false;
          auto out = decode(payload, ref, t.width, t.new_bytes.size(), ok);
          ASSERT_TRUE(ok) << pair << " " << t.name << " model " << m << " ref " << with_ref;
          ASSERT_EQ(out, t.new_bytes) << pair << " " << t.name << " model " << m << " ref " << with_ref;
        }
      raw += t.new_bytes.size();
      best += detail::context_encode_best(t.new_bytes, t.old_bytes, t.width).size();
    }
    // Retrained weights are mostly noise: the coder must still find some redundancy in them.
    EXPECT_LT(best, raw * 95 / 100) << pair;
  }
}

// Model 3 mixes the old-bytes prediction (model 0's) with the neighbour's (model 1's): on real
// retrained tensors it must beat the better of the two single-context models in total.
TEST(ContextCoder, MixingBeatsEitherSingleContextOnRealTensors) {
  for (const char* pair : {"tfm-mnist-lstm", "tfm-custom-model-rf-keras"}) {
    std::uint64_t old_only = 0, near_only = 0, mixed = 0;
    for (const auto& t : changed_tensors(pair)) {
      old_only += detail::context_encode(t.new_bytes, t.old_bytes, t.width, 0).size();
      near_only += detail::context_encode(t.new_bytes, t.old_bytes, t.width, 1).size();
      mixed += detail::context_encode(t.new_bytes, t.old_bytes, t.width, detail::mixing_model).size();
    }
    EXPECT_LT(mixed, std::min(old_only, near_only)) << pair << ": model 0 " << old_only << ", model 1 " << near_only;
  }
}

// f16-like, f64 and odd lengths (trailing bytes that are not a whole element), identical and
// unrelated references, all through the public frame API.
TEST(ContextCoder, EveryWidthAndTailRoundTripsThroughDataFrames) {
  std::mt19937 rng(5);
  std::normal_distribution<float> w(0.f, 0.05f), step(0.f, 0.01f);
  for (unsigned width : {1u, 2u, 4u, 8u})
    for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{4099}}) {
      bytes_t ref(n), target(n);
      for (std::size_t i = 0; i + 4 <= n; i += 4) {
        float a = w(rng), b = a + step(rng);
        std::memcpy(&ref[i], &a, 4);
        std::memcpy(&target[i], &b, 4);
      }
      for (std::size_t i = n / 4 * 4; i < n; ++i) ref[i] = static_cast<std::uint8_t>(rng()), target[i] = static_cast<std::uint8_t>(rng());
      for (int variant = 0; variant < 3; ++variant) {
        bytes_t r = variant == 0 ? ref : variant == 1 ? target : bytes_t{};  // related, identical, none
        body::data_frame f;
        f.ch = body::channel::tensor;
        f.tf = body::transform::context_ref;
        f.elem_width = static_cast<std::uint8_t>(width);
        f.out_len = n;
        if (!r.empty()) f.reference.push_back({0, r.size()});
        ASSERT_TRUE(body::check_data_frame(f, r.size()).ok());
        auto payload = body::encode_payload(f, target, r, 19);
        f.payload = payload;
        bytes_t out;
        ASSERT_TRUE(body::decode_payload(f, r, out).ok()) << width << " " << n << " " << variant;
        EXPECT_EQ(out, target) << width << " " << n << " " << variant;
        if (variant == 1 && n >= 4000) EXPECT_LT(payload.size(), n / 20) << "an unchanged tensor costs almost nothing";
      }
    }
}

TEST(ContextCoder, FrameRulesAreChecked) {
  body::data_frame f;
  f.tf = body::transform::context_ref;
  f.out_len = 100;
  f.elem_width = 2;
  f.reference.push_back({0, 99});
  EXPECT_FALSE(body::check_data_frame(f, 1000).ok());  // reference neither empty nor out_len
  f.reference[0] = {0, 100};
  EXPECT_TRUE(body::check_data_frame(f, 1000).ok());
  f.plane_width = 2;
  EXPECT_FALSE(body::check_data_frame(f, 1000).ok());  // the coder does its own planing
  bytes_t out(100), ref(100);
  bytes_t unknown_model = {7, 0, 0};
  EXPECT_FALSE(detail::context_decode(unknown_model, ref, 2, out).ok());
  EXPECT_FALSE(detail::context_decode({}, ref, 2, out).ok());
  EXPECT_FALSE(detail::context_decode(unknown_model, ref, 3, out).ok());  // width 3
}

// Flipped bytes and truncations of real coded tensors: never a crash or overread (the fuzz target
// and ASan builds check that part harder), always the right output length, and damage to the
// range-coded part is detected by the coder itself almost always (its flush leaves a known state).
// Damage to stored raw bits cannot be seen here: the patch's target SHA-256 catches it.
TEST(ContextCoder, DamagedPayloadsGiveCleanErrors) {
  auto tensors = changed_tensors("tfm-mnist-lstm");
  ASSERT_FALSE(tensors.empty());
  std::mt19937 rng(11);
  std::size_t tried = 0, detected = 0;
  for (const auto& t : tensors) {
    for (unsigned m = 0; m < detail::context_models; ++m) {
      auto payload = detail::context_encode(t.new_bytes, t.old_bytes, t.width, m);
      for (std::size_t cut = 0; cut < payload.size(); cut += 1 + payload.size() / 16) {
        bool ok = true;
        decode(bytes_t(payload.begin(), payload.begin() + cut), t.old_bytes, t.width, t.new_bytes.size(), ok);
        EXPECT_FALSE(ok) << "truncated to " << cut << " of " << payload.size();
      }
      for (int k = 0; k < 40; ++k) {
        auto damaged = payload;
        std::size_t at = rng() % damaged.size();
        damaged[at] ^= static_cast<std::uint8_t>(1 + rng() % 255);
        bool ok = true;
        auto out = decode(damaged, t.old_bytes, t.width, t.new_bytes.size(), ok);
        EXPECT_EQ(out.size(), t.new_bytes.size());
        if (in_range_coded_part(payload, t.width, at)) {
          ++tried;
          detected += ok ? 0 : 1;
        }
      }
    }
  }
  EXPECT_GE(detected * 100, tried * 90) << detected << " of " << tried << " detected";
}

namespace {
// Transforms of the body's data frames, in order.
std::vector<body::transform> frame_transforms(const bytes_t& patch) {
  std::vector<body::transform> out;
  auto probe = mallorn::core::parse_header(patch);
  EXPECT_TRUE(probe.ok() && probe->header);
  if (!probe.ok() || !probe->header) return out;
  std::size_t at = probe->header_size;
  while (at < patch.size()) {
    auto type = patch[at++];
    std::uint64_t len = 0;
    for (int shift = 0;; shift += 7) {
      auto b = patch[at++];
      len |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) break;
    }
    if (type == static_cast<std::uint8_t>(body::frame_type::data)) {
      auto f = body::parse_data_frame(std::span<const std::uint8_t>(patch).subspan(at, len));
      EXPECT_TRUE(f.ok());
      if (f.ok()) out.push_back(f->tf);
    }
    at += len;
  }
  return out;
}

void expect_split_independent(const bytes_t& o, const bytes_t& n, const bytes_t& patch) {
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{65536}, std::size_t{0}}) {
    auto out = mallorn::test::apply_in_chunks(o, patch, chunk);
    ASSERT_TRUE(out.ok()) << chunk << ": " << out.err().what();
    EXPECT_TRUE(*out == n) << "chunk " << chunk;
  }
}
}  // namespace

// A model whose every weight moved (as after retraining; synthetic, so that the context coder is
// sure to be chosen), patched with --neural at level 19, applies bit for bit whether the body
// arrives in 1-byte, 7-byte, 64 KiB or random pieces. Then the same for the real retrained pairs,
// whatever their frames are (at this size the whole-file LZMA delta may win).
TEST(ContextCoder, PatchAppliesIdenticallyHoweverTheBodyIsSplit) {
  mallorn::formats::diff_options opts;
  opts.neural = true;
  opts.level = 19;
  auto w = mallorn::test::random_weights_f32(100000, 21);
  auto o = mallorn::test::make_safetensors({{"w", "F32", {100000}, w}});
  auto n = mallorn::test::make_safetensors({{"w", "F32", {100000}, mallorn::test::perturb_f32(w, 1.0, 22)}});
  auto patch = mallorn::test::make_patch(o, n, opts);
  auto tfs = frame_transforms(patch);
  EXPECT_NE(std::find(tfs.begin(), tfs.end(), body::transform::context_ref), tfs.end()) << "no context_ref frame";
  EXPECT_LT(patch.size(), n.size() * 3 / 4) << "noise at 1/50 of the weights leaves ~6 of 32 bits predictable";
  expect_split_independent(o, n, patch);
  for (const char* pair : {"tfm-mnist-lstm", "tfm-custom-model-rf-keras"}) {
    auto po = load(pair, "old"), pn = load(pair, "new");
    expect_split_independent(po, pn, mallorn::test::make_patch(po, pn, opts));
  }
}
