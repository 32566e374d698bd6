// Shared set-up for the mallorn_lite tests: an old slot holding the source image, an empty
// (used, not erased) new slot, mcu patches made by the real encoder, and a feeding loop.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <vector>

#include "flash_sim.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/formats/mcu_patch.hpp"
#include "support/models.hpp"

namespace mallorn::test {

inline std::vector<std::uint8_t> load(const std::filesystem::path& p) {
  auto r = core::read_file(p);
  EXPECT_TRUE(r.ok()) << p;
  return r.ok() ? *r : std::vector<std::uint8_t>{};
}

inline std::filesystem::path tfm_pair(const std::string& name) { return models_dir() / "pairs" / name; }

inline std::vector<std::uint8_t> make_mcu_patch(std::span<const std::uint8_t> old_img, std::span<const std::uint8_t> new_img,
                                                formats::mcu_options opts = {}) {
  core::memory_sink sink;
  if (!opts.created_at) opts.created_at = 1700000000;
  auto st = formats::create_mcu_patch(old_img, new_img, sink, opts);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().what());
  return sink.data;
}

inline std::uint32_t slot_size_for(std::size_t image, std::uint32_t erase) {
  return static_cast<std::uint32_t>((image + erase - 1) / erase * erase + 2 * erase);
}

struct ab_slots {
  ab_slots(std::span<const std::uint8_t> old_img, std::size_t capacity, std::uint32_t erase = 4096, std::uint32_t align = 8)
      : a(power, slot_size_for(capacity, erase), erase, align), b(power, slot_size_for(capacity, erase), erase, align) {
    a.program(old_img);
  }
  sim_power power;
  sim_flash a;  // old (running) slot
  sim_flash b;  // new (inactive) slot
};

// Splits feeding: given the bytes left, how many to hand over next.
using chunker = std::function<std::size_t(std::size_t left)>;
inline chunker whole() {
  return [](std::size_t left) { return left; };
}
inline chunker fixed(std::size_t n) {
  return [n](std::size_t left) { return std::min(n, left); };
}
inline chunker random_split(unsigned seed, std::size_t max = 700) {
  auto rng = std::make_shared<std::mt19937>(seed);
  return [rng, max](std::size_t left) { return std::min<std::size_t>(left, 1 + (*rng)() % max); };
}

// Feeds patch[from..] in chunks; returns the first negative code, or finish()'s result.
inline int feed_all(mallorn_lite_ctx& ctx, std::span<const std::uint8_t> patch, std::size_t from, const chunker& split) {
  std::size_t off = from;
  int r = 1;
  while (off < patch.size()) {
    mallorn_lite_in in{patch.data() + off, split(patch.size() - off), 0};
    r = mallorn_lite_feed(&ctx, &in);
    if (r < 0) return r;
    off += in.pos;
    if (r == 0) break;
    if (in.pos != in.size) return -100;  // wanted more but did not take what it was given
  }
  if (r != 0) return -MALLORN_LITE_E_CORRUPT;  // the patch ended before the applier was done
  return mallorn_lite_finish(&ctx);
}

inline int apply_mcu(ab_slots& s, std::span<const std::uint8_t> patch, const chunker& split = whole()) {
  mallorn_lite_ctx ctx;
  int r = mallorn_lite_init(&ctx, s.a.area(), s.b.area());
  if (r) return r;
  return feed_all(ctx, patch, mallorn_lite_resume_offset(&ctx), split);
}

inline mallorn_lite_slot_state slot_state(const sim_flash& f) {
  mallorn_lite_slot_info info{};
  EXPECT_EQ(mallorn_lite_slot_read(f.area(), &info), 0);
  return info.state;
}

}  // namespace mallorn::test
