// mallorn keyring: the release-key keyring signed by the offline root key (docs/security.md).
// Every edit of a signed keyring starts the next version (signatures dropped, issued = now, the
// same lifetime); edits of an unsigned draft keep its version. Files are written atomically.
#include <ctime>
#include <iostream>
#include <sstream>

#include "cli_args.hpp"
#include "cli_keys.hpp"
#include "cli_output.hpp"
#include "commands.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/keyring.hpp"

namespace mallorn::cli {
namespace {

constexpr std::uint64_t day = 86400;

std::uint64_t now_seconds() { return static_cast<std::uint64_t>(std::time(nullptr)); }

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) out.push_back(part);
  return out;
}

core::result<std::vector<core::ed25519_public_key>> load_public_keys(const std::string& list) {
  std::vector<core::ed25519_public_key> keys;
  for (const auto& path : split_commas(list)) {
    auto k = load_public_key(path);
    if (!k) return k.err().with(path);
    keys.push_back(*k);
  }
  return keys;
}

core::result<core::keyring> load_keyring(const std::string& path) {
  auto bytes = core::read_file(path);
  if (!bytes) return bytes.err();
  auto k = core::decode_keyring(*bytes);
  if (!k) return k.err().with(path);
  return k;
}

core::result<void> save_json(const std::string& path, const core::keyring& k) {
  MALLORN_TRY(core::keyring_signed_bytes(k));  // limits and rules before anything is written
  const std::string text = core::encode_keyring_json(k);
  return core::write_file_atomic(path, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

// --expires DAYS / --expires-at UNIX; nullopt when neither was given. Sets `error` on bad input.
std::optional<std::uint64_t> expiry_option(const parsed_args& a, std::uint64_t issued, std::string& error) {
  if (auto at = a.value("--expires-at")) {
    auto v = parse_uint(*at);
    if (!v) error = "--expires-at: expected unix seconds";
    return v;
  }
  if (auto days = a.value("--expires")) {
    auto v = parse_uint(*days);
    if (!v || *v == 0 || *v > 36500) {
      error = "--expires: expected days in 1..36500";
      return std::nullopt;
    }
    return issued + *v * day;
  }
  return std::nullopt;
}

// A signed keyring is published: editing it starts the next version.
void begin_edit(core::keyring& k) {
  if (k.signatures.empty()) return;
  const std::uint64_t lifetime = k.expires > k.issued ? k.expires - k.issued : 365 * day;
  k.signatures.clear();
  k.version += 1;
  k.issued = now_seconds();
  k.expires = k.issued + lifetime;
}

nlohmann::json describe(const core::keyring& k) {
  nlohmann::json keys = nlohmann::json::array(), sigs = nlohmann::json::array(), revoked = nlohmann::json::array();
  for (const auto& key : k.keys)
    keys.push_back({{"keyid", core::to_hex(core::key_id_of(key.public_key))}, {"models", key.models},
                    {"not_before", key.not_before}, {"not_after", key.not_after},
                    {"revoked", k.is_revoked(core::key_id_of(key.public_key))}});
  for (const auto& id : k.revoked) revoked.push_back(core::to_hex(id));
  auto msg = core::keyring_signed_bytes(k);
  std::size_t by_roots = 0;
  for (const auto& s : k.signatures) {
    const core::ed25519_public_key* root = nullptr;
    for (const auto& r : k.root_keys)
      if (core::key_id_of(r) == s.keyid) root = &r;
    const bool valid = root && msg && core::ed25519_verify(*root, *msg, s.sig);
    by_roots += valid;
    sigs.push_back({{"keyid", core::to_hex(s.keyid)}, {"listed_root", root != nullptr}, {"valid", valid}});
  }
  nlohmann::json roots = nlohmann::json::array();
  for (const auto& r : k.root_keys) roots.push_back(core::to_hex(core::key_id_of(r)));
  auto bin = core::encode_keyring_binary(k);
  return {{"version", k.version},       {"issued", k.issued},   {"expires", k.expires},
          {"expired", now_seconds() >= k.expires},            {"root_keys", roots},
          {"root_threshold", k.root_threshold},               {"keys", keys},
          {"revoked", revoked},         {"signatures", sigs},   {"signed_by_own_roots", by_roots >= k.root_threshold},
          {"binary_size", bin ? bin->size() : 0}};
}

int finish(const std::string& path, const core::keyring& k, bool json, const std::string& what) {
  if (auto w = save_json(path, k); !w) return report_error(w.err(), json);
  if (json) {
    auto d = describe(k);
    d["ok"] = true;
    d["file"] = path;
    print_json(d);
  } else {
    std::cout << what << ": " << path << " is keyring v" << k.version << (k.signatures.empty() ? " (unsigned)" : "") << "\n";
  }
  return exit_ok;
}

int keyring_init(const arg_list& argv, bool json) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--root", "--threshold", "--expires", "--expires-at", "--version"}, {"--json"}, a))
    return usage_error(*e, "keyring", json);
  auto out = a.output();
  auto roots = a.value("--root");
  if (!out || !roots || !a.positional.empty()) return usage_error("keyring init needs -o FILE --root ROOT.pub[,ROOT2.pub]", "keyring", json);
  core::keyring k;
  auto keys = load_public_keys(*roots);
  if (!keys) return report_error(keys.err(), json);
  k.root_keys = *keys;
  k.issued = now_seconds();
  std::string error;
  k.expires = expiry_option(a, k.issued, error).value_or(k.issued + 365 * day);
  if (!error.empty()) return usage_error(error, "keyring", json);
  if (auto t = a.value("--threshold")) {
    auto v = parse_uint(*t);
    if (!v || *v < 1 || *v > k.root_keys.size()) return usage_error("--threshold: 1..number of root keys", "keyring", json);
    k.root_threshold = static_cast<std::uint8_t>(*v);
  }
  if (auto v = a.value("--version")) {
    auto n = parse_uint(*v);
    if (!n || *n == 0) return usage_error("--version: a whole number >= 1", "keyring", json);
    k.version = *n;
  }
  return finish(*out, k, json, "created");
}

// add-key, revoke, rotate-root, renew: load FILE, edit, write FILE (or -o OUT).
int keyring_edit(const std::string& sub, const arg_list& argv, bool json) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--key", "--keyid", "--models", "--not-before", "--not-after", "--root",
                                 "--threshold", "--expires", "--expires-at"},
                          {"--json"}, a))
    return usage_error(*e, "keyring", json);
  if (a.positional.size() != 1) return usage_error("keyring " + sub + " needs FILE", "keyring", json);
  const std::string path = a.positional[0];
  auto k = load_keyring(path);
  if (!k) return report_error(k.err(), json);
  const bool was_signed = !k->signatures.empty();
  begin_edit(*k);
  if (sub == "add-key") {
    auto key_path = a.value("--key");
    if (!key_path) return usage_error("keyring add-key needs --key RELEASE.pub", "keyring", json);
    auto pub = load_public_key(*key_path);
    if (!pub) return report_error(pub.err(), json);
    if (k->is_revoked(core::key_id_of(*pub))) return report_error(core::make_error(core::errc::invalid_argument, "this key was revoked; make a new one"), json);
    core::keyring_key key;
    key.public_key = *pub;
    if (auto m = a.value("--models")) key.models = split_commas(*m);
    for (auto [opt, field] : {std::pair{"--not-before", &key.not_before}, std::pair{"--not-after", &key.not_after}})
      if (auto v = a.value(opt)) {
        auto n = parse_uint(*v);
        if (!n) return usage_error(std::string(opt) + ": expected unix seconds", "keyring", json);
        *field = *n;
      }
    std::erase_if(k->keys, [&](const core::keyring_key& e) { return e.public_key == key.public_key; });
    k->keys.push_back(key);
  } else if (sub == "revoke") {
    core::key_id id{};
    if (auto key_path = a.value("--key")) {
      auto pub = load_public_key(*key_path);
      if (!pub) return report_error(pub.err(), json);
      id = core::key_id_of(*pub);
    } else if (auto hex = a.value("--keyid"); !hex || hex->size() != 64 || !core::from_hex(*hex, id)) {
      return usage_error("keyring revoke needs --key RELEASE.pub or --keyid HEX", "keyring", json);
    }
    std::erase_if(k->keys, [&](const core::keyring_key& e) { return core::key_id_of(e.public_key) == id; });
    if (!k->is_revoked(id)) k->revoked.push_back(id);
  } else if (sub == "rotate-root") {
    auto roots = a.value("--root");
    if (!roots) return usage_error("keyring rotate-root needs --root NEW.pub[,NEW2.pub]", "keyring", json);
    auto keys = load_public_keys(*roots);
    if (!keys) return report_error(keys.err(), json);
    k->root_keys = *keys;
    k->root_threshold = 1;
    if (auto t = a.value("--threshold")) {
      auto v = parse_uint(*t);
      if (!v || *v < 1 || *v > k->root_keys.size()) return usage_error("--threshold: 1..number of root keys", "keyring", json);
      k->root_threshold = static_cast<std::uint8_t>(*v);
    }
  } else if (sub == "renew") {
    if (!was_signed) {
      k->version += 1;  // an unsigned draft: renew still means "the next version"
      k->issued = now_seconds();
    }
  }
  std::string error;
  if (auto e = expiry_option(a, k->issued, error)) k->expires = *e;
  if (!error.empty()) return usage_error(error, "keyring", json);
  return finish(a.output().value_or(path), *k, json, sub);
}

int keyring_sign(const arg_list& argv, bool json) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--key"}, {"--json"}, a)) return usage_error(*e, "keyring", json);
  auto key_path = a.value("--key");
  if (a.positional.size() != 1 || !key_path) return usage_error("keyring sign needs FILE --key ROOT.key", "keyring", json);
  auto k = load_keyring(a.positional[0]);
  if (!k) return report_error(k.err(), json);
  auto key = load_private_key(*key_path);
  if (!key) return report_error(key.err(), json);
  if (auto s = core::sign_keyring(*k, *key); !s) return report_error(s.err(), json);
  return finish(a.output().value_or(a.positional[0]), *k, json, "signed");
}

int keyring_show(const arg_list& argv, bool json) {
  parsed_args a;
  if (auto e = parse_args(argv, {}, {"--json"}, a)) return usage_error(*e, "keyring", json);
  if (a.positional.size() != 1) return usage_error("keyring show needs FILE", "keyring", json);
  auto k = load_keyring(a.positional[0]);
  if (!k) return report_error(k.err(), json);
  auto d = describe(*k);
  if (json) {
    d["ok"] = true;
    print_json(d);
    return exit_ok;
  }
  std::cout << "keyring v" << k->version << ", issued " << k->issued << ", expires " << k->expires
            << (d["expired"].get<bool>() ? " (EXPIRED)" : "") << "\n"
            << "root keys (" << int(k->root_threshold) << " of " << k->root_keys.size() << " must sign):\n";
  for (const auto& r : d["root_keys"]) std::cout << "  " << r.get<std::string>() << "\n";
  std::cout << "release keys:\n";
  for (const auto& key : d["keys"])
    std::cout << "  " << key["keyid"].get<std::string>() << " models " << key["models"].dump() << "\n";
  std::cout << "revoked: " << k->revoked.size() << "\n";
  for (const auto& s : d["signatures"])
    std::cout << "  signature by " << s["keyid"].get<std::string>().substr(0, 16)
              << (s["listed_root"].get<bool>() ? (s["valid"].get<bool>() ? " (listed root, valid)" : " (listed root, INVALID)")
                                               : " (not a listed root: a previous root, for rotation)")
              << "\n";
  std::cout << (d["signed_by_own_roots"].get<bool>() ? "signed by its root threshold\n" : "NOT signed by its root threshold\n");
  return exit_ok;
}

int keyring_export(const arg_list& argv, bool json) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output"}, {"--json", "--binary"}, a)) return usage_error(*e, "keyring", json);
  auto out = a.output();
  if (a.positional.size() != 1 || !out || !a.has("--binary"))
    return usage_error("keyring export needs FILE --binary -o OUT", "keyring", json);
  auto k = load_keyring(a.positional[0]);
  if (!k) return report_error(k.err(), json);
  auto bin = core::encode_keyring_binary(*k);
  if (!bin) return report_error(bin.err(), json);
  if (auto w = core::write_file_atomic(*out, *bin); !w) return report_error(w.err(), json);
  if (json) print_json({{"ok", true}, {"file", *out}, {"size", bin->size()}, {"version", k->version}});
  else std::cout << "wrote " << *out << " (binary keyring v" << k->version << ", " << bin->size() << " bytes)\n";
  return exit_ok;
}

}  // namespace

int cmd_keyring(const arg_list& args) {
  bool json = false;
  for (const auto& s : args) json = json || s == "--json";
  if (args.empty()) return usage_error("keyring needs a subcommand: init, add-key, revoke, rotate-root, renew, sign, show, export", "keyring", json);
  const std::string sub = args[0];
  const arg_list rest(args.begin() + 1, args.end());
  if (sub == "init") return keyring_init(rest, json);
  if (sub == "add-key" || sub == "revoke" || sub == "rotate-root" || sub == "renew") return keyring_edit(sub, rest, json);
  if (sub == "sign") return keyring_sign(rest, json);
  if (sub == "show") return keyring_show(rest, json);
  if (sub == "export") return keyring_export(rest, json);
  return usage_error("unknown keyring subcommand '" + sub + "'", "keyring", json);
}

}  // namespace mallorn::cli
