// The agent under injected faults, against the real mallornd: every file operation of an update
// fails (or the power is cut right before it) in turn; the disk fills up during the download and
// during the apply. After every fault the active model is byte-identical to the old or the new
// release, and once the faults stop the device converges with no temp files left behind.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/agent_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

// A small real pair keeps one pass over every operation short.
constexpr const char* sweep_pair = "tfm-hello-world-int8";

struct fault_env {
  std::filesystem::path home;
  std::string mode = "fail";  // fail | fail_from | crash
  long at = 0;
  std::string err;  // errno name for failures
  std::filesystem::path trace;

  std::filesystem::path report() const { return home / "fault.report"; }
  std::string str() const {
    std::string s = std::string("LD_PRELOAD=") + MALLORN_FAULT_SHIM + " MALLORN_FAULT_DIR=" + home.string() +
                    "/ MALLORN_FAULT_MODE=" + mode + " MALLORN_FAULT_AT=" + std::to_string(at) +
                    " MALLORN_FAULT_REPORT=" + report().string();
    if (!err.empty()) s += " MALLORN_FAULT_ERRNO=" + err;
    if (!trace.empty()) s += " MALLORN_FAULT_TRACE=" + trace.string();
    return s;
  }
};

struct fault_report {
  long ops = 0, hit = 0;
  std::string kind, path;
};

fault_report read_report(const std::filesystem::path& file) {
  fault_report r;
  std::ifstream(file) >> r.ops >> r.hit >> r.kind >> r.path;
  return r;
}

struct trace_op {
  long n;
  std::string kind, path;
};

std::vector<trace_op> read_trace(const std::filesystem::path& file) {
  std::vector<trace_op> ops;
  std::ifstream in(file);
  for (trace_op op; in >> op.n >> op.kind >> op.path;) ops.push_back(op);
  return ops;
}

std::string journal_state(const std::filesystem::path& home) {
  auto j = json::parse(std::ifstream(home / "slots" / "journal.json"), nullptr, false);
  return j.is_discarded() ? "idle" : j.value("state", "?");
}

// Temp files and partial downloads left anywhere under the device's slots.
std::vector<std::string> leftovers(const std::filesystem::path& home) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(home / "slots")) {
    const auto name = e.path().filename().string();
    if (name.find(".tmp") != std::string::npos || name.rfind("download.part", 0) == 0) out.push_back(e.path().string());
  }
  return out;
}

// Runs the agent without faults until it settles (up to a few cycles: an interrupted update is
// resumed by the next one).
shell_result settle(const std::filesystem::path& home) {
  shell_result r;
  for (int i = 0; i < 6; ++i) {
    r = fleet_rig::until_done(home);
    if (r.exit_code == 0 && journal_state(home) == "idle") return r;
  }
  return r;
}

// Counts the file operations of one whole update on a fresh device (the patch is built first).
std::vector<trace_op> trace_update(fleet_rig& rig, const std::string& id) {
  auto warm = rig.device(id + "-warm");
  EXPECT_EQ(fleet_rig::until_done(warm).exit_code, 0);
  auto home = rig.device(id);
  fault_env env{home};
  env.trace = home / "fault.trace";
  auto r = fleet_rig::check_once(home, env.str());
  EXPECT_EQ(r.exit_code, 0) << r.out << fleet_rig::log(home);
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v2));
  return read_trace(env.trace);
}

struct sweep_result {
  int runs = 0, faults_hit = 0;
  std::map<std::string, int> states, kinds;
  std::string summary() const {
    std::ostringstream s;
    s << runs << " runs, " << faults_hit << " faults hit; journal states after the fault:";
    for (const auto& [k, v] : states) s << " " << k << "=" << v;
    s << "; operations hit:";
    for (const auto& [k, v] : kinds) s << " " << k << "=" << v;
    return s.str();
  }
};

// For N = 1..ops: a fresh device, one agent run with operation N faulted, then runs without faults.
// `healthy`: the health check passes (converge to v2) or fails (settle back on v1, rolled back).
sweep_result sweep(fleet_rig& rig, const std::string& mode, long ops, bool healthy) {
  const std::string old_sha = sha_of(rig.pair.v1), new_sha = sha_of(rig.pair.v2);
  sweep_result out;
  for (long n = 1; n <= ops; ++n) {
    const std::string id = mode + "-" + std::to_string(n);
    auto home = healthy ? rig.device(id) : rig.device(id, "release.pub", "exit 7");
    fault_env env{home, mode, n};
    auto faulted = fleet_rig::check_once(home, env.str());
    ++out.runs;
    auto rep = read_report(env.report());
    if (rep.hit) {
      ++out.faults_hit;
      ++out.kinds[rep.kind];
    }
    ++out.states[journal_state(home)];
    const std::string now = sha_of(current_model(home));
    EXPECT_TRUE(now == old_sha || now == new_sha) << mode << " at op " << n << " (" << rep.kind << " " << rep.path
                                                  << "): current is neither release";
    auto settled = settle(home);
    const std::string want = healthy ? new_sha : old_sha;
    EXPECT_EQ(sha_of(current_model(home)), want)
        << mode << " at op " << n << " (" << rep.kind << " " << rep.path << ") did not converge: " << settled.out
        << fleet_rig::log(home);
    EXPECT_EQ(journal_state(home), "idle") << mode << " at op " << n;
    EXPECT_TRUE(leftovers(home).empty()) << mode << " at op " << n << " left " << leftovers(home).front();
    if (!healthy) {
      auto j = json::parse(std::ifstream(home / "slots" / "journal.json"));
      EXPECT_EQ(j["failed_target"], new_sha) << mode << " at op " << n;
    }
    if (::testing::Test::HasFailure()) break;  // one broken point is enough to read
  }
  return out;
}

}  // namespace

TEST(AgentFaults, EveryFileOperationFailsInTurn) {
  fleet_rig rig(sweep_pair);
  ASSERT_TRUE(rig.server->listening());
  auto ops = trace_update(rig, "probe");
  ASSERT_GE(ops.size(), 20u);
  auto result = sweep(rig, "fail", static_cast<long>(ops.size()), true);
  std::cout << "[ fault sweep: fail ] " << ops.size() << " file operations per update; " << result.summary() << "\n";
  EXPECT_EQ(result.faults_hit, static_cast<int>(ops.size()));
  for (const char* kind : {"open", "write", "fsync", "rename", "symlink"}) EXPECT_GT(result.kinds[kind], 0) << kind;
}

TEST(AgentFaults, PowerCutBeforeEveryFileOperation) {
  fleet_rig rig(sweep_pair);
  ASSERT_TRUE(rig.server->listening());
  auto ops = trace_update(rig, "probe");
  auto result = sweep(rig, "crash", static_cast<long>(ops.size()), true);
  std::cout << "[ fault sweep: power cut ] " << result.summary() << "\n";
  EXPECT_EQ(result.faults_hit, static_cast<int>(ops.size()));
  // A cut lands in every state an update passes through.
  for (const char* s : {"idle", "download", "apply", "verify", "swap", "health_check", "commit"})
    EXPECT_GT(result.states[s], 0) << s << " never hit: " << result.summary();
}

TEST(AgentFaults, PowerCutBeforeEveryFileOperationOfARollback) {
  fleet_rig rig(sweep_pair);
  ASSERT_TRUE(rig.server->listening());
  auto warm = rig.device("warm");
  ASSERT_EQ(fleet_rig::until_done(warm).exit_code, 0);
  auto probe = rig.device("probe", "release.pub", "exit 7");
  fault_env env{probe};
  env.trace = probe / "fault.trace";
  EXPECT_EQ(fleet_rig::check_once(probe, env.str()).exit_code, 1);
  const auto ops = read_trace(env.trace);
  ASSERT_GE(ops.size(), 20u);
  auto result = sweep(rig, "crash", static_cast<long>(ops.size()), false);
  std::cout << "[ fault sweep: power cut, failing health check ] " << result.summary() << "\n";
  EXPECT_GT(result.states["rollback"], 0) << result.summary();
}

// The disk fills up (every write from then on fails with ENOSPC) during the download, then during
// the apply: the old model stays active, the log and the server's report say why, and once space
// is back the device updates.
TEST(AgentFaults, DiskFullDuringDownloadAndApply) {
  fleet_rig rig(sweep_pair);
  ASSERT_TRUE(rig.server->listening());
  auto ops = trace_update(rig, "probe");
  auto first = [&](const std::string& kind, const std::string& path_part) -> long {
    for (const auto& op : ops)
      if (op.kind == kind && op.path.find(path_part) != std::string::npos) return op.n;
    return 0;
  };
  const long in_download = first("write", "download.part");
  const long in_apply = first("write", "/b/model.tflite.tmp-");
  ASSERT_GT(in_download, 0);
  ASSERT_GT(in_apply, in_download);
  for (auto [phase, at] : {std::pair{"download", in_download}, std::pair{"apply", in_apply}}) {
    SCOPED_TRACE(phase);
    auto home = rig.device(std::string("full-") + phase);
    fault_env env{home, "fail_from", at, "ENOSPC"};
    auto r = fleet_rig::check_once(home, env.str());
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v1));
    EXPECT_EQ(journal_state(home), phase);
    const auto log = fleet_rig::log(home);
    EXPECT_NE(log.find("No space left on device"), std::string::npos) << log;
    EXPECT_NE(log.find("interrupted in state " + std::string(phase)), std::string::npos) << log;
    json latest;
    for (const auto& d : rig.devices())
      if (d["device_id"] == std::string("full-") + phase) latest = d;
    EXPECT_EQ(latest["state"], "interrupted") << latest.dump();
    EXPECT_NE(latest["error"].get<std::string>().find("No space left on device"), std::string::npos) << latest.dump();
    // Space is back: the next runs resume and finish.
    EXPECT_EQ(settle(home).exit_code, 0) << fleet_rig::log(home);
    EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v2));
    EXPECT_TRUE(leftovers(home).empty());
  }
}
