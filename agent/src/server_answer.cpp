#include "mallorn/agent/server_answer.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "mallorn/agent/http_client.hpp"

namespace mallorn::agent {

namespace {

using nlohmann::json;

constexpr std::size_t max_version_chars = 256;
constexpr std::size_t max_url_chars = 2048;
constexpr int max_json_depth = 8;

core::error bad(const std::string& why) { return core::make_error(core::errc::invalid_argument, "bad server answer: " + why); }

// A field that may be absent or null (nullopt) or must be a string of at most `limit` bytes.
core::result<std::optional<std::string>> optional_string(const json& doc, const char* key, std::size_t limit) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) return bad(std::string(key) + " is a " + it->type_name() + ", not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > limit) return bad(std::string(key) + " is longer than " + std::to_string(limit) + " bytes");
  return std::optional<std::string>{s};
}

core::result<std::optional<std::uint64_t>> optional_count(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return std::optional<std::uint64_t>{};
  if (!it->is_number_unsigned()) {
    if (it->is_number_integer()) return bad(std::string(key) + " is negative");
    return bad(std::string(key) + " is a " + it->type_name() + ", not a whole number");
  }
  return std::optional<std::uint64_t>{it->get<std::uint64_t>()};
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::uint64_t> decimal(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

#define MALLORN_FIELD(var, expr) \
  auto var = (expr);             \
  if (!var) return var.err()

}  // namespace

bool is_server_path(std::string_view url) {
  if (url.empty() || url.front() != '/' || url.size() > max_url_chars) return false;
  if (url.size() > 1 && url[1] == '/') return false;  // "//host/...": another host
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '\\') return false;
  }
  return true;
}

core::result<check_answer> parse_check_update(std::string_view body, std::uint64_t max_model_size) {
  // Nothing the agent reads is nested: deeper values are dropped while parsing, so a body of a
  // million '[' costs no more memory than its bytes.
  auto doc = json::parse(
      body.begin(), body.end(), [](int depth, json::parse_event_t, json&) { return depth <= max_json_depth; }, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("the body is not a JSON object");
  check_answer out;
  auto available = doc.find("update_available");
  if (available == doc.end() || available->is_null()) return bad("update_available is missing");
  if (!available->is_boolean()) return bad(std::string("update_available is a ") + available->type_name() + ", not a boolean");
  out.update_available = available->get<bool>();
  if (!out.update_available) return out;

  update_offer& o = out.offer;
  MALLORN_FIELD(current, optional_string(doc, "current_version", max_version_chars));
  o.current_version = current->value_or("");
  MALLORN_FIELD(target, optional_string(doc, "target_version", max_version_chars));
  if (!*target || (*target)->empty()) return bad("target_version is missing");
  o.target_version = **target;
  MALLORN_FIELD(target_sha, optional_string(doc, "target_sha256", 64));
  if (!*target_sha || !is_sha256_hex(**target_sha)) return bad("target_sha256 is not 64 lower-case hex digits");
  o.target_sha256 = **target_sha;
  // The stable release number; servers before it send only target_rank (which now equals it).
  MALLORN_FIELD(number, optional_count(doc, "target_number"));
  MALLORN_FIELD(rank, optional_count(doc, "target_rank"));
  o.target_rank = number->value_or(rank->value_or(0));

  MALLORN_FIELD(full_url, optional_string(doc, "full_url", max_url_chars));
  if (!*full_url || !is_server_path(**full_url)) return bad("full_url is not a path on this server");
  o.full_url = **full_url;
  MALLORN_FIELD(full_size, optional_count(doc, "full_size"));
  if (!*full_size || **full_size == 0) return bad("full_size is missing");
  if (**full_size > max_model_size)
    return bad("full_size " + std::to_string(**full_size) + " is over max_model_size " + std::to_string(max_model_size));
  o.full_size = **full_size;

  // The patch is an optimisation: an incomplete description of one is set aside (the whole model
  // still works), but a wrong type anywhere is a refusal like any other.
  MALLORN_FIELD(patch_url, optional_string(doc, "patch_url", max_url_chars));
  MALLORN_FIELD(patch_sha, optional_string(doc, "patch_sha256", 64));
  MALLORN_FIELD(patch_size, optional_count(doc, "patch_size"));
  if (*patch_url) {
    if (!is_server_path(**patch_url)) o.patch_note = "patch_url is not a path on this server";
    else if (!*patch_sha || !is_sha256_hex(**patch_sha)) o.patch_note = "patch_sha256 is not 64 lower-case hex digits";
    else if (!*patch_size || **patch_size == 0) o.patch_note = "patch_size is missing";
    else if (**patch_size > max_model_size)
      o.patch_note = "patch_size " + std::to_string(**patch_size) + " is over max_model_size";
    if (o.patch_note.empty()) {
      o.patch_url = **patch_url;
      o.patch_sha256 = **patch_sha;
      o.patch_size = **patch_size;
    }
  }
  return out;
}

std::optional<content_range> parse_content_range(std::string_view value) {
  value = trim(value);
  constexpr std::string_view unit = "bytes ";
  if (value.substr(0, unit.size()) != unit) return std::nullopt;
  value.remove_prefix(unit.size());
  const auto dash = value.find('-'), slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
  auto first = decimal(value.substr(0, dash));
  auto last = decimal(value.substr(dash + 1, slash - dash - 1));
  auto total = decimal(value.substr(slash + 1));
  if (!first || !last || !total || *last < *first || *last >= *total) return std::nullopt;
  return content_range{*first, *last, *total};
}

std::optional<std::uint64_t> parse_content_length(std::string_view value) { return decimal(trim(value)); }

core::result<void> check_download_head(const http_reply& head, std::uint64_t offset, std::uint64_t size) {
  if (size == 0 || offset >= size) return bad("nothing left to download");
  const std::string* length = head.header("content-length");
  std::optional<std::uint64_t> body_bytes;
  if (length && !(body_bytes = parse_content_length(*length)))
    return bad("Content-Length '" + log_safe(*length, 40) + "' is not a number");
  if (head.status == 200) {
    if (body_bytes && *body_bytes != size)
      return bad("Content-Length " + std::to_string(*body_bytes) + " for a file announced as " + std::to_string(size) +
                 " bytes");
    return {};
  }
  if (head.status != 206) return bad("HTTP " + std::to_string(head.status) + " for a download");
  const std::string* range = head.header("content-range");
  if (!range) return bad("a 206 answer without Content-Range");
  auto r = parse_content_range(*range);
  if (!r) return bad("Content-Range '" + log_safe(*range, 80) + "' is malformed");
  if (r->first != offset || r->total != size || r->last != size - 1)
    return bad("Content-Range '" + log_safe(*range, 80) + "' where bytes " + std::to_string(offset) + "-" +
               std::to_string(size - 1) + "/" + std::to_string(size) + " were asked for");
  if (body_bytes && *body_bytes != size - offset)
    return bad("Content-Length " + std::to_string(*body_bytes) + " for a range of " + std::to_string(size - offset) + " bytes");
  return {};
}

unsigned parse_retry_after(const std::string* value, unsigned fallback) {
  if (!value) return fallback;
  auto v = decimal(trim(*value));
  if (!v) return fallback;
  return static_cast<unsigned>(std::clamp<std::uint64_t>(*v, 1, 3600));
}

std::string log_safe(std::string_view text, std::size_t limit) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = std::min(text.size(), limit);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > limit) out += "...";
  return out;
}

}  // namespace mallorn::agent
