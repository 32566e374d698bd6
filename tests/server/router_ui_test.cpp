// The dashboard's routes through the pure router: static files with their security headers, and
// hostile paths, methods and tokens against /ui/ and the two admin views it added.
#include <gtest/gtest.h>

#include <fstream>

#include "server_rig.hpp"

using namespace mallorn;
using mallorn::test::server_rig;
using nlohmann::json;

namespace {

const std::string token = "ui-test-token-0123456789";

server::router_config ui_config(bool demo = false) {
  server::router_config c;
  c.admin_token = token;
  auto ui = server::ui_files::load(server::ui_files::default_dir());
  EXPECT_TRUE(ui.ok()) << (ui.ok() ? "" : ui.err().what());
  if (ui) c.ui = *ui;
  c.ui_demo = demo;
  return c;
}

std::map<std::string, std::string> bearer() { return {{"authorization", "Bearer " + token}}; }

}  // namespace

TEST(RouterUi, ServesTheShippedFilesWithAStrictPolicy) {
  server_rig rig(ui_config());
  auto redirect = rig.call("GET", "/ui");
  EXPECT_EQ(redirect.status, 308u);
  ASSERT_NE(redirect.header("Location"), nullptr);
  EXPECT_EQ(*redirect.header("Location"), "/ui/");

  auto index = rig.call("GET", "/ui/");
  ASSERT_EQ(index.status, 200u) << index.body;
  EXPECT_NE(index.body.find("<script type=\"module\" src=\"app.js\">"), std::string::npos);
  ASSERT_NE(index.header("Content-Security-Policy"), nullptr);
  const std::string csp = *index.header("Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(*index.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(*index.header("X-Content-Type-Options"), "nosniff");

  auto module = rig.call("GET", "/ui/pages/fleet.js");
  ASSERT_EQ(module.status, 200u);
  EXPECT_EQ(module.header("Content-Type")->rfind("text/javascript", 0), 0u);
  // No inline script anywhere in the shipped HTML: the policy would block it.
  EXPECT_EQ(index.body.find("<script>"), std::string::npos);

  // Revalidation: the strong ETag gives 304 with no body.
  auto again = rig.call("GET", "/ui/app.js", {}, {{"if-none-match", *rig.call("GET", "/ui/app.js").header("ETag")}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
}

TEST(RouterUi, HostilePathsAndMethodsGetNothing) {
  server_rig rig(ui_config());
  for (const char* path : {"/ui/../index.sqlite", "/ui/%2e%2e/index.sqlite", "/ui/..%2fmodels", "/ui/.hidden",
                           "/ui/pages/..", "/ui/nope.js", "/ui/index.html%00.js", "/ui/%0d%0aSet-Cookie:x",
                           "/ui/pages/fleet.js/extra"}) {
    auto r = rig.call("GET", path);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << path << " -> " << r.status;
    EXPECT_EQ(r.body.find("import "), std::string::npos) << path;
  }
  for (const char* method : {"POST", "PUT", "DELETE"}) EXPECT_EQ(rig.call(method, "/ui/").status, 405u) << method;
}

TEST(RouterUi, OffWithNoUi) {
  server::router_config c;
  c.admin_token = token;
  server_rig rig(c);
  auto r = rig.call("GET", "/ui/");
  EXPECT_EQ(r.status, 404u);
  EXPECT_NE(r.body.find("ui_disabled"), std::string::npos);
}

TEST(RouterUi, AdminViewsNeedTheTokenUnlessDemoAndDemoNeverWrites) {
  {
    server_rig rig(ui_config());
    EXPECT_EQ(rig.call("GET", "/admin/builds").status, 401u);
    EXPECT_EQ(rig.call("GET", "/admin/builds", {}, {{"authorization", "Bearer wrong-token-0123456789"}}).status, 401u);
    auto builds = rig.call("GET", "/admin/builds", {}, bearer());
    ASSERT_EQ(builds.status, 200u);
    auto doc = json::parse(builds.body);
    EXPECT_EQ(doc["queued"], 0);
    EXPECT_TRUE(doc["builds"].is_array() && doc["evictions"].is_array() && doc["failures"].is_array());
    EXPECT_EQ(rig.call("GET", "/admin/devices/dev-1/reports").status, 401u);
  }
  server_rig rig(ui_config(true));
  EXPECT_EQ(rig.call("GET", "/admin/builds").status, 200u);
  EXPECT_EQ(rig.call("GET", "/admin/devices").status, 200u);
  // Demo mode opens reads only: uploads, rescans and patch builds still need the token.
  EXPECT_EQ(rig.call("POST", "/admin/rescan").status, 401u);
  EXPECT_EQ(rig.call("PUT", "/admin/models/m/v", "x").status, 401u);
  EXPECT_EQ(rig.call("POST", "/create-patch?model=x&source_version=1&target_version=2").status, 401u);
}

TEST(RouterUi, DeviceHistoryIsNewestFirstAndHostileIdsAreHarmless) {
  server_rig rig(ui_config());
  for (const char* state : {"downloading", "applying", "committed"})
    ASSERT_EQ(rig.call("POST", "/report", json{{"device_id", "dev-h"}, {"model", "m"}, {"from_version", "1"},
                                               {"to_version", "2"}, {"state", state}}.dump()).status, 200u);
  auto r = rig.call("GET", "/admin/devices/dev-h/reports", {}, bearer());
  ASSERT_EQ(r.status, 200u) << r.body;
  auto doc = json::parse(r.body);
  ASSERT_EQ(doc["reports"].size(), 3u);
  EXPECT_EQ(doc["reports"][0]["state"], "committed");
  EXPECT_EQ(doc["reports"][2]["state"], "downloading");
  for (const char* id : {"/admin/devices/nobody/reports", "/admin/devices/%27%20OR%201=1--/reports",
                         "/admin/devices/%25/reports"}) {
    auto miss = rig.call("GET", id, {}, bearer());
    EXPECT_TRUE(miss.status == 404 || miss.status == 400) << id << " -> " << miss.status << " " << miss.body;
  }
  EXPECT_EQ(rig.call("POST", "/admin/devices/dev-h/reports", "{}", bearer()).status, 405u);
}

TEST(RouterUi, LoadRefusesADirectoryWithoutIndexOrTooMuch) {
  mallorn::test::temp_dir dir{"ui-load"};
  EXPECT_FALSE(server::ui_files::load(dir.path()).ok());  // no index.html
  std::ofstream(dir / "index.html") << "<!doctype html>";
  EXPECT_TRUE(server::ui_files::load(dir.path()).ok());
  std::ofstream big(dir / "huge.js", std::ios::binary);
  big << std::string(server::ui_files::ui_max_bytes + 1, 'x');
  big.close();
  EXPECT_FALSE(server::ui_files::load(dir.path()).ok());
}
