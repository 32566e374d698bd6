// The bodies of POST /enroll and POST /token (docs/api.md, "Device identity"), parsed without
// touching storage so they are fuzzed on their own (tests/fuzz/identity_request_fuzz.cpp).
//
//   /enroll  {"device_id": "...", "public_key": "<base64 of the raw 32-byte Ed25519 key>",
//             "tags": {"k": "v", ...}?}
//   /token   {"device_id": "...", "timestamp": <unix seconds>, "nonce": "<16..64 hex>",
//             "signature": "<base64 of the 64-byte Ed25519 signature of token_message()>"}
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mallorn/core/signature.hpp"

namespace mallorn::server::identity {

// Why a body was refused: a stable code for programs and a message for people.
struct request_problem {
  std::string code, message;
};

struct enroll_request {
  std::string device_id;
  core::ed25519_public_key public_key{};
  std::string tags_json;  // "" or a canonical JSON object of at most 16 short strings
};

struct token_request {
  std::string device_id;
  std::int64_t timestamp = 0;
  std::string nonce;  // lower-case hex
  core::ed25519_signature signature{};
};

// Bodies larger than this are refused before they are read (router::plan).
inline constexpr std::size_t max_identity_body = 4096;

std::optional<enroll_request> parse_enroll_request(std::string_view body, request_problem& why);
std::optional<token_request> parse_token_request(std::string_view body, request_problem& why);

// What a device signs to get a token: a fixed context string, so the signature cannot be replayed
// as anything else, then the fields that make it unique.
std::string token_message(const std::string& device_id, std::int64_t timestamp, const std::string& nonce);

// Strict standard base64 (RFC 4648 §4, with padding, canonical: re-encoding gives the same text).
// nullopt for anything else (whitespace, URL alphabet, wrong length).
std::optional<std::string> decode_base64(std::string_view text);
std::string encode_base64(std::string_view bytes);

}  // namespace mallorn::server::identity
