#include "mallorn/server/config.hpp"

#include "mallorn/proto/mqtt_client.hpp"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace mallorn::server {
namespace {

struct option_spec {
  const char* name;  // flag without "--"; JSON key is the same with '-' -> '_'
  const char* env;   // nullptr: no variable
  const char* help;
};

const option_spec options[] = {
    {"models", "MODELS_DIR", "DIR      model store: DIR/<model>/<version>.<ext> (default ./models)"},
    {"data", "MALLORN_DATA_DIR", "DIR        index database and patch cache (default ./mallorn-data; $STATE_DIRECTORY under systemd)"},
    {"patches", "PATCHES_DIR", "DIR     patch files (default DATA/patches)"},
    {"database", "MALLORN_DATABASE", "URL    index database: sqlite:[FILE] (default DATA/index.sqlite) or postgresql://user[:password]@host[:port]/db (replicas share it)"},
    {"report-history", "MALLORN_REPORT_HISTORY", "N  reports kept per device besides its latest state (default 20)"},
    {"report-cap", "MALLORN_REPORT_CAP", "N  reports kept in total; the oldest go first (default 100000)"},
    {"report-retention", "MALLORN_REPORT_RETENTION", "DAYS  reports older than this are deleted (default 30; 0 = keep)"},
    {"min-free", "MALLORN_MIN_FREE", "SIZE   free space the data, patch and store disks must keep: below it mallornd is read-only (builds, uploads, reports answer 503 disk_full) until space returns (default 64M)"},
    {"listen", "MALLORN_LISTEN", "ADDR:PORT  where to listen (default 127.0.0.1:8080; [::]:8080 for IPv6; port 0 = any)"},
    {"port-file", "MALLORN_PORT_FILE", "FILE  write the bound port here once listening"},
    {"config", "MALLORN_CONFIG", "FILE      JSON file with any of these options (keys with '_' for '-')"},
    {"admin-token-file", "MALLORN_ADMIN_TOKEN_FILE",
     "FILE  bearer token for admin routes (default $CREDENTIALS_DIRECTORY/admin-token; none: admin routes off)"},
    {"admin-tokens", "MALLORN_ADMIN_TOKENS",
     "FILE  named admin tokens with scopes read|deploy|admin: {\"tokens\": [{\"name\", \"scope\", \"sha256\"}]}"},
    {"signing-key", "MALLORN_SIGNING_KEY", "FILE  Ed25519 private key (64 bytes, `mallorn keygen`) to sign every patch"},
    {"keyring", "MALLORN_KEYRING", "FILE      serve this keyring at GET /keyring (`mallorn keyring`; re-read when it changes)"},
    {"tls-cert", "MALLORN_TLS_CERT", "FILE    serve HTTPS with this PEM certificate chain"},
    {"tls-key", "MALLORN_TLS_KEY", "FILE     ... and this PEM private key"},
    {"tls-client-ca", "MALLORN_TLS_CLIENT_CA", "FILE  require client certificates signed by this PEM CA (mTLS)"},
    {"device-auth", "MALLORN_DEVICE_AUTH",
     "MODE  device identity: off (default), optional (credentials checked when sent) or required\n"
     "                     (check-update, report and downloads need a client certificate or a device token)"},
    {"device-preauth", "MALLORN_DEVICE_PREAUTH", "FILE  pre-authorised devices, one 'ID [BASE64_ED25519_KEY]' a line: admitted when they enroll"},
    {"device-token-ttl", "MALLORN_DEVICE_TOKEN_TTL", "S  lifetime of a device token from POST /token (default 3600)"},
    {"device-auth-cache", "MALLORN_DEVICE_AUTH_CACHE",
     "S seconds a device token or device state the index confirmed is trusted without asking again:\n"
     "                     a revocation made on another replica takes effect within it (default 10; 0 = always ask)"},
    {"device-pending-max", "MALLORN_DEVICE_PENDING_MAX", "N  enrollments waiting for an operator, in total (default 10000)"},
    {"device-pending-per-address", "MALLORN_DEVICE_PENDING_PER_ADDRESS",
     "N  ... from one client IPv4 address or IPv6 /64 (default 32)"},
    {"threads", "MALLORN_THREADS", "N        I/O threads (default: one per core)"},
    {"build-threads", "MALLORN_BUILD_THREADS", "N  concurrent patch builds (default 1)"},
    {"build-queue", "MALLORN_BUILD_QUEUE", "N    builds waiting for a thread before check-update answers 503 (default 16)"},
    {"cache-budget", "MALLORN_CACHE_BUDGET", "SIZE patch cache size; least recently used patches are evicted (default 10G; 0 = no limit)"},
    {"level", "MALLORN_LEVEL", "N          zstd level for patches, 1..22 (default 19: built once, downloaded by every device)"},
    {"no-neural", nullptr, "          do not try byte-planed encodings of weights (faster builds)"},
    {"max-body", "MALLORN_MAX_BODY", "SIZE     largest JSON request body (default 1M)"},
    {"max-upload", "MALLORN_MAX_UPLOAD", "SIZE   largest model upload (default 4G)"},
    {"header-limit", "MALLORN_HEADER_LIMIT", "SIZE largest request header (default 16K)"},
    {"max-connections", "MALLORN_MAX_CONNECTIONS",
     "N  open connections; at the cap the oldest idle one is closed, with none idle new ones get 503\n"
     "                     (default: the descriptor limit minus a quarter of it, at least 256, kept for files)"},
    {"max-connections-per-address", "MALLORN_MAX_CONNECTIONS_PER_ADDRESS",
     "N  open connections per client IPv4 address or IPv6 /64; at the cap that address's oldest idle one\n"
     "                     is closed, with none idle 503 (default 64)"},
    {"max-queued-reports", "MALLORN_MAX_QUEUED_REPORTS",
     "N  reports waiting for the index writer; past it a report gets 503 busy + Retry-After (default 4096)"},
    {"max-queued-lookups", "MALLORN_MAX_QUEUED_LOOKUPS",
     "N  device requests waiting for an index read (credentials or a check-update answer not in memory);\n"
     "                     past it they get 503 busy + Retry-After (default 1024)"},
    {"header-timeout", "MALLORN_HEADER_TIMEOUT",
     "S  seconds a new connection has to send its first request byte, and any request to send its\n"
     "                     whole header (default 10)"},
    {"rate-limit", "MALLORN_RATE_LIMIT", "RPS    requests per second per client address (default 50; 0 = off)"},
    {"rate-burst", "MALLORN_RATE_BURST", "N      burst allowance per client (default 200)"},
    {"read-timeout", "MALLORN_READ_TIMEOUT", "S  seconds to receive a request's header and a JSON body, or each chunk of an upload (default 15)"},
    {"idle-timeout", "MALLORN_IDLE_TIMEOUT", "S  seconds a keep-alive connection may stay idle (default 75)"},
    {"write-timeout", "MALLORN_WRITE_TIMEOUT", "S seconds for each chunk of a response to be accepted (default 60)"},
    {"drain-timeout", "MALLORN_DRAIN_TIMEOUT", "S seconds SIGTERM waits for downloads in flight (default 30)"},
    {"no-ui", nullptr, "              do not serve the dashboard at /ui/"},
    {"ui-dir", "MALLORN_UI_DIR", "DIR        the dashboard's files (default: share/mallorn/ui of the install, or the source tree's)"},
    {"ui-demo", nullptr, "            read-only demo: the dashboard's views (GET /admin/devices, builds, rollouts, groups) need no token"},
    {"log-level", "MALLORN_LOG_LEVEL", "L      trace, debug, info, warn, error (default info)"},
    {"mqtt-broker", "MALLORN_MQTT_BROKER", "URI  serve devices over MQTT too (docs/protocol.md), e.g. tcp://127.0.0.1:1883 (default off)"},
    {"mqtt-client-id", "MALLORN_MQTT_CLIENT_ID", "ID MQTT client id (default mallornd)"},
    {"mqtt-prefix", "MALLORN_MQTT_PREFIX", "P     MQTT topic prefix (default mallorn/v1)"},
    {"mqtt-max-block", "MALLORN_MQTT_MAX_BLOCK", "N  largest block sent over MQTT, 64..65535 bytes (default 4096)"},
    {"replica-name", "MALLORN_REPLICA_NAME",
     "NAME  this replica's name in build claims, /metrics labels, logs and /healthz; unique per replica\n"
     "                     ([A-Za-z0-9._-], default: the host name)"},
    {"build-lease", "MALLORN_BUILD_LEASE",
     "S   seconds a replica's build claim lives without renewal; another replica takes a dead one's build over\n"
     "                     after it (default 30)"},
    {"public-patch-base", "MALLORN_PUBLIC_PATCH_BASE",
     "URL  a CDN in front of /patch/ and /model/: check-update answers add patch_public_url and\n"
     "                     full_public_url under it (e.g. https://cdn.example.com)"},
    {"mqtt-max-sessions", "MALLORN_MQTT_MAX_SESSIONS",
     "N  MQTT devices downloading (and, separately, waiting for a build) at once; more are told to wait (default 10000)"},
};

// Options that take no value ("--no-ui"); in the environment or a config file they take a boolean.
bool is_switch(const std::string& key) { return key == "no-neural" || key == "no-ui" || key == "ui-demo"; }

bool truthy(const std::string& value) { return value == "1" || value == "true" || value.empty(); }

const option_spec* find_option(const std::string& name) {
  for (const auto& o : options)
    if (name == o.name) return &o;
  return nullptr;
}

core::error bad(const std::string& what) { return core::make_error(core::errc::invalid_argument, what); }

template <class T>
std::optional<T> parse_number(const std::string& s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

core::result<void> apply(server_config& c, const std::string& key, const std::string& value) {
  auto uint = [&](auto& field, std::uint64_t min, std::uint64_t max) -> core::result<void> {
    auto v = parse_number<std::uint64_t>(value);
    if (!v || *v < min || *v > max)
      return bad("--" + key + ": expected a whole number in " + std::to_string(min) + ".." + std::to_string(max) +
                 ", got '" + value + "'");
    field = static_cast<std::remove_reference_t<decltype(field)>>(*v);
    return {};
  };
  auto size = [&](auto& field) -> core::result<void> {
    auto v = parse_size(value);
    if (!v) return bad("--" + key + ": expected a size like 512K, 64M or 10G, got '" + value + "'");
    field = static_cast<std::remove_reference_t<decltype(field)>>(*v);
    return {};
  };
  auto seconds = [&](std::chrono::seconds& field) -> core::result<void> {
    auto v = parse_number<std::uint64_t>(value);
    if (!v || *v == 0 || *v > 86400) return bad("--" + key + ": expected seconds in 1..86400, got '" + value + "'");
    field = std::chrono::seconds(*v);
    return {};
  };
  auto real = [&](double& field) -> core::result<void> {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(v >= 0) || v > 1e9) return bad("--" + key + ": expected a number >= 0, got '" + value + "'");
    field = v;
    return {};
  };
  if (key == "models") c.models_dir = value;
  else if (key == "data") c.data_dir = value;
  else if (key == "patches") c.patches_dir = value;
  else if (key == "database") {
    if (!value.empty() && value.rfind("sqlite:", 0) != 0 && value.rfind("postgresql://", 0) != 0 &&
        value.rfind("postgres://", 0) != 0)
      return bad("--database: expected sqlite:[FILE] or postgresql://...");  // the URL is not echoed: it may hold a password
    c.database = value;
  } else if (key == "report-history") return uint(c.report_history, 1, 10000);
  else if (key == "report-cap") return uint(c.report_cap, 100, 100000000);
  else if (key == "report-retention") return uint(c.report_retention_days, 0, 36500);
  else if (key == "min-free") return size(c.min_free);
  else if (key == "port-file") c.port_file = value;
  else if (key == "admin-token-file") c.admin_token_file = value;
  else if (key == "admin-tokens") c.admin_tokens_file = value;
  else if (key == "signing-key") c.signing_key_file = value;
  else if (key == "keyring") c.keyring_file = value;
  else if (key == "tls-cert") c.tls_cert = value;
  else if (key == "tls-key") c.tls_key = value;
  else if (key == "tls-client-ca") c.tls_client_ca = value;
  else if (key == "device-auth") {
    if (value != "off" && value != "optional" && value != "required")
      return bad("--device-auth: expected off, optional or required, got '" + value + "'");
    c.device_auth = value;
  } else if (key == "device-preauth") c.device_preauth_file = value;
  else if (key == "device-token-ttl") return seconds(c.device_token_ttl);
  else if (key == "device-auth-cache") {
    auto v = parse_number<std::uint64_t>(value);
    if (!v || *v > 3600) return bad("--device-auth-cache: expected seconds in 0..3600, got '" + value + "'");
    c.device_auth_cache = std::chrono::seconds(*v);
  }
  else if (key == "device-pending-max") return uint(c.device_pending_max, 1, 10000000);
  else if (key == "device-pending-per-address") return uint(c.device_pending_per_address, 1, 10000000);
  else if (key == "log-level") c.log_level = value;
  else if (key == "mqtt-broker") {
    if (auto ok = proto::check_broker_uri(value); !value.empty() && !ok) return bad("--mqtt-broker: " + ok.err().message);
    c.mqtt_broker = value;
  } else if (key == "mqtt-client-id") c.mqtt_client_id = value;
  else if (key == "mqtt-prefix") {
    if (value.empty() || value.find_first_of("+#") != std::string::npos || value.back() == '/')
      return bad("--mqtt-prefix: expected a topic prefix without wildcards or a trailing '/', got '" + value + "'");
    c.mqtt_prefix = value;
  } else if (key == "mqtt-max-block") return uint(c.mqtt_max_block, 64, 65535);
  else if (key == "replica-name") {
    if (!is_valid_replica_name(value)) return bad("--replica-name: expected 1..64 of [A-Za-z0-9._-]");
    c.replica_name = value;
  } else if (key == "build-lease") {
    auto v = parse_number<std::uint64_t>(value);
    if (!v || *v < 2 || *v > 3600) return bad("--build-lease: expected seconds in 2..3600, got '" + value + "'");
    c.build_lease = std::chrono::seconds(*v);
  } else if (key == "public-patch-base") {
    auto base = parse_public_base(value);
    if (!base) return bad("--public-patch-base: " + base.err().message);
    c.public_patch_base = *base;
  } else if (key == "no-neural") c.neural = !truthy(value);
  else if (key == "no-ui") c.ui = !truthy(value);
  else if (key == "ui-demo") c.ui_demo = truthy(value);
  else if (key == "ui-dir") c.ui_dir = value;
  else if (key == "listen") {
    auto colon = value.rfind(':');
    if (colon == std::string::npos) return bad("--listen: expected ADDR:PORT, got '" + value + "'");
    std::string host = value.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    auto port = parse_number<std::uint16_t>(value.substr(colon + 1));
    if (!port) return bad("--listen: bad port in '" + value + "'");
    c.listen_host = host.empty() ? "0.0.0.0" : host;
    c.listen_port = *port;
  } else if (key == "threads") return uint(c.threads, 0, 256);
  else if (key == "build-threads") return uint(c.build_threads, 1, 64);
  else if (key == "build-queue") return uint(c.build_queue, 1, 100000);
  else if (key == "level") return uint(c.level, 1, 22);
  else if (key == "max-connections") return uint(c.max_connections, 1, 1000000);
  else if (key == "max-connections-per-address") return uint(c.max_connections_per_address, 1, 1000000);
  else if (key == "max-queued-reports") return uint(c.max_queued_reports, 1, 1000000);
  else if (key == "max-queued-lookups") return uint(c.max_queued_lookups, 1, 1000000);
  else if (key == "header-timeout") return seconds(c.header_timeout);
  else if (key == "mqtt-max-sessions") return uint(c.mqtt_max_sessions, 1, 1000000);
  else if (key == "cache-budget") return size(c.cache_budget);
  else if (key == "max-body") return size(c.max_body);
  else if (key == "max-upload") return size(c.max_upload);
  else if (key == "header-limit") return size(c.header_limit);
  else if (key == "rate-limit") return real(c.rate_limit);
  else if (key == "rate-burst") return real(c.rate_burst);
  else if (key == "read-timeout") return seconds(c.read_timeout);
  else if (key == "idle-timeout") return seconds(c.idle_timeout);
  else if (key == "write-timeout") return seconds(c.write_timeout);
  else if (key == "drain-timeout") return seconds(c.drain_timeout);
  else return bad("unknown option --" + key);
  return {};
}

core::result<std::map<std::string, std::string>> read_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return bad("--config: cannot open " + path);
  auto doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("--config: " + path + " is not a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : doc.items()) {
    std::string key = k;
    for (auto& ch : key)
      if (ch == '_') ch = '-';
    if (!find_option(key) || key == "config") return bad("--config: unknown key '" + k + "' in " + path);
    if (v.is_string()) out[key] = v.get<std::string>();
    else if (v.is_boolean()) out[key] = v.get<bool>() ? "true" : "false";
    else if (v.is_number_integer()) out[key] = std::to_string(v.get<std::int64_t>());
    else if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<std::int64_t>(v.get<double>())))
      out[key] = std::to_string(static_cast<std::int64_t>(v.get<double>()));
    else if (v.is_number()) out[key] = std::to_string(v.get<double>());
    else return bad("--config: '" + k + "' must be a string, number or boolean");
  }
  return out;
}

}  // namespace

bool is_valid_replica_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') return false;
  return true;
}

core::result<std::string> parse_public_base(const std::string& url) {
  if (url.empty()) return std::string();  // unset
  if (url.size() > 512) return bad("longer than 512 characters");
  for (char ch : url) {
    const auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u >= 0x7f || ch == '\\' || ch == '"') return bad("has a space, quote, backslash or non-ASCII character");
  }
  std::string rest;
  if (url.rfind("https://", 0) == 0) rest = url.substr(8);
  else if (url.rfind("http://", 0) == 0) rest = url.substr(7);
  else return bad("expected an http:// or https:// URL");
  if (url.find_first_of("?#") != std::string::npos) return bad("a query or fragment has no place in a base URL");
  const std::string host = rest.substr(0, rest.find('/'));
  if (host.empty() || host.find('@') != std::string::npos) return bad("expected a host (and no user info) after the scheme");
  std::string out = url;
  while (out.back() == '/') out.pop_back();
  return out;
}

std::string default_replica_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string name;  // a host name is nearly always valid; anything else becomes '-'
  for (char ch : std::string(host).substr(0, 64))
    name += std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-' ? ch : '-';
  return name.empty() ? "mallornd" : name;
}

std::optional<std::uint64_t> parse_size(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::string digits = text;
  std::uint64_t mult = 1;
  switch (std::toupper(static_cast<unsigned char>(digits.back()))) {
    case 'K': mult = 1ull << 10; break;
    case 'M': mult = 1ull << 20; break;
    case 'G': mult = 1ull << 30; break;
    case 'T': mult = 1ull << 40; break;
    default: break;
  }
  if (mult != 1) digits.pop_back();
  auto v = parse_number<std::uint64_t>(digits);
  if (!v || (*v != 0 && mult > UINT64_MAX / *v)) return std::nullopt;
  return *v * mult;
}

std::string config_usage() {
  std::string s =
      "usage: mallornd [--models DIR] [--data DIR] [--listen ADDR:PORT] [options]\n"
      "The Mallorn patch server: tells devices which update they need, builds delta patches on demand,\n"
      "caches them and serves them with HTTP Range resume. See docs/api.md.\n\noptions (environment variable):\n";
  for (const auto& o : options) {
    s += std::string("  --") + o.name + " " + o.help;
    if (o.env) s += std::string("  (") + o.env + ")";
    s += "\n";
  }
  s += "  --help             this text\n  --version          print the version\n"
       "Precedence: flags > environment > --config file > defaults. SIGHUP rescans the store;\n"
       "SIGTERM drains downloads in flight and exits.\n";
  return s;
}

core::result<config_outcome> load_config(const std::vector<std::string>& args, char** environ_vars) {
  config_outcome out;
  std::map<std::string, std::string> flags, env;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      return out;
    }
    if (a == "--version") {
      out.version = true;
      return out;
    }
    if (a.rfind("--", 0) != 0) return bad("unexpected argument '" + a + "' (see --help)");
    std::string key = a.substr(2), value;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (!find_option(key)) {
      return bad("unknown option --" + key + " (see --help)");
    } else if (!is_switch(key)) {
      if (i + 1 >= args.size()) return bad("--" + key + " needs a value");
      value = args[++i];
    } else {
      value = "true";
    }
    if (!find_option(key)) return bad("unknown option --" + key + " (see --help)");
    flags[key] = value;
  }
  for (char** e = environ_vars; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (!eq) continue;
    const std::string name(static_cast<const char*>(*e), eq), value(eq + 1);
    for (const auto& o : options)
      if (o.env && name == o.env && !value.empty()) env[o.name] = value;
    if (name == "STATE_DIRECTORY" && !value.empty())
      env["data-default"] = value.substr(0, value.find(':'));  // systemd may list several
    if (name == "CREDENTIALS_DIRECTORY" && !value.empty() && !env.count("admin-token-file"))
      env["admin-token-file-default"] = value + "/admin-token";
  }
  std::map<std::string, std::string> layered;
  std::string config_file = flags.count("config") ? flags["config"] : (env.count("config") ? env["config"] : "");
  if (!config_file.empty()) {
    auto file = read_config_file(config_file);
    if (!file) return file.err();
    layered = *file;
  }
  // systemd's directories are only defaults: an explicit setting anywhere wins.
  if (env.count("data-default")) {
    if (!layered.count("data") && !env.count("data")) layered["data"] = env["data-default"];
    env.erase("data-default");
  }
  if (env.count("admin-token-file-default")) {
    std::string cred = env["admin-token-file-default"];
    env.erase("admin-token-file-default");
    if (!layered.count("admin-token-file") && std::ifstream(cred).good()) layered["admin-token-file"] = cred;
  }
  for (const auto& [k, v] : env) layered[k] = v;
  for (const auto& [k, v] : flags) layered[k] = v;
  layered.erase("config");
  for (const auto& [k, v] : layered) MALLORN_TRY(apply(out.config, k, v));
  if (out.config.tls_cert.empty() != out.config.tls_key.empty())
    return bad("--tls-cert and --tls-key go together");
  if (!out.config.tls_client_ca.empty() && out.config.tls_cert.empty())
    return bad("--tls-client-ca needs --tls-cert and --tls-key");
  if (out.config.patches_dir.empty()) out.config.patches_dir = out.config.data_dir / "patches";
  return out;
}

}  // namespace mallorn::server
