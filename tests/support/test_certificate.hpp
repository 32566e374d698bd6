// A self-signed P-256 certificate for 127.0.0.1 in a test's directory (cert.pem, key.pem), and
// the mallornd arguments that serve TLS with it.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/shell.hpp"

namespace mallorn::test {

inline bool make_certificate(const std::filesystem::path& dir) {
  auto gen = run_shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 "
                       "-addext subjectAltName=IP:127.0.0.1 -keyout " + (dir / "key.pem").string() + " -out " +
                       (dir / "cert.pem").string() + " 2>&1");
  EXPECT_EQ(gen.exit_code, 0) << gen.out;
  return gen.exit_code == 0;
}

inline std::vector<std::string> tls_args(const std::filesystem::path& dir) {
  return {"--tls-cert", (dir / "cert.pem").string(), "--tls-key", (dir / "key.pem").string()};
}

}  // namespace mallorn::test
