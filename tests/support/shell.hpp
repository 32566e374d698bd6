// Runs a shell command and captures its stdout and exit code (for checks against independent
// tools such as md5sum and sha256sum, and for driving the real CLI).
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace mallorn::test {

struct shell_result {
  int exit_code = -1;
  std::string out;
};

inline shell_result run_shell(const std::string& cmd) {
  shell_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// First whitespace-separated word of a command's output (e.g. the hash from md5sum).
inline std::string first_word(const std::string& cmd) {
  auto out = run_shell(cmd).out;
  return out.substr(0, out.find_first_of(" \n"));
}

}  // namespace mallorn::test
