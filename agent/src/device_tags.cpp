#include "mallorn/agent/device_tags.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

extern char** environ;

namespace mallorn::agent {
namespace {

constexpr std::size_t max_output = 64 * 1024;
constexpr auto command_timeout = std::chrono::seconds(10);

// Runs argv, returns its stdout when it exits 0 in time with at most max_output bytes.
std::optional<std::string> run_capture(const std::vector<std::string>& command, std::string& why) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    why = "cannot create a pipe";
    return std::nullopt;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::vector<std::string> args = command;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (spawned != 0) {
    ::close(fds[0]);
    why = "cannot run " + command[0];
    return std::nullopt;
  }
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + command_timeout;
  bool ok = true;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      why = "timed out after 10 s";
      ok = false;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      why = "read failed";
      ok = false;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_output) {
      why = "printed more than 64 KiB";
      ok = false;
      break;
    }
  }
  ::close(fds[0]);
  if (!ok) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!ok) return std::nullopt;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    why = "exited with status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> collect_tags(const agent_config& cfg) {
  auto tags = cfg.tags;
  if (cfg.tags_command.empty()) return tags;
  std::string why;
  auto out = run_capture(cfg.tags_command, why);
  if (!out) {
    spdlog::warn("tags_command {}: {}; sending the config's tags only", cfg.tags_command[0], why);
    return tags;
  }
  auto doc = nlohmann::json::parse(*out, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    spdlog::warn("tags_command {}: did not print a JSON object; sending the config's tags only", cfg.tags_command[0]);
    return tags;
  }
  for (const auto& [k, v] : doc.items()) {
    if (v.is_string()) tags[k] = v.get<std::string>();
    else if (v.is_number() || v.is_boolean()) tags[k] = v.dump();
  }
  return tags;
}

}  // namespace mallorn::agent
