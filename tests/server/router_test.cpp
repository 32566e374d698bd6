#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mallorn/core/patch_applier.hpp"
#include "mallorn/server/http_server.hpp"
#include "server_rig.hpp"

using namespace mallorn;
using mallorn::test::server_rig;
using nlohmann::json;

namespace {

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string admin_token = "0123456789abcdef-secret";

server::router_config admin_config() {
  server::router_config c;
  c.admin_token = admin_token;
  return c;
}

std::map<std::string, std::string> bearer(const std::string& token = admin_token) {
  return {{"authorization", "Bearer " + token}};
}

}  // namespace

TEST(Router, CheckUpdateBuildsOnceThenServesAPatchThatReproducesTheTarget) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  const std::string body = json{{"sha256", server_rig::sha_of(pair.v1)}, {"device_id", "dev-1"}}.dump();
  auto first = rig.call("POST", "/check-update", body);
  ASSERT_EQ(first.status, 202u) << first.body;
  ASSERT_NE(first.header("Retry-After"), nullptr);
  auto pending = json::parse(first.body);
  EXPECT_EQ(pending["full_url"], "/model/" + pair.model + "/2");
  EXPECT_TRUE(pending["patch_url"].is_null());

  auto ready = rig.ready_update(pair.v1);
  EXPECT_EQ(ready["update_available"], true);
  EXPECT_EQ(ready["current_version"], "1");
  EXPECT_EQ(ready["target_version"], "2");
  EXPECT_EQ(ready["target_sha256"], server_rig::sha_of(pair.v2));
  const std::string id = ready["patch_id"];
  EXPECT_EQ(ready["patch_url"], "/patch/" + id);

  auto patch = rig.call("GET", "/patch/" + id);
  ASSERT_EQ(patch.status, 200u);
  ASSERT_TRUE(patch.file);
  const std::string bytes = test::read_slice(*patch.file);
  EXPECT_EQ(bytes.size(), ready["patch_size"].get<std::size_t>());
  EXPECT_EQ(core::to_hex(core::sha256_of({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()})), id);

  // The served patch applies to the device's model and yields the target exactly.
  std::ofstream(rig.dir / "p.mlrn", std::ios::binary) << bytes;
  auto applied = core::apply_patch_file(pair.v1, rig.dir / "p.mlrn", rig.dir / "out.bin");
  ASSERT_TRUE(applied.ok()) << applied.err().what();
  EXPECT_EQ(file_bytes(rig.dir / "out.bin"), file_bytes(pair.v2));
}

TEST(Router, UpToDateUnknownAndShortIdAnswers) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  auto latest = rig.call("POST", "/check-update", json{{"sha256", server_rig::sha_of(pair.v2)}}.dump());
  ASSERT_EQ(latest.status, 200u);
  EXPECT_EQ(json::parse(latest.body)["update_available"], false);

  // The seed's request: only the fingerprint short id.
  auto fp = json::parse(rig.call("GET", "/fingerprint/" + pair.model + "/1").body);
  auto by_short = rig.call("POST", "/check-update", json{{"short_id", fp["short_id"]}}.dump());
  EXPECT_TRUE(by_short.status == 200u || by_short.status == 202u) << by_short.body;
  EXPECT_EQ(json::parse(by_short.body)["current_version"], "1");

  auto unknown = rig.call("POST", "/check-update", json{{"sha256", std::string(64, 'a')}}.dump());
  EXPECT_EQ(unknown.status, 404u);
  // A known model in an unknown build: the full download is offered.
  auto foreign = rig.call("POST", "/check-update", json{{"sha256", std::string(64, 'a')}, {"model", pair.model}}.dump());
  ASSERT_EQ(foreign.status, 200u);
  EXPECT_EQ(json::parse(foreign.body)["status"], "full_only");
}

TEST(Router, MalformedRequestsGetJsonErrors) {
  server_rig rig;
  for (const std::string& body : std::vector<std::string>{"", "{", "[1,2]", "\"x\"", "{\"sha256\": 5}", "{\"sha256\": \"zz\"}", "{}",
                                 "{\"short_id\": \"not-hex-not-16\"}", "{\"sha256\":\"" + std::string(64, 'a') + "\",\"profile\":\"tiny\"}"}) {
    auto r = rig.call("POST", "/check-update", body);
    EXPECT_EQ(r.status, 400u) << body;
    auto doc = json::parse(r.body);
    EXPECT_TRUE(doc["error"]["code"].is_string()) << r.body;
    EXPECT_TRUE(doc["error"]["message"].is_string());
  }
  EXPECT_EQ(rig.call("GET", "/check-update").status, 405u);
  EXPECT_EQ(rig.call("DELETE", "/patch/" + std::string(64, 'a')).status, 405u);
  EXPECT_EQ(rig.call("GET", "/nope").status, 404u);
}

// An error message that echoes a client string which is not UTF-8 (router_fuzz found this one:
// the JSON serializer threw out of the handler) is still a JSON answer, with U+FFFD in place.
TEST(Router, ErrorsEchoingInvalidUtf8AreStillJson) {
  server_rig rig(admin_config());
  const auto& pair = rig.pairs[0];
  auto r = rig.call("POST", "/create-patch?model=" + pair.model + "&source_version=2&target_version=1\xbd\xbd", "",
                    bearer());
  EXPECT_EQ(r.status, 404u) << r.body;
  auto doc = json::parse(r.body);
  EXPECT_EQ(doc["error"]["code"], "unknown_version");
  EXPECT_NE(doc["error"]["message"].get<std::string>().find("\xef\xbf\xbd"), std::string::npos) << r.body;
}

TEST(Router, PathTraversalNeverReachesAFile) {
  server_rig rig;
  const auto& model = rig.pairs[0].model;
  for (const std::string& target :
       std::vector<std::string>{"/model/../../etc/passwd", "/model/%2e%2e/%2e%2e", "/model/" + model + "/..%2f..%2fetc%2fpasswd",
        "/model/" + model + "/%2e%2e", "/model/%2Fetc/passwd", "/model/" + model + "/1%00.tflite",
        "/fingerprint/..", "/patch/../index.sqlite", "//etc/passwd", "/model/" + model + "/.uploads",
        "/model/" + model + "/..\\..\\x", "etc/passwd", "/model/" + model + "/1.tflite/../2"}) {
    auto r = rig.call("GET", target);
    EXPECT_TRUE(r.status == 400u || r.status == 404u) << target << " -> " << r.status;
    EXPECT_FALSE(r.file) << target;
  }
  // And the legitimate route works.
  auto ok = rig.call("GET", "/model/" + model + "/1");
  ASSERT_EQ(ok.status, 200u);
  EXPECT_EQ(test::read_slice(*ok.file), file_bytes(rig.pairs[0].v1));
}

TEST(Router, RangesIfRangeAndConditionalRequests) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  const auto size = std::filesystem::file_size(pair.v2);
  const std::string target = "/model/" + pair.model + "/2";
  const std::string etag = "\"" + server_rig::sha_of(pair.v2) + "\"";
  const std::string whole = file_bytes(pair.v2);

  auto tail = rig.call("GET", target, {}, {{"range", "bytes=1000-"}});
  ASSERT_EQ(tail.status, 206u);
  EXPECT_EQ(*tail.header("Content-Range"), "bytes 1000-" + std::to_string(size - 1) + "/" + std::to_string(size));
  EXPECT_EQ(test::read_slice(*tail.file), whole.substr(1000));

  auto mid = rig.call("GET", target, {}, {{"range", "bytes=10-19"}});
  ASSERT_EQ(mid.status, 206u);
  EXPECT_EQ(test::read_slice(*mid.file), whole.substr(10, 10));

  auto suffix = rig.call("GET", target, {}, {{"range", "bytes=-5"}});
  ASSERT_EQ(suffix.status, 206u);
  EXPECT_EQ(test::read_slice(*suffix.file), whole.substr(size - 5));

  auto beyond = rig.call("GET", target, {}, {{"range", "bytes=" + std::to_string(size) + "-"}});
  EXPECT_EQ(beyond.status, 416u);
  EXPECT_EQ(*beyond.header("Content-Range"), "bytes */" + std::to_string(size));

  auto same = rig.call("GET", target, {}, {{"range", "bytes=10-19"}, {"if-range", etag}});
  EXPECT_EQ(same.status, 206u);
  auto changed = rig.call("GET", target, {}, {{"range", "bytes=10-19"}, {"if-range", "\"other\""}});
  EXPECT_EQ(changed.status, 200u);
  EXPECT_EQ(changed.file->length, size);

  auto not_modified = rig.call("GET", target, {}, {{"if-none-match", etag}});
  EXPECT_EQ(not_modified.status, 304u);
  EXPECT_FALSE(not_modified.file);

  auto head = rig.call("HEAD", target);
  EXPECT_EQ(head.status, 200u);
  EXPECT_FALSE(head.file);
  EXPECT_EQ(head.head_length, size);
}

TEST(Router, AdminRoutesNeedTheBearerToken) {
  {
    server_rig disabled;  // no token configured
    EXPECT_EQ(disabled.call("POST", "/admin/rescan", {}, bearer()).status, 403u);
  }
  server_rig rig(admin_config());
  EXPECT_EQ(rig.call("POST", "/admin/rescan").status, 401u);
  EXPECT_EQ(rig.call("POST", "/admin/rescan", {}, bearer("wrong-token-wrong-token")).status, 401u);
  EXPECT_EQ(rig.call("POST", "/admin/rescan", {}, {{"authorization", "Basic " + admin_token}}).status, 401u);
  EXPECT_EQ(rig.call("POST", "/create-patch?source_version=1&target_version=2").status, 401u);
  auto rescan = rig.call("POST", "/admin/rescan", {}, bearer());
  EXPECT_EQ(rescan.status, 200u) << rescan.body;
  EXPECT_EQ(json::parse(rescan.body)["versions"], 2 * rig.pairs.size());
}

TEST(Router, CreatePatchWaitsForTheBuildAndIsIdempotent) {
  server_rig rig(admin_config());
  const auto& model = rig.pairs[0].model;
  auto ambiguous = rig.call("POST", "/create-patch?source_version=1&target_version=2", {}, bearer());
  EXPECT_EQ(ambiguous.status, 409u);  // both stored models have versions 1 and 2
  auto made = rig.call("POST", "/create-patch?source_version=1&target_version=2&model=" + model, {}, bearer());
  ASSERT_EQ(made.status, 200u) << made.body;
  auto again = rig.call("POST", "/create-patch?source_version=1&target_version=2&model=" + model, {}, bearer());
  EXPECT_EQ(json::parse(again.body)["patch_id"], json::parse(made.body)["patch_id"]);
  EXPECT_EQ(rig.call("POST", "/create-patch?source_version=1&target_version=9&model=" + model, {}, bearer()).status, 404u);
  auto manifest = json::parse(rig.call("GET", "/manifest").body);
  ASSERT_EQ(manifest["patches"].size(), 1u);
  EXPECT_EQ(manifest["models"][model]["latest"], "2");
}

TEST(Router, UploadAddsAVersionAtomically) {
  server_rig rig(admin_config());
  const auto& pair = rig.pairs[0];
  const auto staging = rig.store->staging_dir();
  std::filesystem::create_directories(staging);
  auto stage = [&](const std::string& name) {
    std::filesystem::copy_file(pair.v2, staging / name);
    return staging / name;
  };
  server::http_request req{"PUT", "/admin/models/" + pair.model + "/3", bearer(), {}, stage("a"), "127.0.0.1"};
  req.headers["x-content-sha256"] = std::string(64, '0');
  auto bad_digest = rig.routes->handle(req);
  EXPECT_EQ(bad_digest.status, 400u);
  EXPECT_FALSE(std::filesystem::exists(rig.dir / "models" / pair.model / "3.tflite"));

  req.headers["x-content-sha256"] = server_rig::sha_of(pair.v2);
  auto created = rig.routes->handle(req);
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(file_bytes(rig.dir / "models" / pair.model / "3.tflite"), file_bytes(pair.v2));
  EXPECT_EQ(json::parse(rig.call("GET", "/fingerprint/" + pair.model).body)["version"], "3");

  // Same version, other content: refused, the stored file is untouched.
  std::filesystem::copy_file(pair.v1, staging / "b");
  server::http_request clash{"PUT", "/admin/models/" + pair.model + "/3", bearer(), {}, staging / "b", "127.0.0.1"};
  EXPECT_EQ(rig.routes->handle(clash).status, 409u);
  EXPECT_EQ(file_bytes(rig.dir / "models" / pair.model / "3.tflite"), file_bytes(pair.v2));
}

TEST(Router, ReportsAreStoredPerDevice) {
  server_rig rig(admin_config());
  auto ok = rig.call("POST", "/report",
                     json{{"device_id", "cam-7"}, {"model", "m"}, {"from_version", "1"}, {"to_version", "2"},
                          {"state", "downloading"}, {"bytes_downloaded", 100}}.dump());
  EXPECT_EQ(ok.status, 200u) << ok.body;
  rig.call("POST", "/report", json{{"device_id", "cam-7"}, {"state", "rolled_back"}, {"error", "health check failed"}}.dump());
  EXPECT_EQ(rig.call("POST", "/report", json{{"device_id", "cam-7"}, {"state", "exploded"}}.dump()).status, 400u);
  EXPECT_EQ(rig.call("POST", "/report", json{{"state", "committed"}}.dump()).status, 400u);
  EXPECT_EQ(rig.call("POST", "/report", json{{"device_id", "x"}, {"state", "committed"}, {"bytes_downloaded", -4}}.dump()).status, 400u);
  auto devices = json::parse(rig.call("GET", "/admin/devices/cam-7", {}, bearer()).body);
  ASSERT_EQ(devices["devices"].size(), 1u);
  EXPECT_EQ(devices["devices"][0]["state"], "rolled_back");
  EXPECT_EQ(devices["devices"][0]["error"], "health check failed");
  EXPECT_EQ(rig.call("GET", "/admin/devices/nobody", {}, bearer()).status, 404u);
}

TEST(Router, RateLimitAnswers429WithRetryAfter) {
  server::router_config cfg;
  auto now = std::chrono::steady_clock::now();
  cfg.clock = [&] { return now; };
  server_rig rig(cfg, {}, /*rate=*/1.0);  // burst of 2
  EXPECT_EQ(rig.call("GET", "/healthz").status, 200u);
  EXPECT_EQ(rig.call("GET", "/healthz").status, 200u);
  auto limited = rig.call("GET", "/healthz");
  EXPECT_EQ(limited.status, 429u);
  ASSERT_NE(limited.header("Retry-After"), nullptr);
  now += std::chrono::seconds(2);
  EXPECT_EQ(rig.call("GET", "/healthz").status, 200u);
}

// Addresses of one IPv6 /64 share one bucket (the session sets client_key = address_key()):
// rotating through the /64 does not buy a fresh burst.
TEST(Router, RateLimitCountsAnIpv6Slash64AsOneClient) {
  server::router_config cfg;
  auto now = std::chrono::steady_clock::now();
  cfg.clock = [&] { return now; };
  server_rig rig(cfg, {}, /*rate=*/1.0);  // burst of 2
  auto from = [&](const std::string& address) {
    server::http_request req{"GET", "/healthz", {}, {}, {}, address, server::address_key(address)};
    auto plan = rig.routes->plan(req);
    return plan.reject ? plan.reject->status : rig.routes->handle(req).status;
  };
  EXPECT_EQ(from("2001:db8:1:2::1"), 200u);
  EXPECT_EQ(from("2001:db8:1:2::2"), 200u);
  EXPECT_EQ(from("2001:db8:1:2:ffff::3"), 429u);
  EXPECT_EQ(from("2001:db8:1:3::1"), 200u);  // another /64 is another client
}

TEST(Router, MetricsAndHealth) {
  server_rig rig;
  auto health = rig.call("GET", "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(json::parse(health.body)["versions"], 2 * rig.pairs.size());
  rig.routes->draining = [] { return true; };
  EXPECT_EQ(rig.call("GET", "/healthz").status, 503u);
  rig.stats.request_done("check-update", 200, 0.002);
  auto text = rig.call("GET", "/metrics").body;
  EXPECT_NE(text.find("mallornd_requests_total{route=\"check-update\",status=\"200\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("mallornd_request_duration_seconds_bucket{route=\"check-update\",le=\"0.0025\"} 1"), std::string::npos);
  EXPECT_NE(text.find("# TYPE mallornd_builds_total counter"), std::string::npos);
}

TEST(Router, IndexFileOrdersVersionsAndPinsChannels) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  const auto dir = rig.dir / "models" / pair.model;
  // "2" is the older release here, and the beta channel stays on it.
  std::ofstream(dir / "index.json") << R"({"order": ["2", "1"], "channels": {"beta": "2", "gone": "7"}})";
  auto report = rig.store->rescan();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->warnings.size(), 1u);  // the channel naming a missing version
  EXPECT_EQ(json::parse(rig.call("GET", "/fingerprint/" + pair.model).body)["version"], "1");
  auto stable = json::parse(rig.call("POST", "/check-update", json{{"sha256", server_rig::sha_of(pair.v2)}}.dump()).body);
  EXPECT_EQ(stable["target_version"], "1");
  auto beta = rig.call("POST", "/check-update", json{{"sha256", server_rig::sha_of(pair.v2)}, {"channel", "beta"}}.dump());
  EXPECT_EQ(json::parse(beta.body)["update_available"], false);
}

TEST(Router, RepeatedCheckUpdatesFollowStoreChanges) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  const std::string body = json{{"sha256", server_rig::sha_of(pair.v1)}}.dump();
  auto first = rig.ready_update(pair.v1);
  auto again = rig.call("POST", "/check-update", body);
  EXPECT_EQ(again.body, first.dump() + "\n");  // answered again, identically
  // ... from the bytes serialized once (issue 18): status line, the headers and the same body.
  ASSERT_NE(again.prepared, nullptr);
  const std::string& wire = again.prepared->keep_alive;
  EXPECT_EQ(wire.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << wire;
  EXPECT_NE(wire.find("\r\nCache-Control: no-store\r\n"), std::string::npos) << wire;
  EXPECT_NE(wire.find("\r\nContent-Length: " + std::to_string(again.body.size()) + "\r\n"), std::string::npos) << wire;
  EXPECT_EQ(wire.find("Connection: close"), std::string::npos) << wire;
  EXPECT_EQ(wire.substr(wire.size() - again.body.size()), again.body);
  EXPECT_NE(again.prepared->close.find("\r\nConnection: close\r\n"), std::string::npos);
  // A new release in the store changes the answer at once (no stale cached reply).
  std::filesystem::copy_file(pair.v1, rig.dir / "models" / pair.model / "3.tflite");
  std::ofstream(rig.dir / "models" / pair.model / "3.tflite", std::ios::app) << "x";
  ASSERT_TRUE(rig.store->rescan().ok());
  auto next = rig.call("POST", "/check-update", body);
  EXPECT_EQ(next.status, 202u) << next.body;
  EXPECT_EQ(json::parse(next.body)["target_version"], "3");
}
