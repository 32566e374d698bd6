// The agent over a bad network and over mutual TLS, against the real mallornd: a link that drops
// every connection part-way resumes with at most one read chunk fetched twice per drop; a server
// that disappears mid-transfer leaves the old model active and the reports waiting until it is
// back; HTTPS with client certificates works, and the wrong certificates are refused.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/agent_rig.hpp"
#include "support/cutting_proxy.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

constexpr std::uint64_t read_chunk = 64 * 1024;  // the agent's HTTP read buffer (http_client.cpp)

json journal_of(const std::filesystem::path& home) {
  return json::parse(std::ifstream(home / "slots" / "journal.json"), nullptr, false);
}

// Builds the patch through a first device and returns its size.
std::uint64_t warm_patch(fleet_rig& rig) {
  auto warm = rig.device("warm");
  EXPECT_EQ(fleet_rig::until_done(warm).exit_code, 0);
  return journal_of(warm).value("patch_size", std::uint64_t{0});
}

}  // namespace

TEST(AgentNetwork, DroppedConnectionsResumeWithAtMostOneChunkRefetchedEach) {
  fleet_rig rig(unrelated_pair);
  ASSERT_TRUE(rig.server->listening());
  const std::uint64_t patch_size = warm_patch(rig);
  ASSERT_GT(patch_size, 4 * read_chunk);
  cutting_proxy proxy(rig.server->port());
  proxy.cut_after(patch_size / 5);  // five drops or so before the patch is complete
  rig.device_server_url = proxy.url();
  auto home = rig.device("flaky");
  int interruptions = 0;
  shell_result r;
  for (int run = 0; run < 30; ++run) {
    r = fleet_rig::check_once(home);
    if (r.exit_code == 0) break;
    ASSERT_EQ(r.exit_code, 1) << r.out;
    ++interruptions;
    EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v1));
    EXPECT_EQ(journal_of(home).value("state", ""), "download");
  }
  ASSERT_EQ(r.exit_code, 0) << fleet_rig::log(home) << "\nproxy: " << proxy.upstream_errors() << "\nserver:\n"
                            << rig.server->log();
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v2));
  const std::uint64_t fetched = proxy.body_bytes("GET /patch/");
  const std::uint64_t refetched = fetched - patch_size;
  std::cout << "[ resume ] patch " << patch_size << " bytes, " << interruptions << " dropped connections, "
            << fetched << " bytes fetched, " << refetched << " fetched twice (limit " << interruptions * read_chunk
            << ")\n";
  EXPECT_GE(interruptions, 3);
  EXPECT_EQ(proxy.cuts(), interruptions);
  EXPECT_GE(fetched, patch_size);
  EXPECT_LE(refetched, interruptions * read_chunk);
  // Only the patch travelled: the agent never fell back to the whole model.
  EXPECT_EQ(proxy.body_bytes("GET /model/"), 0u);
}

TEST(AgentNetwork, ServerGoneMidTransferKeepsTheOldModelAndTheReports) {
  fleet_rig rig(unrelated_pair);
  ASSERT_TRUE(rig.server->listening());
  const std::uint64_t patch_size = warm_patch(rig);
  cutting_proxy proxy(rig.server->port());
  proxy.cut_after(patch_size / 2);
  rig.device_server_url = proxy.url();
  auto home = rig.device("gone-1");
  // The transfer is cut half-way, and from then on nothing answers.
  auto first = fleet_rig::check_once(home);
  EXPECT_EQ(first.exit_code, 1) << first.out;
  proxy.refuse(true);
  for (int run = 0; run < 2; ++run) {
    auto r = fleet_rig::check_once(home);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v1));
    EXPECT_EQ(journal_of(home).value("state", ""), "download");
    const auto log = fleet_rig::log(home);
    EXPECT_NE(log.find("interrupted in state download"), std::string::npos) << log;
    EXPECT_NE(log.find("kept for the next contact"), std::string::npos) << log;
  }
  EXPECT_TRUE(std::filesystem::exists(home / "slots" / "reports.pending"));
  EXPECT_GE(std::filesystem::file_size(home / "slots" / "download.part"), patch_size / 2 - read_chunk);
  // The server is back: the waiting reports are delivered and the download resumes.
  proxy.refuse(false);
  proxy.cut_after(0);
  auto done = fleet_rig::until_done(home);
  EXPECT_EQ(done.exit_code, 0) << fleet_rig::log(home);
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v2));
  EXPECT_FALSE(std::filesystem::exists(home / "slots" / "reports.pending"));
  EXPECT_NE(fleet_rig::log(home).find("delivered"), std::string::npos);
  // The server heard of the interruptions the device could not report while it was gone: one
  // delivered at once, two from the outbox.
  const auto server_log = rig.server->log();
  int interrupted_reports = 0;
  for (auto at = server_log.find("device gone-1"); at != std::string::npos; at = server_log.find("device gone-1", at + 1))
    if (server_log.compare(server_log.find(": ", at) + 2, 11, "interrupted") == 0) ++interrupted_reports;
  EXPECT_GE(interrupted_reports, 3) << server_log;
  EXPECT_LE(proxy.body_bytes("GET /patch/"), patch_size + 2 * read_chunk);
}

namespace {

// A throwaway PKI made with the openssl CLI: a CA, a server certificate for 127.0.0.1 and a
// device (client) certificate, plus an unrelated CA.
struct test_pki {
  std::filesystem::path dir;
  explicit test_pki(const std::filesystem::path& d) : dir(d) {
    const std::string o = "cd " + dir.string() + " && ";
    auto ok = [](const std::string& cmd) {
      auto r = run_shell(cmd + " 2>&1");
      EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out;
    };
    const std::string key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    ok(o + key + "-x509 -days 2 -subj /CN=mallorn-test-ca -keyout ca.key -out ca.pem");
    ok(o + key + "-x509 -days 2 -subj /CN=other-ca -keyout other-ca.key -out other-ca.pem");
    std::ofstream(dir / "server.ext") << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
    std::ofstream(dir / "client.ext") << "extendedKeyUsage=clientAuth\n";
    for (std::string who : {"server", "client"}) {
      ok(o + key + "-subj /CN=" + who + " -keyout " + who + ".key -out " + who + ".csr");
      ok(o + "openssl x509 -req -days 2 -in " + who + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -extfile " + who +
         ".ext -out " + who + ".pem");
    }
  }
  std::string operator()(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace

TEST(AgentNetwork, UpdatesOverMutualTlsAndRefusesTheWrongCertificates) {
  temp_dir pki_dir("pki");
  test_pki pki(pki_dir.path());
  fleet_rig rig("tfm-hello-world-int8",
                {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca", pki("ca.pem")});
  ASSERT_TRUE(rig.server->listening()) << rig.server->log();
  rig.device_server_url = "https://127.0.0.1:" + std::to_string(rig.server->port());

  rig.extra_config = {{"ca_file", pki("ca.pem")}, {"client_cert", pki("client.pem")}, {"client_key", pki("client.key")}};
  auto good = rig.device("tls-good");
  auto r = fleet_rig::until_done(good);
  EXPECT_EQ(r.exit_code, 0) << fleet_rig::log(good);
  EXPECT_EQ(sha_of(current_model(good)), sha_of(rig.pair.v2));
  // Its requests after the first resumed the TLS session (no certificate checks, no key agreement).
  const auto metrics = run_shell("curl -s --cacert " + pki("ca.pem") + " --cert " + pki("client.pem") + " --key " +
                                 pki("client.key") + " " + rig.device_server_url + "/metrics");
  EXPECT_NE(metrics.out.find("mallornd_tls_handshakes_total{result=\"resumed\"} "), std::string::npos) << metrics.out;
  EXPECT_EQ(metrics.out.find("mallornd_tls_handshakes_total{result=\"resumed\"} 0\n"), std::string::npos)
      << "the agent never resumed a session:\n" << metrics.out << fleet_rig::log(good);

  // No client certificate: the server ends the handshake.
  rig.extra_config = {{"ca_file", pki("ca.pem")}};
  auto anonymous = rig.device("tls-anonymous");
  r = fleet_rig::check_once(anonymous);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(sha_of(current_model(anonymous)), sha_of(rig.pair.v1));

  // A server certificate the device does not trust: the device ends the handshake.
  rig.extra_config = {{"ca_file", pki("other-ca.pem")}, {"client_cert", pki("client.pem")}, {"client_key", pki("client.key")}};
  auto wary = rig.device("tls-wary");
  r = fleet_rig::check_once(wary);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(sha_of(current_model(wary)), sha_of(rig.pair.v1));
  EXPECT_NE(r.out.find("certificate verify failed"), std::string::npos) << r.out;
}

// After a power cut the part of a download that was not fsynced may read back as garbage. The
// agent cuts the file back to what its checkpoint says was synced (when the boot id changed),
// fetches the rest, and never installs the garbage.
TEST(AgentNetwork, ResumeAfterARebootDropsWhatWasNotSynced) {
  fleet_rig rig(unrelated_pair);
  ASSERT_TRUE(rig.server->listening());
  const std::uint64_t patch_size = warm_patch(rig);
  cutting_proxy proxy(rig.server->port());
  proxy.cut_after(patch_size * 3 / 4);
  rig.device_server_url = proxy.url();
  auto home = rig.device("rebooted");
  EXPECT_EQ(fleet_rig::check_once(home).exit_code, 1);
  const auto part = home / "slots" / "download.part";
  const std::uint64_t on_disk = std::filesystem::file_size(part);
  std::string boot;
  std::uint64_t synced = 0;
  std::ifstream(home / "slots" / "download.part.sync") >> boot >> synced;
  ASSERT_GE(synced, 1u << 20) << "a checkpoint every MiB";
  ASSERT_LE(synced, on_disk);
  // Pretend the machine lost power: another boot, and the tail after the checkpoint is garbage.
  std::ofstream(home / "slots" / "download.part.sync") << "another-boot " << synced / 2 << "\n";
  {
    std::fstream f(part, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(synced / 2));
    const std::string junk(on_disk - synced / 2, '\0');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  proxy.cut_after(0);
  const std::uint64_t before = proxy.body_bytes("GET /patch/");
  auto r = fleet_rig::check_once(home);
  EXPECT_EQ(r.exit_code, 0) << fleet_rig::log(home);
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v2));
  EXPECT_NE(fleet_rig::log(home).find("keeping its " + std::to_string(synced / 2) + " synced bytes"), std::string::npos)
      << fleet_rig::log(home);
  // Only what was not known to be synced was fetched again, not the whole patch.
  EXPECT_EQ(proxy.body_bytes("GET /patch/") - before, patch_size - synced / 2);
}
