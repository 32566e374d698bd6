// The TLS transport tests' rig (tls_transport_test.cpp, release/idle_memory_test.cpp): a
// TLS mallornd over one small pair, a bare GET, and a process's resident memory.
#pragma once
#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "support/daemon_store_rig.hpp"
#include "support/test_certificate.hpp"

namespace mallorn::test {

// A TLS mallornd over one small pair.
struct tls_rig : daemon_store_rig {
  tls_rig() : daemon_store_rig("tls-transport", "tls-admin-token-0123456789", {"coral-mnv2-quant_2020-to-2021a"}) {
    EXPECT_TRUE(make_certificate(dir.path()));
  }
  std::vector<std::string> tls(std::vector<std::string> extra = {}) const {
    auto a = tls_args(dir.path());
    a.insert(a.end(), extra.begin(), extra.end());
    return args(a);
  }
};

inline std::string get(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"; }

inline std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

}  // namespace mallorn::test
