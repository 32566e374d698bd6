// mallornd's configuration: defaults < JSON file (--config) < environment < command-line flags.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::server {

struct server_config {
  std::filesystem::path models_dir = "models";
  std::filesystem::path data_dir = "mallorn-data";
  std::filesystem::path patches_dir;  // empty: <data>/patches
  std::string database;  // storage::open_database URL; empty: sqlite in data_dir (may hold a password: never log it)
  unsigned report_history = 20;          // per device, besides device_state
  std::uint64_t report_cap = 100000;     // in total
  unsigned report_retention_days = 30;   // 0: no age limit
  std::uint64_t min_free = 64ull << 20;  // builds and uploads need this much free space
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  std::filesystem::path port_file;  // written once listening (tests use --listen 127.0.0.1:0)
  std::filesystem::path admin_token_file;
  std::filesystem::path admin_tokens_file;  // named tokens with scopes (admin_auth.hpp)
  std::filesystem::path signing_key_file;
  std::filesystem::path keyring_file;  // empty: no GET /keyring
  std::filesystem::path tls_cert, tls_key;
  std::filesystem::path tls_client_ca;  // set: devices must present a certificate it signed
  // Device identity (docs/security.md): "off", "optional" or "required".
  std::string device_auth = "off";
  std::filesystem::path device_preauth_file;
  std::chrono::seconds device_token_ttl{3600};
  // How long a device credential the index confirmed is trusted without asking again: a
  // revocation made on another replica takes effect here within it (0: always ask).
  std::chrono::seconds device_auth_cache{10};
  std::size_t device_pending_max = 10000, device_pending_per_address = 32;
  unsigned threads = 0;  // 0: one per core
  unsigned build_threads = 1;
  std::size_t build_queue = 16;
  std::uint64_t cache_budget = 10ull << 30;
  int level = 19;
  bool neural = true;
  std::uint64_t max_body = 1 << 20;
  std::uint64_t max_upload = 4ull << 30;
  std::uint32_t header_limit = 16 << 10;
  std::size_t max_connections = 0;  // 0: derived from RLIMIT_NOFILE (default_max_connections)
  std::size_t max_connections_per_address = 64;
  std::size_t max_queued_reports = 4096;  // device writes waiting for the writer thread
  std::size_t max_queued_lookups = 1024;  // index lookups of device requests waiting for the pool
  std::chrono::seconds header_timeout{10};
  double rate_limit = 50;  // requests/s per client; 0 disables
  double rate_burst = 200;
  std::chrono::seconds read_timeout{15}, idle_timeout{75}, write_timeout{60}, drain_timeout{30};
  std::string log_level = "info";
  bool ui = true, ui_demo = false;  // the dashboard at /ui/ (--no-ui, --ui-demo)
  std::filesystem::path ui_dir;     // empty: ui_files::default_dir()
  // The MQTT bridge (docs/protocol.md); off while mqtt_broker is empty.
  std::string mqtt_broker, mqtt_client_id = "mallornd", mqtt_prefix = "mallorn/v1";
  std::uint32_t mqtt_max_block = 4096;
  std::size_t mqtt_max_sessions = 10000;
  // Several replicas (docs/scaling.md): this one's name in build claims, /metrics, logs and
  // /healthz (default: the host name); how long a build claim or pin lives without renewal; and
  // where devices may fetch /patch/ and /model/ files from (a CDN), added to check-update answers.
  std::string replica_name;  // "" = not set: default_replica_name(), and /metrics samples unlabelled
  std::chrono::seconds build_lease{30};
  std::string public_patch_base;  // "" or an http(s) URL without a trailing '/'
};

// --public-patch-base: an http:// or https:// URL with a host and no query, fragment, user info,
// spaces or control characters; the trailing '/' is dropped. Errors name the rule broken.
core::result<std::string> parse_public_base(const std::string& url);
// --replica-name: 1..64 of [A-Za-z0-9._-].
bool is_valid_replica_name(const std::string& name);
// The host name, with any character outside [A-Za-z0-9._-] replaced by '-'.
std::string default_replica_name();

// The --help text.
std::string config_usage();

struct config_outcome {
  server_config config;
  bool help = false, version = false;
};

// Parses argv (without argv[0]) and the environment (MODELS_DIR, PATCHES_DIR, MALLORN_*; see
// config_usage()). Errors are invalid_argument with a message naming the offending option.
core::result<config_outcome> load_config(const std::vector<std::string>& args, char** environ_vars);

// "10G", "512M", "64k", "1048576" -> bytes.
std::optional<std::uint64_t> parse_size(const std::string& text);

}  // namespace mallorn::server
