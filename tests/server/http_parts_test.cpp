// The pure pieces under the router: version order, request targets, ranges, rate limits, config.
#include <gtest/gtest.h>

#include "mallorn/server/config.hpp"
#include "mallorn/server/http_range.hpp"
#include "mallorn/server/rate_limiter.hpp"
#include "mallorn/server/request_path.hpp"
#include "mallorn/server/version_order.hpp"

using namespace mallorn::server;

TEST(VersionOrder, NaturalAndSemver) {
  EXPECT_LT(compare_versions("v2", "v10"), 0);
  EXPECT_LT(compare_versions("1.9", "1.10"), 0);
  EXPECT_LT(compare_versions("1.0.0-rc1", "1.0.0"), 0);
  EXPECT_LT(compare_versions("1.0.0", "1.0.0.1"), 0);
  EXPECT_LT(compare_versions("2020", "2021a"), 0);
  EXPECT_LT(compare_versions("2021a", "2021b"), 0);
  EXPECT_EQ(compare_versions("v3", "3"), 0);
  EXPECT_EQ(compare_versions("007", "7"), 0);
  EXPECT_GT(compare_versions("10", "9"), 0);
  EXPECT_LT(compare_versions("99999999999999999999998", "99999999999999999999999"), 0);  // no overflow
}

TEST(RequestPath, SegmentsQueryAndRejections) {
  auto t = parse_target("/fingerprint/my%20model/v1?x=1&y=a+b&z");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->segments, (std::vector<std::string>{"fingerprint", "my model", "v1"}));
  EXPECT_EQ(t->query.at("y"), "a b");
  EXPECT_EQ(t->query.at("z"), "");
  for (const char* bad : {"", "x", "/a/../b", "/a/%2e%2e/b", "/a/%2E%2e", "/a/./b", "/a%2fb", "/a%5cb", "/a%00", "/a%zz",
                          "/a%2", "//a", "/a//b", "/a#frag", "/a\x01"})
    EXPECT_FALSE(parse_target(bad)) << bad;
  EXPECT_TRUE(is_valid_name("mobilenet_v2-1.0+int8"));
  EXPECT_FALSE(is_valid_name(".hidden"));
  EXPECT_FALSE(is_valid_name(".."));
  EXPECT_FALSE(is_valid_name("a/b"));
  EXPECT_FALSE(is_valid_name(std::string(129, 'a')));
  EXPECT_TRUE(is_patch_id(std::string(64, 'a')));
  EXPECT_FALSE(is_patch_id(std::string(64, 'A')));
}

TEST(HttpRange, SingleRangesAndEdgeCases) {
  auto r = decide_range("bytes=10-", 100);
  EXPECT_EQ(r.kind, range_kind::partial);
  EXPECT_EQ(r.range.first, 10u);
  EXPECT_EQ(r.range.length, 90u);
  r = decide_range("bytes=10-1000", 100);  // end clamped
  EXPECT_EQ(r.range.length, 90u);
  r = decide_range("bytes=-30", 100);
  EXPECT_EQ(r.range.first, 70u);
  r = decide_range("bytes=-300", 100);
  EXPECT_EQ(r.range.first, 0u);
  EXPECT_EQ(r.range.length, 100u);
  EXPECT_EQ(decide_range("bytes=100-", 100).kind, range_kind::unsatisfiable);
  EXPECT_EQ(decide_range("bytes=-0", 100).kind, range_kind::unsatisfiable);
  EXPECT_EQ(decide_range(std::nullopt, 100).kind, range_kind::full);
  EXPECT_EQ(decide_range("bytes=0-1,5-6", 100).kind, range_kind::full);  // multi-range: whole file
  EXPECT_EQ(decide_range("bytes=5-1", 100).kind, range_kind::full);      // invalid: ignored
  EXPECT_EQ(decide_range("items=0-1", 100).kind, range_kind::full);
  EXPECT_EQ(decide_range("bytes=abc-", 100).kind, range_kind::full);
  EXPECT_EQ(decide_range("bytes=99999999999999999999-", 100).kind, range_kind::full);
  EXPECT_TRUE(if_range_matches("\"abc\"", "\"abc\""));
  EXPECT_FALSE(if_range_matches("W/\"abc\"", "\"abc\""));
  EXPECT_FALSE(if_range_matches("Wed, 21 Oct 2015 07:28:00 GMT", "\"abc\""));
  EXPECT_TRUE(if_none_match_matches("\"x\", W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(if_none_match_matches("*", "\"abc\""));
  EXPECT_FALSE(if_none_match_matches("\"x\"", "\"abc\""));
}

TEST(RateLimiter, TokenBucketPerClient) {
  rate_limiter limiter(2.0, 3.0, 2);
  auto t = rate_limiter::clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow("a", t));
  EXPECT_FALSE(limiter.allow("a", t));
  EXPECT_TRUE(limiter.allow("b", t));  // clients are independent
  EXPECT_GE(limiter.retry_after("a", t), 1u);
  EXPECT_TRUE(limiter.allow("a", t + std::chrono::milliseconds(600)));
  // The table is bounded: a third client is only admitted once a bucket is full again.
  EXPECT_FALSE(limiter.allow("c", t));
  EXPECT_TRUE(limiter.allow("c", t + std::chrono::seconds(10)));
  rate_limiter off(0, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(off.allow("a", t));
}

TEST(Config, PrecedenceAndValidation) {
  char e1[] = "MODELS_DIR=/from/env";
  char e2[] = "MALLORN_LEVEL=7";
  char* env[] = {e1, e2, nullptr};
  auto c = load_config({"--level", "5", "--listen", "[::1]:9000", "--cache-budget=2G", "--no-neural"}, env);
  ASSERT_TRUE(c.ok()) << c.err().message;
  EXPECT_EQ(c->config.models_dir, "/from/env");
  EXPECT_EQ(c->config.level, 5);  // flag beats environment
  EXPECT_EQ(c->config.listen_host, "::1");
  EXPECT_EQ(c->config.listen_port, 9000);
  EXPECT_EQ(c->config.cache_budget, 2ull << 30);
  EXPECT_FALSE(c->config.neural);
  EXPECT_EQ(c->config.patches_dir, c->config.data_dir / "patches");
  EXPECT_EQ(load_config({}, env)->config.level, 7);
  for (auto bad : std::vector<std::vector<std::string>>{{"--level", "0"}, {"--level", "x"}, {"--bogus", "1"},
                                                         {"--listen", "nope"}, {"--cache-budget", "12Q"},
                                                         {"--tls-cert", "a.pem"}, {"--threads"}, {"stray"}})
    EXPECT_FALSE(load_config(bad, nullptr).ok()) << bad[0];
  EXPECT_TRUE(load_config({"--help"}, nullptr)->help);
  EXPECT_EQ(parse_size("64k"), 64u << 10);
  EXPECT_FALSE(parse_size("99999999999999999999G"));
}
