// Locates the real model files used by tests (../shared/models by default).
#pragma once
#include <algorithm>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace mallorn::test {

inline std::filesystem::path models_dir() { return MALLORN_MODELS_DIR; }
inline std::filesystem::path bin_dir() { return MALLORN_BIN_DIR; }
inline std::filesystem::path pair_dir(const char* name) { return models_dir() / "pairs" / name; }

struct model_pair {
  std::string name;
  std::filesystem::path old_path;
  std::filesystem::path new_path;
};

// gtest prints a parameter in each test's name line: the pair's name, not a 112-byte dump.
inline void PrintTo(const model_pair& pair, std::ostream* out) { *out << pair.name; }

// Every pairs/<name>/{old,new}.<ext> under models_dir(), sorted by name.
inline std::vector<model_pair> model_pairs() {
  std::vector<model_pair> pairs;
  auto root = models_dir() / "pairs";
  if (!std::filesystem::exists(root)) return pairs;
  for (const auto& dir : std::filesystem::directory_iterator(root)) {
    model_pair p{dir.path().filename().string(), {}, {}};
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      auto stem = f.path().stem().string();
      if (stem == "old") p.old_path = f.path();
      if (stem == "new") p.new_path = f.path();
    }
    if (!p.old_path.empty() && !p.new_path.empty()) pairs.push_back(p);
  }
  std::sort(pairs.begin(), pairs.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return pairs;
}

}  // namespace mallorn::test
