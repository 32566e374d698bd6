// Several real mallornd replicas on one real PostgreSQL (tests/support/postgres_server.hpp) and
// one shared patch directory, driven by real curl, with real nginx in front (deploy/nginx/
// mallorn.conf): one build per pair across replicas, a builder killed mid-build and taken over,
// reports seen by every replica, a database restart under load, and nginx caching /patch/.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "mallorn/server/config.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/postgres_server.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn;
using namespace mallorn::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct reply {
  int status = 0;
  std::string body, headers;  // headers in lower case
  std::string header(const std::string& name) const {
    auto at = headers.find(name + ":");
    if (at == std::string::npos) return {};
    auto start = headers.find_first_not_of(' ', at + name.size() + 1);
    return headers.substr(start, headers.find('\r', start) - start);
  }
};

reply curl(const std::string& args) {
  temp_dir tmp("curlh");
  auto r = run_shell("curl -s -m 60 -D " + (tmp / "h").string() + " -w '\\n%{http_code}' " + args + " 2>/dev/null");
  reply out;
  auto nl = r.out.rfind('\n');
  out.body = nl == std::string::npos ? "" : r.out.substr(0, nl);
  out.status = std::atoi(r.out.c_str() + (nl == std::string::npos ? 0 : nl + 1));
  std::ifstream h(tmp / "h");
  std::stringstream ss;
  ss << h.rdbuf();
  out.headers = ss.str();
  for (auto& c : out.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

reply post(const std::string& url, const json& body) {
  return curl("-X POST -H 'Content-Type: application/json' -d '" + body.dump() + "' " + url);
}

std::string sha_of(const fs::path& p) { return core::to_hex(*core::sha256_of_file(p)); }

// The sum over replicas of one sample of /metrics whose line contains every `parts`.
double metric(const std::string& url, const std::vector<std::string>& parts) {
  std::istringstream in(curl(url + "/metrics").body);
  double total = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    bool all = true;
    for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

template <class F>
bool eventually(std::chrono::seconds limit, F&& done) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

const char* const token = "scaleout-test-admin-token-0123";

// A store, a PostgreSQL database and a patch directory shared by replicas started on demand.
struct cluster {
  postgres_server& pg = postgres_server::shared();
  daemon_store_rig rig{"scaleout", token, {"tfm-hello-world-int8"}};
  std::string db_name, url;
  std::map<std::string, std::unique_ptr<daemon_process>> replicas;

  cluster() { url = pg.create_database(&db_name); }
  fs::path patches() const { return rig.dir / "patches"; }
  // Starts (or restarts) replica `name`; `build_delay_ms` > 0 makes its builds slow.
  daemon_process& start(const std::string& name, int build_delay_ms = 0, std::vector<std::string> extra = {}) {
    replicas.erase(name);
    const fs::path work = rig.dir / ("work-" + name);
    fs::create_directories(work);
    std::vector<std::string> args = rig.args({"--database", url, "--patches", patches().string(), "--data",
                                              (work / "data").string(), "--replica-name", name, "--build-lease", "6",
                                              "--max-connections-per-address", "1000"});
    args.insert(args.end(), extra.begin(), extra.end());
    if (build_delay_ms > 0) ::setenv("MALLORN_TEST_BUILD_DELAY_MS", std::to_string(build_delay_ms).c_str(), 1);
    auto d = std::make_unique<daemon_process>(work, args);
    ::unsetenv("MALLORN_TEST_BUILD_DELAY_MS");
    return *(replicas[name] = std::move(d));
  }
  daemon_process& operator[](const std::string& name) { return *replicas.at(name); }
  std::string sql(const std::string& q) const { return pg.psql(db_name, q).out; }
  json check(const std::string& replica, const std::string& device = "dev-1") {
    auto r = post(replicas.at(replica)->url("/check-update"), {{"sha256", sha_of(rig.pairs[0].v1)}, {"device_id", device}});
    auto doc = json::parse(r.body, nullptr, false);
    if (doc.is_object()) doc["http_status"] = r.status;
    return doc;
  }
  // Every patch row points at a whole file whose SHA-256 is its id.
  void expect_rows_whole() const {
    std::istringstream rows(sql("SELECT id, size FROM patches"));
    for (std::string line; std::getline(rows, line);) {
      const auto bar = line.find('|');
      ASSERT_NE(bar, std::string::npos) << line;
      const std::string id = line.substr(0, bar);
      const fs::path file = patches() / (id + ".mlrn");
      ASSERT_TRUE(fs::exists(file)) << "row " << id << " has no file";
      EXPECT_EQ(fs::file_size(file), std::stoull(line.substr(bar + 1))) << id;
      EXPECT_EQ(sha_of(file), id);
    }
  }
};

std::vector<fs::path> leftovers(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  return out;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST(ScaleOut, HundredConcurrentChecksOverThreeReplicasBuildOnce) {
  cluster c;
  ASSERT_TRUE(c.pg.ok()) << c.pg.error();
  // Builds outlast the 6 s lease: the builder must renew its claim, or a second replica would
  // take the build over and build the pair again.
  for (const char* name : {"r0", "r1", "r2"}) ASSERT_TRUE(c.start(name, 10000).listening()) << c[name].log();

  temp_dir tmp("hundred");
  {
    std::ofstream cfg(tmp / "curl.cfg");
    for (int i = 0; i < 100; ++i) {
      const json body = {{"sha256", sha_of(c.rig.pairs[0].v1)}, {"device_id", "dev-" + std::to_string(i)}};
      if (i) cfg << "next\n";
      cfg << "url = \"" << c[std::string("r") + std::to_string(i % 3)].url("/check-update") << "\"\n"
          << "request = \"POST\"\nheader = \"Content-Type: application/json\"\ndata = " << json(body.dump()).dump()
          << "\noutput = \"/dev/null\"\nwrite-out = \"%{http_code}\\n\"\nsilent\nmax-time = 120\n";
    }
  }
  auto all = run_shell("curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 100 --config " + (tmp / "curl.cfg").string());
  std::istringstream codes(all.out);
  int answered = 0;
  for (std::string code; std::getline(codes, code);) {
    ++answered;
    EXPECT_TRUE(code == "200" || code == "202") << code;
  }
  EXPECT_EQ(answered, 100) << all.out;

  // Every replica ends with the same patch, built once in all. All three are asked in turn while
  // the build runs, so a replica would take the build over if the builder did not renew its claim.
  std::map<std::string, json> answers;
  ASSERT_TRUE(eventually(std::chrono::seconds(240), [&] {
    bool all = true;
    for (const char* name : {"r0", "r1", "r2"}) {
      answers[name] = c.check(name);
      all = all && answers[name].value("status", "") == "ready";
    }
    return all;
  })) << json(answers).dump() << "\n" << c["r0"].log() << c["r1"].log() << c["r2"].log();
  const std::string patch_id = answers["r0"]["patch_id"];
  for (const char* name : {"r1", "r2"}) EXPECT_EQ(answers[name]["patch_id"], patch_id) << name;
  // Wait until no replica builds anything any more: a second build, had one started, is counted.
  EXPECT_TRUE(eventually(std::chrono::seconds(120), [&] {
    double busy = 0;
    for (const char* name : {"r0", "r1", "r2"})
      busy += metric(c[name].url(), {"mallornd_builds_running{"}) + metric(c[name].url(), {"mallornd_builds_queued{"});
    return busy == 0 && c.sql("SELECT COUNT(*) FROM build_jobs") == "0\n";
  }));
  double builds = 0;
  for (const char* name : {"r0", "r1", "r2"}) {
    builds += metric(c[name].url(), {"mallornd_builds_total{", "result=\"ok\""});
    EXPECT_EQ(metric(c[name].url(), {"mallornd_builds_total{", "result=\"failed\""}), 0) << name;
    // Every sample carries its replica's name.
    EXPECT_NE(curl(c[name].url("/metrics")).body.find("replica=\"" + std::string(name) + "\""), std::string::npos);
  }
  EXPECT_EQ(builds, 1) << c["r0"].log() << c["r1"].log() << c["r2"].log();
  EXPECT_EQ(c.sql("SELECT COUNT(*) FROM patches"), "1\n");
  EXPECT_EQ(c.sql("SELECT COUNT(*) FROM build_jobs"), "0\n");
  c.expect_rows_whole();
  EXPECT_TRUE(leftovers(c.patches(), ".build-").empty());

  // A report posted to one replica is visible on another.
  ASSERT_EQ(post(c["r0"].url("/report"), {{"device_id", "dev-7"}, {"state", "committed"}, {"model", "m"}}).status, 200);
  auto seen = curl("-H 'Authorization: Bearer " + std::string(token) + "' " + c["r2"].url("/admin/devices/dev-7"));
  ASSERT_EQ(seen.status, 200) << seen.body;
  EXPECT_EQ(json::parse(seen.body)["devices"][0]["state"], "committed");
  // The patch downloads from a replica that did not build it, whole.
  for (const char* name : {"r0", "r1", "r2"}) {
    auto file = tmp / (std::string(name) + ".mlrn");
    ASSERT_EQ(curl("-o " + file.string() + " " + c[name].url("/patch/" + patch_id)).status, 200) << name;
    EXPECT_EQ(sha_of(file), patch_id);
  }
}

TEST(ScaleOut, BuilderKilledMidBuildIsTakenOverAndItsTempFileLeftToIt) {
  cluster c;
  ASSERT_TRUE(c.pg.ok()) << c.pg.error();
  auto& slow = c.start("ra", 600000);  // never finishes on its own within the test
  ASSERT_TRUE(slow.listening()) << slow.log();
  ASSERT_TRUE(c.start("rb").listening()) << c["rb"].log();

  EXPECT_EQ(c.check("ra")["http_status"], 202);
  // ra holds the claim and has its temp file on the shared disk: kill it there.
  ASSERT_TRUE(eventually(std::chrono::seconds(120), [&] {
    return c.sql("SELECT owner FROM build_jobs") == "ra\n" && !leftovers(c.patches(), ".build-ra-").empty();
  })) << slow.log();
  const auto orphans = leftovers(c.patches(), ".build-ra-");
  // While ra's lease runs, rb answers "building" and does not build.
  auto during = c.check("rb");
  EXPECT_EQ(during["http_status"], 202) << during.dump();
  slow.signal(SIGKILL);
  ASSERT_NE(slow.wait_exit(std::chrono::seconds(30)), -1);

  json answer;
  ASSERT_TRUE(eventually(std::chrono::seconds(240), [&] {
    answer = c.check("rb");
    return answer.value("status", "") == "ready";
  })) << answer.dump() << "\n" << c["rb"].log();
  EXPECT_NE(c["rb"].log().find("started on rb"), std::string::npos);
  c.expect_rows_whole();
  EXPECT_EQ(c.sql("SELECT COUNT(*) FROM patches"), "1\n");

  // A replica starting on the shared directory leaves other owners' young temp files and an
  // unindexed patch (maybe a build being published) alone.
  const fs::path unindexed = c.patches() / (std::string(64, 'a') + ".mlrn");
  std::ofstream(unindexed) << "not yet indexed";
  ASSERT_TRUE(c.start("rc").listening()) << c["rc"].log();
  for (const auto& f : orphans) EXPECT_TRUE(fs::exists(f)) << f;
  EXPECT_TRUE(fs::exists(unindexed));
  EXPECT_EQ(c.check("rc")["patch_id"], answer["patch_id"]);
  // ra itself, restarted under its name, removes its own leftovers.
  ASSERT_TRUE(c.start("ra").listening()) << c["ra"].log();
  for (const auto& f : orphans) EXPECT_FALSE(fs::exists(f)) << f;
  EXPECT_TRUE(fs::exists(unindexed));
  c.expect_rows_whole();
}

TEST(ScaleOut, PostgresRestartUnderLoadLosesNothing) {
  cluster c;
  ASSERT_TRUE(c.pg.ok()) << c.pg.error();
  ASSERT_TRUE(c.start("p0").listening()) << c["p0"].log();
  ASSERT_TRUE(c.start("p1").listening()) << c["p1"].log();

  // Reports over both replicas, one device id each, while the database goes away and comes back.
  std::atomic<bool> stop{false};
  struct outcome {
    std::string device;
    int status;
    bool retry_after;
  };
  std::vector<outcome> outcomes;
  std::thread load([&] {
    for (int i = 0; !stop; ++i) {
      const std::string device = "load-" + std::to_string(i);
      auto r = post(c[i % 2 ? "p1" : "p0"].url("/report"), {{"device_id", device}, {"state", "downloading"}, {"model", "m"}});
      outcomes.push_back({device, r.status, !r.header("retry-after").empty()});
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  c.pg.stop();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // Down: check-update still answers from memory or says "retry", never an error.
  for (const char* name : {"p0", "p1"}) {
    EXPECT_EQ(curl(c[name].url("/healthz")).status, 503);
    const int s = c.check(name)["http_status"];
    EXPECT_TRUE(s == 200 || s == 202 || s == 503) << s;
  }
  c.pg.start();
  ASSERT_TRUE(c.pg.ok()) << c.pg.error();
  for (const char* name : {"p0", "p1"})
    EXPECT_TRUE(eventually(std::chrono::seconds(60), [&] { return curl(c[name].url("/healthz")).status == 200; }));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  load.join();

  int ok = 0, refused = 0;
  std::string stored = c.sql("SELECT device_id FROM device_state WHERE device_id LIKE 'load-%'");
  for (const auto& o : outcomes) {
    ASSERT_TRUE(o.status == 200 || o.status == 503) << o.device << ": " << o.status;
    if (o.status == 503) {
      ++refused;
      EXPECT_TRUE(o.retry_after) << o.device;
    } else {
      ++ok;
      EXPECT_NE(stored.find(o.device + "\n"), std::string::npos) << o.device << " was acknowledged but is not stored";
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(outcomes.back().status, 200);  // recovered
  EXPECT_TRUE(c["p0"].running());
  EXPECT_TRUE(c["p1"].running());
}

TEST(ScaleOut, NginxInFrontCachesPatchesNotCheckUpdates) {
  if (run_shell("command -v nginx").exit_code != 0) GTEST_SKIP() << "nginx is not installed (scripts/deps.sh installs it)";
  cluster c;
  ASSERT_TRUE(c.pg.ok()) << c.pg.error();
  ASSERT_TRUE(c.start("n0", 0, {"--public-patch-base", "https://cdn.example.com/"}).listening()) << c["n0"].log();
  ASSERT_TRUE(c.start("n1", 0, {"--public-patch-base", "https://cdn.example.com/"}).listening()) << c["n1"].log();

  // The shipped configuration, pointed at these replicas, a private port and a temp cache.
  temp_dir prefix("nginx");
  const int port = free_port();
  std::ifstream shipped(std::string(MALLORN_SOURCE_DIR) + "/deploy/nginx/mallorn.conf");
  ASSERT_TRUE(shipped.good());
  std::stringstream conf;
  for (std::string line; std::getline(shipped, line);) {
    if (std::regex_search(line, std::regex(R"(^\s*server\s+10\.0\.0\.\d+:8080)"))) continue;
    if (std::regex_search(line, std::regex(R"(^\s*listen\s+\[::\])"))) continue;
    line = std::regex_replace(line, std::regex(R"(^(\s*)listen\s+80;)"), "$1listen 127.0.0.1:" + std::to_string(port) + ";");
    line = std::regex_replace(line, std::regex("/var/cache/nginx/mallorn"), (prefix / "cache").string());
    conf << line << "\n";
    if (std::regex_search(line, std::regex(R"(^\s*upstream\s+mallornd\s*\{)")))
      for (const char* name : {"n0", "n1"})
        conf << "    server 127.0.0.1:" << c[name].port() << " max_fails=1 fail_timeout=30s;\n";
  }
  std::ofstream(prefix / "mallorn.conf") << conf.str();
  {
    std::ofstream main(prefix / "nginx.conf");
    if (::getuid() == 0) main << "user root;\n";  // workers must write the temp cache directory
    main << "worker_processes 1;\npid " << (prefix / "nginx.pid").string() << ";\nerror_log "
         << (prefix / "error.log").string() << " info;\nevents { worker_connections 256; }\nhttp {\n  access_log "
         << (prefix / "access.log").string() << ";\n";
    for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
      main << "  " << t << "_temp_path " << (prefix / t).string() << ";\n";
    main << "  include " << (prefix / "mallorn.conf").string() << ";\n}\n";
  }
  const std::string nginx = "nginx -p " + prefix.path().string() + " -c " + (prefix / "nginx.conf").string();
  auto tested = run_shell(nginx + " -t 2>&1");
  ASSERT_EQ(tested.exit_code, 0) << tested.out << conf.str();
  ASSERT_EQ(run_shell(nginx + " 2>&1").exit_code, 0) << run_shell("cat " + (prefix / "error.log").string()).out;
  // Stopped and gone before its prefix directory is removed (nginx deletes its pid file on exit).
  struct stop_nginx {
    fs::path pid_file;
    ~stop_nginx() {
      pid_t pid = 0;
      std::ifstream(pid_file) >> pid;
      if (pid <= 0) return;
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 300 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } stopper{prefix / "nginx.pid"};
  const std::string front = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(eventually(std::chrono::seconds(30), [&] { return curl(front + "/healthz").status == 200; }));

  json answer;
  reply check;
  ASSERT_TRUE(eventually(std::chrono::seconds(240), [&] {
    check = post(front + "/check-update", {{"sha256", sha_of(c.rig.pairs[0].v1)}, {"device_id", "via-nginx"}});
    answer = json::parse(check.body, nullptr, false);
    return answer.is_object() && answer.value("status", "") == "ready";
  })) << check.body;
  EXPECT_EQ(check.header("cache-control"), "no-store");
  EXPECT_NE(check.header("x-cache-status"), "hit");
  const std::string id = answer["patch_id"];
  EXPECT_EQ(answer["patch_url"], "/patch/" + id);  // agents keep following the path
  EXPECT_EQ(answer["patch_public_url"], "https://cdn.example.com/patch/" + id);

  const double served_before = metric(c["n0"].url(), {"mallornd_bytes_served_total{", "kind=\"patch\""}) +
                               metric(c["n1"].url(), {"mallornd_bytes_served_total{", "kind=\"patch\""});
  temp_dir files("nginx-files");
  auto first = curl("-o " + (files / "1").string() + " " + front + "/patch/" + id);
  auto second = curl("-o " + (files / "2").string() + " " + front + "/patch/" + id);
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(first.header("x-cache-status"), "miss");
  EXPECT_EQ(second.header("x-cache-status"), "hit");
  EXPECT_EQ(sha_of(files / "1"), id);
  EXPECT_EQ(sha_of(files / "2"), id);
  EXPECT_EQ(second.header("etag"), "\"" + id + "\"");
  EXPECT_EQ(second.header("cache-control"), "public, max-age=31536000, immutable");
  // Only the miss reached a replica (its counter moves once the replica has sent the last byte).
  double served_after = 0;
  auto served = [&] {
    served_after = metric(c["n0"].url(), {"mallornd_bytes_served_total{", "kind=\"patch\""}) +
                   metric(c["n1"].url(), {"mallornd_bytes_served_total{", "kind=\"patch\""});
    return served_after - served_before == static_cast<double>(fs::file_size(files / "1"));
  };
  EXPECT_TRUE(eventually(std::chrono::seconds(20), served)) << served_after - served_before;
  // A resumed download is answered from the cache too.
  auto ranged = curl("-r 10-19 -o " + (files / "3").string() + " " + front + "/patch/" + id);
  EXPECT_EQ(ranged.status, 206);
  EXPECT_EQ(fs::file_size(files / "3"), 10u);

  // One replica dies: nginx sends devices to the other.
  c["n0"].signal(SIGKILL);
  ASSERT_NE(c["n0"].wait_exit(std::chrono::seconds(30)), -1);
  for (int i = 0; i < 6; ++i) {
    auto r = post(front + "/check-update", {{"sha256", sha_of(c.rig.pairs[0].v1)}, {"device_id", "after-" + std::to_string(i)}});
    EXPECT_EQ(r.status, 200) << r.body;
  }
}

TEST(ScaleOutConfig, PublicPatchBaseAndReplicaNameAreValidated) {
  EXPECT_EQ(*server::parse_public_base("https://cdn.example.com/"), "https://cdn.example.com");
  EXPECT_EQ(*server::parse_public_base("http://cdn.example.com:8443/mallorn//"), "http://cdn.example.com:8443/mallorn");
  EXPECT_EQ(*server::parse_public_base(""), "");  // unset
  for (const std::string& bad : std::vector<std::string>{"ftp://cdn", "cdn.example.com", "https://", "https:///path", "https://u:p@cdn",
                                "https://cdn/?x=1", "https://cdn/#f", "https://cdn/a b", "https://cdn/\x01",
                                "https://cdn/\"><script>", "https://cdn/\\x", std::string("https://cdn/\xc3\xa9"),
                                "https://" + std::string(600, 'a')}) {
    auto r = server::parse_public_base(bad);
    EXPECT_FALSE(r) << bad;
  }
  auto flag = server::load_config({"--public-patch-base", "javascript:alert(1)"}, nullptr);
  ASSERT_FALSE(flag);
  EXPECT_NE(flag.err().message.find("--public-patch-base"), std::string::npos);
  EXPECT_TRUE(server::is_valid_replica_name("replica-1.eu_west"));
  for (const std::string& bad : std::vector<std::string>{"", "a b", "a/b", "../x", "a\nb", std::string(65, 'a')})
    EXPECT_FALSE(server::is_valid_replica_name(bad)) << bad;
  EXPECT_TRUE(server::is_valid_replica_name(server::default_replica_name()));
  EXPECT_FALSE(server::load_config({"--build-lease", "1"}, nullptr));
  EXPECT_EQ(server::load_config({"--build-lease", "45"}, nullptr)->config.build_lease, std::chrono::seconds(45));
}
