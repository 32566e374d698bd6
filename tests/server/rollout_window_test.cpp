// Maintenance windows in IANA time zones through check-update: the next window start is right
// across summer-time changes (checked against the C library's own local time, TZ set in this
// test only), a device's `tz` tag replaces the rollout's, and a tag that names no zone falls back
// to the rollout's zone (counted in the metrics) instead of opening or closing the window.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "rollout_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

// The first minute >= t at which local time in `tz` (per the C library) is in [start_h, end_h),
// any day: an oracle independent of our TZif reader.
std::int64_t libc_next_open(const std::string& tz, std::int64_t t, int start_h, int end_h) {
  std::optional<std::string> saved;
  if (const char* old = std::getenv("TZ")) saved = old;
  ::setenv("TZ", (":" + tz).c_str(), 1);
  ::tzset();
  std::int64_t found = -1;
  for (std::int64_t m = t / 60; m < t / 60 + 8 * 1440 && found < 0; ++m) {
    const std::time_t at = static_cast<std::time_t>(std::max(m * 60, t));
    std::tm tm{};
    ::localtime_r(&at, &tm);
    if (tm.tm_hour >= start_h && tm.tm_hour < end_h) found = at;
  }
  if (saved) ::setenv("TZ", saved->c_str(), 1);
  else ::unsetenv("TZ");
  ::tzset();
  return found;
}

json window(const std::string& tz) { return {{"start", "02:00"}, {"end", "04:00"}, {"tz", tz}}; }

}  // namespace

TEST(RolloutWindows, ZoneWindowFollowsSummerTime) {
  rollout_rig t;
  t.create({{"stages", {100}}, {"window", window("Europe/Berlin")}});
  struct probe {
    std::int64_t now, want;
    const char* what;
  };
  for (const auto& p : {
           probe{1774612800, 1774659600, "Fri 2026-03-27 12:00 UTC: Sat 02:00 CET = 01:00 UTC"},
           probe{1774699200, 1774746000, "Sat 12:00 UTC: Sun 02:00 does not exist; 03:00 CEST = 01:00 UTC opens it"},
           probe{1774785600, 1774828800, "Sun 12:00 UTC: Mon 02:00 CEST = 00:00 UTC"},
           probe{1792843200, 1792886400, "Sat 2026-10-24 12:00 UTC: Sun 02:00 CEST = 00:00 UTC"},
           probe{1792929600, 1792976400, "Sun 2026-10-25 12:00 UTC: Mon 02:00 CET = 01:00 UTC"},
       }) {
    *t.now = p.now;
    auto a = t.check("berlin-device");
    EXPECT_EQ(a["status"], "outside_window") << p.what << ": " << a;
    EXPECT_EQ(a["next_window_start"], p.want) << p.what;
    EXPECT_EQ(libc_next_open("Europe/Berlin", p.now, 2, 4), p.want) << "the C library disagrees: " << p.what;
    *t.now = p.want;
    EXPECT_TRUE(rollout_rig::offered(t.check("berlin-device"))) << "open at " << p.what;
    *t.now = p.want - 1;
    EXPECT_EQ(t.check("berlin-device")["status"], "outside_window") << "closed a second before: " << p.what;
  }
}

TEST(RolloutWindows, DeviceZoneReplacesTheRolloutsAndBadZonesFallBack) {
  rollout_rig t;
  t.create({{"stages", {100}}, {"window", window("Europe/Berlin")}});
  // Every zone, at instants around its own summer-time changes in 2026, against the C library.
  for (const char* zone : {"America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Europe/Berlin"}) {
    for (std::int64_t now : {1772971200ll, 1773014400ll, 1775260800ll, 1775275200ll, 1774785600ll, 1792843200ll,
                             1793500000ll, 1790000000ll, 1791000000ll}) {
      *t.now = now;
      auto a = t.check("traveller", {{"tz", zone}});
      const auto want = libc_next_open(zone, now, 2, 4);
      if (want == now) {
        EXPECT_TRUE(rollout_rig::offered(a)) << zone << " at " << now << ": " << a;
      } else {
        EXPECT_EQ(a["status"], "outside_window") << zone << " at " << now << ": " << a;
        EXPECT_EQ(a["next_window_start"], want) << zone << " at " << now;
      }
    }
  }
  // Tags that name no zone: the rollout's Berlin window applies, and the fallbacks are counted.
  *t.now = 1774785600;  // Sun 2026-03-29 12:00 UTC; Berlin opens Mon 00:00 UTC
  for (const char* bogus : {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "Europe", "+99:00"}) {
    auto a = t.check("confused-device", {{"tz", bogus}});
    EXPECT_EQ(a["status"], "outside_window") << bogus << ": " << a;
    EXPECT_EQ(a["next_window_start"], 1774828800) << bogus;
  }
  auto metrics = t.rig.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("mallornd_rollout_device_zone_fallbacks_total 5"), std::string::npos) << metrics;
  // Fixed offsets still work as tags.
  EXPECT_EQ(t.check("offset-device", {{"tz", "-05:00"}})["next_window_start"], 1774854000) << "Mon 02:00 at -05:00 = 07:00 UTC";
}

TEST(RolloutWindows, ZoneSurvivesARestartAndIsShown) {
  rollout_rig t;
  auto r = t.create({{"stages", {100}}, {"window", window("Australia/Lord_Howe")}});
  EXPECT_EQ(r["window"]["tz"], "Australia/Lord_Howe");
  *t.now = 1775260800;  // 2026-04-04 00:00 UTC, the day before Lord Howe leaves summer time
  const auto before = t.check("d")["next_window_start"];
  EXPECT_EQ(before, libc_next_open("Australia/Lord_Howe", *t.now, 2, 4));
  t.reopen();
  EXPECT_EQ(t.check("d")["next_window_start"], before);
  EXPECT_EQ(t.show(r["id"].get<std::int64_t>())["window"]["tz"], "Australia/Lord_Howe");
}
