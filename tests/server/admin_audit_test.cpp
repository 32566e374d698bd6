// Named admin tokens with scopes, and the append-only audit log of admin actions.
#include <gtest/gtest.h>

#include <fstream>

#include "server_rig.hpp"

using namespace mallorn;
using mallorn::test::server_rig;
using nlohmann::json;

namespace {

const std::string reader = "reader-token-0123456789", deployer = "deployer-token-0123456789",
                  owner = "owner-token-0123456789";

// A rig whose router knows three named tokens and records into an audit log.
struct audited_rig {
  server_rig rig;
  std::unique_ptr<server::audit_log> audit;
  audited_rig() {
    EXPECT_TRUE(server::storage::apply_migrations(rig.db->database(), server::audit_log::migrations()).ok());
    audit = std::make_unique<server::audit_log>(rig.db->database());
    server::router_config c;
    c.admin_tokens = {server::credential_for_token("dashboard", server::admin_scope::read, reader),
                      server::credential_for_token("ci", server::admin_scope::deploy, deployer),
                      server::credential_for_token("alice", server::admin_scope::admin, owner)};
    c.audit = audit.get();
    rig.routes = std::make_unique<server::router>(c, *rig.store, *rig.cache, *rig.db, rig.stats, *rig.limiter);
  }
  server::http_response as(const std::string& token, const std::string& method, const std::string& target,
                           const std::string& body = {}) {
    return rig.call(method, target, body, {{"authorization", "Bearer " + token}});
  }
};

}  // namespace

TEST(AdminScopes, EachTokenDoesWhatItsScopeAllowsAndNoMore) {
  audited_rig a;
  EXPECT_EQ(a.as(reader, "GET", "/admin/devices").status, 200u);
  EXPECT_EQ(a.as(reader, "GET", "/admin/builds").status, 200u);
  auto denied = a.as(reader, "POST", "/admin/rescan");
  EXPECT_EQ(denied.status, 403u);
  EXPECT_NE(denied.body.find("insufficient_scope"), std::string::npos);
  EXPECT_EQ(a.as(reader, "POST", "/create-patch?model=x&source_version=1&target_version=2").status, 403u);
  EXPECT_EQ(a.as(deployer, "POST", "/admin/rescan").status, 200u);
  // Trust changes need admin, whatever route family they are in.
  EXPECT_EQ(a.as(deployer, "POST", "/admin/devices/dev-1/admit", "{}").status, 403u);
  EXPECT_NE(a.as(owner, "POST", "/admin/devices/dev-1/admit", "{}").status, 403u);
  EXPECT_EQ(a.as(owner, "POST", "/admin/rescan").status, 200u);
  // Unknown, empty, prefix-of and longer-than tokens are all strangers.
  for (const std::string t : {"", "x", "owner-token-012345678", "owner-token-01234567890", "OWNER-TOKEN-0123456789"})
    EXPECT_EQ(a.as(t, "GET", "/admin/devices").status, 401u) << t;
}

TEST(AdminAudit, RecordsEveryAuthenticatedChangeNewestFirstAndNothingFromStrangers) {
  audited_rig a;
  a.as(deployer, "POST", "/admin/rescan");
  a.as(reader, "POST", "/admin/rescan");                      // 403: recorded, with the actor
  a.rig.call("POST", "/admin/rescan");                          // no token: not recorded
  a.as("wrong-token-0123456789", "POST", "/admin/rescan");      // unknown token: not recorded
  a.as(owner, "GET", "/admin/devices");                         // a read: not recorded
  a.as(owner, "PUT", "/admin/models/.bad/1", "x");              // a refused upload: recorded with its status
  auto r = a.as(reader, "GET", "/admin/audit");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto entries = json::parse(r.body)["entries"];
  ASSERT_EQ(entries.size(), 3u) << r.body;
  EXPECT_EQ(entries[0]["actor"], "alice");
  EXPECT_EQ(entries[0]["action"], "PUT admin_models");
  EXPECT_GE(entries[0]["status"].get<int>(), 400);
  EXPECT_EQ(entries[1]["actor"], "dashboard");
  EXPECT_EQ(entries[1]["status"], 403);
  EXPECT_EQ(entries[1]["scope"], "read");
  EXPECT_EQ(entries[2]["actor"], "ci");
  EXPECT_EQ(entries[2]["action"], "POST admin_rescan");
  EXPECT_EQ(entries[2]["status"], 200);
  EXPECT_EQ(entries[2]["target"], "/admin/rescan");
  EXPECT_GT(entries[0]["seq"].get<std::int64_t>(), entries[1]["seq"].get<std::int64_t>());

  // Paging and filtering.
  auto page = json::parse(a.as(reader, "GET", "/admin/audit?limit=2").body);
  ASSERT_EQ(page["entries"].size(), 2u);
  auto rest = json::parse(a.as(reader, "GET", "/admin/audit?before=" + std::to_string(page["next_before"].get<std::int64_t>())).body);
  ASSERT_EQ(rest["entries"].size(), 1u);
  EXPECT_EQ(rest["entries"][0]["actor"], "ci");
  EXPECT_EQ(json::parse(a.as(reader, "GET", "/admin/audit?actor=ci").body)["entries"].size(), 1u);
  for (const char* q : {"?limit=0x10", "?limit=-1", "?limit=100000", "?before=99999999999999999999999", "?limit="})
    EXPECT_EQ(a.as(reader, "GET", std::string("/admin/audit") + q).status, 400u) << q;
  EXPECT_EQ(a.rig.call("GET", "/admin/audit").status, 401u);
}

TEST(AdminAudit, TheTableIsAppendOnly) {
  audited_rig a;
  a.as(deployer, "POST", "/admin/rescan");
  auto& db = a.rig.db->database();
  EXPECT_FALSE(db.exec("UPDATE audit_log SET actor='mallory'").ok());
  EXPECT_FALSE(db.exec("DELETE FROM audit_log").ok());
  auto rows = db.query("SELECT actor FROM audit_log");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].text(0), "ci");
}

TEST(AdminAudit, LongTargetsAreBounded) {
  audited_rig a;
  const std::string long_name(120, 'a');
  std::string target = "/admin/models/" + long_name + "/" + long_name + "?x=" + std::string(3000, 'b');
  a.as(deployer, "PUT", target, "x");
  auto rows = a.rig.db->database().query("SELECT target FROM audit_log");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_LE((*rows)[0].text(0).size(), server::audit_log::max_field + 3);
}

TEST(AdminTokensFile, HostileFilesAreRefusedWithAClearMessage) {
  mallorn::test::temp_dir dir{"tokens"};
  auto load = [&](const std::string& text) {
    std::ofstream(dir / "t.json") << text;
    return server::load_admin_tokens(dir / "t.json");
  };
  const std::string hex(64, 'a');
  EXPECT_TRUE(load(R"({"tokens":[{"name":"ci","scope":"deploy","sha256":")" + hex + R"("}]})").ok());
  for (const std::string& bad : std::vector<std::string>{std::string("not json"), std::string("[]"), std::string(R"({"tokens":{}})"),
                                R"({"tokens":[{"name":"ci","scope":"root","sha256":")" + hex + R"("}]})",
                                R"({"tokens":[{"name":"c i","scope":"read","sha256":")" + hex + R"("}]})",
                                std::string(R"({"tokens":[{"name":"ci","scope":"read","sha256":"zz"}]})"),
                                std::string(R"({"tokens":[{"name":"ci","scope":"read","token":"short"}]})"),
                                std::string(R"({"tokens":[{"name":"ci","scope":"read"}]})"),
                                R"({"tokens":[{"name":"ci","scope":"read","sha256":")" + hex + R"("},)"
                                R"({"name":"ci","scope":"admin","sha256":")" + hex + R"("}]})"}) {
    auto r = load(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r) EXPECT_NE(r.err().message.find("--admin-tokens"), std::string::npos);
  }
  auto plain = load(R"({"tokens":[{"name":"ci","scope":"read","token":"a-long-enough-token-123"}]})");
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(server::find_credential(*plain, "a-long-enough-token-123"), nullptr);
  EXPECT_EQ(server::find_credential(*plain, "a-long-enough-token-12"), nullptr);
}
