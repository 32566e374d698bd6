// Device identity on the real mallornd over loopback, driven by real curl and the real CLI:
// mTLS binding of device ids to certificates the openssl CLI makes here (CN, DNS and URI SANs),
// enrollment, admission, short-lived tokens (expiry, renewal, replay, revocation), hostile
// enrollment bodies and the pending-enrollment caps.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/signature.hpp"
#include "mallorn/server/identity/device_requests.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/device_key.hpp"
#include "support/curl_call.hpp"
#include "support/shell.hpp"
#include "support/test_pki.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

const std::string admin_secret = "identity-admin-token-0123456789";

// The shared curl call (support/curl_call.hpp), with the JSON error code at hand.
struct reply : curl_result {
  json doc() const { return json::parse(body, nullptr, false); }
  std::string code() const {
    auto d = doc();
    return d.is_object() && d.contains("error") ? d["error"].value("code", "") : "";
  }
};

reply call(const std::string& args) { return {mallorn::test::curl(args)}; }

// POSTs a JSON body from a file (no shell quoting of hostile bytes).
reply post(const std::filesystem::path& dir, const std::string& url, const std::string& body, const std::string& extra = "") {
  static int n = 0;
  const auto file = dir / ("body-" + std::to_string(n++) + ".json");
  std::ofstream(file, std::ios::binary) << body;
  return call(extra + " -X POST -H 'Content-Type: application/json' --data-binary @" + file.string() + " '" + url + "'");
}

std::string report_body(const std::string& id) { return json{{"device_id", id}, {"state", "idle"}}.dump(); }

struct identity_rig : daemon_store_rig {
  identity_rig() : daemon_store_rig("identity", admin_secret, {"tfm-hello-world-int8"}) {}
  std::string admin() const { return "-H 'Authorization: Bearer " + admin_secret + "'"; }
  std::string cli(const daemon_process& d, const std::string& args) const {
    return (bin_dir() / "mallorn").string() + " fleet " + args + " --server " + d.url() + " --token-file " +
           (dir / "token").string();
  }
};

std::string https(const daemon_process& d, const std::string& path) {
  return "https://127.0.0.1:" + std::to_string(d.port()) + path;
}

}  // namespace

TEST(DeviceIdentityMtls, TheCertificateNamesTheDevice) {
  identity_rig rig;
  pki certs(rig.dir.path());
  certs.issue("dev-a", "/CN=dev-a");
  certs.issue("san", "/CN=not a device id", "subjectAltName=DNS:dev-san,URI:urn:mallorn:device:dev-uri");
  daemon_process d(rig.dir.path(), rig.args({"--tls-cert", certs.p("server.pem"), "--tls-key", certs.p("server.key"),
                                             "--tls-client-ca", certs.p("ca.pem"), "--device-auth", "required"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const auto dir = rig.dir.path();

  auto own = post(dir, https(d, "/report"), report_body("dev-a"), certs.client("dev-a"));
  EXPECT_EQ(own.status, 200) << own.body;
  auto other = post(dir, https(d, "/report"), report_body("dev-b"), certs.client("dev-a"));
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_EQ(other.code(), "device_id_mismatch");
  auto check = post(dir, https(d, "/check-update"), json{{"sha256", std::string(64, '0')}, {"device_id", "dev-b"}}.dump(),
                    certs.client("dev-a"));
  EXPECT_EQ(check.status, 403) << check.body;
  // No device_id: the certificate's is used (the report lands under dev-a).
  auto anonymous_body = post(dir, https(d, "/check-update"), json{{"sha256", std::string(64, '0')}}.dump(), certs.client("dev-a"));
  EXPECT_NE(anonymous_body.status, 401);
  EXPECT_NE(anonymous_body.status, 403);

  // SANs: a DNS name and our URN; the CN that is not a device id binds nothing.
  EXPECT_EQ(post(dir, https(d, "/report"), report_body("dev-san"), certs.client("san")).status, 200);
  EXPECT_EQ(post(dir, https(d, "/report"), report_body("dev-uri"), certs.client("san")).status, 200);
  EXPECT_EQ(post(dir, https(d, "/report"), report_body("dev-a"), certs.client("san")).status, 403);

  // No certificate and no token: 401 (the handshake itself lets token devices in).
  auto bare = post(dir, https(d, "/report"), report_body("dev-a"), "--cacert " + certs.p("ca.pem"));
  EXPECT_EQ(bare.status, 401) << bare.body;
  EXPECT_EQ(bare.code(), "device_auth_required");
  // The device list holds exactly the authenticated ids.
  auto devices = call("--cacert " + certs.p("ca.pem") + " " + rig.admin() + " " + https(d, "/admin/devices")).doc();
  std::set<std::string> ids;
  for (const auto& dv : devices["devices"]) ids.insert(dv["device_id"].get<std::string>());
  EXPECT_EQ(ids, (std::set<std::string>{"dev-a", "dev-san", "dev-uri"})) << devices;
}

TEST(DeviceIdentityEnrollment, AdmissionTokensExpiryReplayAndRevocation) {
  identity_rig rig;
  daemon_process d(rig.dir.path(), rig.args({"--device-auth", "required", "--device-token-ttl", "2"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const auto dir = rig.dir.path();
  device_key key;

  auto enrolled = post(dir, d.url("/enroll"), key.enroll_body("dev-1"));
  EXPECT_EQ(enrolled.status, 202) << enrolled.body;
  EXPECT_EQ(enrolled.doc()["state"], "pending");
  EXPECT_EQ(post(dir, d.url("/enroll"), key.enroll_body("dev-1")).status, 202);  // idempotent
  EXPECT_EQ(post(dir, d.url("/enroll"), device_key{}.enroll_body("dev-1")).status, 409);

  auto unadmitted = post(dir, d.url("/token"), key.token_body("dev-1"));
  EXPECT_EQ(unadmitted.status, 403) << unadmitted.body;
  EXPECT_EQ(unadmitted.code(), "not_admitted");
  EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-1")).status, 401);

  auto pending = run_shell(rig.cli(d, "devices pending --json"));
  ASSERT_EQ(pending.exit_code, 0) << pending.out;
  auto listed = json::parse(pending.out)["devices"];
  ASSERT_EQ(listed.size(), 1u) << listed;
  EXPECT_EQ(listed[0]["public_key"], key.public_b64());
  auto admitted = run_shell(rig.cli(d, "devices admit dev-1") + " 2>&1");
  ASSERT_EQ(admitted.exit_code, 0) << admitted.out;
  EXPECT_NE(admitted.out.find("admitted"), std::string::npos);

  const std::string signed_body = key.token_body("dev-1");
  auto got = post(dir, d.url("/token"), signed_body);
  ASSERT_EQ(got.status, 200) << got.body;
  const std::string token = got.doc()["token"];
  EXPECT_EQ(got.doc()["expires_in"], 2);
  const std::string bearer = "-H 'Authorization: Bearer " + token + "'";
  EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-1"), bearer).status, 200);
  auto as_other = post(dir, d.url("/report"), report_body("dev-2"), bearer);
  EXPECT_EQ(as_other.status, 403);
  EXPECT_EQ(as_other.code(), "device_id_mismatch");
  // The same signed request again: refused, whatever the clock says.
  auto replayed = post(dir, d.url("/token"), signed_body);
  EXPECT_EQ(replayed.status, 401) << replayed.body;
  EXPECT_EQ(replayed.code(), "replayed");
  // Outside the timestamp window; a signature by another key.
  EXPECT_EQ(post(dir, d.url("/token"), key.token_body("dev-1", std::time(nullptr) - 3600)).code(), "stale_timestamp");
  EXPECT_EQ(post(dir, d.url("/token"), device_key{}.token_body("dev-1")).code(), "bad_signature");
  EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-1"), "-H 'Authorization: Bearer mdt_forged'").status, 401);

  // Expiry (2 s): poll with a generous deadline until the token stops working, then renew.
  reply expired;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60); std::chrono::steady_clock::now() < until;) {
    expired = post(dir, d.url("/report"), report_body("dev-1"), bearer);
    if (expired.status == 401) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.code(), "invalid_token");
  auto renewed = post(dir, d.url("/token"), key.token_body("dev-1"));
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  const std::string bearer2 = "-H 'Authorization: Bearer " + renewed.doc()["token"].get<std::string>() + "'";
  EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-1"), bearer2).status, 200);

  // Revocation: the live token stops at once; no new token; the state is final.
  ASSERT_EQ(run_shell(rig.cli(d, "devices revoke dev-1")).exit_code, 0);
  EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-1"), bearer2).status, 401);
  EXPECT_EQ(post(dir, d.url("/token"), key.token_body("dev-1")).status, 403);
  EXPECT_NE(run_shell(rig.cli(d, "devices admit dev-1") + " 2>&1").exit_code, 0);

  // Every admission change is in the audit log, with the token's name.
  auto audit = run_shell(rig.cli(d, "audit --json"));
  ASSERT_EQ(audit.exit_code, 0) << audit.out;
  std::vector<std::string> targets;
  const auto audit_doc = json::parse(audit.out);
  for (const auto& e : audit_doc["entries"])
    if (e["target"].get<std::string>().rfind("/admin/devices/", 0) == 0)
      targets.push_back(e["target"].get<std::string>() + " " + std::to_string(e["status"].get<int>()) + " " +
                        e["actor"].get<std::string>());
  EXPECT_EQ(targets, (std::vector<std::string>{"/admin/devices/dev-1/admit 409 admin", "/admin/devices/dev-1/revoke 200 admin",
                                               "/admin/devices/dev-1/admit 200 admin"}))
      << audit.out;
  auto table = run_shell(rig.cli(d, "audit"));
  EXPECT_NE(table.out.find("/admin/devices/dev-1/revoke"), std::string::npos) << table.out;
}

TEST(DeviceIdentityEnrollment, HostileBodiesAreRefusedAndStoreNothing) {
  identity_rig rig;
  daemon_process d(rig.dir.path(), rig.args({"--device-auth", "optional"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const auto dir = rig.dir.path();
  device_key key;
  const std::string good = key.public_b64();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "bad_json"},
      {"[]", "bad_json"},
      {json{{"public_key", good}}.dump(), "missing_field"},
      {json{{"device_id", "dev\x01x"}, {"public_key", good}}.dump(), "bad_device_id"},
      {json{{"device_id", "dev\nx"}, {"public_key", good}}.dump(), "bad_device_id"},
      {json{{"device_id", std::string(200, 'a')}, {"public_key", good}}.dump(), "bad_device_id"},
      {json{{"device_id", "dev-x"}, {"public_key", "%%%not base64%%%="}}.dump(), "bad_base64"},
      {json{{"device_id", "dev-x"}, {"public_key", good.substr(0, 43)}}.dump(), "bad_base64"},
      {json{{"device_id", "dev-x"}, {"public_key", good.substr(0, 40)}}.dump(), "bad_length"},
      {json{{"device_id", "dev-x"}, {"public_key", " " + good.substr(1)}}.dump(), "bad_base64"},
      {json{{"device_id", "dev-x"}, {"public_key", b64(key.pair.public_key.data(), 31)}}.dump(), "bad_length"},
      {json{{"device_id", "dev-x"}, {"public_key", b64(key.pair.private_key.data(), 64)}}.dump(), "bad_length"},
      {json{{"device_id", "dev-x"}, {"public_key", 12}}.dump(), "missing_field"},
      {json{{"device_id", "dev-x"}, {"public_key", good}, {"tags", {{"k", 1}}}}.dump(), "bad_field"},
  };
  for (const auto& [body, code] : cases) {
    auto r = post(dir, d.url("/enroll"), body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_EQ(r.code(), code) << body;
  }
  auto oversized = post(dir, d.url("/enroll"), json{{"device_id", "dev-x"}, {"public_key", good}, {"pad", std::string(8000, 'x')}}.dump());
  EXPECT_EQ(oversized.status, 413) << oversized.body;
  for (const auto& body : {std::string("{}"), json{{"device_id", "dev-x"}, {"timestamp", "now"}}.dump(),
                           json{{"device_id", "dev-x"}, {"timestamp", 1}, {"nonce", "XYZ"}}.dump()})
    EXPECT_EQ(post(dir, d.url("/token"), body).status, 400) << body;
  auto stored = call(rig.admin() + " " + d.url("/admin/enrollments"));
  ASSERT_EQ(stored.status, 200) << stored.body;
  EXPECT_TRUE(stored.doc()["devices"].empty()) << stored.body;
  // optional: anonymous devices are served, a bad token is not.
  EXPECT_EQ(post(dir, d.url("/report"), report_body("anon-1")).status, 200);
  EXPECT_EQ(post(dir, d.url("/report"), report_body("anon-1"), "-H 'Authorization: Bearer nope'").status, 401);
  // Admin routes need the admin scope and a known device.
  EXPECT_EQ(call("-X POST " + d.url("/admin/devices/dev-x/admit")).status, 401);
  EXPECT_EQ(call("-X POST " + rig.admin() + " " + d.url("/admin/devices/dev-x/admit")).status, 404);
}

TEST(DeviceIdentityEnrollment, PendingEnrollmentsAreCappedPerAddressAndInTotal) {
  identity_rig rig;
  const auto preauth = rig.dir / "preauth.txt";
  device_key pinned;
  std::ofstream(preauth) << "# fleet 7\nfactory-1\npinned-1 " << pinned.public_b64() << "\n";
  daemon_process d(rig.dir.path(), rig.args({"--device-auth", "required", "--device-pending-max", "4",
                                             "--device-pending-per-address", "3", "--device-preauth", preauth.string()}));
  ASSERT_TRUE(d.listening()) << d.log();
  const auto dir = rig.dir.path();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(post(dir, d.url("/enroll"), device_key{}.enroll_body("a-" + std::to_string(i))).status, 202);
  auto per_address = post(dir, d.url("/enroll"), device_key{}.enroll_body("a-3"));
  EXPECT_EQ(per_address.status, 429) << per_address.body;
  // Another loopback address has room for one more before the total cap.
  const std::string from2 = "--interface 127.0.0.2";
  EXPECT_EQ(post(dir, d.url("/enroll"), device_key{}.enroll_body("b-0"), from2).status, 202);
  auto total = post(dir, d.url("/enroll"), device_key{}.enroll_body("b-1"), from2);
  EXPECT_EQ(total.status, 503) << total.body;
  EXPECT_EQ(total.code(), "too_many_pending");
  // Pre-authorised devices are admitted at once, caps or not; a pinned id only with its key.
  auto factory = post(dir, d.url("/enroll"), device_key{}.enroll_body("factory-1"));
  EXPECT_EQ(factory.status, 200) << factory.body;
  EXPECT_EQ(post(dir, d.url("/enroll"), device_key{}.enroll_body("pinned-1")).status, 403);
  EXPECT_EQ(post(dir, d.url("/enroll"), pinned.enroll_body("pinned-1")).status, 200);
  auto token = post(dir, d.url("/token"), pinned.token_body("pinned-1"));
  ASSERT_EQ(token.status, 200) << token.body;
  EXPECT_EQ(post(dir, d.url("/report"), report_body("pinned-1"),
                 "-H 'Authorization: Bearer " + token.doc()["token"].get<std::string>() + "'").status, 200);
}

TEST(DeviceIdentityEnrollment, AuthenticatedDevicesAreRateLimitedAsThemselves) {
  identity_rig rig;
  std::ofstream(rig.dir / "preauth.txt") << "dev-a\ndev-b\n";
  // Four requests per bucket, refilled once in 100 s: nothing refills during the test.
  auto args = rig.args({"--device-auth", "required", "--device-preauth", (rig.dir / "preauth.txt").string()});
  args.insert(args.end(), {"--rate-limit", "0.01", "--rate-burst", "4"});  // the later flag wins
  daemon_process d(rig.dir.path(), args);
  ASSERT_TRUE(d.listening()) << d.log();
  const auto dir = rig.dir.path();
  device_key a, b;
  // Four requests from this address: its bucket is empty afterwards.
  ASSERT_EQ(post(dir, d.url("/enroll"), a.enroll_body("dev-a")).status, 200);
  ASSERT_EQ(post(dir, d.url("/enroll"), b.enroll_body("dev-b")).status, 200);
  auto ta = post(dir, d.url("/token"), a.token_body("dev-a"));
  auto tb = post(dir, d.url("/token"), b.token_body("dev-b"));
  ASSERT_EQ(ta.status, 200) << ta.body;
  ASSERT_EQ(tb.status, 200) << tb.body;
  const std::string bearer_a = "-H 'Authorization: Bearer " + ta.doc()["token"].get<std::string>() + "'";
  const std::string bearer_b = "-H 'Authorization: Bearer " + tb.doc()["token"].get<std::string>() + "'";
  EXPECT_EQ(post(dir, d.url("/enroll"), device_key{}.enroll_body("dev-c")).status, 429);  // the address's bucket
  for (int i = 0; i < 4; ++i) EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-a"), bearer_a).status, 200) << i;
  EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-a"), bearer_a).status, 429);  // dev-a's own bucket
  EXPECT_EQ(post(dir, d.url("/report"), report_body("dev-b"), bearer_b).status, 200);  // dev-b has its own
}
