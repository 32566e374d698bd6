// A model store of real pairs plus an admin token file in a temp dir, and the mallornd arguments
// that serve them: what the tests that start the real daemon share.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/model_store_fixture.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {

struct daemon_store_rig {
  temp_dir dir;
  std::string admin_token;
  std::vector<stored_pair> pairs;
  daemon_store_rig(const std::string& tag, std::string token, const std::vector<std::string>& names = default_pairs())
      : dir(tag), admin_token(std::move(token)) {
    std::filesystem::create_directories(dir / "models");
    pairs = make_store(dir / "models", names);
    std::ofstream(dir / "token") << admin_token << "\n";
    std::filesystem::permissions(dir / "token", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  // Fast builds (level 3, no neural), no rate limit; `extra` appended.
  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"--models", (dir / "models").string(), "--data", (dir / "data").string(),
                                  "--admin-token-file", (dir / "token").string(), "--level", "3", "--no-neural",
                                  "--rate-limit", "0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

}  // namespace mallorn::test
