// Runs the real `mallorn` binary in a fresh temp dir and captures exit code, stdout and stderr.
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/models.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {

struct cli_result {
  int exit_code = -1;
  std::string out;
  std::string err;
  nlohmann::json json() const { return nlohmann::json::parse(out); }
};

class CliTest : public ::testing::Test {
 protected:
  temp_dir tmp_{"cli"};
  const std::filesystem::path& dir() const { return tmp_.path(); }
  std::filesystem::path at(const std::string& name) const { return tmp_.path() / name; }

  // `args` is pasted into a shell command line run in dir(); the paths involved have no spaces.
  cli_result mallorn(const std::string& args) {
    auto bin = (bin_dir() / "mallorn").string();
    auto errfile = (dir().parent_path() / (dir().filename().string() + ".stderr")).string();
    auto r = run_shell("cd '" + dir().string() + "' && '" + bin + "' " + args + " 2>'" + errfile + "'");
    std::ifstream f(errfile);
    std::stringstream ss;
    ss << f.rdbuf();
    std::filesystem::remove(errfile);
    return {r.exit_code, r.out, ss.str()};
  }
  std::string sh(const std::string& cmd) { return run_shell("cd '" + dir().string() + "' && " + cmd).out; }

  // A small real TFLite pair where weights and metadata both changed.
  std::filesystem::path pair_ = models_dir() / "pairs" / "tfm-retinaface_a-to-b";
  std::string old_model() const { return (pair_ / "old.tflite").string(); }
  std::string new_model() const { return (pair_ / "new.tflite").string(); }

  // Files in dir() other than the given ones (leftover temp files, outputs that must not exist).
  std::vector<std::string> stray_files(std::initializer_list<std::string> expected) const {
    std::vector<std::string> stray;
    for (const auto& e : std::filesystem::directory_iterator(dir())) {
      auto name = e.path().filename().string();
      if (std::find(expected.begin(), expected.end(), name) == expected.end()) stray.push_back(name);
    }
    return stray;
  }
};

}  // namespace mallorn::test
