// The request router: a plain function from a parsed request to a response, with no sockets, so
// it is tested directly. The session (http_session.hpp) does the I/O around it:
//   1. plan(head): limits, auth and rate limit decided from the headers alone, before any body
//      byte is read (an unauthorised 4 GiB upload is refused without reading it);
//   2. read the body (into memory, or into a staging file for uploads);
//   3. handle(request): on an I/O thread, or on the blocking pool when plan said so.
// Nothing on an I/O thread waits on the index (issue 18): there the session calls
// plan(head, memory_only) and handle_inline(), which answer from memory or say that the index is
// needed; the session then calls plan(head) or handle() on the blocking pool.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <ctime>
#include <vector>

#include "mallorn/server/admin_auth.hpp"
#include "mallorn/server/identity/credential_cache.hpp"
#include "mallorn/server/audit_log.hpp"
#include "mallorn/server/identity/device_auth.hpp"
#include "mallorn/server/identity/device_registry.hpp"
#include "mallorn/server/index_db.hpp"
#include "mallorn/server/metrics.hpp"
#include "mallorn/server/model_store.hpp"
#include "mallorn/server/patch_cache.hpp"
#include "mallorn/server/rate_limiter.hpp"
#include "mallorn/server/ui_files.hpp"

namespace mallorn::server {
namespace fleet {
class rollout_engine;
}

struct http_request {
  std::string method;  // upper case, as sent
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::filesystem::path body_file;  // uploads: the staged body (plan().to_file)
  std::string client;               // peer address, for reports
  // What per-client limits count under: the IPv4 address, or the /64 of an IPv6 address (one
  // host owns a whole /64 and could rotate through it). Empty: `client`.
  std::string client_key;
  // mTLS: the device ids the verified client certificate names (identity::certificate_device_ids).
  std::vector<std::string> peer_device_ids;
  // Who a device request is from, decided once by router::plan() and read by handle().
  mutable std::shared_ptr<const identity::device_principal> principal;

  const std::string* header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

// An open, read-only file; the session reads [offset, offset + length) with pread.
struct open_file {
  explicit open_file(int fd) : fd(fd) {}
  ~open_file();
  open_file(const open_file&) = delete;
  open_file& operator=(const open_file&) = delete;
  int fd;
  std::shared_ptr<void> pin;  // keeps a patch from being evicted while it is sent
};

struct file_slice {
  std::shared_ptr<open_file> file;
  std::uint64_t offset = 0, length = 0;
  std::string kind;      // "patch" or "model" (metrics)
  std::string patch_id;  // for download accounting
};

struct prepared_response;

struct http_response {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<file_slice> file;  // body comes from a file instead of `body`
  // HEAD: send the headers (Content-Length = what GET would send) and no body.
  std::optional<std::uint64_t> head_length;
  bool close = false;  // close the connection after this response
  std::string route = "other";
  // Set: the answer was serialized once (prepare_response) and is sent as those bytes; status,
  // route and close above still apply, headers and body are in prepared->answer.
  std::shared_ptr<const prepared_response> prepared;

  void set(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
  const std::string* header(const std::string& name) const;
};

// An answer many clients get unchanged (a check-update for a built pair: issue 18), serialized
// once with the headers the session adds (Server) and reused: a cache hit writes these bytes,
// with no JSON, header or body formatting per request.
struct prepared_response {
  std::string keep_alive;  // HTTP/1.1, the connection stays open
  std::string close;       // HTTP/1.1 with "Connection: close"
  http_response answer;    // the same answer unserialized, for an HTTP/1.0 client
};

// Serializes `answer` the way the session would send it (http_session.hpp); the result's
// prepared field points to it.
http_response prepare_response(http_response answer);

class keyring_source;
class disk_guard;

struct router_config {
  std::optional<std::string> admin_token;  // the "admin" token (scope admin); nullopt and no
                                           // admin_tokens: admin routes answer 403
  std::vector<admin_credential> admin_tokens;  // --admin-tokens: named tokens with scopes
  audit_log* audit = nullptr;                  // every authenticated admin change is recorded here
  std::shared_ptr<keyring_source> keyring;  // --keyring: GET /keyring (keyring_source.hpp)
  std::uint64_t max_body = 1 << 20;        // JSON requests
  std::uint64_t max_upload = 4ull << 30;   // PUT /admin/models
  // False when the store is read-only to the daemon (the shipped systemd unit): uploads are then
  // refused with 403 before their body is read, instead of failing to stage.
  bool uploads_enabled = true;
  std::uint64_t min_free = 64ull << 20;    // uploads leaving less free space on the store's disk: 507
  // The data disks' free space (disk_guard.hpp); nullptr: never read-only. While it is degraded,
  // builds, uploads and reports answer 503 disk_full; check-update and downloads go on.
  disk_guard* disk = nullptr;
  std::chrono::milliseconds create_patch_wait{10 * 60 * 1000};
  // Staged rollouts (docs/rollouts.md); nullptr: /admin/rollouts and /admin/groups answer 404 and
  // every device is offered the latest version.
  fleet::rollout_engine* rollouts = nullptr;
  // The dashboard at /ui/ (nullptr: --no-ui, /ui answers 404). ui_demo: read-only admin views
  // (GET of /admin/devices, /admin/builds, /admin/rollouts) answer without a token.
  std::shared_ptr<const ui_files> ui;
  bool ui_demo = false;
  std::string replica;      // --replica-name (shown by /healthz)
  std::string public_base;  // --public-patch-base: check-update adds patch_public_url / full_public_url
  std::function<std::chrono::steady_clock::time_point()> clock = [] { return std::chrono::steady_clock::now(); };
  // Device identity (--device-auth; docs/security.md). The registry is set when the mode is not off.
  identity::device_auth_mode device_auth = identity::device_auth_mode::off;
  identity::device_registry* device_registry = nullptr;
  std::chrono::seconds device_token_ttl{3600};
  std::chrono::seconds device_token_window{300};  // how far a /token timestamp may be from now
  // --device-auth-cache: how long a token or device state the index confirmed is trusted without
  // asking again (credential_cache.hpp): the delay before a revocation made on another replica
  // takes effect here. 0: every device request asks the index (on the blocking pool).
  identity::credential_cache::options device_credentials{};
  std::function<std::int64_t()> wall_clock = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
};

// Where plan() may look for device credentials: memory_only on an I/O thread (a miss sets
// body_plan::ask_index), index on the blocking pool, in tests and fuzzers.
enum class credential_lookup { memory_only, index };

class router {
 public:
  router(router_config cfg, model_store& store, patch_cache& cache, index_db& db, metrics& m, rate_limiter& limiter);

  struct body_plan {
    std::uint64_t limit = 0;
    bool to_file = false;   // stream the body into store.staging_dir()
    bool blocking = false;  // run handle() on the blocking pool (waits on builds, hashes files)
    // A device's write to the index (POST /report): handle() runs on the server's bounded writer
    // thread, never on an I/O thread; a full writer queue answers 503 + Retry-After.
    bool device_write = false;
    std::optional<http_response> reject;  // answer this without reading the body, then close
    // plan(head, memory_only) only: the device's credentials are not in memory; nothing else was
    // decided (not even the rate limit). Call plan(head) again on the blocking pool.
    bool ask_index = false;
  };
  body_plan plan(const http_request& head, credential_lookup how = credential_lookup::index);
  http_response handle(const http_request& req);
  // handle() when the answer needs no index read; nullopt when it does (a check-update whose
  // answer is not cached: shared, the patch cache asks the index): call handle() on the pool.
  std::optional<http_response> handle_inline(const http_request& req);

  // Set by the server while it drains: /healthz answers 503 and responses close connections.
  std::function<bool()> draining = [] { return false; };

 private:
  body_plan plan_request(const http_request& head, credential_lookup how);
  std::optional<http_response> answer(const http_request& req, bool memory_only);
  // nullopt: memory_only and the answer is not cached.
  std::optional<http_response> check_update(const http_request& req, bool memory_only);
  // --public-patch-base: adds absolute CDN URLs beside the paths (agents keep using the paths).
  http_response with_public_urls(http_response r) const;
  // with_public_urls() and Cache-Control: every check-update answer goes through it once.
  http_response finish_check_update(http_response r) const;
  // nullopt when memory_only and the answer needs the index (a patch id this replica does not
  // know on a shared index, or a pin row to write).
  std::optional<http_response> get_patch(const http_request& req, const std::string& id, bool memory_only);
  http_response get_model(const http_request& req, const std::string& model, const std::string& version);
  http_response manifest();
  http_response fingerprint(const std::vector<std::string>& segments);
  http_response create_patch(const http_request& req);
  http_response report(const http_request& req);
  http_response healthz();
  http_response upload_model(const http_request& req, const std::string& model, const std::string& version);
  http_response rescan();
  http_response devices(const http_request& req, const std::string& device_id);
  http_response fleet_route(const http_request& req, const std::vector<std::string>& segments);
  http_response device_reports(const std::string& device_id);
  http_response builds();
  http_response ui(const http_request& req, const std::vector<std::string>& segments);
  static bool is_admin_route(const std::vector<std::string>& segments);
  // nullopt when the request carries a token whose scope covers its method and path; else the
  // 401/403 answer (and a 403 for a known token is audited).
  std::optional<http_response> check_admin(const http_request& req) const;
  const admin_credential* authenticate(const http_request& req) const;
  void audit_admin(const http_request& req, const http_response& r) const;
  http_response audit_view(const http_request& req);
  bool demo_read_allowed(const http_request& req, const std::vector<std::string>& segments) const;
  // Device identity (routes_identity.cpp).
  static bool is_device_route(const std::string& route);
  // The principal, or the 401/403 answer for credentials that do not hold; monostate when `how`
  // is memory_only and the credentials are not in device_credentials_.
  std::variant<std::monostate, identity::device_principal, http_response> authenticate_device(const http_request& req,
                                                                                              credential_lookup how);
  const identity::device_principal& principal_of(const http_request& req);
  // Binds a request's device_id to its principal: fills an empty id, refuses another one (403).
  std::optional<http_response> bind_device_id(const http_request& req, std::string& device_id);
  http_response enroll(const http_request& req);
  http_response issue_token(const http_request& req);
  http_response enrollments(const http_request& req);
  http_response admission(const std::string& device_id, const std::string& action);
  bool read_only() const;  // the data disk is full (cfg_.disk)

  // Fleets of identical devices ask the same question: the answer to a check-update that is
  // "ready" or "up to date" is kept per (sha256/short id, model, channel, profile) until the
  // catalog or the patch cache changes.
  struct cached_answer {
    std::shared_ptr<const catalog> catalog_seen;
    std::uint64_t cache_generation = 0;
    bool patch_ready = false;  // counts as a cache hit when reused
    http_response response;  // prepared (prepare_response): a hit copies a pointer
  };
  std::shared_mutex answers_mutex_;  // readers (every repeated check-update) do not exclude each other
  std::unordered_map<std::string, cached_answer> answers_;

  router_config cfg_;
  std::vector<admin_credential> credentials_;  // admin_token + admin_tokens
  identity::credential_cache device_credentials_;  // what the index said about device credentials
  model_store& store_;
  patch_cache& cache_;
  index_db& db_;
  metrics& metrics_;
  rate_limiter& limiter_;
};

// A JSON error body: {"error": {"code": ..., "message": ...}}.
http_response error_response(unsigned status, const std::string& code, const std::string& message);
// The index database failed (PostgreSQL down, disk full): 503 + Retry-After, so devices come back
// later instead of treating it as a hard error; the cause is logged, not sent.
http_response storage_unavailable(const core::error& e);
// The data disk is full (read-only mode): 503 disk_full + Retry-After; nothing was stored.
http_response disk_full_response();
// Bytes available to unprivileged writers on the filesystem holding `path` (nullopt: unknown).
std::optional<std::uint64_t> free_bytes(const std::filesystem::path& path);

}  // namespace mallorn::server
