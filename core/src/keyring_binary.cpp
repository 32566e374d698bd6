// The keyring's compact binary form (layout in keyring.hpp): what signatures cover, and what
// microcontrollers store.
#include <algorithm>
#include <cstring>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/keyring.hpp"

namespace mallorn::core {
namespace {

constexpr std::size_t fixed_size = 40;

error bad(const std::string& what) { return make_error(errc::invalid_argument, "keyring: " + what); }

void put64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A bounds-checked cursor: every read says whether the bytes were there.
struct reader {
  std::span<const std::uint8_t> b;
  std::size_t pos = 0;
  const std::uint8_t* take(std::size_t n) {
    if (n > b.size() - pos) return nullptr;
    const auto* p = b.data() + pos;
    pos += n;
    return p;
  }
};

result<void> check_limits(const keyring& k) {
  if (k.root_keys.empty() || k.root_keys.size() > keyring_max_roots)
    return bad("needs 1.." + std::to_string(keyring_max_roots) + " root keys");
  if (k.root_threshold < 1 || k.root_threshold > k.root_keys.size())
    return bad("root threshold must be in 1..number of root keys");
  if (k.keys.size() > keyring_max_keys) return bad("more than " + std::to_string(keyring_max_keys) + " release keys");
  if (k.revoked.size() > keyring_max_revoked) return bad("more than " + std::to_string(keyring_max_revoked) + " revoked keys");
  if (k.signatures.size() > keyring_max_signatures) return bad("too many signatures");
  if (k.version == 0) return bad("version must be >= 1");
  if (k.expires <= k.issued) return bad("expires must be after issued");
  for (const auto& key : k.keys) {
    if (key.role != key_role::release) return bad("unknown key role");
    if (key.models.empty() || key.models.size() > keyring_max_models)
      return bad("a key lists 1.." + std::to_string(keyring_max_models) + " models");
    for (const auto& m : key.models)
      if (m.empty() || m.size() > keyring_max_model_name) return bad("model names are 1..64 bytes");
    if (key.not_after && key.not_after <= key.not_before) return bad("a key's not_after must be after its not_before");
  }
  // Duplicates would make one key count twice toward a threshold or shadow another entry.
  for (std::size_t i = 0; i < k.root_keys.size(); ++i)
    for (std::size_t j = i + 1; j < k.root_keys.size(); ++j)
      if (k.root_keys[i] == k.root_keys[j]) return bad("a root key is listed twice");
  for (std::size_t i = 0; i < k.keys.size(); ++i)
    for (std::size_t j = i + 1; j < k.keys.size(); ++j)
      if (k.keys[i].public_key == k.keys[j].public_key) return bad("a release key is listed twice");
  return {};
}

}  // namespace

key_id key_id_of(const ed25519_public_key& key) { return sha256_of(key); }

bool keyring_key::covers(const std::string& model) const {
  return std::any_of(models.begin(), models.end(), [&](const std::string& m) { return m == "*" || m == model; });
}

bool keyring::is_revoked(const key_id& id) const { return std::find(revoked.begin(), revoked.end(), id) != revoked.end(); }

const keyring_key* keyring::find_key(const key_id& id) const {
  for (const auto& k : keys)
    if (key_id_of(k.public_key) == id) return &k;
  return nullptr;
}

result<std::vector<std::uint8_t>> keyring_signed_bytes(const keyring& k) {
  MALLORN_TRY(check_limits(k));
  std::vector<std::uint8_t> out{'M', 'L', 'K', 'R', keyring_format, k.root_threshold,
                                static_cast<std::uint8_t>(k.root_keys.size()), static_cast<std::uint8_t>(k.keys.size()),
                                static_cast<std::uint8_t>(k.revoked.size()), 0, 0, 0, 0, 0, 0, 0};
  put64(out, k.version);
  put64(out, k.issued);
  put64(out, k.expires);
  for (const auto& r : k.root_keys) out.insert(out.end(), r.begin(), r.end());
  for (const auto& key : k.keys) {
    out.insert(out.end(), key.public_key.begin(), key.public_key.end());
    put64(out, key.not_before);
    put64(out, key.not_after);
    out.push_back(static_cast<std::uint8_t>(key.role));
    out.push_back(static_cast<std::uint8_t>(key.models.size()));
    for (const auto& m : key.models) {
      out.push_back(static_cast<std::uint8_t>(m.size()));
      out.insert(out.end(), m.begin(), m.end());
    }
  }
  for (const auto& id : k.revoked) out.insert(out.end(), id.begin(), id.end());
  const auto n = static_cast<std::uint32_t>(out.size());
  for (int i = 0; i < 4; ++i) out[12 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return out;
}

result<std::vector<std::uint8_t>> encode_keyring_binary(const keyring& k) {
  auto out = keyring_signed_bytes(k);
  if (!out) return out.err();
  out->push_back(static_cast<std::uint8_t>(k.signatures.size()));
  for (const auto& s : k.signatures) {
    out->insert(out->end(), s.keyid.begin(), s.keyid.end());
    out->insert(out->end(), s.sig.begin(), s.sig.end());
  }
  return out;
}

result<keyring> decode_keyring_binary(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > max_keyring_size) return bad("larger than " + std::to_string(max_keyring_size) + " bytes");
  reader r{bytes};
  const std::uint8_t* h = r.take(fixed_size);
  if (!h) return bad("truncated header");
  if (std::memcmp(h, "MLKR", 4) != 0) return bad("bad magic (not a binary keyring)");
  if (h[4] != keyring_format) return make_error(errc::unsupported_version, "keyring: format " + std::to_string(h[4]) + " is not supported");
  if (h[9] || h[10] || h[11]) return bad("reserved bytes are not zero");
  keyring k;
  k.root_threshold = h[5];
  const std::size_t roots = h[6], keys = h[7], revoked = h[8];
  const std::uint32_t signed_size = static_cast<std::uint32_t>(h[12] | h[13] << 8 | h[14] << 16) | static_cast<std::uint32_t>(h[15]) << 24;
  k.version = get64(h + 16);
  k.issued = get64(h + 24);
  k.expires = get64(h + 32);
  if (roots > keyring_max_roots || keys > keyring_max_keys || revoked > keyring_max_revoked) return bad("a count exceeds its limit");
  for (std::size_t i = 0; i < roots; ++i) {
    const auto* p = r.take(32);
    if (!p) return bad("truncated root keys");
    std::copy(p, p + 32, k.root_keys.emplace_back().begin());
  }
  for (std::size_t i = 0; i < keys; ++i) {
    const auto* p = r.take(50);
    if (!p) return bad("truncated release key");
    keyring_key key;
    std::copy(p, p + 32, key.public_key.begin());
    key.not_before = get64(p + 32);
    key.not_after = get64(p + 40);
    if (p[48] != static_cast<std::uint8_t>(key_role::release)) return bad("unknown key role " + std::to_string(p[48]));
    key.role = key_role::release;
    key.models.clear();
    for (std::size_t m = 0, count = p[49]; m < count; ++m) {
      const auto* len = r.take(1);
      if (!len) return bad("truncated model name");
      const auto* name = r.take(*len);
      if (!name) return bad("truncated model name");
      key.models.emplace_back(reinterpret_cast<const char*>(name), *len);
    }
    k.keys.push_back(std::move(key));
  }
  for (std::size_t i = 0; i < revoked; ++i) {
    const auto* p = r.take(32);
    if (!p) return bad("truncated revoked list");
    std::copy(p, p + 32, k.revoked.emplace_back().begin());
  }
  if (r.pos != signed_size) return bad("signed_size does not match the content");
  const auto* count = r.take(1);
  if (!count) return bad("missing signature block");
  if (*count > keyring_max_signatures) return bad("too many signatures");
  for (std::size_t i = 0, n = *count; i < n; ++i) {
    const auto* p = r.take(96);
    if (!p) return bad("truncated signature");
    auto& s = k.signatures.emplace_back();
    std::copy(p, p + 32, s.keyid.begin());
    std::copy(p + 32, p + 96, s.sig.begin());
  }
  if (r.pos != bytes.size()) return bad("trailing bytes after the signatures");
  MALLORN_TRY(check_limits(k));
  return k;
}

result<keyring> decode_keyring(std::span<const std::uint8_t> bytes) {
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "MLKR", 4) == 0) return decode_keyring_binary(bytes);
  if (bytes.size() > 4 * max_keyring_size) return bad("larger than " + std::to_string(4 * max_keyring_size) + " bytes");
  return decode_keyring_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace mallorn::core
