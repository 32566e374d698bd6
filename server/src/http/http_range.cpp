#include "mallorn/server/http_range.hpp"

#include <charconv>
#include <string>

namespace mallorn::server {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

range_decision decide_range(std::optional<std::string_view> header, std::uint64_t size) {
  if (!header) return {};
  auto spec = trim(*header);
  constexpr std::string_view unit = "bytes=";
  if (spec.size() < unit.size()) return {};
  for (std::size_t i = 0; i < unit.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(spec[i])) != unit[i]) return {};
  spec = trim(spec.substr(unit.size()));
  if (spec.find(',') != std::string_view::npos) return {};
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  auto first_text = trim(spec.substr(0, dash)), last_text = trim(spec.substr(dash + 1));

  if (first_text.empty()) {  // suffix range: the last N bytes
    auto n = parse_number(last_text);
    if (!n) return {};
    if (*n == 0 || size == 0) return {range_kind::unsatisfiable, {}};
    const std::uint64_t len = *n < size ? *n : size;
    return {range_kind::partial, {size - len, len}};
  }
  auto first = parse_number(first_text);
  if (!first) return {};
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    auto l = parse_number(last_text);
    if (!l || *l < *first) return {};  // invalid syntax: ignore the header
    if (*l < last) last = *l;
  }
  if (*first >= size) return {range_kind::unsatisfiable, {}};
  return {range_kind::partial, {*first, last - *first + 1}};
}

bool if_range_matches(std::string_view if_range, std::string_view etag) {
  auto v = trim(if_range);
  return !v.empty() && v.front() == '"' && v == etag;
}

bool if_none_match_matches(std::string_view if_none_match, std::string_view etag) {
  std::string_view bare = etag;
  if (bare.size() >= 2 && bare.front() == '"') bare = bare.substr(1, bare.size() - 2);
  std::string_view rest = if_none_match;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto tag = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag.size() >= 2 && tag.front() == '"') tag = tag.substr(1, tag.size() - 2);
    if (tag == bare) return true;
  }
  return false;
}

}  // namespace mallorn::server
