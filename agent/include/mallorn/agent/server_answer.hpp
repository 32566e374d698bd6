// What the agent accepts from a server: pure parsers for the check-update answer, Content-Range and
// Retry-After. Everything a server sends is hostile until parsed here; any field may be missing,
// null or of the wrong type, and each of those is either a defined default or a refusal with a
// reason (never an exception, never an unbounded value). tests/fuzz/agent_answer_fuzz.cpp runs
// these on arbitrary bytes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mallorn/core/error.hpp"

namespace mallorn::agent {

// An update the server offers (update_available true). Sizes are > 0 and <= the configured
// max_model_size; URLs are origin-form paths on the configured server.
struct update_offer {
  std::string current_version;  // empty: the server does not know the device's model (null)
  std::string target_version, target_sha256;
  std::uint64_t target_rank = 0;  // 0: unranked (null or missing)
  std::string full_url;
  std::uint64_t full_size = 0;
  // Empty patch_url: no patch (null, missing, or described incompletely; see patch_note).
  std::string patch_url, patch_sha256;
  std::uint64_t patch_size = 0;
  std::string patch_note;  // why an announced patch was set aside, for the log
};

struct check_answer {
  bool update_available = false;
  update_offer offer;  // meaningful when update_available
};

// Parses a 200 check-update body. Refuses (errc::invalid_argument, "bad server answer: ...") a
// body that is not a JSON object, a missing/null/non-boolean update_available, and an offer
// without a target version, a 64-hex target SHA-256, a full_url or a full_size in 1..max_model_size.
core::result<check_answer> parse_check_update(std::string_view body, std::uint64_t max_model_size);

// "bytes FIRST-LAST/TOTAL" (RFC 9110 14.4); nullopt for anything else, including "*" totals,
// LAST < FIRST, LAST >= TOTAL and numbers that do not fit in 64 bits.
struct content_range {
  std::uint64_t first = 0, last = 0, total = 0;
};
std::optional<content_range> parse_content_range(std::string_view value);

// A decimal Content-Length; nullopt when it is not one.
std::optional<std::uint64_t> parse_content_length(std::string_view value);

// The head of a download answer, before its first byte is written at `offset` of a file of
// `size` bytes: a 200 must carry the whole file (Content-Length, when present, == size); a 206
// must carry "Content-Range: bytes OFFSET-(size-1)/size" and a matching Content-Length.
// Refusals are errc::invalid_argument "bad server answer: ...".
struct http_reply;
core::result<void> check_download_head(const http_reply& head, std::uint64_t offset, std::uint64_t size);

// Retry-After in seconds, clamped to 1..3600; `fallback` when absent or not a decimal number.
unsigned parse_retry_after(const std::string* value, unsigned fallback = 30);

// Server text made fit for a log line: control characters and bytes >= 0x7f escaped as \xNN (a
// backslash is not, so escaping twice changes nothing), cut at `limit` bytes of input (with "..." appended).
std::string log_safe(std::string_view text, std::size_t limit = 200);

// True for "/..." without control characters, spaces or backslashes: a path on the configured server.
bool is_server_path(std::string_view url);

}  // namespace mallorn::agent
