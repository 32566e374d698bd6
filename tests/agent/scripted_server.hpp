// tests/agent/scripted_server.py run for one test: its own directory, its own port, stopped
// with the test. See the script for what it can be told to do.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/shell.hpp"

namespace mallorn::test {

inline std::filesystem::path script_path() {
  return std::filesystem::path(__FILE__).parent_path() / "scripted_server.py";
}

class scripted_server {
 public:
  explicit scripted_server(const std::filesystem::path& root) : root_(root) {
    std::filesystem::create_directories(root / "files");
    thread_ = std::thread([this] {
      run_shell("timeout 120 python3 " + script_path().string() + " " + root_.string() + " " + (root_ / "port").string());
    });
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream(root_ / "port") >> port_;
    }
  }
  ~scripted_server() {
    run_shell("pkill -f '" + script_path().string() + " " + root_.string() + " '");
    thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& root() const { return root_; }
  // The body of every check-update answer (raw bytes: it need not be JSON).
  void answer(const std::string& body) const { std::ofstream(root_ / "check-update.json") << body; }
  // How each route misbehaves (see scripted_server.py).
  void behave(const nlohmann::json& how) const { std::ofstream(root_ / "behaviour.json") << how.dump(); }
  void serve(const std::string& name, const std::filesystem::path& file) const {
    std::filesystem::copy_file(file, root_ / "files" / name, std::filesystem::copy_options::overwrite_existing);
  }
  // Every request received: {"method", "path", "headers"}.
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(root_ / "requests.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  // The largest size the watched file reached while an answer was being sent (0: never seen).
  std::uint64_t watch_max() const {
    std::uint64_t n = 0;
    std::ifstream(root_ / "watch-max") >> n;
    return n;
  }
  std::vector<nlohmann::json> reports() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(root_ / "reports.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

 private:
  std::filesystem::path root_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace mallorn::test
