// Patch-size guard: every real pair of ../shared/models/pairs is diffed at the default setting and
// at the server's (--level 19 --neural); a patch more than 1% larger than its row in
// tests/formats/patch_sizes.tsv fails. Shrinking passes. When a change makes patches larger on
// purpose, regenerate the table (tests/formats/patch_sizes.py) in the same commit.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "mallorn/core/io.hpp"
#include "support/models.hpp"
#include "support/patch_roundtrip.hpp"

using namespace mallorn;

namespace {

struct sizes {
  std::uint64_t default_bytes = 0, server_bytes = 0;
};

std::map<std::string, sizes> load_table() {
  std::map<std::string, sizes> t;
  std::ifstream in(std::filesystem::path(MALLORN_SOURCE_DIR) / "tests" / "formats" / "patch_sizes.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string name;
    sizes s;
    if (row >> name >> s.default_bytes >> s.server_bytes) t[name] = s;
  }
  return t;
}

const std::map<std::string, sizes>& table() {
  static const auto t = load_table();
  return t;
}

std::vector<std::uint8_t> load(const std::filesystem::path& p) {
  auto r = core::read_file(p);
  EXPECT_TRUE(r.ok()) << p;
  return r.ok() ? *r : std::vector<std::uint8_t>{};
}

// Allowed: the table's size plus 1% (rounded down).
std::uint64_t limit(std::uint64_t recorded) { return recorded + recorded / 100; }

}  // namespace

TEST(PatchSizeGuard, TableCoversEveryPair) {
  ASSERT_FALSE(test::model_pairs().empty());
  for (const auto& p : test::model_pairs())
    EXPECT_TRUE(table().count(p.name)) << p.name << " has no row in tests/formats/patch_sizes.tsv";
}

class PatchSizeGuard : public ::testing::TestWithParam<test::model_pair> {};

TEST_P(PatchSizeGuard, NoPatchGrowsMoreThanOnePercent) {
  auto it = table().find(GetParam().name);
  if (it == table().end()) GTEST_SKIP() << "no row (TableCoversEveryPair fails for it)";
  auto old_model = load(GetParam().old_path);
  auto new_model = load(GetParam().new_path);
  formats::diff_options server;
  server.level = 19;
  server.neural = true;
  auto d = test::make_patch(old_model, new_model).size();
  auto s = test::make_patch(old_model, new_model, server).size();
  EXPECT_LE(d, limit(it->second.default_bytes)) << "default setting: " << d << " bytes, table " << it->second.default_bytes;
  EXPECT_LE(s, limit(it->second.server_bytes)) << "server setting: " << s << " bytes, table " << it->second.server_bytes;
}

INSTANTIATE_TEST_SUITE_P(Models, PatchSizeGuard, ::testing::ValuesIn(test::model_pairs()), [](const auto& info) {
  std::string n = info.param.name;
  for (auto& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});
