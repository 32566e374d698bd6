// mallornd's TLS policy (server/src/http/tls_policy.cpp) against the real daemon over loopback,
// driven by the openssl CLI: which protocol versions and suites a client gets in which order, and
// session resumption, with and without client certificates (with them, OpenSSL refused every
// resumption until the context had a session id context: a device whose TLS library resumes got
// a handshake failure on its second connection).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/shell.hpp"
#include "support/test_pki.hpp"

using namespace mallorn::test;

namespace {

struct tls_policy_rig : daemon_store_rig {
  tls_policy_rig() : daemon_store_rig("tls-policy", "tls-policy-admin-0123456789", {"tfm-hello-world-int8"}), certs(dir.path()) {}
  pki certs;
  std::vector<std::string> tls(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--tls-cert", certs.p("server.pem"), "--tls-key", certs.p("server.key")};
    a.insert(a.end(), extra.begin(), extra.end());
    return args(a);
  }
};

// One openssl s_client connection that sends `request` and prints what it negotiated and got.
std::string s_client(const daemon_process& d, const std::string& options, const std::string& request = "") {
  const std::string wire = request.empty() ? "GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n" : request;
  return run_shell("printf '" + wire + "' | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(d.port()) +
                   " -ign_eof " + options + " 2>&1")
      .out;
}

std::string report(const std::string& device_id) {
  const std::string body = nlohmann::json{{"device_id", device_id}, {"state", "idle"}}.dump();
  return "POST /report HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: " +
         std::to_string(body.size()) + "\\r\\nConnection: close\\r\\n\\r\\n" + body;
}

bool negotiated(const std::string& out, const std::string& what) { return out.find("Cipher is " + what) != std::string::npos; }

}  // namespace

TEST(TlsPolicy, ForwardSecretAeadSuitesOnlyInTheServersOrder) {
  tls_policy_rig rig;
  daemon_process d(rig.dir.path(), rig.tls());
  ASSERT_TRUE(d.listening()) << d.log();
  // A client that offers OpenSSL's default order (AES-256 first) gets AES-128-GCM, on 1.3 and 1.2.
  auto tls13 = s_client(d, "-tls1_3");
  EXPECT_TRUE(negotiated(tls13, "TLS_AES_128_GCM_SHA256")) << tls13;
  EXPECT_NE(tls13.find("HTTP/1.1 200"), std::string::npos) << tls13;
  auto tls12 = s_client(d, "-tls1_2");
  EXPECT_TRUE(negotiated(tls12, "ECDHE-ECDSA-AES128-GCM-SHA256")) << tls12;
  // A client that puts ChaCha20 first (no AES instructions) gets it.
  auto chacha = s_client(d, "-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
  EXPECT_TRUE(negotiated(chacha, "TLS_CHACHA20_POLY1305_SHA256")) << chacha;
  // Old or downgrading clients: CBC with SHA-1 (OpenSSL's defaults accepted it), TLS 1.1 (the
  // server answers protocol_version): no handshake.
  for (const std::string& refused : {"-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA", "-tls1_1"}) {
    auto out = s_client(d, refused);
    EXPECT_TRUE(negotiated(out, "(NONE)")) << refused << "\n" << out;
    EXPECT_EQ(out.find("HTTP/1.1"), std::string::npos) << refused << "\n" << out;
  }
  EXPECT_EQ(s_client(d, "-tls1_3").find("Cipher is (NONE)"), std::string::npos) << "the daemon still serves";
}

TEST(TlsPolicy, DevicesResumeSessionsWithTheirCertificateIdentity) {
  tls_policy_rig rig;
  rig.certs.issue("dev-a", "/CN=dev-a");
  daemon_process d(rig.dir.path(),
                   rig.tls({"--tls-client-ca", rig.certs.p("ca.pem"), "--device-auth", "required"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string cert = "-cert " + rig.certs.p("dev-a.pem") + " -key " + rig.certs.p("dev-a.key");
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    const std::string session = rig.certs.p("session" + version + ".pem");
    auto first = s_client(d, version + " " + cert + " -sess_out " + session, report("dev-a"));
    ASSERT_NE(first.find("HTTP/1.1 200"), std::string::npos) << version << "\n" << first;
    // Resumed: no certificate sent again, the identity is the session's.
    auto own = s_client(d, version + " -sess_in " + session, report("dev-a"));
    EXPECT_NE(own.find("Reused, "), std::string::npos) << version << "\n" << own;
    EXPECT_NE(own.find("HTTP/1.1 200"), std::string::npos) << version << "\n" << own;
    auto other = s_client(d, version + " -sess_in " + session, report("dev-b"));
    EXPECT_NE(other.find("Reused, "), std::string::npos) << version << "\n" << other;
    EXPECT_NE(other.find("HTTP/1.1 403"), std::string::npos) << version << "\n" << other;
  }
  // Counted for operators: 2 full handshakes and 4 resumed ones above, then this one, full.
  auto metrics = s_client(d, "-tls1_3 " + cert, "GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n");
  EXPECT_NE(metrics.find("mallornd_tls_handshakes_total{result=\"full\"} 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mallornd_tls_handshakes_total{result=\"resumed\"} 4\n"), std::string::npos) << metrics;
}
