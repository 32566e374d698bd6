#include "mallorn/server/identity/device_registry.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "mallorn/core/hash.hpp"
#include "mallorn/server/request_path.hpp"

namespace mallorn::server::identity {
namespace {

using storage::sql_session;

struct transition {
  device_state from;
  admission_action action;
  device_state to;
};

// The admission state machine; anything not listed (and not a repeat) is refused.
constexpr transition transitions[] = {
    {device_state::pending, admission_action::admit, device_state::admitted},
    {device_state::rejected, admission_action::admit, device_state::admitted},
    {device_state::pending, admission_action::reject, device_state::rejected},
    {device_state::pending, admission_action::revoke, device_state::revoked},
    {device_state::admitted, admission_action::revoke, device_state::revoked},
    {device_state::rejected, admission_action::revoke, device_state::revoked},
};

std::optional<core::ed25519_public_key> key_from_hex(const std::string& hex) {
  core::ed25519_public_key k{};
  if (!core::from_hex(hex, k)) return std::nullopt;
  return k;
}

device_identity identity_of(const storage::sql_row& r) {
  device_identity d;
  d.device_id = r.text(0);
  d.public_key = key_from_hex(r.text(1)).value_or(core::ed25519_public_key{});
  d.state = parse_device_state(r.text(2)).value_or(device_state::revoked);  // unknown text: trust nothing
  d.tags_json = r.text(3);
  d.client = r.text(4);
  d.created_at = r.integer(5);
  d.updated_at = r.integer(6);
  return d;
}

constexpr const char* identity_columns = "device_id, public_key, state, tags, client, created_at, updated_at";

core::result<std::optional<device_identity>> find_in(sql_session& s, const std::string& id) {
  auto rows = s.query(std::string("SELECT ") + identity_columns + " FROM device_identities WHERE device_id = ?", {id});
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<device_identity>{};
  return std::optional<device_identity>{identity_of(rows->front())};
}

core::result<std::int64_t> count_pending(sql_session& s, const std::string& client_key) {
  auto rows = s.query("SELECT COUNT(*) FROM device_identities WHERE state = 'pending' AND (? = '' OR client_key = ?)",
                      {client_key, client_key});
  if (!rows) return rows.err();
  return rows->empty() ? 0 : rows->front().integer(0);
}

}  // namespace

const char* device_state_name(device_state s) {
  switch (s) {
    case device_state::pending: return "pending";
    case device_state::admitted: return "admitted";
    case device_state::rejected: return "rejected";
    case device_state::revoked: return "revoked";
  }
  return "revoked";
}

std::optional<device_state> parse_device_state(std::string_view name) {
  for (auto s : {device_state::pending, device_state::admitted, device_state::rejected, device_state::revoked})
    if (name == device_state_name(s)) return s;
  return std::nullopt;
}

std::optional<admission_action> parse_admission_action(std::string_view name) {
  if (name == "admit") return admission_action::admit;
  if (name == "reject") return admission_action::reject;
  if (name == "revoke") return admission_action::revoke;
  return std::nullopt;
}

std::optional<device_state> next_state(device_state from, admission_action action) {
  for (const auto& t : transitions)
    if (t.from == from && t.action == action) return t.to;
  const bool repeat = (from == device_state::admitted && action == admission_action::admit) ||
                      (from == device_state::rejected && action == admission_action::reject) ||
                      (from == device_state::revoked && action == admission_action::revoke);
  if (repeat) return from;
  return std::nullopt;
}

core::result<std::vector<preauth_entry>> load_preauth_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return core::make_error(core::errc::io_error, "cannot read " + file.string());
  std::vector<preauth_entry> out;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string id, key, extra;
    if (!(words >> id)) continue;
    words >> key >> extra;
    const std::string where = file.string() + ":" + std::to_string(n);
    if (!is_valid_device_id(id) || !extra.empty())
      return core::make_error(core::errc::invalid_argument, where + ": expected 'DEVICE_ID [BASE64_ED25519_KEY]'");
    preauth_entry e{id, std::nullopt};
    if (!key.empty()) {
      auto raw = decode_base64(key);
      if (!raw || raw->size() != 32)
        return core::make_error(core::errc::invalid_argument, where + ": the key must be 32 bytes in standard base64");
      core::ed25519_public_key k{};
      std::copy(raw->begin(), raw->end(), k.begin());
      e.public_key = k;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<storage::migration> device_registry::migrations() {
  // Portable DDL: the same text on both back-ends.
  static const std::string ddl = R"sql(
CREATE TABLE IF NOT EXISTS device_identities(
  device_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, state TEXT NOT NULL, tags TEXT NOT NULL,
  client TEXT NOT NULL, client_key TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS device_identities_by_state ON device_identities(state, client_key);
CREATE TABLE IF NOT EXISTS device_tokens(
  token_sha256 TEXT PRIMARY KEY, device_id TEXT NOT NULL, issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS device_tokens_by_device ON device_tokens(device_id, expires_at);
CREATE TABLE IF NOT EXISTS device_nonces(
  device_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY(device_id, nonce));
CREATE INDEX IF NOT EXISTS device_nonces_by_expiry ON device_nonces(expires_at);
)sql";
  return {{300, "device identities, tokens and nonces", ddl, ddl}};
}

const preauth_entry* device_registry::preauthorised(const std::string& device_id) const {
  for (const auto& e : preauth_)
    if (e.device_id == device_id) return &e;
  return nullptr;
}

core::result<enroll_result> device_registry::enroll(const enroll_request& r, const std::string& client,
                                                    const std::string& client_key, std::int64_t now) {
  enroll_result out;
  const std::string key_hex = core::to_hex(r.public_key);
  auto done = db_.transaction([&](sql_session& s) -> core::result<void> {
    auto existing = find_in(s, r.device_id);
    if (!existing) return existing.err();
    const preauth_entry* pre = preauthorised(r.device_id);
    if (pre && pre->public_key && *pre->public_key != r.public_key) {
      out.outcome = enroll_outcome::preauth_key_mismatch;
      return {};
    }
    if (*existing) {
      const auto& d = **existing;
      out.state = d.state;
      // A rejected squatter's row does not hold the id forever: another key starts over.
      if (d.public_key == r.public_key) {
        out.outcome = enroll_outcome::unchanged;
        return {};
      }
      if (d.state != device_state::rejected) {
        out.outcome = enroll_outcome::key_mismatch;
        return {};
      }
    }
    if (!pre) {
      auto total = count_pending(s, "");
      if (!total) return total.err();
      if (static_cast<std::size_t>(*total) >= limits_.max_pending) {
        out.outcome = enroll_outcome::too_many_pending;
        return {};
      }
      auto mine = count_pending(s, client_key.empty() ? client : client_key);
      if (!mine) return mine.err();
      if (static_cast<std::size_t>(*mine) >= limits_.max_pending_per_address) {
        out.outcome = enroll_outcome::too_many_from_address;
        return {};
      }
    }
    out.outcome = enroll_outcome::created;
    out.state = pre ? device_state::admitted : device_state::pending;
    if (*existing) MALLORN_TRY(s.exec("DELETE FROM device_identities WHERE device_id = ?", {r.device_id}));
    return s.exec(
        "INSERT INTO device_identities(device_id, public_key, state, tags, client, client_key, created_at, updated_at) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
        {r.device_id, key_hex, std::string(device_state_name(out.state)), r.tags_json, client,
         client_key.empty() ? client : client_key, now, now});
  });
  if (!done) return done.err();
  return out;
}

core::result<std::optional<device_identity>> device_registry::find(const std::string& device_id) {
  std::optional<device_identity> out;
  auto done = db_.transaction([&](sql_session& s) -> core::result<void> {
    auto d = find_in(s, device_id);
    if (!d) return d.err();
    out = std::move(*d);
    return {};
  });
  if (!done) return done.err();
  return out;
}

core::result<std::vector<device_identity>> device_registry::list(std::optional<device_state> state, std::size_t limit) {
  const std::string filter = state ? device_state_name(*state) : "";
  auto rows = db_.query(std::string("SELECT ") + identity_columns +
                            " FROM device_identities WHERE (? = '' OR state = ?) ORDER BY created_at, device_id LIMIT ?",
                        {filter, filter, static_cast<std::int64_t>(std::clamp<std::size_t>(limit, 1, 1000))});
  if (!rows) return rows.err();
  std::vector<device_identity> out;
  for (const auto& r : *rows) out.push_back(identity_of(r));
  return out;
}

core::result<change_result> device_registry::change(const std::string& device_id, admission_action action, std::int64_t now) {
  change_result out;
  auto done = db_.transaction([&](sql_session& s) -> core::result<void> {
    auto d = find_in(s, device_id);
    if (!d) return d.err();
    if (!*d) {
      out.outcome = change_outcome::unknown_device;
      return {};
    }
    out.state = (*d)->state;
    auto to = next_state((*d)->state, action);
    if (!to) {
      out.outcome = change_outcome::not_allowed;
      return {};
    }
    out.state = *to;
    if (*to == (*d)->state) return {};
    MALLORN_TRY(s.exec("UPDATE device_identities SET state = ?, updated_at = ? WHERE device_id = ?",
                       {std::string(device_state_name(*to)), now, device_id}));
    if (*to != device_state::admitted) MALLORN_TRY(s.exec("DELETE FROM device_tokens WHERE device_id = ?", {device_id}));
    return {};
  });
  if (!done) return done.err();
  return out;
}

core::result<token_outcome> device_registry::issue_token(const std::string& device_id, const std::string& nonce,
                                                         std::int64_t nonce_expires, const std::string& token_sha256_hex,
                                                         std::int64_t now, std::int64_t expires_at) {
  token_outcome out = token_outcome::issued;
  auto done = db_.transaction([&](sql_session& s) -> core::result<void> {
    auto d = find_in(s, device_id);
    if (!d) return d.err();
    if (!*d || (*d)->state != device_state::admitted) {
      out = token_outcome::not_admitted;
      return {};
    }
    // Expired nonces can go: their timestamps are outside the window, so they are refused anyway.
    MALLORN_TRY(s.exec("DELETE FROM device_nonces WHERE expires_at < ?", {now}));
    auto fresh = s.query("INSERT INTO device_nonces(device_id, nonce, expires_at) VALUES(?, ?, ?) "
                         "ON CONFLICT(device_id, nonce) DO NOTHING RETURNING nonce",
                         {device_id, nonce, nonce_expires});
    if (!fresh) return fresh.err();
    if (fresh->empty()) {
      out = token_outcome::replayed;
      return {};
    }
    MALLORN_TRY(s.exec("DELETE FROM device_tokens WHERE device_id = ? AND expires_at <= ?", {device_id, now}));
    MALLORN_TRY(s.exec("DELETE FROM device_tokens WHERE device_id = ? AND token_sha256 NOT IN (SELECT token_sha256 FROM "
                       "device_tokens WHERE device_id = ? ORDER BY expires_at DESC LIMIT ?)",
                       {device_id, device_id, max_tokens - 1}));
    return s.exec("INSERT INTO device_tokens(token_sha256, device_id, issued_at, expires_at) VALUES(?, ?, ?, ?)",
                  {token_sha256_hex, device_id, now, expires_at});
  });
  if (!done) return done.err();
  return out;
}

core::result<std::optional<std::string>> device_registry::device_for_token(const std::string& token_sha256_hex,
                                                                           std::int64_t now) {
  auto holder = find_token(token_sha256_hex, now);
  if (!holder) return holder.err();
  if (!*holder) return std::optional<std::string>{};
  return std::optional<std::string>{(*holder)->device_id};
}

core::result<std::optional<token_holder>> device_registry::find_token(const std::string& token_sha256_hex,
                                                                      std::int64_t now) {
  auto rows = db_.query(
      "SELECT t.device_id, t.expires_at FROM device_tokens t JOIN device_identities d ON d.device_id = t.device_id "
      "WHERE t.token_sha256 = ? AND t.expires_at > ? AND d.state = 'admitted'",
      {token_sha256_hex, now});
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<token_holder>{};
  return std::optional<token_holder>{token_holder{rows->front().text(0), rows->front().integer(1)}};
}

}  // namespace mallorn::server::identity
