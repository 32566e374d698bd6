// The rollout engine through the router (real SQLite index, real store, real patch builds) with a
// clock the tests move: staging, groups, the health gate, stage timers, windows, abort, restart.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <future>
#include <set>
#include <thread>

#include "mallorn/server/fleet/rollout_state.hpp"
#include "rollout_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

std::string dev(int i) { return "device-" + std::to_string(i); }
json tags_of(int i) { return {{"site", i % 3 == 0 ? "paris" : "berlin"}, {"hw", i % 2 ? "rpi4" : "rpi5"}}; }

// Devices offered version 2, among `n` simulated devices.
std::set<std::string> offered_set(rollout_rig& t, int n) {
  std::set<std::string> out;
  for (int i = 0; i < n; ++i)
    if (rollout_rig::offered(t.check(dev(i), tags_of(i)))) out.insert(dev(i));
  return out;
}

// |got - p n| within four standard deviations of a binomial draw.
void expect_share(std::size_t got, std::size_t n, double p) {
  const double sd = std::sqrt(n * p * (1 - p));
  EXPECT_NEAR(double(got), n * p, 4 * sd + 1) << got << " of " << n << " for p=" << p;
}

// Another connection holding the index's write lock (BEGIN EXCLUSIVE) until release().
struct held_index {
  sqlite3* db = nullptr;
  explicit held_index(const std::filesystem::path& file) {
    EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);  // the patch build may be writing the index at this moment
    EXPECT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  }
  void release() {
    if (!db) return;
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    db = nullptr;
  }
  ~held_index() { release(); }
};

}  // namespace

// Recording offers writes the index, and check-updates read the rollouts meanwhile: they must not
// wait for that write (issue 18). Another connection holds the index's write lock, so the tick's
// write waits; a check-update is answered at once all the same, and the offers are counted once
// the write went through.
TEST(RolloutEngine, CheckUpdatesDoNotWaitWhileOffersAreRecorded) {
  using namespace std::chrono_literals;
  rollout_rig t;
  const auto id = t.create({{"stages", {100}}})["id"].get<std::int64_t>();
  ASSERT_TRUE(rollout_rig::offered(t.check(dev(1))));
  t.engine->tick();
  ASSERT_TRUE(rollout_rig::offered(t.check(dev(2))));  // waits to be recorded at the next tick
  held_index lock(t.rig.dir / "index.sqlite");
  auto ticking = std::async(std::launch::async, [&] { t.engine->tick(); });
  std::this_thread::sleep_for(300ms);
  const bool tick_waited = ticking.wait_for(0s) == std::future_status::timeout;
  const auto t0 = std::chrono::steady_clock::now();
  const auto answer = t.check(dev(1));
  const auto waited = std::chrono::steady_clock::now() - t0;
  const bool tick_still_waiting = ticking.wait_for(0s) == std::future_status::timeout;
  lock.release();
  ticking.get();
  EXPECT_TRUE(tick_waited) << "the tick did not wait for the index: the test proves nothing";
  EXPECT_TRUE(rollout_rig::offered(answer)) << answer;
  EXPECT_LT(waited, 1s) << "the check-update waited for the offers' write";
  EXPECT_TRUE(tick_still_waiting) << "the check-update was answered only after the write";
  EXPECT_EQ(t.show(id)["devices"]["offered"], 2);
}

// An operator's action is journaled before the rollout enters its new state, and check-updates
// must not wait for that write either (issue 18): while another connection holds the index's
// write lock, a pause waits for it, a check-update is answered at once (from the state before the
// pause), and the pause takes effect once journaled.
TEST(RolloutEngine, CheckUpdatesDoNotWaitWhileATransitionIsJournaled) {
  using namespace std::chrono_literals;
  rollout_rig t;
  const auto id = t.create({{"stages", {100}}})["id"].get<std::int64_t>();
  ASSERT_TRUE(rollout_rig::offered(t.check(dev(1))));
  held_index lock(t.rig.dir / "index.sqlite");
  auto pausing = std::async(std::launch::async,
                            [&] { return t.engine->act(id, server::fleet::rollout_event::pause, "operator", ""); });
  std::this_thread::sleep_for(300ms);
  const bool pause_waited = pausing.wait_for(0s) == std::future_status::timeout;
  const auto t0 = std::chrono::steady_clock::now();
  const auto answer = t.check(dev(2));
  const auto waited = std::chrono::steady_clock::now() - t0;
  const bool pause_still_waiting = pausing.wait_for(0s) == std::future_status::timeout;
  lock.release();
  const auto paused = pausing.get();
  EXPECT_TRUE(pause_waited) << "the pause did not wait for the index: the test proves nothing";
  EXPECT_TRUE(rollout_rig::offered(answer)) << answer;
  EXPECT_LT(waited, 1s) << "the check-update waited for the transition's journal";
  EXPECT_TRUE(pause_still_waiting) << "the check-update was answered only after the write";
  ASSERT_TRUE(paused.ok()) << paused.err().what();
  EXPECT_EQ(paused->state, server::fleet::rollout_state::paused);
  EXPECT_EQ(t.show(id)["state"], "paused");
  EXPECT_FALSE(t.check(dev(3)).value("update_available", true)) << "a paused rollout offers nothing new";
}

TEST(RolloutEngine, ModelWithoutRolloutsOffersLatestToEveryDevice) {
  rollout_rig t;
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(rollout_rig::offered(t.check(dev(i))));
}

TEST(RolloutEngine, StagesOfferTheMatchingShareOnlySameDevicesEveryPollAndGrow) {
  rollout_rig t;
  t.admin_json("PUT", "/admin/groups/berlin", R"({"match": {"site": "berlin"}})", 201);
  auto r = t.create({{"group", "berlin"}, {"stages", {10, 50, 100}}});
  const auto id = r["id"].get<std::int64_t>();
  EXPECT_EQ(r["state"], "running");
  const int n = 200;
  std::size_t matching = 0;
  for (int i = 0; i < n; ++i) matching += tags_of(i)["site"] == "berlin";
  auto first = offered_set(t, n);
  for (const auto& d : first) EXPECT_EQ(tags_of(std::stoi(d.substr(7)))["site"], "berlin") << d << " is not in the group";
  expect_share(first.size(), matching, 0.10);
  EXPECT_GT(first.size(), 0u);
  EXPECT_EQ(offered_set(t, n), first) << "the same devices on every poll";
  t.engine->tick();  // records the offers
  EXPECT_EQ(t.show(id)["devices"]["offered"], first.size());

  t.admin_json("POST", "/admin/rollouts/" + std::to_string(id) + "/advance");
  auto half = offered_set(t, n);
  expect_share(half.size(), matching, 0.50);
  EXPECT_TRUE(std::includes(half.begin(), half.end(), first.begin(), first.end())) << "the 50% stage contains the 10%";
  for (const auto& d : half) EXPECT_EQ(tags_of(std::stoi(d.substr(7)))["site"], "berlin");
  t.admin_json("POST", "/admin/rollouts/" + std::to_string(id) + "/advance");
  EXPECT_EQ(offered_set(t, n).size(), matching);
  // Devices outside the group are not offered anything while the model has rollouts.
  EXPECT_FALSE(t.check("outsider", {{"site", "paris"}}).value("update_available", true));
}

TEST(RolloutEngine, ExplicitDeviceListsAndInPresenceSelectors) {
  rollout_rig t;
  t.admin_json("PUT", "/admin/groups/pis", R"({"match": {"hw": {"in": ["rpi4", "rpi5"]}, "runtime": {"present": true}}})", 201);
  t.admin_json("PUT", "/admin/groups/lab", R"({"devices": ["lab-1", "lab-2"]})", 201);
  t.create({{"group", "pis"}, {"stages", {100}}});
  EXPECT_TRUE(rollout_rig::offered(t.check("a", {{"hw", "rpi4"}, {"runtime", "tflite-2.14"}})));
  EXPECT_FALSE(rollout_rig::offered(t.check("b", {{"hw", "rpi4"}})));
  EXPECT_FALSE(rollout_rig::offered(t.check("c", {{"hw", "jetson"}, {"runtime", "x"}})));
  EXPECT_FALSE(rollout_rig::offered(t.check("lab-1")));
  t.create({{"group", "lab"}, {"stages", {100}}});
  EXPECT_TRUE(rollout_rig::offered(t.check("lab-1")));
  EXPECT_FALSE(rollout_rig::offered(t.check("lab-3")));
  // A group in use by a running rollout cannot be deleted; an unused one can.
  EXPECT_EQ(t.admin("DELETE", "/admin/groups/lab").status, 409u);
  auto groups = t.admin_json("GET", "/admin/groups");
  EXPECT_EQ(groups["groups"].size(), 2u);
}

TEST(RolloutEngine, HealthGatePausesItselfAndStopsOffering) {
  rollout_rig t;
  auto r = t.create({{"stages", {20, 100}}, {"min_reports", 6}, {"max_failure_rate", 0.25}, {"stage_min_seconds", 60}});
  const auto id = r["id"].get<std::int64_t>();
  auto offered = offered_set(t, 200);
  ASSERT_GE(offered.size(), 12u);
  std::vector<std::string> order(offered.begin(), offered.end());
  // Three healthy devices, then failures: the gate closes at the report that crosses 25% with
  // at least 6 reports (3 ok + 3 failed = 50%).
  for (int i = 0; i < 3; ++i) t.report(order[i], "committed", 1000);
  t.report(order[3], "downloading", 500);
  t.report(order[3], "rolled_back", 700);
  t.report(order[4], "failed");
  EXPECT_EQ(t.show(id)["state"], "running") << "5 reports < min_reports";
  t.report(order[5], "rolled_back");
  auto s = t.show(id);
  EXPECT_EQ(s["state"], "paused");
  EXPECT_NE(s["reason"].get<std::string>().find("failure rate 0.500 over 6 reports"), std::string::npos) << s["reason"];
  EXPECT_EQ(s["devices"]["committed"], 3);
  EXPECT_EQ(s["devices"]["rolled_back"], 2);
  EXPECT_EQ(s["devices"]["failed"], 1);
  EXPECT_EQ(s["bytes_served"], 3700);
  EXPECT_EQ(s["history"].back()["actor"], "engine");
  EXPECT_EQ(s["history"].back()["event"], "health_pause");
  // Paused: nobody new is offered the version; the devices that committed stay on it.
  EXPECT_TRUE(offered_set(t, 200).empty());
  EXPECT_EQ(t.check(order[0], {}, t.pair.v2)["status"], "up_to_date");
  // Time passing does not advance a paused rollout.
  *t.now += 3600;
  t.engine->tick();
  EXPECT_EQ(t.show(id)["state"], "paused");
  auto metrics = t.rig.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("mallornd_rollout_health_pauses_total 1"), std::string::npos);
  EXPECT_NE(metrics.find("mallornd_rollout_state{rollout=\"" + std::to_string(id) + "\",state=\"paused\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("mallornd_rollout_transitions_total{event=\"health_pause\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mallornd_rollout_devices{rollout=\"" + std::to_string(id) + "\",state=\"rolled_back\"} 2"), std::string::npos);
}

TEST(RolloutEngine, AdvancesAfterStageMinSecondsWithHealthyReportsThenCompletes) {
  rollout_rig t;
  auto r = t.create({{"stages", {30, 100}}, {"min_reports", 3}, {"max_failure_rate", 0.1}, {"stage_min_seconds", 600}});
  const auto id = r["id"].get<std::int64_t>();
  auto offered = offered_set(t, 100);
  ASSERT_GE(offered.size(), 3u);
  for (const auto& d : offered) t.report(d, "committed");
  *t.now += 599;
  t.engine->tick();
  EXPECT_EQ(t.show(id)["stage"], 0) << "stage_min_seconds not yet passed";
  *t.now += 1;
  t.engine->tick();
  auto s = t.show(id);
  EXPECT_EQ(s["stage"], 1);
  EXPECT_EQ(s["stage_percent"], 100.0);
  EXPECT_EQ(offered_set(t, 100).size(), 100u) << "every device still on 1 is offered 2";
  *t.now += 600;
  t.engine->tick();
  s = t.show(id);
  EXPECT_EQ(s["state"], "completed");
  EXPECT_EQ(s["history"].size(), 3u);  // create, auto_advance, auto_advance (-> completed)
  // Operator actions on a completed rollout are refused with the reason.
  auto refused = t.admin("POST", "/admin/rollouts/" + std::to_string(id) + "/pause");
  EXPECT_EQ(refused.status, 409u);
  EXPECT_NE(refused.body.find("completed"), std::string::npos);
}

TEST(RolloutEngine, MaintenanceWindowUsesTheDevicesOffset) {
  rollout_rig t;
  *t.now = 1767268800;  // Thursday 2026-01-01 12:00 UTC
  t.create({{"stages", {100}}, {"window", {{"days", {"mon", "tue", "wed", "thu", "fri"}}, {"start", "02:00"}, {"end", "04:00"}, {"tz", "UTC"}}}});
  auto a = t.check("dev-utc");
  EXPECT_FALSE(a["update_available"]);
  EXPECT_EQ(a["status"], "outside_window");
  EXPECT_EQ(a["next_window_start"], 1767268800 + 14 * 3600) << "Friday 02:00 UTC";
  // 12:00 UTC is 02:00 on Friday at +14:00: inside the device's own window.
  EXPECT_TRUE(rollout_rig::offered(t.check("dev-far-east", {{"tz", "+14:00"}})));
  *t.now = 1767268800 + 15 * 3600;  // Friday 03:00 UTC: open
  EXPECT_TRUE(rollout_rig::offered(t.check("dev-utc")));
  *t.now = 1767268800 + 2 * 86400 + 15 * 3600;  // Saturday 03:00 UTC: closed until Monday 02:00
  auto sat = t.check("dev-utc-2");
  EXPECT_EQ(sat["status"], "outside_window");
  EXPECT_EQ(sat["next_window_start"], 1767268800 + 3 * 86400 + 14 * 3600) << "Monday 02:00 UTC";
}

TEST(RolloutEngine, AbortStopsOfferingAndNeverForcesDevicesBack) {
  rollout_rig t;
  auto id = t.create({{"stages", {100}}})["id"].get<std::int64_t>();
  EXPECT_TRUE(rollout_rig::offered(t.check("d1")));
  t.report("d1", "committed");
  auto aborted = t.admin_json("POST", "/admin/rollouts/" + std::to_string(id) + "/abort", R"({"reason": "bad accuracy"})");
  EXPECT_EQ(aborted["state"], "aborted");
  EXPECT_EQ(aborted["reason"], "bad accuracy");
  EXPECT_FALSE(t.check("d2").value("update_available", true)) << "aborted: the version is not offered";
  auto d1 = t.check("d1", {}, t.pair.v2);
  EXPECT_FALSE(d1.value("update_available", true)) << "a committed device is not sent back: " << d1;
  // A new rollout of the older version is refused by downgrade protection for devices ahead of it.
  t.create({{"version", "1"}, {"stages", {100}}});
  EXPECT_FALSE(t.check("d1", {}, t.pair.v2).value("update_available", true));
  EXPECT_EQ(t.admin("POST", "/admin/rollouts/" + std::to_string(id) + "/resume").status, 409u);
}

TEST(RolloutEngine, StateSurvivesARestart) {
  rollout_rig t;
  t.admin_json("PUT", "/admin/groups/berlin", R"({"match": {"site": "berlin"}})", 201);
  auto id = t.create({{"group", "berlin"}, {"stages", {10, 50, 100}}, {"min_reports", 1000}})["id"].get<std::int64_t>();
  t.admin_json("POST", "/admin/rollouts/" + std::to_string(id) + "/advance");
  auto before = offered_set(t, 200);
  t.report(*before.begin(), "committed", 42);
  t.admin_json("POST", "/admin/rollouts/" + std::to_string(id) + "/pause");
  t.engine->tick();
  auto shown = t.show(id);
  t.reopen();
  auto after = t.show(id);
  EXPECT_EQ(after["state"], "paused");
  EXPECT_EQ(after["stage"], 1);
  EXPECT_EQ(after["devices"], shown["devices"]);
  EXPECT_EQ(after["history"], shown["history"]);
  EXPECT_EQ(after["bytes_served"], 42);
  t.admin_json("POST", "/admin/rollouts/" + std::to_string(id) + "/resume");
  EXPECT_EQ(offered_set(t, 200), before) << "the same devices after the restart";
}

TEST(RolloutEngine, PauseTimeoutAbortsAutomatically) {
  rollout_rig t;
  auto id = t.create({{"stages", {100}}, {"pause_timeout_seconds", 300}})["id"].get<std::int64_t>();
  t.admin_json("POST", "/admin/rollouts/" + std::to_string(id) + "/pause");
  *t.now += 299;
  t.engine->tick();
  EXPECT_EQ(t.show(id)["state"], "paused");
  *t.now += 1;
  t.engine->tick();
  auto s = t.show(id);
  EXPECT_EQ(s["state"], "aborted");
  EXPECT_EQ(s["history"].back()["event"], "pause_timeout");
}

TEST(RolloutEngine, ScheduledRolloutStartsAtItsTime) {
  rollout_rig t;
  auto r = t.create({{"stages", {100}}, {"start_at", *t.now + 100}});
  EXPECT_EQ(r["state"], "scheduled");
  EXPECT_FALSE(rollout_rig::offered(t.check("d")));
  *t.now += 100;
  t.engine->tick();
  EXPECT_EQ(t.show(r["id"])["state"], "running");
  EXPECT_TRUE(rollout_rig::offered(t.check("d")));
}

TEST(RolloutEngine, ChannelDevicesFollowTheirChannel) {
  rollout_rig t;
  t.create({{"version", "1"}, {"stages", {100}}});
  // Without a channel the device is held at 1 by the rollout; with an (unknown) channel it gets the
  // channel's target (the latest), as before rollouts.
  EXPECT_FALSE(rollout_rig::offered(t.check("d")));
  json body = {{"sha256", server_rig::sha_of(t.pair.v1)}, {"model", t.pair.model}, {"device_id", "d"}, {"channel", "beta"}};
  auto r = t.rig.call("POST", "/check-update", body.dump());
  EXPECT_TRUE(rollout_rig::offered(json::parse(r.body))) << r.body;
}

TEST(RolloutStateTable, EveryStateAndEvent) {
  using namespace server::fleet;
  transition_facts open;
  open.start_time_reached = open.has_next_stage = open.health_gate_open = open.health_gate_crossed = open.pause_timed_out = true;
  const transition_facts closed;
  for (auto s : {rollout_state::completed, rollout_state::aborted})
    for (int e = 0; e <= static_cast<int>(rollout_event::pause_timeout); ++e)
      EXPECT_FALSE(next_state(s, static_cast<rollout_event>(e), open)) << state_name(s) << " is final";
  EXPECT_EQ(next_state(rollout_state::scheduled, rollout_event::start, open), rollout_state::running);
  EXPECT_FALSE(next_state(rollout_state::scheduled, rollout_event::start, closed));
  EXPECT_EQ(next_state(rollout_state::running, rollout_event::advance, closed), rollout_state::completed);
  EXPECT_EQ(next_state(rollout_state::running, rollout_event::advance, open), rollout_state::running);
  EXPECT_FALSE(next_state(rollout_state::running, rollout_event::auto_advance, closed));
  EXPECT_FALSE(next_state(rollout_state::running, rollout_event::health_pause, closed));
  EXPECT_EQ(next_state(rollout_state::running, rollout_event::health_pause, open), rollout_state::paused);
  EXPECT_FALSE(next_state(rollout_state::paused, rollout_event::advance, open)) << "resume first";
  EXPECT_EQ(next_state(rollout_state::paused, rollout_event::resume, closed), rollout_state::running);
  EXPECT_FALSE(next_state(rollout_state::paused, rollout_event::pause_timeout, closed));
  EXPECT_EQ(next_state(rollout_state::paused, rollout_event::abort, closed), rollout_state::aborted);
  EXPECT_NE(refusal(rollout_state::completed, rollout_event::pause, open).find("completed"), std::string::npos);
}

TEST(RolloutEngine, MembershipIsStableAndEven) {
  using server::fleet::rollout_bucket;
  EXPECT_EQ(rollout_bucket(7, "device-1"), rollout_bucket(7, "device-1"));
  std::size_t in10 = 0;
  for (int i = 0; i < 20000; ++i) in10 += server::fleet::in_stage(3, dev(i), 10);
  expect_share(in10, 20000, 0.10);
  // A different rollout picks different devices.
  std::size_t both = 0;
  for (int i = 0; i < 20000; ++i) both += server::fleet::in_stage(3, dev(i), 10) && server::fleet::in_stage(4, dev(i), 10);
  expect_share(both, 20000, 0.01);
}
