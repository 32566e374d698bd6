#include "mallorn/server/identity/device_requests.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "mallorn/server/request_path.hpp"

namespace mallorn::server::identity {
namespace {

bool fail(request_problem& why, const char* code, std::string message) {
  why = {code, std::move(message)};
  return false;
}

std::optional<nlohmann::json> object_of(std::string_view body, request_problem& why) {
  if (body.size() > max_identity_body) {
    fail(why, "body_too_large", "the body exceeds " + std::to_string(max_identity_body) + " bytes");
    return std::nullopt;
  }
  auto doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    fail(why, "bad_json", "the body must be a JSON object");
    return std::nullopt;
  }
  return doc;
}

bool device_id_of(const nlohmann::json& doc, std::string& out, request_problem& why) {
  auto it = doc.find("device_id");
  if (it == doc.end() || !it->is_string()) return fail(why, "missing_field", "'device_id' (a string) is required");
  out = it->get<std::string>();
  if (!is_valid_device_id(out)) return fail(why, "bad_device_id", "'device_id' must match [A-Za-z0-9._:@+-]{1,128}");
  return true;
}

template <std::size_t N>
bool fixed_bytes(const nlohmann::json& doc, const char* field, std::array<std::uint8_t, N>& out, request_problem& why) {
  auto it = doc.find(field);
  if (it == doc.end() || !it->is_string())
    return fail(why, "missing_field", std::string("'") + field + "' (base64 text) is required");
  auto raw = decode_base64(it->get_ref<const std::string&>());
  if (!raw) return fail(why, "bad_base64", std::string("'") + field + "' is not canonical standard base64");
  if (raw->size() != N)
    return fail(why, "bad_length", std::string("'") + field + "' must decode to " + std::to_string(N) + " bytes, not " +
                                        std::to_string(raw->size()));
  std::copy(raw->begin(), raw->end(), out.begin());
  return true;
}

bool is_lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4 * max_identity_body) return std::nullopt;
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t pad = 0;
  while (pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
  for (std::size_t i = 0; i < text.size() - pad; ++i)
    if (alphabet.find(text[i]) == std::string_view::npos) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  if (encode_base64(out) != text) return std::nullopt;  // non-zero padding bits: two texts for one key
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

std::optional<enroll_request> parse_enroll_request(std::string_view body, request_problem& why) {
  auto doc = object_of(body, why);
  if (!doc) return std::nullopt;
  enroll_request r;
  if (!device_id_of(*doc, r.device_id, why) || !fixed_bytes(*doc, "public_key", r.public_key, why)) return std::nullopt;
  if (auto t = doc->find("tags"); t != doc->end() && !t->is_null()) {
    bool ok = t->is_object() && t->size() <= 16;
    if (ok)
      for (const auto& [k, v] : t->items())
        ok = ok && !k.empty() && k.size() <= 64 && v.is_string() && v.get_ref<const std::string&>().size() <= 128;
    if (!ok) {
      fail(why, "bad_field", "'tags' must be an object of at most 16 string values (keys <= 64, values <= 128 characters)");
      return std::nullopt;
    }
    r.tags_json = t->dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  }
  return r;
}

std::optional<token_request> parse_token_request(std::string_view body, request_problem& why) {
  auto doc = object_of(body, why);
  if (!doc) return std::nullopt;
  token_request r;
  if (!device_id_of(*doc, r.device_id, why)) return std::nullopt;
  auto ts = doc->find("timestamp");
  if (ts == doc->end() || !ts->is_number_integer()) {
    fail(why, "missing_field", "'timestamp' (unix seconds, an integer) is required");
    return std::nullopt;
  }
  r.timestamp = ts->get<std::int64_t>();
  auto nonce = doc->find("nonce");
  if (nonce == doc->end() || !nonce->is_string() || nonce->get_ref<const std::string&>().size() < 16 ||
      nonce->get_ref<const std::string&>().size() > 64 || !is_lower_hex(nonce->get<std::string>())) {
    fail(why, "bad_nonce", "'nonce' must be 16 to 64 lower-case hex characters");
    return std::nullopt;
  }
  r.nonce = nonce->get<std::string>();
  if (!fixed_bytes(*doc, "signature", r.signature, why)) return std::nullopt;
  return r;
}

std::string token_message(const std::string& device_id, std::int64_t timestamp, const std::string& nonce) {
  return "mallorn-device-token-v1\n" + device_id + "\n" + std::to_string(timestamp) + "\n" + nonce;
}

}  // namespace mallorn::server::identity
