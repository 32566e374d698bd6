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

struct number {
  bool ok = false;        // digits only
  bool overflow = false;  // digits only, but more than 2^64 - 1
  std::uint64_t value = 0;
};

number parse_number(std::string_view s) {
  number n;
  if (s.empty()) return n;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n.value);
  if (p != s.data() + s.size() || s.front() == '-' || s.front() == '+') return n;  // not a digit string
  if (ec == std::errc::result_out_of_range) n.overflow = true;
  else if (ec == std::errc{}) n.ok = true;
  return n;
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
    if (n.overflow) return {range_kind::invalid, {}};
    if (!n.ok) return {};
    if (n.value == 0 || size == 0) return {range_kind::unsatisfiable, {}};
    const std::uint64_t len = n.value < size ? n.value : size;
    return {range_kind::partial, {size - len, len}};
  }
  auto first = parse_number(first_text);
  auto l = last_text.empty() ? number{} : parse_number(last_text);
  if (first.overflow || l.overflow) return {range_kind::invalid, {}};
  if (!first.ok) return {};
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    if (!l.ok || l.value < first.value) return {};  // invalid syntax: ignore the header
    if (l.value < last) last = l.value;
  }
  if (first.value >= size) return {range_kind::unsatisfiable, {}};
  return {range_kind::partial, {first.value, last - first.value + 1}};
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
