// Hostile clients against the real mallornd on loopback (issue 11): request smuggling and other
// framing errors, one address taking every connection slot, silent and slow connections, the
// descriptor limit, log injection, upload names the store ignores, and the two documented 503s
// (connection cap, full build queue). Raw sockets where curl would be too polite; 127.0.0.x
// source addresses stand for other clients.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "support/curl_call.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/model_store_fixture.hpp"
#include "support/raw_conn.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string token = "hostile-admin-token-0123456789";

std::string sha_of(const std::filesystem::path& p) { return core::to_hex(*core::sha256_of_file(p)); }

struct rig : daemon_store_rig {
  explicit rig(const std::vector<std::string>& names = default_pairs())
      : daemon_store_rig("hostile", token, names) {}
};

// mallornd started through `sh -c 'ulimit -n N; exec mallornd ...'`: a descriptor limit (soft
// and hard) of its own. exec keeps the pid, so the test stops exactly the process it started.
class limited_daemon {
 public:
  limited_daemon(const std::filesystem::path& work, int fd_limit, const std::vector<std::string>& args)
      : port_file_(work / "port"), log_(work / "mallornd.log") {
    std::filesystem::remove(port_file_);
    std::string cmd = "ulimit -n " + std::to_string(fd_limit) + " && exec " + (bin_dir() / "mallornd").string();
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " --listen 127.0.0.1:0 --port-file '" + port_file_.string() + "' >> '" + log_.string() + "' 2>&1";
    std::vector<std::string> argv_s = {"/bin/sh", "-c", cmd};
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ);
    for (int i = 0; i < 300 && port_ == 0; ++i) {
      std::this_thread::sleep_for(20ms);
      std::ifstream in(port_file_);
      in >> port_;
    }
  }
  ~limited_daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  int port() const { return port_; }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::filesystem::path port_file_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

std::string metric(const daemon_process& d, const std::string& name) {
  auto text = curl(d.url("/metrics")).body;
  auto pos = text.find("\n" + name + " ");
  return pos == std::string::npos ? "" : text.substr(pos + name.size() + 2, text.find('\n', pos + 1) - pos - name.size() - 2);
}

std::string get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"; }

}  // namespace

// Every framing error: exactly one answer (the expected status), then the connection is closed;
// the request smuggled behind it is never answered.
TEST(HostileClient, FramingErrorsGetOneAnswerAndTheConnectionCloses) {
  rig r;
  daemon_process d(r.dir.path(), r.args());
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string body = json{{"sha256", sha_of(r.pairs[0].v2)}}.dump();
  const std::string smuggled = get("/healthz");
  const std::string model_url = "/model/" + r.pairs[0].model + "/2";
  struct attempt {
    std::string name, request;
    int status;
  };
  const std::vector<attempt> attempts = {
      {"TE gzip", "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + smuggled, 501},
      {"TE identity", "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" + smuggled, 501},
      {"TE gzip, chunked", "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled, 501},
      {"TE chunked twice", "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
      {"two TE fields", "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
      {"CL + TE", "POST /check-update HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
      {"TE in HTTP/1.0", "POST /check-update HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
      {"bad chunk size", "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + body + "\r\n0\r\n\r\n" + smuggled, 400},
      {"overflowing chunk size", "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nx\r\n0\r\n\r\n" + smuggled, 400},
      {"two Content-Lengths", "POST /check-update HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}" + smuggled, 400},
      {"20-digit Range end", "GET " + model_url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-99999999999999999999\r\n\r\n" + smuggled, 400},
      {"20-digit Range start", "GET " + model_url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=18446744073709551616-\r\n\r\n" + smuggled, 400},
      {"20-digit suffix Range", "GET " + model_url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=-99999999999999999999\r\n\r\n" + smuggled, 400},
      {"bad header line", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n" + smuggled, 400},
  };
  for (const auto& a : attempts) {
    raw_conn c(d.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send(a.request)) << a.name;
    bool closed = false;
    const auto answer = c.read_all(5000ms, closed);
    EXPECT_TRUE(closed) << a.name << ": the connection stayed open\n" << answer;
    EXPECT_EQ(count_of("\n" + answer, "\nHTTP/1."), 1) << a.name << ": " << answer;  // status lines
    EXPECT_EQ(answer.substr(0, 7), "HTTP/1.") << a.name << ": " << answer;
    EXPECT_EQ(answer.substr(8, 4), " " + std::to_string(a.status)) << a.name << ": " << answer;
    EXPECT_EQ(answer.find("\"status\":\"ok\""), std::string::npos) << a.name << ": the smuggled request was answered";
  }
  // The same connection with a well-framed chunked body is served and kept alive.
  raw_conn ok(d.port());
  std::string chunked = "POST /check-update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n";
  chunked += [&] { char b[16]; std::snprintf(b, sizeof b, "%zx", body.size()); return std::string(b); }();
  chunked += "\r\n" + body + "\r\n0\r\n\r\n";
  EXPECT_EQ(ok.request(chunked), 200);
  EXPECT_EQ(ok.request(get("/healthz")), 200);
  EXPECT_TRUE(d.running());
}

// One address opening every slot: the per-address cap sheds its own oldest idle connections,
// and another address is served at once.
TEST(HostileClient, OneAddressCannotTakeEveryConnectionSlot) {
  rig r;
  daemon_process d(r.dir.path(), r.args({"--max-connections", "50", "--max-connections-per-address", "10",
                                         "--header-timeout", "60"}));
  ASSERT_TRUE(d.listening()) << d.log();
  std::vector<raw_conn> attacker;
  for (int i = 0; i < 50; ++i) {
    attacker.emplace_back(d.port(), "127.0.0.1");
    ASSERT_TRUE(attacker.back().connected());
  }
  std::this_thread::sleep_for(300ms);
  const auto served = curl("--interface 127.0.0.2 " + d.url("/healthz"));
  EXPECT_EQ(served.status, 200) << served.body;
  // The attacker holds at most its cap; the first connections it opened were closed.
  EXPECT_TRUE(attacker.front().closed_within(2000ms));
  EXPECT_FALSE(attacker.back().closed_within(200ms));
  const auto active = std::atoll(metric(d, "mallornd_connections_active").c_str());
  EXPECT_LE(active, 12);  // 10 attacker connections + this /metrics request (+1 closing)
  EXPECT_GE(std::atoll(metric(d, "mallornd_connections_shed_total").c_str()), 40);
}

// The global cap, filled by several addresses with idle connections: the oldest idle one is
// closed to make room; when every connection is busy, a new client gets the documented 503.
TEST(HostileClient, GlobalCapShedsTheOldestIdleThenAnswers503) {
  rig r;
  daemon_process d(r.dir.path(), r.args({"--max-connections", "12", "--max-connections-per-address", "3",
                                         "--header-timeout", "60"}));
  ASSERT_TRUE(d.listening()) << d.log();
  std::vector<raw_conn> idle;
  for (int a = 1; a <= 4; ++a)
    for (int i = 0; i < 3; ++i) {
      idle.emplace_back(d.port(), "127.0.0." + std::to_string(a));
      std::this_thread::sleep_for(20ms);  // a strict age order
    }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(curl("--interface 127.0.0.5 " + d.url("/healthz")).status, 200);
  EXPECT_TRUE(idle.front().closed_within(2000ms));  // the oldest idle connection made room
  EXPECT_FALSE(idle.back().closed_within(200ms));
  idle.clear();
  std::this_thread::sleep_for(300ms);

  // Busy connections (a header in progress) are never shed: with all 12 busy, 503 + Retry-After.
  std::vector<raw_conn> busy;
  for (int a = 1; a <= 4; ++a)
    for (int i = 0; i < 3; ++i) {
      busy.emplace_back(d.port(), "127.0.0." + std::to_string(a));
      ASSERT_TRUE(busy.back().send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    }
  std::this_thread::sleep_for(300ms);
  raw_conn late(d.port(), "127.0.0.6");
  bool closed = false;
  const auto answer = late.read_all(3000ms, closed);
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 503") << answer;
  EXPECT_NE(answer.find("Retry-After: "), std::string::npos) << answer;
  EXPECT_NE(answer.find("\"code\":\"busy\""), std::string::npos) << answer;
  EXPECT_TRUE(closed);
  for (auto& b : busy) EXPECT_FALSE(b.closed_within(10ms));  // still waiting for the header's end
}

// A connection that says nothing, or dribbles its header, is closed after --header-timeout,
// not after the 75 s idle timeout.
TEST(HostileClient, SilentAndSlowConnectionsAreClosedAfterTheHeaderTimeout) {
  rig r;
  daemon_process d(r.dir.path(), r.args({"--header-timeout", "1"}));
  ASSERT_TRUE(d.listening()) << d.log();
  raw_conn silent(d.port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_within(5000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);

  raw_conn slow(d.port());
  const std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  bool cut = false;
  const auto slow_start = std::chrono::steady_clock::now();
  for (char ch : header) {
    if (!slow.send(std::string(1, ch))) {
      cut = true;
      break;
    }
    std::this_thread::sleep_for(100ms);
    if (std::chrono::steady_clock::now() - slow_start > 4s) break;
  }
  EXPECT_TRUE(cut || slow.closed_within(3000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - slow_start, 8s);

  // A kept-alive connection that finished a request keeps the longer idle timeout.
  raw_conn kept(d.port());
  EXPECT_EQ(kept.request(get("/healthz")), 200);
  EXPECT_FALSE(kept.closed_within(2500ms));
  EXPECT_EQ(kept.request(get("/healthz")), 200);
}

// The default cap is derived from the descriptor limit and sits below it.
TEST(HostileClient, DefaultConnectionCapSitsBelowTheDescriptorLimit) {
  rig r;
  limited_daemon d(r.dir.path(), 2048, r.args());
  ASSERT_NE(d.port(), 0) << d.log();
  const auto log = d.log();
  auto p = log.find("connections: at most ");
  ASSERT_NE(p, std::string::npos) << log;
  const auto cap = std::stoull(log.substr(p + 21));
  EXPECT_EQ(cap, 2048u - 512u);  // a quarter kept for files, SQLite, builds
  EXPECT_NE(log.find("descriptor limit 2048"), std::string::npos) << log;
}

// At the descriptor limit: GET /model answers 503 + Retry-After (not 404), a build that fails
// with EMFILE is not remembered as failed (503, then a patch once the attacker left), no answer
// shows a server path, and accept() errors are logged a few times, not ten times a second.
TEST(HostileClient, DescriptorExhaustionGives503NotWrongAnswers) {
  rig r;
  limited_daemon d(r.dir.path(), 96,
                   r.args({"--max-connections", "1000", "--max-connections-per-address", "1000", "--header-timeout",
                           "60", "--threads", "1"}));
  const int port = d.port();
  ASSERT_NE(port, 0) << d.log();

  raw_conn device(port, "127.0.0.2");  // a device connected before the flood
  ASSERT_EQ(device.request(get("/healthz")), 200);
  std::vector<raw_conn> flood;
  for (int i = 0; i < 150; ++i) flood.emplace_back(port, "127.0.0.1");
  std::this_thread::sleep_for(2500ms);  // the server accepts until EMFILE and then backs off

  std::string body, headers;
  const std::string model_url = "/model/" + r.pairs[0].model + "/2";
  const int model_status = device.request(get(model_url), &body, &headers);
  EXPECT_EQ(model_status, 503) << headers << body;
  EXPECT_NE(headers.find("Retry-After: "), std::string::npos) << headers;
  EXPECT_EQ(body.find('/'), std::string::npos) << body;

  const std::string check = json{{"sha256", sha_of(r.pairs[0].v1)}}.dump();
  const std::string check_request = "POST /check-update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                                    std::to_string(check.size()) + "\r\n\r\n" + check;
  int status = 202;
  for (int i = 0; i < 100 && status == 202; ++i) {
    status = device.request(check_request, &body, &headers);
    if (status == 202) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 503) << body;
  EXPECT_EQ(body.find("full_only"), std::string::npos) << body;
  EXPECT_EQ(body.find(r.dir.path().string()), std::string::npos) << body;
  EXPECT_NE(headers.find("Retry-After: "), std::string::npos) << headers;

  // At most a few accept() warnings for seconds of EMFILE.
  EXPECT_LE(count_of(d.log(), "accept failed"), 2) << d.log();

  flood.clear();  // the attacker leaves
  std::this_thread::sleep_for(500ms);
  auto ready = json();
  for (int i = 0; i < 400; ++i) {
    raw_conn c(port, "127.0.0.3");
    status = c.request(check_request, &body);
    if (status == 200) {
      ready = json::parse(body);
      break;
    }
    ASSERT_TRUE(status == 202 || status == 503) << status << " " << body;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(ready["status"], "ready") << body << "\n" << d.log();
  raw_conn after(port, "127.0.0.3");
  EXPECT_EQ(after.request(get(model_url)), 200);
}

// Client strings reach the log escaped; device ids are validated where they are accepted.
TEST(HostileClient, ClientStringsCannotForgeLogLines) {
  rig r;
  daemon_process d(r.dir.path(), r.args({"--log-level", "debug"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string forged = "boom\n[2026-01-01 00:00:00.000] [mallornd] [critical] forged \x1b[31mred\x1b[0m";
  const std::string report = json{{"device_id", "dev-1"}, {"state", "failed"}, {"error", forged},
                                  {"model", "m\nx"}, {"to_version", "\x1b]0;title\x07"}}.dump();
  std::ofstream(r.dir / "report.json") << report;
  EXPECT_EQ(curl("-X POST --data-binary @" + (r.dir / "report.json").string() + " " + d.url("/report")).status, 200);
  const auto log = d.log();
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << "an ESC byte reached the log";
  EXPECT_EQ(log.find('\x07'), std::string::npos);
  // The forged text only ever appears inside the warning line, after the escaped "\n".
  for (std::size_t p = 0, e; (e = log.find('\n', p)) != std::string::npos; p = e + 1) {
    const auto line = log.substr(p, e - p);
    if (line.find("[critical] forged") != std::string::npos)
      EXPECT_NE(line.find("boom\\n[2026-01-01"), std::string::npos) << "a forged line: " << line;
  }
  EXPECT_NE(log.find("boom\\n[2026-01-01"), std::string::npos) << log;
  EXPECT_NE(log.find("\\x1b[31mred"), std::string::npos) << log;

  for (const std::string bad : {std::string("evil\nid"), std::string("a b"), std::string(129, 'x'), std::string("\x1b[2J")}) {
    std::ofstream(r.dir / "bad.json") << json{{"device_id", bad}, {"state", "idle"}}.dump();
    auto res = curl("-X POST --data-binary @" + (r.dir / "bad.json").string() + " " + d.url("/report"));
    EXPECT_EQ(res.status, 400) << res.body;
    EXPECT_NE(res.body.find("bad_device_id"), std::string::npos) << res.body;
    std::ofstream(r.dir / "bad.json") << json{{"device_id", bad}, {"sha256", sha_of(r.pairs[0].v2)}}.dump();
    res = curl("-X POST --data-binary @" + (r.dir / "bad.json").string() + " " + d.url("/check-update"));
    EXPECT_EQ(res.status, 400) << res.body;
    EXPECT_NE(res.body.find("bad_device_id"), std::string::npos) << res.body;
  }
  EXPECT_EQ(curl("-X POST -d '{\"device_id\":\"aa:bb:cc:dd:ee:ff\",\"state\":\"idle\"}' " + d.url("/report")).status, 200);
}

// An upload under a name the store's scanner would ignore is refused before its body is read,
// leaves nothing in the store, and does not block a retry under a good name.
TEST(HostileClient, UploadNamesTheStoreIgnoresAreRefusedUpFront) {
  rig r;
  daemon_process d(r.dir.path(), r.args());
  ASSERT_TRUE(d.listening()) << d.log();
  const auto file = r.pairs[0].v2.string();
  const std::string auth = "-H 'Authorization: Bearer " + token + "' ";
  for (const std::string bad : {"x.tmp-1", "v.tmp-", "a.tmp-b.c"}) {
    for (int attempt = 0; attempt < 2; ++attempt) {  // a retry gets the same answer, not 409
      auto res = curl("-X PUT " + auth + "--data-binary @" + file + " " + d.url("/admin/models/dl/" + bad));
      EXPECT_EQ(res.status, 400) << bad << ": " << res.body;
      EXPECT_NE(res.body.find("bad_name"), std::string::npos) << res.body;
    }
  }
  EXPECT_FALSE(std::filesystem::exists(r.dir / "models" / "dl")) << "a refused upload left a file or directory";
  std::size_t staged = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(r.dir / "models" / ".uploads", ec)) ++staged, (void)e;
  EXPECT_EQ(staged, 0u);
  auto good = curl("-X PUT " + auth + "--data-binary @" + file + " " + d.url("/admin/models/dl/x-1"));
  EXPECT_EQ(good.status, 201) << good.body;
  EXPECT_EQ(curl(d.url("/model/dl/x-1")).status, 200);
}

// The documented 503 for a full build queue: one build running, one queued, the next pair waits.
TEST(HostileClient, FullBuildQueueAnswers503WithRetryAfter) {
  rig r({"coral-mnv1-025-quant_2020-to-2021a", "coral-mnv1-025-edgetpu_2020-to-2021a", "tfm-retinaface_a-to-b",
         "gguf-vocab-bert-bge_0508-to-0517"});
  ASSERT_EQ(r.pairs.size(), 4u);
  auto args = r.args({"--build-threads", "1", "--build-queue", "1"});
  // Slow builds (the default level, neural encodings on) keep the queue full long enough.
  args.erase(std::find(args.begin(), args.end(), "--level"), std::find(args.begin(), args.end(), "--level") + 2);
  args.erase(std::find(args.begin(), args.end(), "--no-neural"));
  daemon_process d(r.dir.path(), args);
  ASSERT_TRUE(d.listening()) << d.log();
  std::vector<curl_result> answers;
  for (const auto& p : r.pairs)
    answers.push_back(curl("-D - -X POST -d '" + json{{"sha256", sha_of(p.v1)}}.dump() + "' " + d.url("/check-update")));
  int busy = 0;
  for (const auto& a : answers) {
    if (a.status != 503) continue;
    ++busy;
    EXPECT_NE(a.body.find("Retry-After: 30"), std::string::npos) << a.body;
    EXPECT_NE(a.body.find("\"status\":\"busy\""), std::string::npos) << a.body;
  }
  EXPECT_GE(busy, 1) << answers[0].body << answers[1].body << answers[2].body << answers[3].body;
  EXPECT_EQ(answers[0].status, 202);
}

// The report writer's queue (--max-queued-reports): while another process holds the index's write
// lock (a stand-in for a slow disk or database), reports past the queue are answered 503 busy +
// Retry-After at once and counted; the report stuck on the lock holds the writer thread, not an
// I/O thread, so check-updates on every I/O thread are still answered at once (they were not
// while the write ran on the I/O thread); reports are stored again once the lock is gone.
TEST(HostileClient, FullReportQueueAnswers503WithRetryAfter) {
  rig r({"coral-mnv1-025-quant_2020-to-2021a"});
  ASSERT_EQ(r.pairs.size(), 1u);
  daemon_process d(r.dir.path(), r.args({"--max-queued-reports", "2", "--threads", "2"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string report = json{{"device_id", "dev-q"}, {"state", "idle"}}.dump();
  ASSERT_EQ(curl("-X POST -d '" + report + "' " + d.url("/report")).status, 200);
  const std::string check = "-m 2 -X POST -d '" + json{{"sha256", sha_of(r.pairs[0].v1)}}.dump() + "' " + d.url("/check-update");
  for (int i = 0; i < 600 && curl(check).status != 200; ++i) std::this_thread::sleep_for(50ms);  // the patch is built

  sqlite3* lock = nullptr;
  ASSERT_EQ(sqlite3_open((r.dir / "data" / "index.sqlite").c_str(), &lock), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(lock, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(lock);
  const std::string request = "POST /report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(report.size()) + "\r\n\r\n" + report;
  std::vector<raw_conn> devices;
  for (int i = 0; i < 6; ++i) {
    devices.emplace_back(d.port());
    ASSERT_TRUE(devices.back().send(request));
  }
  int busy = 0;
  for (auto& c : devices) {
    bool closed = false;
    const auto answer = c.read_all(300ms, closed);
    if (answer.find("\"code\":\"busy\"") == std::string::npos) continue;
    ++busy;
    EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 503") << answer;
    EXPECT_NE(answer.find("Retry-After: 5"), std::string::npos) << answer;
  }
  EXPECT_EQ(busy, 4);  // two wait for the writer (blocked on the lock); the other four are refused
  for (int i = 0; i < 4; ++i) {  // new connections go round-robin over both I/O threads
    const auto answer = curl(check);
    EXPECT_EQ(answer.status, 200) << answer.body;
  }
  EXPECT_NE(d.log().find("device writes: 2 queued"), std::string::npos) << d.log();

  ASSERT_EQ(sqlite3_exec(lock, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(lock);
  EXPECT_GE(std::atoll(metric(d, "mallornd_device_writes_shed_total").c_str()), 4);
  int stored = 0;
  for (int i = 0; i < 100 && stored == 0; ++i) {
    if (curl("-X POST -d '" + report + "' " + d.url("/report")).status == 200) ++stored;
    else std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(stored, 1) << d.log();
}
