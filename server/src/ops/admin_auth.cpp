#include "mallorn/server/admin_auth.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "mallorn/core/hash.hpp"

namespace mallorn::server {
namespace {

std::array<std::uint8_t, 32> digest_of(const std::string& token) {
  return core::sha256_of({reinterpret_cast<const std::uint8_t*>(token.data()), token.size()});
}

bool valid_actor_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

core::error bad(const std::filesystem::path& file, const std::string& what) {
  return core::make_error(core::errc::invalid_argument, "--admin-tokens " + file.string() + ": " + what);
}

}  // namespace

const char* admin_scope_name(admin_scope s) {
  switch (s) {
    case admin_scope::read: return "read";
    case admin_scope::deploy: return "deploy";
    case admin_scope::admin: return "admin";
  }
  return "admin";
}

std::optional<admin_scope> parse_admin_scope(const std::string& name) {
  for (auto s : {admin_scope::read, admin_scope::deploy, admin_scope::admin})
    if (name == admin_scope_name(s)) return s;
  return std::nullopt;
}

admin_credential credential_for_token(const std::string& name, admin_scope scope, const std::string& token) {
  return {name, scope, digest_of(token)};
}

core::result<std::vector<admin_credential>> load_admin_tokens(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return core::make_error(core::errc::io_error, "cannot read admin tokens file " + file.string());
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return bad(file, "not valid JSON");
  }
  if (!doc.is_object() || !doc.contains("tokens") || !doc["tokens"].is_array())
    return bad(file, "expected {\"tokens\": [{\"name\", \"scope\", \"sha256\"}, ...]}");
  std::vector<admin_credential> out;
  std::set<std::string> names;
  for (const auto& t : doc["tokens"]) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("scope") || !t["scope"].is_string())
      return bad(file, "every token needs a string \"name\" and \"scope\"");
    admin_credential c;
    c.name = t["name"].get<std::string>();
    if (!valid_actor_name(c.name)) return bad(file, "token names are 1-64 of [A-Za-z0-9._-]");
    if (!names.insert(c.name).second) return bad(file, "token name '" + c.name + "' appears twice");
    auto scope = parse_admin_scope(t["scope"].get<std::string>());
    if (!scope) return bad(file, "token '" + c.name + "': scope must be read, deploy or admin");
    c.scope = *scope;
    if (t.contains("sha256") && t["sha256"].is_string()) {
      if (!core::from_hex(t["sha256"].get<std::string>(), c.token_sha256) || t["sha256"].get<std::string>().size() != 64)
        return bad(file, "token '" + c.name + "': sha256 must be 64 hex characters");
    } else if (t.contains("token") && t["token"].is_string()) {
      const auto plain = t["token"].get<std::string>();
      if (plain.size() < 16) return bad(file, "token '" + c.name + "' is shorter than 16 characters");
      spdlog::warn("admin tokens file {}: token '{}' is stored in plain text; store its \"sha256\" instead",
                   file.string(), c.name);
      c.token_sha256 = digest_of(plain);
    } else {
      return bad(file, "token '" + c.name + "' needs \"sha256\" (or \"token\")");
    }
    out.push_back(std::move(c));
  }
  return out;
}

const admin_credential* find_credential(const std::vector<admin_credential>& all, const std::string& presented) {
  const auto digest = digest_of(presented);
  const admin_credential* found = nullptr;
  // Every credential is compared (no early exit), so timing does not tell which one matched.
  for (const auto& c : all)
    if (CRYPTO_memcmp(c.token_sha256.data(), digest.data(), digest.size()) == 0) found = &c;
  return found;
}

admin_scope required_scope(const std::string& method, const std::vector<std::string>& seg) {
  const bool read = method == "GET" || method == "HEAD";
  // Trust changes need the admin scope whatever the method: admitting or revoking devices,
  // tokens, keyrings. Everything else that changes state needs deploy; views need read.
  const bool trust = seg.size() >= 2 && seg[0] == "admin" &&
                     (seg[1] == "tokens" || seg[1] == "keyring" || seg[1] == "enrollments" ||
                      (seg[1] == "devices" && seg.size() >= 4 &&
                       (seg[3] == "admit" || seg[3] == "revoke" || seg[3] == "reject")));
  if (trust && !read) return admin_scope::admin;
  return read ? admin_scope::read : admin_scope::deploy;
}

}  // namespace mallorn::server
