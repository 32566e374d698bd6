// Pruned TFLite models (sparsity metadata): the parser finds the CSR index vectors, and the differ
// codes them as bitmaps (index_bitmap) — siblings retrained from scratch share no indices, so the
// bitmaps' entropy is what a patch must carry.
#include <gtest/gtest.h>

#include "mallorn/formats/model.hpp"
#include "support/patch_roundtrip.hpp"
#include "support/synthetic_tflite.hpp"

using namespace mallorn;

namespace {
const std::vector<test::sparse_matrix_spec> layers = {{120, 256, 1}, {200, 1024, 2}, {40, 512, 4}};

std::uint64_t index_bytes(const formats::model_layout& l) {
  std::uint64_t n = 0;
  for (const auto& v : l.index_vectors) n += v.count * v.width;
  return n;
}
}  // namespace

TEST(SparseTflite, ParserFindsTheCsrIndexVectors) {
  auto model = test::make_sparse_tflite(layers, 1);
  auto layout = formats::parse_tflite(model);
  ASSERT_TRUE(layout.ok()) << layout.err().what();
  ASSERT_EQ(layout->tensors.size(), 3u);
  ASSERT_EQ(layout->index_vectors.size(), 3u);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto& v = layout->index_vectors[i];
    EXPECT_EQ(v.width, layers[i].index_width);
    EXPECT_EQ(v.count, layout->tensors[i].size) << "one index per kept (int8) value";
    ASSERT_LE(v.offset + v.count * v.width, model.size());
    EXPECT_LT(v.offset, layout->tensors.front().offset) << "indices are metadata, before the buffers";
  }
}

TEST(SparseTflite, RetrainedSiblingsIndicesCostAboutTheirEntropy) {
  auto old_model = test::make_sparse_tflite(layers, 1), new_model = test::make_sparse_tflite(layers, 2);
  auto layout = formats::parse_tflite(new_model);
  ASSERT_TRUE(layout.ok());
  // A quarter of 256,000 columns kept at random: 0.81 bits per column, 26 KB in all. Coded as the
  // integers themselves (131 KB) the patch was 67 KB at level 3 and 38 KB at level 19 (bzip2);
  // as bitmaps it is 27 KB at both.
  std::uint64_t indices = index_bytes(*layout);
  for (int level : {3, 19}) {
    formats::diff_options opts;
    opts.level = level;
    opts.neural = level == 19;
    auto patch = test::make_patch(old_model, new_model, opts);
    for (std::size_t chunk : {std::size_t{0}, std::size_t{4096}}) {
      auto out = test::apply_in_chunks(old_model, patch, chunk);
      ASSERT_TRUE(out.ok()) << out.err().what();
      EXPECT_TRUE(*out == new_model) << "level " << level;
    }
    EXPECT_LT(patch.size() * 4, indices) << "level " << level << ": " << patch.size() << " bytes for " << indices;
  }
}
