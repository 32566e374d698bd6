// The keyring's JSON view: {"signed": {...}, "signatures": [{"keyid", "sig"}]}. Strict: every
// field is required, typed, and nothing else is accepted, so the JSON says exactly what the
// signed binary form says.
#include <nlohmann/json.hpp>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/keyring.hpp"

namespace mallorn::core {
namespace {

using nlohmann::json;

error bad(const std::string& what) { return make_error(errc::invalid_argument, "keyring JSON: " + what); }

template <std::size_t N>
bool hex_field(const json& j, std::array<std::uint8_t, N>& out) {
  return j.is_string() && j.get_ref<const std::string&>().size() == 2 * N && from_hex(j.get_ref<const std::string&>(), out);
}

bool only_keys(const json& obj, std::initializer_list<const char*> allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) return false;
  }
  return obj.size() == allowed.size();
}

bool get_u64(const json& j, std::uint64_t& out) {
  if (!j.is_number_unsigned()) return false;
  out = j.get<std::uint64_t>();
  return true;
}

}  // namespace

std::string encode_keyring_json(const keyring& k) {
  json roots = json::array(), keys = json::array(), revoked = json::array(), sigs = json::array();
  for (const auto& r : k.root_keys) roots.push_back(to_hex(r));
  for (const auto& key : k.keys)
    keys.push_back({{"keyid", to_hex(key_id_of(key.public_key))},
                    {"public_key", to_hex(key.public_key)},
                    {"role", "release"},
                    {"models", key.models},
                    {"not_before", key.not_before},
                    {"not_after", key.not_after}});
  for (const auto& id : k.revoked) revoked.push_back(to_hex(id));
  for (const auto& s : k.signatures) sigs.push_back({{"keyid", to_hex(s.keyid)}, {"sig", to_hex(s.sig)}});
  json doc = {{"signed",
               {{"_type", "mallorn-keyring"},
                {"format", keyring_format},
                {"version", k.version},
                {"issued", k.issued},
                {"expires", k.expires},
                {"root_keys", roots},
                {"root_threshold", k.root_threshold},
                {"keys", keys},
                {"revoked", revoked}}},
              {"signatures", sigs}};
  return doc.dump(2) + "\n";
}

result<keyring> decode_keyring_json(std::string_view text) {
  if (text.size() > 4 * max_keyring_size) return bad("larger than " + std::to_string(4 * max_keyring_size) + " bytes");
  // Depth is bounded by the size limit; nlohmann's recursion on 64 KiB of '[' is fine.
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  if (!only_keys(doc, {"signed", "signatures"})) return bad("expects exactly the fields signed and signatures");
  const json& s = doc["signed"];
  if (!s.is_object() ||
      !only_keys(s, {"_type", "format", "version", "issued", "expires", "root_keys", "root_threshold", "keys", "revoked"}))
    return bad("'signed' must hold exactly _type, format, version, issued, expires, root_keys, root_threshold, keys, revoked");
  if (s["_type"] != "mallorn-keyring") return bad("_type is not mallorn-keyring");
  std::uint64_t format = 0, threshold = 0;
  if (!get_u64(s["format"], format) || format != keyring_format)
    return make_error(errc::unsupported_version, "keyring JSON: format must be " + std::to_string(keyring_format));
  keyring k;
  if (!get_u64(s["version"], k.version) || !get_u64(s["issued"], k.issued) || !get_u64(s["expires"], k.expires))
    return bad("version, issued and expires are whole numbers");
  if (!get_u64(s["root_threshold"], threshold) || threshold < 1 || threshold > keyring_max_roots)
    return bad("root_threshold must be in 1.." + std::to_string(keyring_max_roots));
  k.root_threshold = static_cast<std::uint8_t>(threshold);
  const json& roots = s["root_keys"];
  if (!roots.is_array() || roots.size() > keyring_max_roots) return bad("root_keys is a list of up to 4 hex keys");
  for (const auto& r : roots)
    if (!hex_field(r, k.root_keys.emplace_back())) return bad("a root key is not 64 hex digits");
  const json& keys = s["keys"];
  if (!keys.is_array() || keys.size() > keyring_max_keys) return bad("keys is a list of up to 16 entries");
  for (const auto& e : keys) {
    if (!e.is_object() || !only_keys(e, {"keyid", "public_key", "role", "models", "not_before", "not_after"}))
      return bad("a key holds exactly keyid, public_key, role, models, not_before, not_after");
    keyring_key key;
    key_id id{};
    if (!hex_field(e["public_key"], key.public_key)) return bad("a public_key is not 64 hex digits");
    if (!hex_field(e["keyid"], id) || id != key_id_of(key.public_key)) return bad("a keyid is not the SHA-256 of its public_key");
    if (e["role"] != "release") return bad("role must be \"release\"");
    if (!get_u64(e["not_before"], key.not_before) || !get_u64(e["not_after"], key.not_after))
      return bad("not_before and not_after are whole numbers");
    const json& models = e["models"];
    if (!models.is_array() || models.empty() || models.size() > keyring_max_models) return bad("models is a list of 1..8 names");
    key.models.clear();
    for (const auto& m : models) {
      if (!m.is_string()) return bad("a model name is not a string");
      key.models.push_back(m.get<std::string>());
    }
    k.keys.push_back(std::move(key));
  }
  const json& revoked = s["revoked"];
  if (!revoked.is_array() || revoked.size() > keyring_max_revoked) return bad("revoked is a list of up to 64 key ids");
  for (const auto& r : revoked)
    if (!hex_field(r, k.revoked.emplace_back())) return bad("a revoked key id is not 64 hex digits");
  const json& sigs = doc["signatures"];
  if (!sigs.is_array() || sigs.size() > keyring_max_signatures) return bad("signatures is a list of up to 8 entries");
  for (const auto& e : sigs) {
    auto& sig = k.signatures.emplace_back();
    if (!e.is_object() || !only_keys(e, {"keyid", "sig"}) || !hex_field(e["keyid"], sig.keyid) || !hex_field(e["sig"], sig.sig))
      return bad("a signature is {\"keyid\": 64 hex digits, \"sig\": 128 hex digits}");
  }
  // The binary encoder checks the remaining rules (limits, duplicates, dates).
  if (auto b = keyring_signed_bytes(k); !b) return b.err();
  return k;
}

}  // namespace mallorn::core
