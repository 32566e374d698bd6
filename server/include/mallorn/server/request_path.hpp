// Safe handling of request targets: percent-decoding, path segments, query strings, and the
// name rules that keep every route inside the store (no "..", no separators, no NUL).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mallorn::server {

// Model and version names: [A-Za-z0-9._+-]{1,128}, not starting with '.' (so never "." or "..").
bool is_valid_name(std::string_view name);
// 64 lowercase hex characters.
bool is_patch_id(std::string_view id);
// The version a store file "<version>.<ext>" holds, or nullopt when the store's scanner ignores
// the file (hidden, index.json, no extension, a bad version name, an upload's ".tmp-" staging
// name). The scanner and the upload route both ask this one function, so an upload is refused
// up front exactly when the scanner would not list it.
std::optional<std::string> store_version_of(std::string_view file_name);
// Device ids as sent in check-update and reports: [A-Za-z0-9._:@+-]{1,128} (room for MAC
// addresses, serial numbers and host names; no spaces, no control characters).
bool is_valid_device_id(std::string_view id);

// Decodes %XX escapes (and '+' as space when `plus_is_space`); nullopt on a bad escape or a
// decoded NUL.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

struct request_target {
  std::vector<std::string> segments;          // decoded path segments
  std::map<std::string, std::string> query;   // decoded; the last occurrence wins
};

// Splits "/a/b%2Fc?x=1" into segments and query. Rejects (nullopt) anything that is not an
// origin-form path, a bad escape, a NUL, a decoded '/' or '\\' inside a segment, and "." or ".."
// segments (raw or encoded), so no route can ever name a file outside the store.
std::optional<request_target> parse_target(std::string_view target);

}  // namespace mallorn::server
