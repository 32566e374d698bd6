#include "mallorn/server/request_path.hpp"

#include <cctype>

namespace mallorn::server {

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+';
    if (!ok) return false;
  }
  return true;
}

bool is_patch_id(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> store_version_of(std::string_view name) {
  if (name.empty() || name[0] == '.' || name == "index.json") return std::nullopt;
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return std::nullopt;
  const auto version = name.substr(0, dot);
  if (!is_valid_name(version) || name.find(".tmp-") != std::string_view::npos) return std::nullopt;
  return std::string(version);
}

bool is_valid_device_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+' ||
                    c == ':' || c == '@';
    if (!ok) return false;
  }
  return true;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::optional<request_target> parse_target(std::string_view target) {
  if (target.empty() || target[0] != '/') return std::nullopt;
  request_target out;
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (auto f = path.find('#'); f != std::string_view::npos) return std::nullopt;
  std::size_t pos = 1;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    auto raw = path.substr(pos, end - pos);
    pos = end + 1;
    if (raw.empty()) {
      if (end == path.size()) break;  // trailing slash
      return std::nullopt;            // "//" is never a valid route
    }
    auto seg = percent_decode(raw);
    if (!seg || *seg == "." || *seg == ".." || seg->find('/') != std::string::npos ||
        seg->find('\\') != std::string::npos)
      return std::nullopt;
    for (char c : *seg)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
    out.segments.push_back(std::move(*seg));
  }
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    out.query[*key] = *value;
  }
  return out;
}

}  // namespace mallorn::server
