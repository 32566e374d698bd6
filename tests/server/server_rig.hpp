// The server's parts wired together in-process (real SQLite file, real store of real models, real
// patch builds) without sockets: router tests call handle() directly.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "mallorn/core/hash.hpp"
#include "mallorn/server/index_db.hpp"
#include "mallorn/server/model_store.hpp"
#include "mallorn/server/patch_cache.hpp"
#include "mallorn/server/rate_limiter.hpp"
#include "mallorn/server/router.hpp"
#include "support/model_store_fixture.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {

struct server_rig {
  temp_dir dir{"server"};
  std::vector<stored_pair> pairs;
  std::unique_ptr<server::index_db> db;
  std::unique_ptr<server::model_store> store;
  server::metrics stats;
  std::unique_ptr<server::patch_cache> cache;
  std::unique_ptr<server::rate_limiter> limiter;
  std::unique_ptr<server::router> routes;

  explicit server_rig(server::router_config cfg = {}, server::cache_options copts = {}, double rate = 0,
                      const std::vector<std::string>& names = default_pairs()) {
    std::filesystem::create_directories(dir / "models");
    pairs = make_store(dir / "models", names);
    db = std::move(server::index_db::open(dir / "index.sqlite").value());
    store = std::make_unique<server::model_store>(dir / "models", *db);
    EXPECT_TRUE(store->rescan().ok());
    copts.dir = dir / "patches";
    copts.level = 3;
    copts.neural = false;
    cache = std::make_unique<server::patch_cache>(*db, copts, stats);
    EXPECT_TRUE(cache->open().ok());
    limiter = std::make_unique<server::rate_limiter>(rate, rate * 2);
    routes = std::make_unique<server::router>(cfg, *store, *cache, *db, stats, *limiter);
  }

  server::http_response call(const std::string& method, const std::string& target, const std::string& body = {},
                             std::map<std::string, std::string> headers = {}) {
    server::http_request req{method, target, std::move(headers), body, {}, "127.0.0.1"};
    auto plan = routes->plan(req);
    if (plan.reject) return *plan.reject;
    auto r = routes->handle(req);
    if (r.prepared) {  // what the client receives: the prepared answer's headers and body
      auto prepared = r.prepared;
      const auto route = r.route;
      r = prepared->answer;
      r.route = route;
      r.prepared = std::move(prepared);
    }
    return r;
  }

  static std::string sha_of(const std::filesystem::path& p) { return core::to_hex(*core::sha256_of_file(p)); }

  // check-update until the patch is ready (builds run on the cache's thread).
  nlohmann::json ready_update(const std::filesystem::path& model) {
    const std::string body = nlohmann::json{{"sha256", sha_of(model)}}.dump();
    for (int i = 0; i < 600; ++i) {
      auto r = call("POST", "/check-update", body);
      if (r.status == 200) return nlohmann::json::parse(r.body);
      EXPECT_EQ(r.status, 202u) << r.body;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "patch never became ready";
    return {};
  }
};

// Reads a file_slice the way the session would send it.
inline std::string read_slice(const server::file_slice& s) {
  std::string out(s.length, '\0');
  EXPECT_EQ(::pread(s.file->fd, out.data(), out.size(), static_cast<off_t>(s.offset)), static_cast<ssize_t>(s.length));
  return out;
}

}  // namespace mallorn::test
