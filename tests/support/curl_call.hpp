// Real curl against a test's daemon: -s, a 30 s cap, the HTTP status on the last line.
#pragma once
#include <cstdlib>
#include <string>

#include "support/shell.hpp"

namespace mallorn::test {

struct curl_result {
  int status = 0;  // 0: no answer
  std::string body;
};

inline curl_result curl(const std::string& args) {
  auto r = run_shell("curl -s -m 30 -w '\\n%{http_code}' " + args + " 2>/dev/null");
  curl_result out;
  auto nl = r.out.rfind('\n');
  if (nl == std::string::npos) return out;
  out.status = std::atoi(r.out.c_str() + nl + 1);
  out.body = r.out.substr(0, nl);
  return out;
}

}  // namespace mallorn::test
