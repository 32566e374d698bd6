// A CA, a server certificate for 127.0.0.1 and client certificates signed by it, made with the
// openssl CLI in a test's directory (identity and TLS policy tests).
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/shell.hpp"

namespace mallorn::test {

// The CA (ca.pem) signs server.pem (for 127.0.0.1) and every certificate issue() makes.
struct pki {
  std::filesystem::path dir;
  explicit pki(const std::filesystem::path& d) : dir(d) {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test-ca "
        "-keyout " + p("ca.key") + " -out " + p("ca.pem"));
    issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1");
  }
  std::string p(const std::string& name) const { return (dir / name).string(); }
  void run(const std::string& cmd) {
    auto r = run_shell(cmd + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.out;
  }
  void issue(const std::string& name, const std::string& subject, const std::string& ext = "") {
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '" + subject + "' -keyout " +
        p(name + ".key") + " -out " + p(name + ".csr"));
    std::string extfile;
    if (!ext.empty()) {
      std::ofstream(dir / (name + ".ext")) << ext << "\n";
      extfile = " -extfile " + p(name + ".ext");
    }
    run("openssl x509 -req -in " + p(name + ".csr") + " -CA " + p("ca.pem") + " -CAkey " + p("ca.key") +
        " -CAcreateserial -days 1 -out " + p(name + ".pem") + extfile);
  }
  std::string client(const std::string& name) const {
    return "--cacert " + p("ca.pem") + " --cert " + p(name + ".pem") + " --key " + p(name + ".key");
  }
};

}  // namespace mallorn::test
