// The pure pieces under the router: version order, request targets, ranges, rate limits, config.
#include <gtest/gtest.h>

#include <chrono>

#include "mallorn/core/log_safe.hpp"
#include "mallorn/server/config.hpp"
#include "mallorn/server/http_framing.hpp"
#include "mallorn/server/http_server.hpp"
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
  // Numbers past 2^64 - 1 are a framing error (400 + close), wherever they are.
  EXPECT_EQ(decide_range("bytes=99999999999999999999-", 100).kind, range_kind::invalid);
  EXPECT_EQ(decide_range("bytes=0-99999999999999999999", 100).kind, range_kind::invalid);
  EXPECT_EQ(decide_range("bytes=0-18446744073709551616", 100).kind, range_kind::invalid);
  EXPECT_EQ(decide_range("bytes=-18446744073709551616", 100).kind, range_kind::invalid);
  EXPECT_EQ(decide_range("bytes=0-18446744073709551615", 100).kind, range_kind::partial);
  EXPECT_EQ(decide_range("bytes=00000000000000000000010-", 100).range.first, 10u);  // leading zeros are fine
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

TEST(RateLimiter, ManyAddressesStayBoundedAtConstantCostPerRequest) {
  // A flood of IPv6 sources, all active at the same instant: the table stays within its bound,
  // newcomers are refused while every bucket is in use, and known clients keep their buckets.
  const auto t = rate_limiter::clock::now();
  auto fill = [&](rate_limiter& l, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) l.allow("2001:db8::" + std::to_string(i), t);
  };
  rate_limiter big(1.0, 5.0, 100000);
  fill(big, 200000);
  EXPECT_LE(big.size(), 100000u + rate_limiter::shard_count);
  EXPECT_GE(big.size(), 90000u);
  // The cost of a refused newcomer does not grow with the table: each one looks at exactly one
  // other bucket (the least recently used of its shard), in a table of 100,000 active clients as
  // in one of 1,000 (the old limiter walked every bucket of a full table).
  rate_limiter small(1.0, 5.0, 1000);
  fill(small, 1000);
  auto inspected_per_newcomer = [&](rate_limiter& l) {
    const auto before = l.buckets_inspected();
    for (int i = 0; i < 2000; ++i) EXPECT_FALSE(l.allow("2001:db8:1::" + std::to_string(i), t));
    return static_cast<double>(l.buckets_inspected() - before) / 2000;
  };
  EXPECT_EQ(inspected_per_newcomer(big), 1.0);
  EXPECT_EQ(inspected_per_newcomer(small), 1.0);
  // Once buckets have refilled (their clients went quiet), newcomers take their place.
  EXPECT_TRUE(big.allow("2001:db8:2::1", t + std::chrono::seconds(10)));
  EXPECT_LE(big.size(), 100000u + rate_limiter::shard_count);
}

TEST(HttpFraming, OnlyOneChunkedCodingIsAccepted) {
  EXPECT_TRUE(check_framing({}, true, 11).ok);
  EXPECT_TRUE(check_framing({"chunked"}, false, 11).ok);
  EXPECT_TRUE(check_framing({"Chunked"}, false, 11).ok);
  EXPECT_TRUE(check_framing({" chunked ,"}, false, 11).ok);
  EXPECT_EQ(check_framing({"gzip"}, false, 11).status, 501u);
  EXPECT_EQ(check_framing({"gzip, chunked"}, false, 11).status, 501u);
  EXPECT_EQ(check_framing({"identity"}, false, 11).status, 501u);
  EXPECT_EQ(check_framing({"chunked", "chunked"}, false, 11).status, 400u);
  EXPECT_EQ(check_framing({"chunked, chunked"}, false, 11).status, 400u);
  EXPECT_EQ(check_framing({"chunked"}, true, 11).status, 400u);
  EXPECT_EQ(check_framing({"chunked"}, false, 10).status, 400u);
  EXPECT_EQ(check_framing({""}, false, 11).status, 400u);
  EXPECT_EQ(check_framing({" , "}, false, 11).status, 400u);
}

TEST(LogSafe, ControlCharactersAreEscaped) {
  using mallorn::core::log_safe;
  EXPECT_EQ(log_safe("dev-1"), "dev-1");
  EXPECT_EQ(log_safe("a\nb\r\tc"), "a\\nb\\r\\tc");
  EXPECT_EQ(log_safe("\x1b[31m"), "\\x1b[31m");
  EXPECT_EQ(log_safe(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(log_safe("back\\slash"), "back\\\\slash");  // an escape cannot be faked
  EXPECT_EQ(log_safe("\x7f"), "\\x7f");
  EXPECT_EQ(log_safe("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 stays readable
  EXPECT_EQ(log_safe("\xc2\x9b"), "\\xc2\\x9b");       // C1 CSI
  EXPECT_EQ(log_safe("\xff\xfe"), "\\xff\\xfe");       // not UTF-8
  EXPECT_EQ(log_safe("\xe2\x82"), "\\xe2\\x82");       // truncated sequence
  EXPECT_EQ(log_safe(std::string(2000, 'a'), 10), std::string(10, 'a') + "...");
}

TEST(StoreNames, UploadsAndTheScannerShareOneRule) {
  EXPECT_EQ(store_version_of("1.tflite"), "1");
  EXPECT_EQ(store_version_of("2.0.1.onnx"), "2.0.1");
  EXPECT_FALSE(store_version_of("x.tmp-1.bin"));
  EXPECT_FALSE(store_version_of(".hidden.bin"));
  EXPECT_FALSE(store_version_of("index.json"));
  EXPECT_FALSE(store_version_of("noext"));
  EXPECT_FALSE(store_version_of("trailing."));
  EXPECT_FALSE(store_version_of("sp ace.bin"));
  EXPECT_TRUE(is_valid_device_id("aa:bb:cc:dd:ee:ff"));
  EXPECT_TRUE(is_valid_device_id("cam-7@site_3.b+x"));
  EXPECT_FALSE(is_valid_device_id(""));
  EXPECT_FALSE(is_valid_device_id("a b"));
  EXPECT_FALSE(is_valid_device_id("a\nb"));
  EXPECT_FALSE(is_valid_device_id(std::string(129, 'a')));
}

TEST(ConnectionLimits, DefaultCapAndAddressKeys) {
  EXPECT_EQ(default_max_connections(65536), 49152u);
  EXPECT_EQ(default_max_connections(20000), 15000u);
  EXPECT_EQ(default_max_connections(1024), 768u);
  EXPECT_LT(default_max_connections(300), 300u);
  EXPECT_GE(default_max_connections(100), 16u);
  EXPECT_EQ(address_key("10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(address_key("::ffff:10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(address_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_key("2001:db8:1:2:ffff::1"), address_key("2001:db8:1:2::9"));
  EXPECT_NE(address_key("2001:db8:1:3::1"), address_key("2001:db8:1:2::1"));
}
