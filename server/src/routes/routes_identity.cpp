// Device identity: POST /enroll, POST /token, the admission routes under /admin, and the binding
// of a device request's device_id to the device that sent it (docs/api.md, docs/security.md).
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdlib>
#include <span>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/log_safe.hpp"
#include "mallorn/server/request_path.hpp"
#include "mallorn/server/router.hpp"
#include "route_json.hpp"

namespace mallorn::server {
namespace {

using identity::device_principal;

std::string token_hash(const std::string& token) {
  auto d = core::sha256_of(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(token.data()), token.size()));
  return core::to_hex(d);
}

http_response unauthorized(const std::string& code, const std::string& message, const char* bearer_error = nullptr) {
  auto r = error_response(401, code, message);
  std::string challenge = "Bearer realm=\"mallornd-devices\"";
  if (bearer_error) challenge += std::string(", error=\"") + bearer_error + "\"";
  r.set("WWW-Authenticate", challenge);
  return r;
}

http_response problem_response(const identity::request_problem& why) {
  return error_response(why.code == "body_too_large" ? 413 : 400, why.code, why.message);
}

nlohmann::json identity_json(const identity::device_identity& d) {
  nlohmann::json j = {{"device_id", d.device_id},
                      {"state", identity::device_state_name(d.state)},
                      {"public_key", identity::encode_base64({reinterpret_cast<const char*>(d.public_key.data()), d.public_key.size()})},
                      {"client", d.client},
                      {"created_at", d.created_at},
                      {"updated_at", d.updated_at}};
  auto tags = nlohmann::json::parse(d.tags_json.empty() ? "{}" : d.tags_json, nullptr, false);
  j["tags"] = tags.is_discarded() ? nlohmann::json::object() : tags;
  return j;
}

http_response identity_off() {
  return error_response(404, "device_auth_off", "device enrollment is off: start mallornd with --device-auth optional|required");
}

}  // namespace

bool router::is_device_route(const std::string& route) {
  return route == "check-update" || route == "report" || route == "patch" || route == "model";
}

std::variant<std::monostate, identity::device_principal, http_response> router::authenticate_device(
    const http_request& req, credential_lookup how) {
  device_principal who;
  const auto now = cfg_.clock();
  const std::string* auth = req.header("authorization");
  const std::string prefix = "Bearer ";
  if (auth) {
    if (auth->size() <= prefix.size() || auth->compare(0, prefix.size(), prefix) != 0 || !cfg_.device_registry)
      return unauthorized("invalid_token", "device requests take 'Authorization: Bearer <device token>' (POST /token)",
                          "invalid_request");
    const std::string hash = token_hash(auth->substr(prefix.size()));
    const std::int64_t wall = cfg_.wall_clock();
    auto known = device_credentials_.device_for_token(hash, wall, now);
    if (!known) {
      if (how == credential_lookup::memory_only) return std::monostate{};
      const auto epoch = device_credentials_.epoch();
      auto holder = cfg_.device_registry->find_token(hash, wall);
      if (!holder) return storage_unavailable(holder.err());
      if (!*holder)
        return unauthorized("invalid_token", "the device token is unknown, expired or revoked; get a new one at POST /token",
                            "invalid_token");
      device_credentials_.remember_token(hash, **holder, now, epoch);
      known = (*holder)->device_id;
    }
    who.from = device_principal::source::token;
    who.ids = {std::move(*known)};
  } else if (!req.peer_device_ids.empty()) {
    // A certificate the CA signed is enough, unless the same id was enrolled and then revoked
    // or rejected: the registry's word wins, so a leaked certificate can be cut off too.
    if (cfg_.device_registry) {
      const std::string& id = req.peer_device_ids.front();
      auto state = device_credentials_.state_of(id, now);
      if (!state) {
        if (how == credential_lookup::memory_only) return std::monostate{};
        const auto epoch = device_credentials_.epoch();
        auto d = cfg_.device_registry->find(id);
        if (!d) return storage_unavailable(d.err());
        state.emplace(*d ? std::optional((*d)->state) : std::nullopt);  // held: "not enrolled" is an answer too
        device_credentials_.remember_state(id, *state, now, epoch);
      }
      if (*state && **state != identity::device_state::admitted && **state != identity::device_state::pending)
        return error_response(403, "device_" + std::string(identity::device_state_name(**state)),
                              "device '" + id + "' is " + identity::device_state_name(**state));
    }
    who.from = device_principal::source::certificate;
    who.ids = req.peer_device_ids;
  } else if (cfg_.device_auth == identity::device_auth_mode::required) {
    return unauthorized("device_auth_required",
                        "this server needs device credentials: a client certificate, or a token from POST /token");
  }
  return who;
}

const identity::device_principal& router::principal_of(const http_request& req) {
  if (!req.principal) {
    // handle() without plan() (tests, fuzzers): decide now; a refusal counts as anonymous here
    // and bind_device_id() refuses the request.
    auto who = authenticate_device(req, credential_lookup::index);
    auto* p = std::get_if<device_principal>(&who);
    req.principal = std::make_shared<const device_principal>(p ? *p : device_principal{});
  }
  return *req.principal;
}

std::optional<http_response> router::bind_device_id(const http_request& req, std::string& device_id) {
  if (cfg_.device_auth == identity::device_auth_mode::off) return std::nullopt;
  const auto& who = principal_of(req);
  if (who.ids.empty()) {
    if (cfg_.device_auth == identity::device_auth_mode::required)
      return unauthorized("device_auth_required",
                          "this server needs device credentials: a client certificate, or a token from POST /token");
    return std::nullopt;
  }
  if (device_id.empty()) {
    device_id = who.ids.front();
    return std::nullopt;
  }
  if (!who.names(device_id)) {
    spdlog::warn("{}: device '{}' asked as device '{}': refused", req.client, core::log_safe(who.ids.front()),
                 core::log_safe(device_id));
    return error_response(403, "device_id_mismatch",
                          "this request is authenticated as device '" + who.ids.front() + "', not '" + device_id + "'");
  }
  return std::nullopt;
}

http_response router::enroll(const http_request& req) {
  if (!cfg_.device_registry) return identity_off();
  identity::request_problem why;
  auto parsed = identity::parse_enroll_request(req.body, why);
  if (!parsed) {
    spdlog::info("{}: enrollment refused: {}", req.client, why.code);
    return problem_response(why);
  }
  auto r = cfg_.device_registry->enroll(*parsed, req.client, req.client_key, cfg_.wall_clock());
  if (!r) return storage_unavailable(r.err());
  // A rejected id enrolled again by another key starts over as pending: no cached state holds.
  if (r->outcome == identity::enroll_outcome::created) device_credentials_.forget_device(parsed->device_id);
  using identity::enroll_outcome;
  switch (r->outcome) {
    case enroll_outcome::key_mismatch:
      return error_response(409, "key_mismatch", "device '" + parsed->device_id + "' is enrolled with another key");
    case enroll_outcome::preauth_key_mismatch:
      return error_response(403, "preauth_key_mismatch",
                            "the pre-authorised list names another key for device '" + parsed->device_id + "'");
    case enroll_outcome::too_many_pending: {
      auto busy = error_response(503, "too_many_pending", "too many enrollments wait for an operator; retry later");
      busy.set("Retry-After", "300");
      return busy;
    }
    case enroll_outcome::too_many_from_address: {
      auto busy = error_response(429, "too_many_pending_from_address",
                                 "too many enrollments from this address wait for an operator; retry later");
      busy.set("Retry-After", "300");
      return busy;
    }
    case enroll_outcome::created:
      spdlog::info("{}: device '{}' enrolled ({})", req.client, parsed->device_id, identity::device_state_name(r->state));
      [[fallthrough]];
    case enroll_outcome::unchanged: break;
  }
  const std::string state = identity::device_state_name(r->state);
  if (r->state == identity::device_state::rejected || r->state == identity::device_state::revoked)
    return error_response(403, "device_" + state, "device '" + parsed->device_id + "' is " + state);
  return json_response(r->state == identity::device_state::admitted ? 200 : 202,
                       {{"device_id", parsed->device_id}, {"state", state}});
}

http_response router::issue_token(const http_request& req) {
  if (!cfg_.device_registry) return identity_off();
  identity::request_problem why;
  auto parsed = identity::parse_token_request(req.body, why);
  if (!parsed) return problem_response(why);
  const std::int64_t now = cfg_.wall_clock();
  const std::int64_t window = cfg_.device_token_window.count();
  if (parsed->timestamp < now - window || parsed->timestamp > now + window)
    return error_response(401, "stale_timestamp",
                          "'timestamp' is more than " + std::to_string(window) + " s from the server's clock (" +
                              std::to_string(now) + ")");
  auto d = cfg_.device_registry->find(parsed->device_id);
  if (!d) return storage_unavailable(d.err());
  const std::string message = identity::token_message(parsed->device_id, parsed->timestamp, parsed->nonce);
  // Unknown device and bad signature answer alike: the answer does not tell which ids exist.
  if (!*d || !core::ed25519_verify((*d)->public_key, {reinterpret_cast<const std::uint8_t*>(message.data()), message.size()},
                                   parsed->signature))
    return error_response(401, "bad_signature", "the signature does not verify with this device's enrolled key");
  if ((*d)->state != identity::device_state::admitted)
    return error_response(403, "not_admitted",
                          "device '" + parsed->device_id + "' is " + identity::device_state_name((*d)->state) +
                              (((*d)->state == identity::device_state::pending) ? "; an operator has to admit it" : ""));
  std::array<std::uint8_t, 32> secret{};
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1)
    return error_response(500, "no_randomness", "the server cannot make a token right now");
  const std::string token = "mdt_" + core::to_hex(secret);
  const std::int64_t expires = now + cfg_.device_token_ttl.count();
  auto issued = cfg_.device_registry->issue_token(parsed->device_id, parsed->nonce, parsed->timestamp + window + 1,
                                                  token_hash(token), now, expires);
  if (!issued) return storage_unavailable(issued.err());
  if (*issued == identity::token_outcome::replayed)
    return error_response(401, "replayed", "this nonce was already used; sign a new request");
  if (*issued == identity::token_outcome::not_admitted)
    return error_response(403, "not_admitted", "device '" + parsed->device_id + "' is no longer admitted");
  auto r = json_response(200, {{"device_id", parsed->device_id},
                               {"token", token},
                               {"token_type", "Bearer"},
                               {"expires_at", expires},
                               {"expires_in", cfg_.device_token_ttl.count()}});
  r.set("Cache-Control", "no-store");
  return r;
}

http_response router::enrollments(const http_request& req) {
  if (!cfg_.device_registry) return identity_off();
  std::optional<identity::device_state> state;
  std::size_t limit = 100;
  if (auto target = parse_target(req.target)) {
    if (auto s = target->query.find("state"); s != target->query.end() && !s->second.empty()) {
      state = identity::parse_device_state(s->second);
      if (!state) return error_response(400, "bad_state", "state is one of pending, admitted, rejected, revoked");
    }
    if (auto l = target->query.find("limit"); l != target->query.end()) {
      limit = std::strtoull(l->second.c_str(), nullptr, 10);
      if (limit == 0 || limit > 1000) return error_response(400, "bad_limit", "limit is 1..1000");
    }
  }
  auto rows = cfg_.device_registry->list(state, limit);
  if (!rows) return storage_unavailable(rows.err());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : *rows) out.push_back(identity_json(d));
  return json_response(200, {{"devices", out}, {"device_auth", identity::device_auth_mode_name(cfg_.device_auth)}});
}

http_response router::admission(const std::string& device_id, const std::string& action_name) {
  if (!cfg_.device_registry) return identity_off();
  if (!is_valid_device_id(device_id))
    return error_response(400, "bad_device_id", "a device id matches [A-Za-z0-9._:@+-]{1,128}");
  const auto action = *identity::parse_admission_action(action_name);
  // Forgotten before and after the change: a lookup racing with it cannot keep the old state
  // (credential_cache::epoch), and none made before it is trusted afterwards. On other replicas
  // the change takes effect within cfg_.device_credentials.ttl.
  device_credentials_.forget_device(device_id);
  auto r = cfg_.device_registry->change(device_id, action, cfg_.wall_clock());
  device_credentials_.forget_device(device_id);
  if (!r) return storage_unavailable(r.err());
  if (r->outcome == identity::change_outcome::unknown_device)
    return error_response(404, "unknown_device", "no device '" + device_id + "' has enrolled");
  if (r->outcome == identity::change_outcome::not_allowed)
    return error_response(409, "not_allowed", "'" + action_name + "' does not apply to a " +
                                                  identity::device_state_name(r->state) + " device");
  spdlog::info("device '{}': {} -> {}", device_id, action_name, identity::device_state_name(r->state));
  return json_response(200, {{"device_id", device_id}, {"state", identity::device_state_name(r->state)}});
}

}  // namespace mallorn::server
