#include "mallorn/server/router.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <ctime>

#include "mallorn/server/disk_guard.hpp"
#include "mallorn/server/keyring_source.hpp"
#include "mallorn/server/request_path.hpp"
#include "route_json.hpp"

namespace mallorn::server {

open_file::~open_file() {
  if (fd >= 0) ::close(fd);
}

const std::string* http_response::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

router::router(router_config cfg, model_store& store, patch_cache& cache, index_db& db, metrics& m,
               rate_limiter& limiter)
    : cfg_(std::move(cfg)),
      device_credentials_(cfg_.device_credentials),
      store_(store),
      cache_(cache),
      db_(db),
      metrics_(m),
      limiter_(limiter) {
  credentials_ = cfg_.admin_tokens;
  if (cfg_.admin_token) credentials_.push_back(credential_for_token("admin", admin_scope::admin, *cfg_.admin_token));
}

namespace {

// A route is identified by the first path segment (plus the second for /admin).
std::string route_name(const std::vector<std::string>& seg) {
  if (seg.empty()) return "root";
  static const std::vector<std::string> known = {"check-update", "patch",  "model",   "manifest",
                                                 "fingerprint",  "create-patch", "report", "healthz", "metrics",
                                                 "ui",           "keyring",      "enroll", "token"};
  for (const auto& k : known)
    if (seg[0] == k) return k;
  // Labels come from a fixed set: a request path must never create a metric series.
  if (seg[0] == "admin" && seg.size() >= 2)
    for (const char* k : {"models", "rescan", "devices", "builds", "audit", "rollouts", "groups", "enrollments"})
      if (seg[1] == k) return std::string("admin_") + k;
  return seg[0] == "admin" ? "admin_other" : "other";
}

http_response method_not_allowed(const std::string& allow) {
  auto r = error_response(405, "method_not_allowed", "this route accepts " + allow);
  r.set("Allow", allow);
  return r;
}

}  // namespace

bool router::is_admin_route(const std::vector<std::string>& segments) {
  return !segments.empty() && (segments[0] == "admin" || segments[0] == "create-patch");
}

const admin_credential* router::authenticate(const http_request& req) const {
  const std::string* auth = req.header("authorization");
  const std::string prefix = "Bearer ";
  if (!auth || auth->size() <= prefix.size() || auth->compare(0, prefix.size(), prefix) != 0) return nullptr;
  return find_credential(credentials_, auth->substr(prefix.size()));
}

std::optional<http_response> router::check_admin(const http_request& req) const {
  if (credentials_.empty())
    return error_response(403, "admin_disabled",
                          "admin routes are disabled: start mallornd with --admin-token-file or --admin-tokens");
  const admin_credential* who = authenticate(req);
  if (!who) {
    auto r = error_response(401, "unauthorized", "admin routes need 'Authorization: Bearer <token>'");
    r.set("WWW-Authenticate", "Bearer realm=\"mallornd\"");
    return r;
  }
  auto target = parse_target(req.target);
  const admin_scope needed = required_scope(req.method, target ? target->segments : std::vector<std::string>{});
  if (static_cast<int>(who->scope) < static_cast<int>(needed)) {
    auto r = error_response(403, "insufficient_scope",
                            std::string("this request needs a token with scope '") + admin_scope_name(needed) +
                                "'; token '" + who->name + "' has '" + admin_scope_name(who->scope) + "'");
    r.set("WWW-Authenticate", std::string("Bearer realm=\"mallornd\", error=\"insufficient_scope\", scope=\"") +
                                  admin_scope_name(needed) + "\"");
    return r;  // audited by plan() or handle(), whichever answers it
  }
  return std::nullopt;
}

void router::audit_admin(const http_request& req, const http_response& r) const {
  if (!cfg_.audit || req.method == "GET" || req.method == "HEAD") return;
  // Only known actors are recorded: a stranger's 401s cannot fill the log (they are rate limited
  // and logged instead).
  const admin_credential* who = authenticate(req);
  if (!who) return;
  audit_entry e;
  e.at = static_cast<std::int64_t>(std::time(nullptr));
  e.actor = who->name;
  e.scope = admin_scope_name(who->scope);
  e.action = req.method + " " + route_name(parse_target(req.target) ? parse_target(req.target)->segments
                                                                        : std::vector<std::string>{});
  e.target = req.target;
  e.status = r.status;
  e.client = req.client;
  if (auto ok = cfg_.audit->record(e); !ok) spdlog::error("audit log: {}", ok.err().what());
}

bool router::read_only() const { return cfg_.disk && cfg_.disk->degraded(); }

bool router::demo_read_allowed(const http_request& req, const std::vector<std::string>& seg) const {
  // Demo mode opens the read-only views the dashboard shows, nothing that changes state.
  if (!cfg_.ui_demo || (req.method != "GET" && req.method != "HEAD") || seg.size() < 2 || seg[0] != "admin")
    return false;
  return seg[1] == "devices" || seg[1] == "builds" || seg[1] == "rollouts" || seg[1] == "groups";
}

router::body_plan router::plan(const http_request& head, credential_lookup how) {
  body_plan p = plan_request(head, how);
  // An admin change refused before its body is read (bad name, no space, too small a scope) is
  // audited like one handle() answers.
  if (p.reject) {
    auto target = parse_target(head.target);
    if (target && is_admin_route(target->segments)) audit_admin(head, *p.reject);
  }
  return p;
}

router::body_plan router::plan_request(const http_request& head, credential_lookup how) {
  body_plan p;
  p.limit = cfg_.max_body;
  auto target = parse_target(head.target);
  const std::string route = target ? route_name(target->segments) : "other";
  std::string rate_key = head.client_key.empty() ? head.client : head.client_key;
  // Device identity: decided from the headers and the certificate before the body is read; an
  // authenticated device is rate limited as itself, not as its address (a NAT of many devices).
  std::optional<http_response> device_denied;
  if (cfg_.device_auth != identity::device_auth_mode::off && is_device_route(route)) {
    auto who = authenticate_device(head, how);
    if (std::holds_alternative<std::monostate>(who)) {
      // Before the rate limiter: the request is counted once, by the plan() on the pool.
      p.ask_index = true;
      return p;
    }
    if (auto* refused = std::get_if<http_response>(&who)) {
      device_denied = std::move(*refused);
    } else {
      auto principal = std::make_shared<const identity::device_principal>(std::get<identity::device_principal>(who));
      if (!principal->ids.empty()) rate_key = "device:" + principal->ids.front();
      head.principal = std::move(principal);
    }
  }
  if (!limiter_.allow(rate_key, cfg_.clock())) {
    metrics_.rate_limited();
    auto r = error_response(429, "rate_limited", "too many requests from " + head.client);
    r.set("Retry-After", std::to_string(limiter_.retry_after(rate_key, cfg_.clock())));
    r.route = route;
    r.close = true;  // the body (if any) is not read
    p.reject = std::move(r);
    return p;
  }
  if (!target) return p;  // handle() answers 400 (the body is small and read first)
  if (device_denied) {
    device_denied->route = route;
    device_denied->close = true;
    p.reject = std::move(*device_denied);
    return p;
  }
  if (route == "enroll" || route == "token") p.limit = std::min<std::uint64_t>(p.limit, identity::max_identity_body);
  if (is_admin_route(target->segments) && !demo_read_allowed(head, target->segments)) {
    if (auto denied = check_admin(head)) {
      denied->route = route;
      denied->close = true;  // we did not read the body: the connection cannot be reused
      p.reject = std::move(*denied);
      return p;
    }
  }
  const auto& seg = target->segments;
  if (head.method == "PUT" && seg.size() == 4 && seg[0] == "admin" && seg[1] == "models" && !cfg_.uploads_enabled) {
    auto r = error_response(403, "uploads_disabled",
                            "the model store is read-only to mallornd; see deploy/README.md to accept uploads");
    r.route = route;
    r.close = true;
    p.reject = std::move(r);
    return p;
  }
  if (head.method == "PUT" && seg.size() == 4 && seg[0] == "admin" && seg[1] == "models" &&
      (!is_valid_name(seg[2]) || store_version_of(seg[3] + ".bin") != seg[3])) {
    // Refused before a byte of the body is read: the store's scanner would never list this
    // version (store_version_of is the scanner's own rule), so storing it could only fail.
    auto r = error_response(400, "bad_name", "the store does not accept this model or version name "
                                             "([A-Za-z0-9._+-]{1,128}, not starting with '.', without '.tmp-')");
    r.route = route;
    r.close = true;
    p.reject = std::move(r);
    return p;
  }
  if (head.method == "PUT" && seg.size() == 4 && seg[0] == "admin" && seg[1] == "models" && read_only()) {
    auto r = disk_full_response();  // before a byte of the body is staged
    r.route = route;
    r.close = true;
    p.reject = std::move(r);
    return p;
  }
  if (head.method == "PUT" && seg.size() == 4 && seg[0] == "admin" && seg[1] == "models") {
    // Refuse before reading the body when it cannot fit with --min-free to spare (a full store
    // disk also stops the index and the patch cache).
    std::uint64_t declared = 0;
    if (const auto* cl = head.header("content-length")) declared = std::strtoull(cl->c_str(), nullptr, 10);
    const auto room = free_bytes(store_.root());
    const bool fits = cfg_.disk ? cfg_.disk->has_room_for(declared) : !room || *room >= cfg_.min_free + declared;
    if (!fits) {
      auto r = error_response(507, "insufficient_storage",
                              "the model store's disk is short of room: the upload needs " + std::to_string(declared) +
                                  " bytes plus " + std::to_string(cfg_.min_free) + " to spare");
      r.route = route;
      r.close = true;
      p.reject = std::move(r);
      return p;
    }
    p.limit = cfg_.max_upload;
    p.to_file = true;
    p.blocking = true;
  } else if (route == "create-patch" && !target->query.count("async")) {
    p.blocking = true;
  } else if (route == "admin_rescan") {
    p.blocking = true;
  } else if (route == "report" && head.method == "POST") {
    p.device_write = true;
  } else if (route == "metrics" || route == "healthz" || route.starts_with("admin_") || route == "enroll" ||
             route == "token") {
    // They read or write the index: a locked or slow database (a report write waiting on another
    // process's lock, a stalled disk) holds a pool thread, never an I/O thread and the
    // check-updates and downloads of every other connection on it (issue 18).
    p.blocking = true;
  }
  return p;
}

http_response router::handle(const http_request& req) { return *answer(req, false); }

std::optional<http_response> router::handle_inline(const http_request& req) { return answer(req, true); }

std::optional<http_response> router::answer(const http_request& req, bool memory_only) {
  auto target = parse_target(req.target);
  if (!target) return error_response(400, "bad_path", "the request path is malformed or leaves the store");
  const auto& seg = target->segments;
  const std::string& m = req.method;
  const bool get = m == "GET" || m == "HEAD";
  http_response r;
  const std::string route = route_name(seg);

  if (route == "check-update" && seg.size() == 1) {
    if (m == "POST") {
      auto answered = check_update(req, memory_only);
      if (!answered) return std::nullopt;
      r = std::move(*answered);
    } else {
      r = method_not_allowed("POST");
    }
    if (!r.prepared) r = finish_check_update(std::move(r));  // a prepared answer is final already
  } else if (route == "patch" && seg.size() == 2) {
    if (!get) r = method_not_allowed("GET, HEAD");
    else if (!is_patch_id(seg[1])) r = error_response(404, "unknown_patch", "no patch has this id");
    else if (auto answered = get_patch(req, seg[1], memory_only)) r = std::move(*answered);
    else return std::nullopt;
  } else if (route == "model" && seg.size() == 3) {
    if (!get) r = method_not_allowed("GET, HEAD");
    else if (!is_valid_name(seg[1]) || !is_valid_name(seg[2])) r = error_response(400, "bad_name", "invalid model or version name");
    else r = get_model(req, seg[1], seg[2]);
  } else if (route == "manifest" && seg.size() == 1) {
    r = get ? manifest() : method_not_allowed("GET, HEAD");
  } else if (route == "fingerprint" && (seg.size() == 2 || seg.size() == 3)) {
    r = get ? fingerprint(seg) : method_not_allowed("GET, HEAD");
  } else if (route == "create-patch" && seg.size() == 1) {
    if (m != "POST") r = method_not_allowed("POST");
    else if (auto denied = check_admin(req)) r = std::move(*denied);
    else r = create_patch(req);
  } else if (route == "report" && seg.size() == 1) {
    r = m == "POST" ? report(req) : method_not_allowed("POST");
  } else if ((route == "enroll" || route == "token") && seg.size() == 1) {
    if (m != "POST") r = method_not_allowed("POST");
    else r = route == "enroll" ? enroll(req) : issue_token(req);
  } else if (route == "keyring" && seg.size() == 1) {
    r = get ? keyring_response(cfg_.keyring.get(), target->query, req.header("if-none-match")) : method_not_allowed("GET, HEAD");
  } else if (route == "healthz" && seg.size() == 1) {
    r = get ? healthz() : method_not_allowed("GET, HEAD");
  } else if (route == "metrics" && seg.size() == 1) {
    if (!get) {
      r = method_not_allowed("GET, HEAD");
    } else {
      r.body = metrics_.render();
      r.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    }
  } else if (route == "ui") {
    r = get ? ui(req, seg) : method_not_allowed("GET, HEAD");
  } else if (seg.size() >= 2 && seg[0] == "admin") {
    std::optional<http_response> denied;
    if (!demo_read_allowed(req, seg)) denied = check_admin(req);
    if (denied) {
      r = std::move(*denied);
    } else if (seg[1] == "models" && seg.size() == 4) {
      if (m != "PUT") r = method_not_allowed("PUT");
      else if (!is_valid_name(seg[2]) || !is_valid_name(seg[3])) r = error_response(400, "bad_name", "invalid model or version name");
      else r = upload_model(req, seg[2], seg[3]);
    } else if (seg[1] == "rescan" && seg.size() == 2) {
      r = m == "POST" ? rescan() : method_not_allowed("POST");
    } else if (seg[1] == "devices" && seg.size() <= 3) {
      r = get ? devices(req, seg.size() == 3 ? seg[2] : std::string()) : method_not_allowed("GET, HEAD");
    } else if (seg[1] == "devices" && seg.size() == 4 && identity::parse_admission_action(seg[3])) {
      r = m == "POST" ? admission(seg[2], seg[3]) : method_not_allowed("POST");
    } else if (seg[1] == "enrollments" && seg.size() == 2) {
      r = get ? enrollments(req) : method_not_allowed("GET, HEAD");
    } else if (seg[1] == "devices" && seg.size() == 4 && seg[3] == "reports") {
      r = get ? device_reports(seg[2]) : method_not_allowed("GET, HEAD");
    } else if (seg[1] == "audit" && seg.size() == 2) {
      r = get ? audit_view(req) : method_not_allowed("GET, HEAD");
    } else if (seg[1] == "builds" && seg.size() == 2) {
      r = get ? builds() : method_not_allowed("GET, HEAD");
    } else if (seg[1] == "rollouts" || seg[1] == "groups") {
      r = fleet_route(req, seg);
    } else {
      r = error_response(404, "not_found", "no such admin route");
    }
  } else {
    r = error_response(404, "not_found", "no such route; see docs/api.md");
  }
  r.route = route;
  if (is_admin_route(seg)) audit_admin(req, r);
  if (m == "HEAD" && !r.file && !r.head_length) {
    r.head_length = r.body.size();
    r.body.clear();
  }
  if (draining()) r.close = true;
  return r;
}

}  // namespace mallorn::server
