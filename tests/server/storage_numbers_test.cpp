// Stable version numbers (issue 11 item 6) and the bounded, paged device list (items 4 and 8),
// through the router over a real store of real models and a real SQLite index.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "mallorn/core/patch_header.hpp"
#include "mallorn/server/storage/sql_database.hpp"
#include "server_rig.hpp"

using namespace mallorn;
using mallorn::test::server_rig;
using json = nlohmann::json;

namespace {

std::uint64_t header_target_version(const std::filesystem::path& patch) {
  std::ifstream in(patch, std::ios::binary);
  std::vector<std::uint8_t> bytes(64 * 1024);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  auto probe = core::parse_header(bytes);
  EXPECT_TRUE(probe) << probe.err().what();
  EXPECT_TRUE(probe && probe->header);
  return probe && probe->header ? probe->header->target_version : 0;
}

// A copy of `from` with a few bytes appended: different content, same format.
void variant_of(const std::filesystem::path& from, const std::filesystem::path& to, const std::string& tail) {
  std::filesystem::copy_file(from, to);
  std::ofstream(to, std::ios::app | std::ios::binary) << tail;
}

std::map<std::string, std::uint64_t> numbers_of(server_rig& rig, const std::string& model) {
  std::map<std::string, std::uint64_t> out;
  for (const auto& v : rig.store->snapshot()->model(model)->versions) out[v.version] = v.number;
  return out;
}

std::map<std::string, std::string> bearer() { return {{"authorization", "Bearer 0123456789abcdef-token"}}; }
server::router_config admin_cfg() {
  server::router_config c;
  c.admin_token = "0123456789abcdef-token";
  return c;
}

}  // namespace

TEST(StorageVersionNumbers, InsertingAnOlderVersionKeepsEveryNumber) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  auto before = numbers_of(rig, pair.model);
  ASSERT_EQ(before, (std::map<std::string, std::uint64_t>{{"1", 1}, {"2", 2}}));

  // The patch 1 -> 2 is built while "2" is rank 2 and number 2.
  auto first = rig.ready_update(pair.v1);
  ASSERT_EQ(first["status"], "ready") << first.dump();
  EXPECT_EQ(first["target_number"], 2);
  EXPECT_EQ(first["target_rank"], 2);  // the old field equals the number
  EXPECT_EQ(header_target_version(rig.cache->file_of(first["patch_id"])), 2u);

  // An older version inserted later sorts first (rank 1) but gets the next number.
  variant_of(pair.v1, pair.v1.parent_path() / ("0.9" + pair.v1.extension().string()), "older");
  ASSERT_TRUE(rig.store->rescan());
  auto after = numbers_of(rig, pair.model);
  EXPECT_EQ(after["1"], 1u);
  EXPECT_EQ(after["2"], 2u);
  EXPECT_EQ(after["0.9"], 3u);
  EXPECT_EQ(rig.store->snapshot()->find(pair.model, "2")->rank, 3u);  // rank moved, number did not

  // The cached patch's header, the JSON and the number agree.
  auto again = rig.ready_update(pair.v1);
  ASSERT_EQ(again["status"], "ready");
  EXPECT_EQ(again["target_version"], "2");
  EXPECT_EQ(again["target_number"], 2);
  EXPECT_EQ(again["target_rank"], 2);
  EXPECT_EQ(header_target_version(rig.cache->file_of(again["patch_id"])), 2u);
  // A device on the inserted version (number 3) would be downgraded by "2".
  auto down = json::parse(rig.call("POST", "/check-update",
                                   json{{"sha256", server_rig::sha_of(pair.v1.parent_path() /
                                                                       ("0.9" + pair.v1.extension().string()))}}
                                       .dump())
                              .body);
  EXPECT_EQ(down["downgrade"], true);
  // The fingerprint route shows both.
  auto fp = json::parse(rig.call("GET", "/fingerprint/" + pair.model + "/2").body);
  EXPECT_EQ(fp["number"], 2);
  EXPECT_EQ(fp["rank"], 3);
}

TEST(StorageVersionNumbers, DeletedThenAddedAgainGetsANewNumberAndANewPatch) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  auto first = rig.ready_update(pair.v1);
  ASSERT_EQ(first["target_number"], 2);
  const std::string old_patch = first["patch_id"];

  // Delete "2": its number is forgotten, never reused.
  const auto target = std::filesystem::read_symlink(pair.v2);
  std::filesystem::remove(pair.v2);
  ASSERT_TRUE(rig.store->rescan());
  EXPECT_EQ(numbers_of(rig, pair.model), (std::map<std::string, std::uint64_t>{{"1", 1}}));
  // Re-add the same content under the same name: a new release, number 3.
  std::filesystem::create_symlink(target, pair.v2);
  ASSERT_TRUE(rig.store->rescan());
  EXPECT_EQ(numbers_of(rig, pair.model)["2"], 3u);
  // A new version after that continues the sequence (4), even in front of the order.
  variant_of(pair.v1, pair.v1.parent_path() / ("0.1" + pair.v1.extension().string()), "x");
  ASSERT_TRUE(rig.store->rescan());
  EXPECT_EQ(numbers_of(rig, pair.model)["0.1"], 4u);

  // The cached patch said target version 2: it is rebuilt with 3, and JSON and header agree.
  auto again = rig.ready_update(pair.v1);
  ASSERT_EQ(again["status"], "ready") << again.dump();
  EXPECT_EQ(again["target_number"], 3);
  EXPECT_NE(again["patch_id"], old_patch);
  EXPECT_EQ(header_target_version(rig.cache->file_of(again["patch_id"])), 3u);
  EXPECT_FALSE(std::filesystem::exists(rig.cache->file_of(old_patch))) << "the stale patch file is removed";
}

TEST(StorageVersionNumbers, NumbersSurviveARestartAndContentChangeRenumbers) {
  server_rig rig;
  const auto& pair = rig.pairs[0];
  variant_of(pair.v1, pair.v1.parent_path() / ("3" + pair.v1.extension().string()), "three");
  ASSERT_TRUE(rig.store->rescan());
  EXPECT_EQ(numbers_of(rig, pair.model)["3"], 3u);
  // A second store over the same index (a restart) sees the same numbers.
  server::model_store reopened(rig.dir / "models", *rig.db);
  ASSERT_TRUE(reopened.rescan());
  EXPECT_EQ(reopened.snapshot()->find(pair.model, "3")->number, 3u);
  // Replacing a version's bytes in place is a new release too.
  std::filesystem::remove(pair.v1.parent_path() / ("3" + pair.v1.extension().string()));
  variant_of(pair.v1, pair.v1.parent_path() / ("3" + pair.v1.extension().string()), "three, again");
  ASSERT_TRUE(rig.store->rescan());
  EXPECT_EQ(numbers_of(rig, pair.model)["3"], 4u);
  EXPECT_EQ(numbers_of(rig, pair.model)["1"], 1u);
}

// ---- reports and /admin/devices -----------------------------------------------------------

TEST(StorageDevices, PagedFilteredAndCounted) {
  server_rig rig(admin_cfg());
  // 25 devices on two models, a few failed; ids chosen so '%' and '_' would matter to LIKE.
  for (int i = 0; i < 25; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "cam_%02d", i);
    json body = {{"device_id", id}, {"state", i % 5 == 0 ? "failed" : "committed"}, {"model", i < 15 ? "a" : "b"}};
    ASSERT_EQ(rig.call("POST", "/report", body.dump()).status, 200u);
  }
  // '%' is not a device id character (400), so a LIKE wildcard in a prefix can only match nothing.
  ASSERT_EQ(rig.call("POST", "/report", json{{"device_id", "cam%x"}, {"state", "idle"}, {"model", "a"}}.dump()).status,
            400u);
  std::set<std::string> seen;
  std::string after, after_model;
  int pages = 0;
  for (;;) {
    std::string target = "/admin/devices?limit=10";
    if (!after.empty()) target += "&after=" + after + "&after_model=" + after_model;
    auto r = rig.call("GET", target, {}, bearer());
    ASSERT_EQ(r.status, 200u) << r.body;
    auto page = json::parse(r.body);
    EXPECT_EQ(page["total"], 25);
    EXPECT_LE(page["devices"].size(), 10u);
    for (const auto& d : page["devices"]) EXPECT_TRUE(seen.insert(d["device_id"].get<std::string>()).second);
    ++pages;
    if (page["next"].is_null()) break;
    after = page["next"]["after"];
    after_model = page["next"]["after_model"];
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(pages, 3);
  auto failed = json::parse(rig.call("GET", "/admin/devices?state=failed&model=a", {}, bearer()).body);
  EXPECT_EQ(failed["total"], 3);  // cam_00, cam_05, cam_10
  for (const auto& d : failed["devices"]) EXPECT_EQ(d["state"], "failed");
  auto prefixed = json::parse(rig.call("GET", "/admin/devices?prefix=cam_1", {}, bearer()).body);
  EXPECT_EQ(prefixed["total"], 10);  // cam_10..cam_19
  auto percent = json::parse(rig.call("GET", "/admin/devices?prefix=cam%25", {}, bearer()).body);
  EXPECT_EQ(percent["total"], 0);  // as LIKE 'cam%' it would match all 25
  EXPECT_EQ(rig.call("GET", "/admin/devices?limit=0", {}, bearer()).status, 400u);
  EXPECT_EQ(rig.call("GET", "/admin/devices?limit=abc", {}, bearer()).status, 400u);
  EXPECT_EQ(rig.call("GET", "/admin/devices?prefix=" + std::string(300, 'x'), {}, bearer()).status, 400u);
}

TEST(StorageDevices, HistoryIsCappedPerDeviceAndLatestStateKept) {
  server_rig rig(admin_cfg());
  rig.db->set_report_limits({5, 50, 0});
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(rig.call("POST", "/report",
                       json{{"device_id", "dev-1"}, {"state", "downloading"}, {"bytes_downloaded", i}, {"model", "m"},
                            {"tags", {{"site", "north"}}}}
                           .dump())
                  .status,
              200u);
  auto one = json::parse(rig.call("GET", "/admin/devices/dev-1", {}, bearer()).body);
  ASSERT_EQ(one["devices"].size(), 1u);
  EXPECT_EQ(one["devices"][0]["bytes_downloaded"], 29);
  EXPECT_EQ(one["devices"][0]["tags"]["site"], "north");
  EXPECT_EQ(one["history"].size(), 5u);
  EXPECT_EQ(one["history"][0]["bytes_downloaded"], 29);
  EXPECT_EQ(one["history"][4]["bytes_downloaded"], 25);
  // A report without tags keeps the device's tags.
  ASSERT_EQ(rig.call("POST", "/report", json{{"device_id", "dev-1"}, {"state", "committed"}, {"model", "m"}}.dump()).status,
            200u);
  one = json::parse(rig.call("GET", "/admin/devices/dev-1", {}, bearer()).body);
  EXPECT_EQ(one["devices"][0]["state"], "committed");
  EXPECT_EQ(one["devices"][0]["tags"]["site"], "north");

  // The global cap: 200 spoofed ids leave at most 50 history rows and 50 device rows, and the
  // most recently seen devices stay.
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(rig.call("POST", "/report", json{{"device_id", "spoof-" + std::to_string(i)}, {"state", "idle"}}.dump()).status,
              200u);
  auto pruned = rig.db->prune_reports(std::time(nullptr));
  ASSERT_TRUE(pruned) << pruned.err().what();
  EXPECT_GT(*pruned, 0u);
  auto all = json::parse(rig.call("GET", "/admin/devices?limit=1000", {}, bearer()).body);
  EXPECT_EQ(all["total"], 50);
  auto count = rig.db->database().query("SELECT COUNT(*) FROM reports");
  ASSERT_TRUE(count);
  EXPECT_EQ(count->front().integer(0), 50);

  // Retention: everything older than the limit goes.
  rig.db->set_report_limits({5, 50, 3600});
  ASSERT_TRUE(rig.db->prune_reports(std::time(nullptr) + 7200));
  EXPECT_EQ(json::parse(rig.call("GET", "/admin/devices", {}, bearer()).body)["total"], 0);
}

TEST(StorageDevices, OversizeAndHostileReportFieldsAre400AndChangeNothing) {
  server_rig rig(admin_cfg());
  const std::vector<json> bad = {
      {{"device_id", std::string(257, 'd')}, {"state", "idle"}},
      {{"device_id", "d"}, {"state", "idle"}, {"error", std::string(5000, 'e')}},
      {{"device_id", "d"}, {"state", "idle"}, {"model", std::string(129, 'm')}},
      {{"device_id", "d"}, {"state", "idle"}, {"tags", "not an object"}},
      {{"device_id", "d"}, {"state", "idle"}, {"tags", {{"k", 1}}}},
      {{"device_id", "d"}, {"state", "idle"}, {"tags", {{std::string(65, 'k'), "v"}}}},
      {{"device_id", "d"}, {"state", "idle"}, {"tags", {{"k", std::string(129, 'v')}}}},
  };
  for (const auto& b : bad) EXPECT_EQ(rig.call("POST", "/report", b.dump()).status, 400u) << b.dump().substr(0, 80);
  json many = json::object();
  for (int i = 0; i < 17; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_EQ(rig.call("POST", "/report", json{{"device_id", "d"}, {"state", "idle"}, {"tags", many}}.dump()).status, 400u);
  EXPECT_EQ(json::parse(rig.call("GET", "/admin/devices", {}, bearer()).body)["total"], 0);
}
