// HTTP Range (RFC 9110 §14) for single byte ranges, and the If-Range / If-None-Match decisions.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace mallorn::server {

struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t length = 0;
};

enum class range_kind {
  full,           // no Range, a multi-range or a syntactically invalid one: send 200 with everything
  partial,        // 206 with `range`
  unsatisfiable,  // 416 with "Content-Range: bytes */size"
  // A well-formed range whose numbers do not fit in 64 bits ("bytes=0-99999999999999999999"):
  // answered 400 and the connection closed, like any other framing error (docs/api.md). A
  // number no file can reach is a client bug or a probe, never a resume.
  invalid,
};

struct range_decision {
  range_kind kind = range_kind::full;
  byte_range range;
};

// Decides how to answer a GET of a resource of `size` bytes with the given Range header value
// (nullopt = no header). "bytes=N-", "bytes=N-M" (M clamped to the end) and "bytes=-N" (suffix).
// Multi-ranges are answered in full, which RFC 9110 allows.
range_decision decide_range(std::optional<std::string_view> range_header, std::uint64_t size);

// If-Range: the range is only honoured when the validator names the current representation.
// We send strong ETags only, so a date (or a weak tag) never matches.
bool if_range_matches(std::string_view if_range, std::string_view etag);

// If-None-Match: true when any listed tag (or "*") matches `etag` (weak comparison).
bool if_none_match_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace mallorn::server
