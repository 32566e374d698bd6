// The maintenance windows' time zones: the TZif reader and the POSIX rule evaluator against the
// C library's own conversion (localtime_r with TZ set, in this test only), across summer-time
// changes in both hemispheres, a half-hour summer time, a zone without summer time, and years
// past the files' last transition (where only the footer rule speaks). Then hostile names and
// files: nothing outside the zone directory is read, broken files are refused, the cache is
// bounded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>

#include "mallorn/server/fleet/rollout_spec.hpp"
#include "mallorn/server/fleet/time_zone.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn::server::fleet;
using mallorn::test::temp_dir;

namespace {

// The C library's answer for TZ=`tz` (a zone name with a leading ':' or a POSIX rule).
class libc_zone {
 public:
  explicit libc_zone(const std::string& tz) {
    if (const char* old = std::getenv("TZ")) saved_ = old;
    ::setenv("TZ", tz.c_str(), 1);
    ::tzset();
  }
  ~libc_zone() {
    if (saved_) ::setenv("TZ", saved_->c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
  }
  static std::int32_t offset_at(std::int64_t t) {
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    return static_cast<std::int32_t>(tm.tm_gmtoff);
  }
  // Local wall time -> unix seconds, as mktime resolves it (a time in the spring gap moves on).
  static std::int64_t utc_of(int y, int mon, int d, int h, int min) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = min;
    tm.tm_isdst = -1;
    return static_cast<std::int64_t>(std::mktime(&tm));
  }

 private:
  std::optional<std::string> saved_;
};

std::vector<std::uint8_t> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

constexpr std::int64_t y2025 = 1735689600, y2027 = 1798761600, y2040 = 2208988800, y2060 = 2840140800;

// Every `step` seconds in [from, to) our zone and the C library's agree.
void expect_agrees(const time_zone& ours, const std::string& libc_tz, std::int64_t from, std::int64_t to,
                   std::int64_t step) {
  libc_zone libc(libc_tz);
  int mismatches = 0;
  for (std::int64_t t = from; t < to && mismatches < 5; t += step) {
    const auto want = libc_zone::offset_at(t);
    const auto got = ours.offset_at(t);
    if (got != want) {
      ++mismatches;
      ADD_FAILURE() << libc_tz << " at " << t << ": ours " << got << ", libc " << want;
    }
  }
}

}  // namespace

TEST(TimeZone, ZoneFilesAgreeWithTheCLibraryAcrossSummerTime) {
  zoneinfo_source zones;
  for (const char* name : {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                           "America/Sao_Paulo", "Pacific/Chatham", "America/Nuuk", "UTC"}) {
    SCOPED_TRACE(name);
    auto z = zones.find(name);
    ASSERT_TRUE(z) << name << " should be in /usr/share/zoneinfo (package tzdata)";
    // Every 15 minutes through 2025 and 2026 (every change of those years, both directions).
    expect_agrees(*z, std::string(":") + name, y2025, y2027, 900);
    // Past 2037 the files hold no transitions: the footer rule alone.
    expect_agrees(*z, std::string(":") + name, y2040, y2060, 6 * 3600 + 900);
  }
}

TEST(TimeZone, KnownOffsetsAroundTheChanges) {
  zoneinfo_source zones;
  auto berlin = zones.find("Europe/Berlin");
  ASSERT_TRUE(berlin);
  const std::int64_t spring = 1774746000;  // 2026-03-29 01:00 UTC: 02:00 CET -> 03:00 CEST
  EXPECT_EQ(berlin->offset_at(spring - 1), 3600);
  EXPECT_EQ(berlin->offset_at(spring), 7200);
  const std::int64_t autumn = 1792890000;  // 2026-10-25 01:00 UTC: 03:00 CEST -> 02:00 CET
  EXPECT_EQ(berlin->offset_at(autumn - 1), 7200);
  EXPECT_EQ(berlin->offset_at(autumn), 3600);
  auto howe = zones.find("Australia/Lord_Howe");
  ASSERT_TRUE(howe);
  EXPECT_EQ(howe->offset_at(1767225600), 11 * 3600) << "January: summer, +11:00";
  EXPECT_EQ(howe->offset_at(1783000000), 10 * 3600 + 1800) << "July: +10:30";
  auto kolkata = zones.find("Asia/Kolkata");
  ASSERT_TRUE(kolkata);
  for (std::int64_t t = y2025; t < y2027; t += 86400 * 7) EXPECT_EQ(kolkata->offset_at(t), 5 * 3600 + 1800);
}

TEST(TimeZone, PosixRulesAgreeWithTheCLibrary) {
  for (const char* rule : {"CET-1CEST,M3.5.0,M10.5.0/3", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
                           "EST5EDT,M3.2.0,M11.1.0", "IST-5:30", "<-03>3", "NZST-12NZDT,M9.5.0,M4.1.0/3",
                           "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "AAA3BBB,J60/2,J300/2", "AAA-2BBB-3,59/2:30:15,299/1"}) {
    SCOPED_TRACE(rule);
    auto r = parse_posix_tz(rule);
    ASSERT_TRUE(r) << r.err().what();
    struct wrapped : time_zone {
      posix_tz_rule rule;
      std::int32_t offset_at(std::int64_t t) const override { return rule.offset_at(t); }
    } z;
    z.rule = *r;
    expect_agrees(z, rule, y2025, y2027 + 366 * 86400, 1800 + 7);
  }
  // Summer time all year (RFC 8536's example): the end rule's 25:00 is past the year's end.
  auto all_year = parse_posix_tz("EST5EDT,0/0,J365/25");
  ASSERT_TRUE(all_year);
  for (std::int64_t t = y2025; t < y2027; t += 3600 * 13) EXPECT_EQ(all_year->offset_at(t), -4 * 3600) << t;
}

TEST(TimeZone, PosixRuleParserRefusesMalformedRules) {
  for (const char* bad : {"", "C", "CE-1", "CET", "CET-", "CET-25", "CET-1CEST", "CET-1CEST,M3.5.0",
                          "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0",
                          "CET-1CEST,J0,J100", "CET-1CEST,366,1", "CET-1CEST,M3.5.0/168,M10.5.0",
                          "CET-1CEST,M3.5.0,M10.5.0/3x", "<+1>-1", "<ab c>-1", "<abc-1", "CET-1:60", "CET-1:00:60",
                          "CET-0001"}) {
    EXPECT_FALSE(parse_posix_tz(bad)) << "'" << bad << "' was accepted";
  }
  EXPECT_FALSE(parse_posix_tz(std::string(200, 'A') + "-1"));
}

TEST(TimeZone, ZoneNamesCannotLeaveTheZoneDirectory) {
  for (const char* ok : {"Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "EST5EDT"})
    EXPECT_TRUE(is_zone_name(ok)) << ok;
  for (const char* bad : {"", "/etc/passwd", "../../etc/passwd", "Europe/../../etc/passwd", "Europe//Berlin",
                          "Europe/", "./UTC", "Europe/.hidden", "Europe/Berlin\n", "Europe/Ber lin", "Europe\\Berlin",
                          "Europe/Berlin%00", "Europe/Berlin\x01"})
    EXPECT_FALSE(is_zone_name(bad)) << bad;
  EXPECT_FALSE(is_zone_name(std::string(65, 'A')));
  zoneinfo_source zones;
  EXPECT_FALSE(zones.find("../../etc/passwd"));
  EXPECT_FALSE(zones.find("Europe")) << "a directory is not a zone";
  EXPECT_FALSE(zones.find("Europe/Atlantis"));
  EXPECT_FALSE(zones.find("zone1970.tab")) << "not a zone name";
  // Fixed offsets need no file.
  EXPECT_EQ(resolve_zone(zones, "+05:30")->offset_at(0), 5 * 3600 + 1800);
  EXPECT_EQ(resolve_zone(zones, "UTC")->offset_at(0), 0);
  EXPECT_FALSE(resolve_zone(zones, "+25:00"));
}

TEST(TimeZone, BrokenFilesAreRefusedAndTheCacheIsBounded) {
  temp_dir dir{"zones"};
  const auto berlin = file_bytes("/usr/share/zoneinfo/Europe/Berlin");
  ASSERT_GT(berlin.size(), 100u);
  ASSERT_TRUE(parse_tzif(berlin));
  // Every truncation is refused (the footer comes last), never read past the end.
  for (std::size_t n = 0; n < berlin.size(); ++n)
    EXPECT_FALSE(parse_tzif(std::span(berlin.data(), n))) << "a " << n << "-byte prefix was accepted";
  // Corrupt counts and transitions.
  auto corrupt = berlin;
  corrupt[4] = '9';  // unknown version
  EXPECT_FALSE(parse_tzif(corrupt));
  corrupt = berlin;
  corrupt[0] = 'X';
  EXPECT_FALSE(parse_tzif(corrupt));
  corrupt = berlin;
  for (int i = 36; i < 40; ++i) corrupt[static_cast<std::size_t>(i)] = 0xff;  // typecnt = 2^32-1
  EXPECT_FALSE(parse_tzif(corrupt));
  corrupt = berlin;
  corrupt[corrupt.size() - 3] = '!';  // the footer rule
  EXPECT_FALSE(parse_tzif(corrupt));
  std::vector<std::uint8_t> huge(max_tzif_bytes + 1, 0);
  std::copy(berlin.begin(), berlin.end(), huge.begin());
  EXPECT_FALSE(parse_tzif(huge));
  // Leap-second ("right/") zones count time differently: refused.
  if (std::filesystem::exists("/usr/share/zoneinfo/right/UTC")) {
    EXPECT_FALSE(parse_tzif(file_bytes("/usr/share/zoneinfo/right/UTC")));
  }

  // A directory of our own: good, truncated and oversized files; the cache keeps at most 4.
  std::filesystem::create_directories(dir / "Test");
  std::ofstream(dir / "Test/Good", std::ios::binary).write(reinterpret_cast<const char*>(berlin.data()),
                                                            static_cast<std::streamsize>(berlin.size()));
  std::ofstream(dir / "Test/Short", std::ios::binary).write(reinterpret_cast<const char*>(berlin.data()), 60);
  std::ofstream(dir / "Test/Huge", std::ios::binary).write(reinterpret_cast<const char*>(huge.data()),
                                                           static_cast<std::streamsize>(huge.size()));
  zoneinfo_source zones(dir.path(), 4);
  ASSERT_TRUE(zones.find("Test/Good"));
  EXPECT_EQ(zones.find("Test/Good")->offset_at(1774746000), 7200);
  EXPECT_FALSE(zones.find("Test/Short"));
  EXPECT_FALSE(zones.find("Test/Huge"));
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(zones.find("Test/Missing" + std::to_string(i)));
  EXPECT_LE(zones.cached(), 4u);
  EXPECT_TRUE(zones.find("Test/Good")) << "evicted, then read again";
}
