// mallornd: the Mallorn patch server. Wires config, store, index, cache, router and HTTP server.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <spdlog/spdlog.h>
#include <thread>

#include "mallorn/core/io.hpp"
#include "mallorn/core/key_file.hpp"
#include "mallorn/server/config.hpp"
#include "mallorn/server/disk_guard.hpp"
#include "mallorn/server/http_server.hpp"
#include "mallorn/server/fleet/rollout_engine.hpp"
#include "mallorn/server/index_db.hpp"
#include "mallorn/server/storage/sql_database.hpp"
#include "mallorn/core/logging.hpp"
#include "mallorn/server/model_store.hpp"
#include "mallorn/server/keyring_source.hpp"
#include "mallorn/server/mqtt_bridge.hpp"
#include "mallorn/server/patch_cache.hpp"
#include "mallorn/server/router.hpp"
#include "mallorn/server/audit_log.hpp"
#include "mallorn/server/storage/sql_database.hpp"
#include "mallorn/server/ui_files.hpp"

#ifdef MALLORN_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
static int sd_notify(int, const char*) { return 0; }
#endif

extern char** environ;
using namespace mallorn;

namespace {

// 10,000 keep-alive connections need more than the usual soft limit of 1024 descriptors.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

core::result<std::optional<std::string>> load_admin_token(const std::filesystem::path& file) {
  if (file.empty()) return std::optional<std::string>{};
  std::ifstream in(file);
  if (!in) return core::make_error(core::errc::io_error, "cannot read admin token file " + file.string());
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (token.size() < 16)
    return core::make_error(core::errc::invalid_argument, "admin token in " + file.string() + " is shorter than 16 characters");
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 0077))
    spdlog::warn("admin token file {} is readable by group or others (mode {:o})", file.string(), st.st_mode & 0777);
  return std::optional<std::string>{token};
}

int fail(const std::string& message, int code = 1) {
  spdlog::critical("{}", message);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // A client that goes away mid-download must cost one connection, not the server: sendfile(2)
  // cannot take MSG_NOSIGNAL, so without this the next write to a reset socket raises SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  auto loaded = server::load_config(std::vector<std::string>(argv + 1, argv + argc), environ);
  if (!loaded) {
    std::cerr << "mallornd: " << loaded.err().message << "\n";
    return 2;
  }
  if (loaded->help) {
    std::cout << server::config_usage();
    return 0;
  }
  if (loaded->version) {
    std::cout << "mallornd " MALLORN_VERSION "\n";
    return 0;
  }
  const auto& cfg = loaded->config;
  if (!core::setup_logging("mallornd", cfg.log_level)) spdlog::warn("unknown --log-level '{}', using info", cfg.log_level);
  raise_fd_limit();

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return fail("cannot create data directory " + cfg.data_dir.string() + ": " + ec.message());
  // A full disk is read-only mode, not a reason to stay down (disk_guard.hpp): probed before the
  // index opens, so a full disk's reserve is released first.
  // The reserve: a quarter of --min-free, 64 KiB to 1 MiB (room for SQLite's WAL and shm files).
  server::disk_guard disk({cfg.data_dir, cfg.patches_dir, cfg.models_dir}, cfg.min_free, server::statvfs_space_probe(),
                          cfg.data_dir / ".mallornd-reserve",
                          std::clamp<std::uint64_t>(cfg.min_free / 4, 64u << 10, 1u << 20));
  disk.refresh();
  const std::string full_hint =
      disk.degraded() ? " (the data disk is full: free some space, then start mallornd again)" : "";
  auto sql = server::storage::open_database(cfg.database, cfg.data_dir);
  if (!sql) return fail(sql.err().what() + full_hint);
  const std::string database_name = (*sql)->describe();  // never holds the password
  auto extra_migrations = server::audit_log::migrations();
  for (auto& m : server::identity::device_registry::migrations()) extra_migrations.push_back(std::move(m));
  auto db = server::index_db::open(std::move(*sql), std::move(extra_migrations));
  if (!db) return fail(database_name + ": " + db.err().what() + full_hint);
  server::audit_log audit((*db)->database());
  spdlog::info("index database: {}", database_name);
  (*db)->set_report_limits({cfg.report_history, cfg.report_cap,
                            static_cast<std::int64_t>(cfg.report_retention_days) * 86400});
  auto token = load_admin_token(cfg.admin_token_file);
  if (!token) return fail(token.err().what());
  std::vector<server::admin_credential> named_tokens;
  if (!cfg.admin_tokens_file.empty()) {
    auto loaded_tokens = server::load_admin_tokens(cfg.admin_tokens_file);
    if (!loaded_tokens) return fail(loaded_tokens.err().what());
    named_tokens = std::move(*loaded_tokens);
    spdlog::info("{} named admin tokens from {}", named_tokens.size(), cfg.admin_tokens_file.string());
  }
  if (!*token && named_tokens.empty()) spdlog::info("no admin token configured: admin routes answer 403");

  server::cache_options cache_opts;
  cache_opts.dir = cfg.patches_dir;
  cache_opts.budget_bytes = cfg.cache_budget;
  cache_opts.build_threads = cfg.build_threads;
  cache_opts.queue_limit = cfg.build_queue;
  cache_opts.level = cfg.level;
  cache_opts.neural = cfg.neural;
  cache_opts.min_free = cfg.min_free;
  // Several replicas share a PostgreSQL index and (docs/scaling.md) the patch directory.
  const std::string replica = cfg.replica_name.empty() ? server::default_replica_name() : cfg.replica_name;
  cache_opts.owner = replica;
  cache_opts.lease = cfg.build_lease;
  cache_opts.shared = (*db)->database().dialect() == server::storage::sql_dialect::postgres;
  if (const char* delay = std::getenv("MALLORN_TEST_BUILD_DELAY_MS"); delay && *delay) {  // tests only
    cache_opts.build_delay = std::chrono::milliseconds(std::strtoull(delay, nullptr, 10));
    spdlog::warn("MALLORN_TEST_BUILD_DELAY_MS: every build pauses {} ms (a test setting)", cache_opts.build_delay.count());
  }
  if (!cfg.signing_key_file.empty()) {
    auto key = core::load_private_key_file(cfg.signing_key_file);
    if (!key) return fail(key.err().what());
    cache_opts.signing_key = *key;
  }

  server::model_store store(cfg.models_dir, **db);
  auto scan = store.rescan();
  if (!scan) return fail(scan.err().what() + full_hint);
  for (const auto& w : scan->warnings) spdlog::warn("store: {}", w);
  spdlog::info("store {}: {} models, {} versions ({} files hashed)", cfg.models_dir.string(), scan->models,
               scan->versions, scan->hashed);

  spdlog::info("replica {}{}", replica, cache_opts.shared ? " (shared index and patch directory)" : "");
  server::metrics stats;
  // Named explicitly (several replicas): every sample carries the name. Either way it is on one.
  if (!cfg.replica_name.empty()) stats.set_replica(cfg.replica_name);
  stats.add_section([replica](std::string& out) {
    out += "# HELP mallornd_replica_info This replica's name (--replica-name, default the host name).\n"
           "# TYPE mallornd_replica_info gauge\nmallornd_replica_info{replica=\"" + replica + "\"} 1\n";
  });
  server::patch_cache cache(**db, cache_opts, stats);
  if (auto opened = cache.open(); !opened) return fail(opened.err().what() + full_hint);
  spdlog::info("patch cache {}: {} patches, {} bytes (budget {})", cfg.patches_dir.string(), cache.count(),
               cache.total_bytes(), cfg.cache_budget ? std::to_string(cfg.cache_budget) : "unlimited");
  stats.add_gauge("mallornd_builds_queued", "Patch builds waiting for a build thread.", [&] { return double(cache.queued()); });
  stats.add_gauge("mallornd_builds_running", "Patch builds in progress.", [&] { return double(cache.running()); });
  stats.add_gauge("mallornd_patches_cached", "Patches in the cache.", [&] { return double(cache.count()); });
  stats.add_gauge("mallornd_patch_cache_bytes", "Bytes of patches in the cache.", [&] { return double(cache.total_bytes()); });
  stats.add_gauge("mallornd_model_versions", "Model versions in the store.",
                  [&] { return double(store.snapshot()->version_count()); });

  stats.add_gauge("mallornd_disk_read_only", "1 while the data disk is below --min-free (builds, uploads, reports refused).",
                  [&] { return disk.degraded() ? 1.0 : 0.0; });
  stats.add_gauge("mallornd_disk_free_bytes", "Free bytes on the fullest of the data, patch and store disks.",
                  [&] { return double(disk.free_bytes()); });

  auto rollouts = server::fleet::rollout_engine::open(**db);
  if (!rollouts) return fail(rollouts.err().what() + full_hint);
  stats.add_section([&](std::string& out) { (*rollouts)->render_metrics(out); });

  server::rate_limiter limiter(cfg.rate_limit, cfg.rate_burst);
  server::router_config rcfg;
  rcfg.rollouts = rollouts->get();
  rcfg.admin_token = *token;
  rcfg.admin_tokens = std::move(named_tokens);
  rcfg.audit = &audit;
  rcfg.max_body = cfg.max_body;
  rcfg.max_upload = cfg.max_upload;
  rcfg.min_free = cfg.min_free;
  rcfg.disk = &disk;
  rcfg.replica = replica;
  rcfg.public_base = cfg.public_patch_base;
  if (cfg.ui) {
    auto ui = server::ui_files::load(cfg.ui_dir.empty() ? server::ui_files::default_dir() : cfg.ui_dir);
    if (!ui) return fail(ui.err().what() + " (start with --ui-dir DIR, or --no-ui)");
    rcfg.ui = *ui;
    rcfg.ui_demo = cfg.ui_demo;
    if (cfg.ui_demo) spdlog::warn("dashboard demo mode: device and build views are readable without a token");
  }
  if (!cfg.keyring_file.empty()) {
    auto kr = server::keyring_source::open(cfg.keyring_file);
    if (!kr) return fail("--keyring: " + kr.err().what());
    rcfg.keyring = *kr;
    spdlog::info("keyring {}: serving v{} at GET /keyring", cfg.keyring_file.string(), (*kr)->current()->version);
    // Publishing a keyring is an admin action done by replacing the file: audited like the others
    // (actor "keyring-file"; 200 served, 409 refused), the one served at start included.
    auto audit_keyring = [&audit, file = cfg.keyring_file.string()](std::uint64_t version, unsigned status,
                                                                     const std::string& reason) {
      server::audit_entry e;
      e.actor = "keyring-file";
      e.scope = "admin";
      e.action = "keyring.publish";
      e.target = file + " v" + std::to_string(version) + ": " + reason;
      e.status = status;
      if (auto r = audit.record(e); !r) spdlog::warn("audit: cannot record the keyring publication: {}", r.err().what());
    };
    audit_keyring((*kr)->current()->version, 200, "served at start");
    (*kr)->on_publication([audit_keyring](const server::keyring_publication& p) {
      audit_keyring(p.version, p.accepted ? 200 : 409, p.reason);
    });
  }
  // Under the shipped unit the store is read-only (ReadOnlyPaths=): say so once, answer 403.
  rcfg.uploads_enabled = ::access(cfg.models_dir.c_str(), W_OK) == 0;
  if (!rcfg.uploads_enabled)
    spdlog::info("store {} is read-only to this process: PUT /admin/models answers 403", cfg.models_dir.string());
  std::unique_ptr<server::identity::device_registry> device_registry;
  rcfg.device_auth = *server::identity::parse_device_auth_mode(cfg.device_auth);  // checked by load_config
  if (rcfg.device_auth != server::identity::device_auth_mode::off) {
    std::vector<server::identity::preauth_entry> preauth;
    if (!cfg.device_preauth_file.empty()) {
      auto loaded_preauth = server::identity::load_preauth_file(cfg.device_preauth_file);
      if (!loaded_preauth) return fail("--device-preauth: " + loaded_preauth.err().what());
      preauth = std::move(*loaded_preauth);
    }
    device_registry = std::make_unique<server::identity::device_registry>(
        (*db)->database(), server::identity::enrollment_limits{cfg.device_pending_max, cfg.device_pending_per_address},
        preauth);
    rcfg.device_registry = device_registry.get();
    rcfg.device_token_ttl = cfg.device_token_ttl;
    rcfg.device_credentials.ttl = cfg.device_auth_cache;
    spdlog::info("device identity: {} ({} pre-authorised devices, tokens live {} s{})", cfg.device_auth, preauth.size(),
                 cfg.device_token_ttl.count(), cfg.tls_client_ca.empty() ? "" : ", client certificates bind device ids");
  }
  server::router routes(rcfg, store, cache, **db, stats, limiter);

  server::http_options hopts;
  hopts.host = cfg.listen_host;
  hopts.port = cfg.listen_port;
  hopts.threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  {
    rlimit lim{};
    const std::uint64_t fd_limit = getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : 1024;
    const auto derived = server::default_max_connections(fd_limit);
    hopts.max_connections = cfg.max_connections ? cfg.max_connections : derived;
    if (cfg.max_connections > derived)
      spdlog::warn("--max-connections {} leaves fewer than a quarter of the {} descriptors for files: downloads "
                   "may get 503 before the connection cap is reached",
                   cfg.max_connections, fd_limit);
    spdlog::info("connections: at most {} ({} per address); descriptor limit {}", hopts.max_connections,
                 cfg.max_connections_per_address, fd_limit);
  }
  hopts.max_connections_per_address = cfg.max_connections_per_address;
  hopts.max_queued_writes = cfg.max_queued_reports;
  hopts.max_queued_lookups = cfg.max_queued_lookups;
  hopts.header_timeout = cfg.header_timeout;
  hopts.header_limit = cfg.header_limit;
  hopts.read_timeout = cfg.read_timeout;
  hopts.idle_timeout = cfg.idle_timeout;
  hopts.write_timeout = cfg.write_timeout;
  hopts.drain_timeout = cfg.drain_timeout;
  hopts.tls_cert = cfg.tls_cert;
  hopts.tls_key = cfg.tls_key;
  hopts.tls_client_ca = cfg.tls_client_ca;
  hopts.client_cert_optional = rcfg.device_auth != server::identity::device_auth_mode::off;
  hopts.staging_dir = store.staging_dir();
  server::http_server http(hopts, routes, stats, cache);
  routes.draining = [&] { return http.draining(); };
  if (auto listening = http.listen(); !listening) return fail(listening.err().what());
  const auto port = http.port();

  // Download counters go to SQLite every few seconds, not on every request; the rollout engine
  // takes its time-driven steps (stage advances, pause timeouts, recording offers) every second.
  std::mutex flush_mutex;
  std::condition_variable flush_cv;
  bool stopping = false;
  std::thread flusher([&] {
    std::unique_lock lock(flush_mutex);
    unsigned ticks = 0;
    for (unsigned n = 1; !flush_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; }); ++n) {
      // Read-only mode comes and goes with the free space; while in it, nothing here writes.
      if (disk.refresh()) continue;
      (*rollouts)->tick();
      if (n % 5) continue;
      if (auto r = cache.flush_usage(); !r) spdlog::error("{}", r.err().what());
      // Other replicas' builds and evictions reach this one's view of the cache.
      if (cache_opts.shared)
        if (auto r = cache.sync(); !r) spdlog::warn("patch cache sync: {}", r.err().what());
      // Report history: the global cap and the retention (the per-device cap applies on insert).
      if (ticks++ % 12 == 0) {
        auto pruned = (*db)->prune_reports(static_cast<std::int64_t>(std::time(nullptr)));
        if (!pruned) spdlog::error("pruning reports: {}", pruned.err().what());
        else if (*pruned) spdlog::info("pruned {} report rows (cap {}, retention {} days)", *pruned, cfg.report_cap,
                                       cfg.report_retention_days);
      }
      // After a burst of downloads (a 256 KiB send buffer each) glibc keeps the freed heap;
      // hand it back so a quiet server's RSS reflects what it holds now.
      ::malloc_trim(0);
    }
  });

  auto on_ready = [&] {
    if (!cfg.port_file.empty()) {
      const std::string text = std::to_string(port) + "\n";
      if (auto w = core::write_file_atomic(cfg.port_file, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}); !w)
        spdlog::error("{}", w.err().what());
    }
    spdlog::info("mallornd {} listening on {}://{}:{} ({} I/O threads, {} build threads)", MALLORN_VERSION,
                 cfg.tls_cert.empty() ? "http" : "https", cfg.listen_host, port, hopts.threads, cfg.build_threads);
    sd_notify(0, ("READY=1\nSTATUS=serving " + std::to_string(store.snapshot()->version_count()) + " model versions").c_str());
  };
  auto on_reload = [&] {
    sd_notify(0, "RELOADING=1");
    auto r = store.rescan();
    if (r) {
      for (const auto& w : r->warnings) spdlog::warn("store: {}", w);
      spdlog::info("SIGHUP: store rescanned: {} models, {} versions, {} files hashed", r->models, r->versions, r->hashed);
    } else {
      spdlog::error("SIGHUP: rescan failed: {}", r.err().what());
    }
    sd_notify(0, "READY=1");
  };
  // Devices on MQTT (and, through the gateway, LoRa) share the store and the patch cache.
  std::unique_ptr<server::mqtt_bridge> bridge;
  if (!cfg.mqtt_broker.empty()) {
    server::mqtt_bridge_options mopts;
    mopts.broker = cfg.mqtt_broker;
    mopts.client_id = cfg.mqtt_client_id;
    mopts.prefix = cfg.mqtt_prefix;
    mopts.max_block = cfg.mqtt_max_block;
    mopts.keyring = rcfg.keyring;
    mopts.max_sessions = mopts.max_waiting = cfg.mqtt_max_sessions;
    mopts.rollouts = rollouts->get();
    bridge = std::make_unique<server::mqtt_bridge>(mopts, store, cache, **db, stats);
    bridge->start();
    auto* b = bridge.get();
    stats.add_gauge("mallornd_mqtt_sessions", "MQTT devices with a download session open.", [b] { return double(b->sessions()); });
    stats.add_gauge("mallornd_mqtt_waiting", "MQTT devices waiting for a patch build.", [b] { return double(b->waiting()); });
    spdlog::info("mqtt bridge: broker {}, topics {}/dev/<device>/...", cfg.mqtt_broker, cfg.mqtt_prefix);
  }
  http.run(on_ready, on_reload, [] { sd_notify(0, "STOPPING=1\nSTATUS=draining"); });
  // After the HTTP drain: stop taking MQTT work before the cache stops building.
  if (bridge) bridge->stop();

  {
    std::lock_guard lock(flush_mutex);
    stopping = true;
  }
  flush_cv.notify_all();
  flusher.join();
  (*rollouts)->tick();  // records the last offers
  if (cache.running() > 0) {
    // A build can take minutes; its staging file is removed at the next start.
    if (auto r = cache.flush_usage(); !r) spdlog::error("{}", r.err().what());
    spdlog::warn("exiting with {} patch build(s) unfinished", cache.running());
    spdlog::shutdown();
    std::_Exit(0);
  }
  cache.stop();
  spdlog::info("stopped");
  return 0;
}
