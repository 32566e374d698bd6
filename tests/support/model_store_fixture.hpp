// A model store made of real model pairs: DIR/<pair name>/1.<ext> and 2.<ext> (symlinks to
// ../shared/models), the layout mallornd serves.
#pragma once
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "support/models.hpp"

namespace mallorn::test {

struct stored_pair {
  std::string model;
  std::filesystem::path v1, v2;  // paths inside the store
};

// Links `count` real pairs (the first ones by name, or those named in `names`) into `store`.
inline std::vector<stored_pair> make_store(const std::filesystem::path& store, const std::vector<std::string>& names) {
  std::vector<stored_pair> out;
  for (const auto& p : model_pairs()) {
    if (std::find(names.begin(), names.end(), p.name) == names.end()) continue;
    const auto dir = store / p.name;
    std::filesystem::create_directories(dir);
    stored_pair s{p.name, dir / ("1" + p.old_path.extension().string()), dir / ("2" + p.new_path.extension().string())};
    std::filesystem::create_symlink(p.old_path, s.v1);
    std::filesystem::create_symlink(p.new_path, s.v2);
    out.push_back(s);
  }
  return out;
}

// Two small real pairs used by most server tests.
inline const std::vector<std::string>& default_pairs() {
  static const std::vector<std::string> names = {"coral-mnv2-quant_2020-to-2021a", "tfm-hello-world-int8"};
  return names;
}

}  // namespace mallorn::test
