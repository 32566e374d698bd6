// Every real model file parses strictly, with tensors inside the file, sorted and disjoint.
#include <gtest/gtest.h>

#include "mallorn/core/io.hpp"
#include "mallorn/formats/model.hpp"
#include "support/models.hpp"

using namespace mallorn;

namespace {
std::vector<std::filesystem::path> real_files() {
  std::vector<std::filesystem::path> out;
  for (const auto& p : test::model_pairs()) {
    out.push_back(p.old_path);
    out.push_back(p.new_path);
  }
  for (const auto& f : std::filesystem::directory_iterator(test::models_dir() / "singles")) out.push_back(f.path());
  return out;
}
}  // namespace

TEST(RealModels, AllParseStrictlyWithSaneLayouts) {
  int files = 0;
  for (const auto& f : real_files()) {
    auto bytes = *core::read_file(f);
    auto layout = formats::parse_model(bytes, /*strict=*/true);
    ASSERT_TRUE(layout.ok()) << f << ": " << layout.err().what();
    EXPECT_NE(layout->format, core::model_format::raw) << f;
    std::uint64_t end = 0, covered = 0;
    for (const auto& t : layout->tensors) {
      EXPECT_GE(t.offset, end) << f << " " << t.name;
      EXPECT_LE(t.offset + t.size, bytes.size()) << f << " " << t.name;
      EXPECT_GT(t.size, 0u);
      end = t.offset + t.size;
      covered += t.size;
    }
    // Weight-carrying files: most bytes are tensor data. Not so for GGUF vocab files (no tensors),
    // EdgeTPU-compiled models (weights live in the edgetpu custom op's options blob) and tiny models.
    auto name = f.string();
    bool exempt = name.find("vocab") != std::string::npos || name.find("edgetpu") != std::string::npos ||
                  bytes.size() < 64 * 1024;
    if (!exempt) EXPECT_GT(covered * 2, bytes.size()) << f << " tensors cover only " << covered;
    ++files;
  }
  EXPECT_GE(files, 40);
}

TEST(RealModels, SafetensorsFactsMatchTheHeader) {
  // Header length 80 and the single F32 [29528, 2] tensor: read with python's struct + json.
  auto bytes = *core::read_file(test::models_dir() / "pairs/m2v-test-model_f32-to-f16/old.safetensors");
  auto l = formats::parse_safetensors(bytes);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->tensors.size(), 1u);
  EXPECT_EQ(l->tensors[0].name, "embeddings");
  EXPECT_EQ(l->tensors[0].type, core::dtype::f32);
  EXPECT_EQ(l->tensors[0].offset, 8u + 80u);
  EXPECT_EQ(l->tensors[0].size, 29528u * 2 * 4);
  EXPECT_EQ(l->tensors[0].plane_width, 4u);
}

TEST(RealModels, GgufFactsMatchAnIndependentReader) {
  // Facts from a 30-line python GGUF reader: v3, 24 tensors (F32/F16), alignment 32, data at 1664,
  // first tensor l0_weights [3,3,1,64] F16 at relative offset 0.
  auto bytes = *core::read_file(test::models_dir() / "singles/superpoint.gguf");
  auto l = formats::parse_gguf(bytes);
  ASSERT_TRUE(l.ok()) << l.err().what();
  ASSERT_EQ(l->tensors.size(), 24u);
  EXPECT_EQ(l->tensors[0].name, "l0_weights");
  EXPECT_EQ(l->tensors[0].offset, 1664u);
  EXPECT_EQ(l->tensors[0].size, 3u * 3 * 1 * 64 * 2);
  EXPECT_EQ(l->tensors[0].type, core::dtype::f16);
}

TEST(RealModels, TfliteTensorsCarryNamesAndTypes) {
  auto bytes = *core::read_file(test::models_dir() / "pairs/coral-mnv2-quant_2020-to-2021a/old.tflite");
  auto l = formats::parse_tflite(bytes);
  ASSERT_TRUE(l.ok());
  ASSERT_GT(l->tensors.size(), 50u);
  int named = 0, int8_or_u8 = 0;
  for (const auto& t : l->tensors) {
    named += !t.name.empty();
    int8_or_u8 += t.type == core::dtype::u8 || t.type == core::dtype::i8;
  }
  EXPECT_GT(named, 50);
  EXPECT_GT(int8_or_u8, 40) << "a quantized MobileNet stores uint8 weights";
}
