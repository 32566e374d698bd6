// The agent facing a hostile or confused server (tests/agent/scripted_server.py): nulls and wrong
// types in the check-update answer, bodies that never end, wrong Content-Range, redirects to
// another host, huge headers, a slow drip. In every case the device's `current` model stays the
// old one (or becomes the new one through an honest path), the journal stays readable and
// consistent, the log says why in one escaped line, nothing is written past an announced size,
// and the refusal is counted in the journal's bad_server_answers.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/agent_rig.hpp"
#include "agent/scripted_server.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

model_pair small_pair() {
  for (const auto& p : model_pairs())
    if (p.name == "tfm-hello-world-int8") return p;
  ADD_FAILURE() << "tfm-hello-world-int8 missing";
  return model_pairs().front();
}

// A device provisioned with the old release of a small real pair, talking to a scripted server.
struct hostile_rig {
  temp_dir dir;
  model_pair pair = small_pair();
  scripted_server server{dir / "server"};
  std::string agent;
  explicit hostile_rig(const std::string& name, const json& extra_config = json::object()) : dir("hostile-" + name) {
    EXPECT_NE(server.port(), 0);
    json cfg = {{"server", server.url()},
                {"device_id", name},
                {"http_timeout", 3},
                {"models", {{{"name", "hello"}, {"dir", (dir / "slots").string()}, {"file", "model.tflite"}}}}};
    for (const auto& [k, v] : extra_config.items()) cfg[k] = v;
    std::ofstream(dir / "agent.json") << cfg.dump();
    agent = fleet_rig::agent() + " --config " + (dir / "agent.json").string();
    EXPECT_EQ(run_shell(agent + " install hello " + pair.old_path.string()).exit_code, 0);
    server.serve("model.tflite", pair.new_path);
  }
  // An honest full-only answer for the new release; tests break it field by field.
  json offer() const {
    return {{"update_available", true},
            {"current_version", "1"},
            {"target_version", "2"},
            {"target_rank", 2},
            {"target_sha256", sha_of(pair.new_path)},
            {"full_url", "/files/model.tflite"},
            {"full_size", std::filesystem::file_size(pair.new_path)},
            {"patch_url", nullptr},
            {"patch_size", nullptr},
            {"patch_sha256", nullptr}};
  }
  // A real patch old -> new, served as /files/update.mlrn; the offer with it.
  json offer_with_patch() {
    const auto patch = dir / "server" / "files" / "update.mlrn";
    EXPECT_EQ(run_shell((bin_dir() / "mallorn").string() + " diff " + pair.old_path.string() + " " +
                        pair.new_path.string() + " -o " + patch.string() + " --level 3 --target-version 2 >/dev/null")
                  .exit_code,
              0);
    json o = offer();
    o["patch_url"] = "/files/update.mlrn";
    o["patch_sha256"] = sha_of(patch);
    o["patch_size"] = std::filesystem::file_size(patch);
    return o;
  }
  shell_result check_once(const std::string& prefix = {}) const {
    return run_shell(prefix + agent + " check-once --json 2>" + (dir / "agent.log").string());
  }
  std::string log() const {
    std::ifstream in(dir / "agent.log");
    return {std::istreambuf_iterator<char>(in), {}};
  }
  json journal() const { return json::parse(std::ifstream(dir / "slots" / "journal.json"), nullptr, false); }
  std::filesystem::path current() const { return dir / "slots" / "current" / "model.tflite"; }
  std::filesystem::path part() const { return dir / "slots" / "download.part"; }
  std::size_t gets(const std::string& path) const {
    std::size_t n = 0;
    for (const auto& r : server.requests())
      if (r["method"] == "GET" && r["path"] == path) ++n;
    return n;
  }
};

// The log is one escaped line per event: no byte under 0x20 but the newlines between lines.
bool log_is_escaped(const std::string& log) {
  for (char c : log)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') return false;
  return true;
}

// The old model is active, the journal is idle and readable, one bad answer was counted, and the
// log names the reason.
void expect_refused(const hostile_rig& rig, const shell_result& r, const std::string& reason) {
  EXPECT_EQ(r.exit_code, 1) << r.out << rig.log();
  EXPECT_EQ(sha_of(rig.current()), sha_of(rig.pair.old_path));
  const json j = rig.journal();
  ASSERT_TRUE(j.is_object()) << "journal unreadable";
  EXPECT_EQ(j.value("state", ""), "idle");
  EXPECT_EQ(j.value("bad_server_answers", 0), 1) << j.dump();
  EXPECT_NE(rig.log().find(reason), std::string::npos) << rig.log();
  EXPECT_TRUE(log_is_escaped(rig.log())) << rig.log();
  EXPECT_FALSE(std::filesystem::exists(rig.part()));
}

}  // namespace

// Issue 11 item 10: mallornd answers `full_only` with current_version null for a model file it
// does not know. The agent used to fail every cycle on that null ("type must be string"); now
// the full download is the recovery.
TEST(AgentHostileServer, NullCurrentVersionRecoversThroughTheFullModel) {
  hostile_rig rig("null-current");
  json o = rig.offer();
  o["current_version"] = nullptr;
  o["status"] = "full_only";
  rig.server.answer(o.dump());
  auto r = rig.check_once();
  ASSERT_EQ(r.exit_code, 0) << r.out << rig.log();
  EXPECT_EQ(sha_of(rig.current()), sha_of(rig.pair.new_path));
  EXPECT_EQ(rig.journal().value("installed_version", "?"), "2");
  EXPECT_EQ(rig.journal().value("from_version", ""), "unknown");
  EXPECT_EQ(rig.gets("/files/model.tflite"), 1u);
  // Every optional field missing rather than null works the same.
  hostile_rig bare("missing-optional");
  json b = bare.offer();
  for (const char* k : {"current_version", "target_rank", "patch_url", "patch_size", "patch_sha256"}) b.erase(k);
  bare.server.answer(b.dump());
  r = bare.check_once();
  ASSERT_EQ(r.exit_code, 0) << r.out << bare.log();
  EXPECT_EQ(sha_of(bare.current()), sha_of(bare.pair.new_path));
}

struct bad_answer_case {
  const char* name;
  std::function<std::string(json)> answer;  // from an honest offer
  const char* reason;                       // what the log must say
  friend void PrintTo(const bad_answer_case& c, std::ostream* os) { *os << c.name; }
};

class AgentBadAnswer : public ::testing::TestWithParam<bad_answer_case> {};

TEST_P(AgentBadAnswer, IsRefusedAndChangesNothing) {
  const auto& c = GetParam();
  hostile_rig rig(c.name);
  rig.server.answer(c.answer(rig.offer()));
  auto r = rig.check_once();
  expect_refused(rig, r, c.reason);
  EXPECT_EQ(rig.gets("/files/model.tflite"), 0u) << "nothing is downloaded on a refused answer";
  // The next cycle refuses again; the count grows, nothing else changes.
  r = rig.check_once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(rig.journal().value("bad_server_answers", 0), 2);
  EXPECT_EQ(sha_of(rig.current()), sha_of(rig.pair.old_path));
  auto status = json::parse(run_shell(rig.agent + " status --json").out, nullptr, false);
  ASSERT_TRUE(status.is_array()) << status;
  EXPECT_EQ(status[0].value("bad_server_answers", 0), 2);
  EXPECT_EQ(status[0].value("state", ""), "idle");
}

namespace {

std::function<std::string(json)> with(const char* key, json value) {
  return [key, value](json o) {
    o[key] = value;
    return o.dump();
  };
}
std::function<std::string(json)> without(const char* key) {
  return [key](json o) {
    o.erase(key);
    return o.dump();
  };
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(
    Cases, AgentBadAnswer,
    ::testing::Values(
        bad_answer_case{"update_available_null", with("update_available", nullptr), "update_available is missing"},
        bad_answer_case{"update_available_string", with("update_available", "yes"), "update_available is a string"},
        bad_answer_case{"target_version_null", with("target_version", nullptr), "target_version is missing"},
        bad_answer_case{"target_version_number", with("target_version", 2), "target_version is a number"},
        bad_answer_case{"target_sha256_short", with("target_sha256", "abc"), "target_sha256 is not 64"},
        bad_answer_case{"full_url_other_host", with("full_url", "http://127.0.0.2:9/x"), "full_url is not a path"},
        bad_answer_case{"full_url_null", with("full_url", nullptr), "full_url is not a path"},
        bad_answer_case{"full_size_missing", without("full_size"), "full_size is missing"},
        bad_answer_case{"full_size_zero", with("full_size", 0), "full_size is missing"},
        bad_answer_case{"full_size_string", with("full_size", "1000"), "full_size is a string"},
        bad_answer_case{"full_size_negative", with("full_size", -5), "full_size is negative"},
        bad_answer_case{"full_size_fraction", with("full_size", 1.5), "full_size is a number, not a whole number"},
        bad_answer_case{"patch_size_string", with("patch_size", "12"), "patch_size is a string"},
        bad_answer_case{"current_version_object", with("current_version", json::object()), "current_version is a object"},
        bad_answer_case{"array_body", [](json) { return std::string("[1,2,3]"); }, "the body is not a JSON object"},
        // Control characters in what the server sends reach the log escaped.
        bad_answer_case{"control_characters", [](json) { return std::string("\x1b[2J\r\nnot json\x07"); },
                        "(body: \\x1b[2J\\x0d\\x0anot json\\x07)"}),
    [](const auto& info) { return std::string(info.param.name); });

// Issue 11 item 11: a server announcing full_size 1000 and then streaming without end made the
// agent write hundreds of MB to download.part. Now it stops at the announced size, fails the
// download and counts a bad answer. The file-size limit (SIGXFSZ past 64 KiB) makes any byte far
// past the announced size fatal to the test, not just visible.
TEST(AgentHostileServer, EndlessBodyStopsAtTheAnnouncedSize) {
  hostile_rig rig("endless-full");
  json o = rig.offer();
  o["full_size"] = 1000;
  rig.server.answer(o.dump());
  rig.server.behave({{"files/model.tflite", {{"endless", true}, {"watch", rig.part().string()}}}});
  auto r = rig.check_once("ulimit -f 128; ");
  EXPECT_EQ(r.exit_code, 1) << r.out << rig.log();
  EXPECT_EQ(sha_of(rig.current()), sha_of(rig.pair.old_path));
  const json j = rig.journal();
  EXPECT_EQ(j.value("state", ""), "idle");
  EXPECT_LE(j.value("bytes_downloaded", std::uint64_t{1} << 40), 1000u) << j.dump();
  EXPECT_EQ(j.value("bad_server_answers", 0), 1);
  EXPECT_EQ(j.value("failed_target", ""), sha_of(rig.pair.new_path));
  EXPECT_LE(rig.server.watch_max(), 1000u);
  EXPECT_NE(rig.log().find("sent more than the announced 1000 bytes"), std::string::npos) << rig.log();
  EXPECT_FALSE(std::filesystem::exists(rig.part()));
}

// A patch of N bytes that never ends: the download stops at N, the patch is set aside and the
// honest whole model is installed instead.
TEST(AgentHostileServer, EndlessPatchFallsBackToTheFullModel) {
  hostile_rig rig("endless-patch");
  json o = rig.offer_with_patch();
  const std::uint64_t patch_size = o["patch_size"];
  rig.server.answer(o.dump());
  rig.server.behave({{"files/update.mlrn", {{"endless", true}, {"watch", rig.part().string()}}}});
  auto r = rig.check_once();
  ASSERT_EQ(r.exit_code, 0) << r.out << rig.log();
  EXPECT_EQ(sha_of(rig.current()), sha_of(rig.pair.new_path));
  const json j = rig.journal();
  EXPECT_LE(j.value("bytes_downloaded", std::uint64_t{1} << 40), patch_size + std::filesystem::file_size(rig.pair.new_path));
  EXPECT_EQ(j.value("bad_server_answers", 0), 1);
  EXPECT_LE(rig.server.watch_max(), std::max<std::uint64_t>(patch_size, std::filesystem::file_size(rig.pair.new_path)));
  EXPECT_NE(rig.log().find("sent more than the announced " + std::to_string(patch_size) + " bytes"), std::string::npos)
      << rig.log();
  EXPECT_NE(rig.log().find("falling back to the full model"), std::string::npos);
}

// A check-update answer that never ends is cut at 1 MiB, not read until the server tires.
TEST(AgentHostileServer, EndlessCheckUpdateAnswerIsCutAtOneMebibyte) {
  hostile_rig rig("endless-answer");
  rig.server.answer(rig.offer().dump());
  rig.server.behave({{"check-update", {{"endless", true}}}});
  const auto start = std::chrono::steady_clock::now();
  auto r = rig.check_once();
  expect_refused(rig, r, "body longer than 1048576 bytes");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

// Sizes over the configured max_model_size are refused before a byte is fetched.
TEST(AgentHostileServer, DownloadOverMaxModelSizeIsRefused) {
  hostile_rig rig("too-big", {{"max_model_size", 1000}});
  rig.server.answer(rig.offer().dump());
  auto r = rig.check_once();
  expect_refused(rig, r, "is over max_model_size 1000");
  EXPECT_EQ(rig.gets("/files/model.tflite"), 0u);
}

// A Content-Length that disagrees with the announced size, and a 206 whose Content-Range is not
// the range asked for: the patch is refused before a byte is written, the whole model installs.
TEST(AgentHostileServer, WrongContentRangeOrLengthIsRefused) {
  for (const auto& [name, how, reason] :
       std::vector<std::tuple<std::string, json, std::string>>{
           {"range", {{"status", 206}, {"headers", {{"Content-Range", "bytes 7-99/100"}}}}, "Content-Range 'bytes 7-99/100'"},
           {"range-star", {{"status", 206}, {"headers", {{"Content-Range", "bytes 0-99/*"}}}}, "Content-Range 'bytes 0-99/*' is malformed"},
           {"no-range", {{"status", 206}}, "a 206 answer without Content-Range"},
           {"length", {{"content_length", 999999}}, "Content-Length 999999"}}) {
    SCOPED_TRACE(name);
    hostile_rig rig("content-" + name);
    rig.server.answer(rig.offer_with_patch().dump());
    rig.server.behave({{"files/update.mlrn", how}});
    auto r = rig.check_once();
    EXPECT_EQ(r.exit_code, 0) << r.out << rig.log();
    EXPECT_EQ(sha_of(rig.current()), sha_of(rig.pair.new_path));
    EXPECT_EQ(rig.journal().value("bad_server_answers", 0), 1);
    EXPECT_NE(rig.log().find(reason), std::string::npos) << rig.log();
    EXPECT_TRUE(log_is_escaped(rig.log()));
  }
}

// Redirects are not followed: not for check-update, not for a download. The other host never
// hears from the device.
TEST(AgentHostileServer, RedirectsToAnotherHostAreNotFollowed) {
  hostile_rig rig("redirect");
  temp_dir other_dir("hostile-other");
  scripted_server other(other_dir / "server");
  other.answer(rig.offer().dump());
  rig.server.answer(rig.offer().dump());
  rig.server.behave({{"check-update", {{"status", 302}, {"headers", {{"Location", other.url() + "/check-update"}}}}}});
  auto r = rig.check_once();
  expect_refused(rig, r, "check-update answered HTTP 302 (redirects are not followed)");

  hostile_rig dl("redirect-download");
  dl.server.answer(dl.offer_with_patch().dump());
  dl.server.behave({{"files/update.mlrn", {{"status", 302}, {"headers", {{"Location", other.url() + "/files/x"}}}}}});
  r = dl.check_once();
  EXPECT_EQ(r.exit_code, 0) << r.out << dl.log();
  EXPECT_EQ(sha_of(dl.current()), sha_of(dl.pair.new_path));
  EXPECT_NE(dl.log().find("answered 302 (redirects are not followed)"), std::string::npos) << dl.log();
  EXPECT_TRUE(other.requests().empty());
}

// Headers over 8 KiB end the exchange; a drip-fed answer ends at the http_timeout (3 s here),
// however slowly the bytes keep coming. Both are the network's trouble: the journal is untouched.
TEST(AgentHostileServer, HugeHeadersAndSlowDripEndInTime) {
  hostile_rig rig("huge-header");
  rig.server.answer(rig.offer().dump());
  rig.server.behave({{"check-update", {{"huge_header", 256 * 1024}}}});
  auto r = rig.check_once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(sha_of(rig.current()), sha_of(rig.pair.old_path));
  EXPECT_NE(rig.log().find("header limit exceeded"), std::string::npos) << rig.log();

  hostile_rig drip("drip");
  drip.server.answer(drip.offer().dump());
  drip.server.behave({{"check-update", {{"drip", 0.2}}}});  // a ~400-byte answer over ~80 s
  const auto start = std::chrono::steady_clock::now();
  r = drip.check_once();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_LT(took, std::chrono::seconds(12)) << "the 3 s deadline covers the whole answer";
  EXPECT_EQ(sha_of(drip.current()), sha_of(drip.pair.old_path));
  EXPECT_NE(drip.log().find("timeout"), std::string::npos) << drip.log();
}
