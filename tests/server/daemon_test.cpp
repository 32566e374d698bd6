// The real mallornd process on loopback, driven by real curl: downloads, resume, ranges, one build
// for many devices, bad input, kill -9 during a build, SIGTERM drain, uploads, SIGHUP, TLS.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/core/signature.hpp"
#include "mallorn/formats/mcu_patch.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/model_store_fixture.hpp"
#include "support/shell.hpp"
#include "support/test_certificate.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

const std::string token = "test-admin-token-0123456789";

std::string sha_of(const std::filesystem::path& p) { return core::to_hex(*core::sha256_of_file(p)); }

struct daemon_rig : daemon_store_rig {
  explicit daemon_rig(const std::vector<std::string>& names = default_pairs())
      : daemon_store_rig("mallornd", token, names) {}
};

// curl with -s and the status code on the last line.
struct curl_result {
  int status = 0;
  std::string body;
};
curl_result curl(const std::string& args) {
  auto r = run_shell("curl -s -w '\\n%{http_code}' " + args + " 2>/dev/null");
  curl_result out;
  auto nl = r.out.rfind('\n');
  if (nl == std::string::npos) return out;
  out.status = std::atoi(r.out.c_str() + nl + 1);
  out.body = r.out.substr(0, nl);
  return out;
}

std::string check_update_body(const std::filesystem::path& model) { return json{{"sha256", sha_of(model)}}.dump(); }

curl_result check_update(const daemon_process& d, const std::filesystem::path& model) {
  return curl("-X POST -H 'Content-Type: application/json' -d '" + check_update_body(model) + "' " + d.url("/check-update"));
}

json wait_ready(const daemon_process& d, const std::filesystem::path& model) {
  for (int i = 0; i < 1200; ++i) {
    auto r = check_update(d, model);
    if (r.status == 200) return json::parse(r.body);
    if (r.status != 202) {
      ADD_FAILURE() << "check-update answered " << r.status << " " << r.body << "\n" << d.log();
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "patch never became ready";
  return {};
}

std::string metric_line(const daemon_process& d, const std::string& prefix) {
  auto text = curl(d.url("/metrics")).body;
  auto pos = text.find(prefix + " ");
  return pos == std::string::npos ? "" : text.substr(pos + prefix.size() + 1, text.find('\n', pos) - pos - prefix.size() - 1);
}

}  // namespace

TEST(Daemon, CurlDownloadResumeRangesAndApply) {
  daemon_rig rig;
  auto keys = core::ed25519_generate();
  ASSERT_TRUE(keys.ok());
  ASSERT_TRUE(core::write_file_atomic(rig.dir / "release.key", keys->private_key).ok());
  ASSERT_TRUE(core::write_file_atomic(rig.dir / "release.pub", keys->public_key).ok());
  daemon_process d(rig.dir.path(), rig.args({"--signing-key", (rig.dir / "release.key").string()}));
  ASSERT_TRUE(d.listening()) << d.log();
  const auto& pair = rig.pairs[0];

  auto first = check_update(d, pair.v1);
  EXPECT_EQ(first.status, 202) << first.body;
  auto ready = wait_ready(d, pair.v1);
  ASSERT_EQ(ready["status"], "ready");
  EXPECT_EQ(ready["signed"], true);
  const std::string url = d.url(ready["patch_url"].get<std::string>());
  const auto patch = rig.dir / "update.mlrn";

  // Full download, then the device applies it with the CLI and the release key.
  ASSERT_EQ(curl("-o " + patch.string() + " " + url).status, 200);
  EXPECT_EQ(sha_of(patch), ready["patch_sha256"].get<std::string>());
  const auto out = rig.dir / "new.tflite";
  auto applied = run_shell((bin_dir() / "mallorn").string() + " patch " + pair.v1.string() + " " + patch.string() +
                           " -o " + out.string() + " --pubkey " + (rig.dir / "release.pub").string() + " 2>&1");
  ASSERT_EQ(applied.exit_code, 0) << applied.out;
  EXPECT_EQ(sha_of(out), sha_of(pair.v2));

  // An interrupted transfer resumed with curl -C -.
  const std::string model_url = d.url(ready["full_url"].get<std::string>());
  const auto part = rig.dir / "model.part";
  // The connection drops after 500,000 bytes (curl dies of SIGPIPE as head exits).
  run_shell("curl -s " + model_url + " | head -c 500000 > " + part.string());
  const auto partial = std::filesystem::file_size(part);
  EXPECT_GT(partial, 0u);
  EXPECT_LT(partial, std::filesystem::file_size(pair.v2));
  auto resumed = curl("-C - -o " + part.string() + " " + model_url);
  EXPECT_EQ(resumed.status, 206);
  EXPECT_EQ(sha_of(part), sha_of(pair.v2));
  // The same for the patch, cut at an arbitrary byte.
  run_shell("head -c 1000 " + patch.string() + " > " + (rig.dir / "patch.part").string());
  EXPECT_EQ(curl("-C - -o " + (rig.dir / "patch.part").string() + " " + url).status, 206);
  EXPECT_EQ(sha_of(rig.dir / "patch.part"), ready["patch_sha256"].get<std::string>());

  // Ranges, HEAD, If-Range, 416.
  auto r = curl("-r 0-99 " + url);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body.size(), 100u);
  auto tail = curl("-r -10 " + url);
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body.size(), 10u);
  auto head = run_shell("curl -sI " + url);
  EXPECT_NE(head.out.find("Accept-Ranges: bytes"), std::string::npos) << head.out;
  EXPECT_NE(head.out.find("Content-Length: " + std::to_string(ready["patch_size"].get<std::uint64_t>())), std::string::npos);
  EXPECT_NE(head.out.find("ETag: \"" + ready["patch_sha256"].get<std::string>() + "\""), std::string::npos);
  auto stale = curl("-r 0-9 -H 'If-Range: \"stale\"' -o /dev/null " + url);
  EXPECT_EQ(stale.status, 200);
  auto fresh = curl("-r 0-9 -H 'If-Range: \"" + ready["patch_sha256"].get<std::string>() + "\"' -o /dev/null " + url);
  EXPECT_EQ(fresh.status, 206);
  EXPECT_EQ(curl("-r 99999999- " + url).status, 416);
  EXPECT_EQ(curl(d.url("/patch/" + std::string(64, '0'))).status, 404);
}

TEST(Daemon, ConcurrentDevicesTriggerExactlyOneBuild) {
  daemon_rig rig;
  daemon_process d(rig.dir.path(), rig.args());
  ASSERT_TRUE(d.listening()) << d.log();
  const auto& pair = rig.pairs[0];
  std::string many;
  for (int i = 0; i < 24; ++i)
    many += "curl -s -o /dev/null -X POST -d '" + check_update_body(pair.v1) + "' " + d.url("/check-update") + " & ";
  run_shell(many + "wait");
  wait_ready(d, pair.v1);
  EXPECT_EQ(metric_line(d, "mallornd_builds_total{result=\"ok\"}"), "1");
  EXPECT_EQ(metric_line(d, "mallornd_builds_total{result=\"failed\"}"), "0");
}

TEST(Daemon, BadInputGetsClearErrorsAndChangesNothing) {
  daemon_rig rig;
  daemon_process d(rig.dir.path(), rig.args({"--max-body", "1K", "--read-timeout", "1", "--header-timeout", "1"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string model = rig.pairs[0].model;

  EXPECT_EQ(curl("-X POST " + d.url("/admin/rescan")).status, 401);
  EXPECT_EQ(curl("-X POST -H 'Authorization: Bearer nope' " + d.url("/admin/rescan")).status, 401);
  EXPECT_EQ(curl("-X POST -H 'Authorization: Bearer " + token + "' " + d.url("/admin/rescan")).status, 200);
  for (const std::string& path : std::vector<std::string>{"/model/../../etc/passwd", "/model/%2e%2e/%2e%2e/etc/passwd",
                                 "/model/" + model + "/..%2F..%2F..%2Fetc%2Fpasswd", "/fingerprint/%00",
                                 "/patch/..%2findex.sqlite"}) {
    auto r = curl("--path-as-is " + d.url(path));
    EXPECT_TRUE(r.status == 400 || r.status == 404) << path << " -> " << r.status;
    EXPECT_EQ(r.body.find("root:"), std::string::npos);
  }
  auto malformed = curl("-X POST -d '{\"sha256\": ' " + d.url("/check-update"));
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(json::parse(malformed.body)["error"]["code"], "malformed_json");
  auto big = curl("-X POST --data-binary @" + rig.pairs[0].v1.string() + " " + d.url("/check-update"));
  EXPECT_EQ(big.status, 413);
  auto huge_header = curl("-H 'X-Filler: " + std::string(20000, 'x') + "' " + d.url("/healthz"));
  EXPECT_EQ(huge_header.status, 431);
  // Slowloris: half a request line, then silence; the server hangs up after the header timeout.
  const auto started = std::chrono::steady_clock::now();
  run_shell("timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(d.port()) +
            "; printf \"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\" >&3; cat <&3 >/dev/null'");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  // After all that the daemon still serves.
  EXPECT_EQ(curl(d.url("/healthz")).status, 200);
  EXPECT_TRUE(d.running());
}

TEST(Daemon, KillNineDuringABuildThenRestartRecovers) {
  daemon_rig rig({"coral-mnv2-quant_2020-to-2021a"});
  const auto& pair = rig.pairs[0];
  const auto patches = rig.dir / "data" / "patches";
  auto build_in_progress = [&] {
    if (!std::filesystem::exists(patches)) return false;
    for (const auto& e : std::filesystem::directory_iterator(patches))
      if (e.path().filename().string().rfind(".build-", 0) == 0) return true;
    return false;
  };
  {
    // Level 22 with byte planing: slow enough to be caught mid-build.
    auto args = rig.args({"--level", "22"});
    args.erase(std::find(args.begin(), args.end(), "--no-neural"));
    daemon_process d(rig.dir.path(), args);
    ASSERT_TRUE(d.listening()) << d.log();
    EXPECT_EQ(check_update(d, pair.v1).status, 202);
    for (int i = 0; i < 500 && !build_in_progress(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(build_in_progress()) << "the build finished before it could be interrupted";
    d.signal(SIGKILL);
    d.wait_exit(std::chrono::seconds(5));
  }
  EXPECT_TRUE(build_in_progress());  // the kill left its staging file behind
  daemon_process again(rig.dir.path(), rig.args());
  ASSERT_TRUE(again.listening()) << again.log();
  EXPECT_NE(again.log().find("removing unfinished build"), std::string::npos) << again.log();
  auto ready = wait_ready(again, pair.v1);
  ASSERT_EQ(curl("-o " + (rig.dir / "p.mlrn").string() + " " + again.url(ready["patch_url"].get<std::string>())).status, 200);
  auto applied = run_shell((bin_dir() / "mallorn").string() + " patch " + pair.v1.string() + " " +
                           (rig.dir / "p.mlrn").string() + " -o " + (rig.dir / "out").string() + " 2>&1");
  ASSERT_EQ(applied.exit_code, 0) << applied.out;
  EXPECT_EQ(sha_of(rig.dir / "out"), sha_of(pair.v2));
}

TEST(Daemon, SigtermLetsADownloadInFlightFinish) {
  daemon_rig rig;
  daemon_process d(rig.dir.path(), rig.args());
  ASSERT_TRUE(d.listening()) << d.log();
  const auto& pair = rig.pairs[0];
  const auto out = rig.dir / "download";
  // ~3.6 MB at 2 MB/s: still running when SIGTERM arrives.
  std::thread download([&] {
    run_shell("curl -s --limit-rate 2M -o " + out.string() + " " + d.url("/model/" + pair.model + "/2"));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  d.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NE(run_shell("curl -s -m 2 " + d.url("/healthz")).exit_code, 0);  // no new connections
  const int status = d.wait_exit(std::chrono::seconds(20));
  download.join();
  ASSERT_TRUE(WIFEXITED(status)) << d.log();
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(sha_of(out), sha_of(pair.v2));
  EXPECT_NE(d.log().find("drained"), std::string::npos) << d.log();
}

TEST(Daemon, UploadsAndSighupRescans) {
  daemon_rig rig;
  daemon_process d(rig.dir.path(), rig.args());
  ASSERT_TRUE(d.listening()) << d.log();
  const auto& pair = rig.pairs[0];
  const std::string auth = "-H 'Authorization: Bearer " + token + "' ";
  auto up = curl(auth + "-H 'X-Content-SHA256: " + sha_of(pair.v2) + "' -T " + pair.v2.string() + " " +
                 d.url("/admin/models/" + pair.model + "/3"));
  ASSERT_EQ(up.status, 201) << up.body;
  EXPECT_EQ(sha_of(rig.dir / "models" / pair.model / "3.tflite"), sha_of(pair.v2));
  EXPECT_EQ(curl(auth + "-T " + pair.v1.string() + " " + d.url("/admin/models/" + pair.model + "/3")).status, 409);
  EXPECT_EQ(curl("-T " + pair.v1.string() + " " + d.url("/admin/models/" + pair.model + "/4")).status, 401);
  EXPECT_FALSE(std::filesystem::exists(rig.dir / "models" / pair.model / "4.tflite"));
  // No staged uploads are left behind.
  const auto staging = rig.dir / "models" / ".uploads";
  EXPECT_TRUE(!std::filesystem::exists(staging) || std::filesystem::is_empty(staging));

  std::filesystem::copy_file(pair.v1, rig.dir / "models" / pair.model / "10.tflite");
  d.signal(SIGHUP);
  json fp;
  for (int i = 0; i < 100; ++i) {
    fp = json::parse(curl(d.url("/fingerprint/" + pair.model)).body);
    if (fp["version"] == "10") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(fp["version"], "10");  // natural order: 10 > 3
}

TEST(Daemon, ServesHttpsWithTheGivenCertificate) {
  daemon_rig rig;
  ASSERT_TRUE(make_certificate(rig.dir.path()));
  daemon_process d(rig.dir.path(), rig.args(tls_args(rig.dir.path())));
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string https = "https://127.0.0.1:" + std::to_string(d.port());
  auto ok = curl("--cacert " + (rig.dir / "cert.pem").string() + " " + https + "/healthz");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["status"], "ok");
  EXPECT_NE(run_shell("curl -s " + https + "/healthz").exit_code, 0);  // unknown CA refused by the client
  EXPECT_NE(curl(d.url("/healthz")).status, 200);                      // plain HTTP is not served
}

// A download's body over TLS leaves by SSL_write straight to the socket (direct_send.hpp), then the
// connection goes back to asio's TLS engine: a whole model read slowly through a 4 KiB receive
// buffer (the server's socket fills and it waits for writability), then a Range and a /healthz
// on the same connection, byte for byte.
TEST(Daemon, TlsDownloadsSurviveASlowReaderAndKeepTheConnection) {
  daemon_rig rig({"coral-mnv2-quant_2020-to-2021a"});
  ASSERT_TRUE(make_certificate(rig.dir.path()));
  daemon_process d(rig.dir.path(), rig.args(tls_args(rig.dir.path())));
  ASSERT_TRUE(d.listening()) << d.log();
  const auto& pair = rig.pairs[0];
  const std::string script =
      "import hashlib,socket,ssl,sys,time\n"
      "port,cert,model,path=int(sys.argv[1]),sys.argv[2],sys.argv[3],sys.argv[4]\n"
      "data=open(path,'rb').read()\n"
      "raw=socket.socket()\n"
      "raw.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,4096)\n"
      "raw.connect(('127.0.0.1',port))\n"
      "s=ssl.create_default_context(cafile=cert).wrap_socket(raw,server_hostname='127.0.0.1')\n"
      "buf=b''\n"
      "def more(n):\n"
      "  c=s.recv(n)\n"
      "  if not c: sys.exit('the server closed the connection')\n"
      "  return c\n"
      "def get(target,extra=b'',slow=False):\n"
      "  global buf\n"
      "  s.sendall(b'GET '+target.encode()+b' HTTP/1.1\\r\\nHost: x\\r\\n'+extra+b'\\r\\n')\n"
      "  while b'\\r\\n\\r\\n' not in buf: buf+=more(65536)\n"
      "  head,buf=buf.split(b'\\r\\n\\r\\n',1)\n"
      "  n=int([l.split(b':')[1] for l in head.split(b'\\r\\n') if l.lower().startswith(b'content-length:')][0])\n"
      "  while len(buf)<n:\n"
      "    buf+=more(16384)\n"
      "    if slow: time.sleep(0.001)\n"
      "  body,buf=buf[:n],buf[n:]\n"
      "  return head.split(b'\\r\\n')[0].decode(),body\n"
      "st,body=get('/model/'+model+'/2',slow=True)\n"
      "print(st,hashlib.sha256(body).hexdigest()==hashlib.sha256(data).hexdigest())\n"
      "st,part=get('/model/'+model+'/2',b'Range: bytes=100-199\\r\\n')\n"
      "print(st,part==data[100:200])\n"
      "print(get('/healthz')[0])\n";
  std::ofstream(rig.dir / "slow_tls.py") << script;
  auto r = run_shell("/usr/bin/python3 " + (rig.dir / "slow_tls.py").string() + " " + std::to_string(d.port()) + " " +
                     (rig.dir / "cert.pem").string() + " " + pair.model + " " + pair.v2.string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "HTTP/1.1 200 OK True\nHTTP/1.1 206 Partial Content True\nHTTP/1.1 200 OK\n") << d.log();
  EXPECT_TRUE(d.running()) << d.log();
}

// profile=mcu: the server builds a separate, signed mcu-profile patch, proves it with mallorn_lite
// and serves it; what curl downloads turns release 1 into release 2 on (RAM) flash slots.
TEST(Daemon, ServesMcuProfilePatchesVerifiedByMallornLite) {
  daemon_rig rig({"tfm-hello-world-int8", "tfm-micro-speech_realign"});
  auto keys = core::ed25519_generate();
  ASSERT_TRUE(core::write_file_atomic(rig.dir / "release.key", keys->private_key).ok());
  daemon_process d(rig.dir.path(), rig.args({"--signing-key", (rig.dir / "release.key").string()}));
  ASSERT_TRUE(d.listening()) << d.log();
  core::ed25519_public_key pub;
  std::copy(keys->public_key.begin(), keys->public_key.end(), pub.begin());
  for (const auto& pair : rig.pairs) {
    SCOPED_TRACE(pair.model);
    const std::string body = json{{"sha256", sha_of(pair.v1)}, {"profile", "mcu"}, {"device_id", "mcu-1"}}.dump();
    json ready;
    for (int i = 0; i < 600 && ready.is_null(); ++i) {
      auto r = curl("-X POST -d '" + body + "' " + d.url("/check-update"));
      if (r.status == 200) ready = json::parse(r.body);
      else if (r.status == 202) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      else FAIL() << r.status << " " << r.body << d.log();
    }
    ASSERT_EQ(ready["status"], "ready") << ready.dump();
    const auto patch = rig.dir / (pair.model + ".mcu.mlrn");
    ASSERT_EQ(curl("-o " + patch.string() + " " + d.url(ready["patch_url"].get<std::string>())).status, 200);
    auto header = core::read_patch_header(patch);
    ASSERT_TRUE(header.ok()) << header.err().what();
    EXPECT_EQ(header->profile, core::patch_profile::mcu);
    EXPECT_TRUE(header->is_signed());
    auto applied = formats::verify_mcu_patch_file(pair.v1, patch, pub);
    ASSERT_TRUE(applied.ok()) << applied.err().what();
    EXPECT_EQ(core::to_hex(applied->target_sha256), sha_of(pair.v2));
    // The standard profile is a different patch, cached on its own.
    auto standard = wait_ready(d, pair.v1);
    EXPECT_NE(standard["patch_sha256"], ready["patch_sha256"]);
  }
}

// Clients that reset their connection in the middle of a (sendfile) download cost the server
// one connection each, never the process (SIGPIPE is ignored).
TEST(Daemon, ClientsResettingMidDownloadDoNotKillTheServer) {
  daemon_rig rig({"coral-mnv2-quant_2020-to-2021a"});
  daemon_process d(rig.dir.path(), rig.args());
  ASSERT_TRUE(d.listening()) << d.log();
  const auto& pair = rig.pairs[0];
  const std::string script =
      "import socket,struct,sys\n"
      "for i in range(40):\n"
      "  s=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\n"
      "  s.sendall(b'GET /model/" + pair.model + "/2 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
      "  s.recv(4096)\n"
      "  s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))\n"
      "  s.close()\n";
  std::ofstream(rig.dir / "reset.py") << script;
  auto r = run_shell("python3 " + (rig.dir / "reset.py").string() + " " + std::to_string(d.port()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(d.running()) << d.log();
  EXPECT_EQ(curl(d.url("/healthz")).status, 200);
  // And the model still downloads whole.
  ASSERT_EQ(curl("-o " + (rig.dir / "m").string() + " " + d.url("/model/" + pair.model + "/2")).status, 200);
  EXPECT_EQ(sha_of(rig.dir / "m"), sha_of(pair.v2));
}

// /metrics shows each route's latency as a Prometheus histogram, and real requests move it: the
// check-update series counts every answer (the repeated ones are the prepared bytes of a cache
// hit), its buckets are cumulative and end at _count, and other routes keep their own series.
// The prepared answer is the same JSON as the first one, over HTTP/1.1 and HTTP/1.0 alike.
TEST(Daemon, RequestLatencyHistogramPerRouteMovesWithRequests) {
  daemon_rig rig({"coral-mnv2-quant_2020-to-2021a"});
  daemon_process d(rig.dir.path(), rig.args());
  ASSERT_TRUE(d.listening()) << d.log();
  const auto& pair = rig.pairs[0];
  const auto ready = wait_ready(d, pair.v1);
  ASSERT_EQ(ready["status"], "ready");

  const std::string series = "mallornd_request_duration_seconds";
  const std::string route = "route=\"check-update\"";
  auto count = [&] {
    const auto v = metric_line(d, series + "_count{" + route + "}");
    return v.empty() ? -1 : std::atoll(v.c_str());
  };
  const auto before = count();
  ASSERT_GE(before, 1) << curl(d.url("/metrics")).body;
  const auto sum_before = std::atof(metric_line(d, series + "_sum{" + route + "}").c_str());

  const std::string args = "-X POST -H 'Content-Type: application/json' -d '" + check_update_body(pair.v1) + "' ";
  for (int i = 0; i < 5; ++i) {
    auto again = curl(args + d.url("/check-update"));
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(json::parse(again.body), ready);
  }
  auto old_http = curl("--http1.0 " + args + d.url("/check-update"));
  ASSERT_EQ(old_http.status, 200);
  EXPECT_EQ(json::parse(old_http.body), ready);
  auto headers = run_shell("curl -s -D - -o /dev/null " + args + d.url("/check-update")).out;
  EXPECT_NE(headers.find("Cache-Control: no-store"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Server: mallornd"), std::string::npos) << headers;

  const auto after = count();
  EXPECT_EQ(after, before + 7);
  EXPECT_GT(std::atof(metric_line(d, series + "_sum{" + route + "}").c_str()), sum_before);
  // Cumulative buckets: never decreasing, +Inf equal to _count, and the fast ones have moved.
  const auto text = curl(d.url("/metrics")).body;
  long long previous = 0, last = -1, sub_second = -1;
  for (std::size_t pos = 0; (pos = text.find(series + "_bucket{" + route + ",le=\"", pos)) != std::string::npos; ++pos) {
    const auto line_end = text.find('\n', pos);
    const auto line = text.substr(pos, line_end - pos);
    const long long n = std::atoll(line.c_str() + line.rfind(' ') + 1);
    EXPECT_GE(n, previous) << line;
    previous = last = n;
    if (line.find("le=\"1\"") != std::string::npos) sub_second = n;
  }
  EXPECT_EQ(last, after) << text;
  EXPECT_GE(sub_second, 7) << text;
  EXPECT_NE(text.find(series + "_count{route=\"metrics\"}"), std::string::npos) << text;
  // No series is named after what a client sent.
  EXPECT_EQ(curl(d.url("/no-such-route-xyz")).status, 404);
  EXPECT_EQ(curl(d.url("/metrics")).body.find("no-such-route-xyz"), std::string::npos);
}
