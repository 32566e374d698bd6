// libFuzzer target: mallornd's request path without sockets, as the session drives it: an input
// "METHOD TARGET\nname: value\n...\n\nbody" goes through router::plan (limits, auth, rate limit
// from the head) and, unless refused, router::handle (JSON bodies of check-update, report,
// create-patch; Range/If-Range/If-None-Match on downloads; admin routes). The router works on a
// real store in a temporary directory holding one small real model pair (when the models are
// there), a real SQLite index and a real patch cache. Any status is fine; a crash, a leak, a
// 5xx for a request that only has a bad head or body, or a body over the plan's limit is not.
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "mallorn/server/index_db.hpp"
#include "mallorn/server/metrics.hpp"
#include "mallorn/server/model_store.hpp"
#include "mallorn/server/patch_cache.hpp"
#include "mallorn/server/rate_limiter.hpp"
#include "mallorn/server/router.hpp"

using namespace mallorn::server;
namespace fs = std::filesystem;

namespace {

struct world {
  fs::path dir;
  std::unique_ptr<index_db> db;
  std::unique_ptr<model_store> store;
  metrics stats;
  std::unique_ptr<patch_cache> cache;
  std::unique_ptr<rate_limiter> limiter;
  std::unique_ptr<router> routes;

  world() {
    char tmpl[] = "/tmp/mallorn-router-fuzz-XXXXXX";
    dir = ::mkdtemp(tmpl);
    fs::create_directories(dir / "models" / "hello");
#ifdef MALLORN_MODELS_DIR
    const fs::path pair = fs::path(MALLORN_MODELS_DIR) / "pairs" / "tfm-hello-world-int8";
    std::error_code ec;
    fs::copy_file(pair / "old.tflite", dir / "models" / "hello" / "1.tflite", ec);
    fs::copy_file(pair / "new.tflite", dir / "models" / "hello" / "2.tflite", ec);
#endif
    db = std::move(index_db::open(dir / "index.sqlite").value());
    store = std::make_unique<model_store>(dir / "models", *db);
    (void)store->rescan();
    cache_options copts;
    copts.dir = dir / "patches";
    copts.level = 1;
    copts.neural = false;
    cache = std::make_unique<patch_cache>(*db, copts, stats);
    (void)cache->open();
    limiter = std::make_unique<rate_limiter>(0, 0);
    router_config cfg;
    cfg.admin_token = "fuzz-admin-token";
    cfg.create_patch_wait = std::chrono::milliseconds(0);
    routes = std::make_unique<router>(cfg, *store, *cache, *db, stats, *limiter);
  }
  ~world() {
    routes.reset();
    cache.reset();
    store.reset();
    db.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

world& the_world() {
  static world w;
  return w;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto head_end = in.find("\n\n");
  const std::string_view head = in.substr(0, head_end);
  http_request req;
  req.client = "127.0.0.1";
  if (head_end != std::string_view::npos) req.body = std::string(in.substr(head_end + 2));
  std::size_t line_end = head.find('\n');
  const std::string_view request_line = head.substr(0, line_end);
  const auto space = request_line.find(' ');
  if (space == std::string_view::npos) return 0;
  req.method = std::string(request_line.substr(0, space));
  req.target = std::string(request_line.substr(space + 1));
  while (line_end != std::string_view::npos) {
    const auto start = line_end + 1;
    line_end = head.find('\n', start);
    const auto line = head.substr(start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    req.headers[lower(line.substr(0, colon))] = std::string(value);
  }
  auto& w = the_world();
  auto plan = w.routes->plan(req);
  if (plan.reject) return 0;
  if (plan.to_file) return 0;  // uploads stream to a staging file: not this target's business
  if (req.body.size() > plan.limit) return 0;  // the session refuses these with 413
  auto r = w.routes->handle(req);
  if (r.status >= 500 && r.status != 503) {
    // A 500 answers a request the server could not handle; print it for the crash report.
    std::fprintf(stderr, "HTTP %u for %s %s: %s\n", r.status, req.method.c_str(), req.target.c_str(), r.body.c_str());
    std::abort();
  }
  return 0;
}
