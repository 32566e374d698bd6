#include "mallorn/server/version_order.hpp"

#include <cctype>

namespace mallorn::server {
namespace {

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

std::string_view strip_v(std::string_view s) {
  if (s.size() > 1 && (s[0] == 'v' || s[0] == 'V') && is_digit(s[1])) s.remove_prefix(1);
  return s;
}

// Compares two runs of digits by numeric value without overflow: drop leading zeros, then
// a longer run is larger, then lexicographic.
int compare_numbers(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a[0] == '0') a.remove_prefix(1);
  while (b.size() > 1 && b[0] == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

std::string_view take_run(std::string_view& s) {
  std::size_t n = 1;
  const bool digits = is_digit(s[0]);
  while (n < s.size() && is_digit(s[n]) == digits) ++n;
  auto run = s.substr(0, n);
  s.remove_prefix(n);
  return run;
}

}  // namespace

int compare_versions(std::string_view a, std::string_view b) {
  a = strip_v(a);
  b = strip_v(b);
  while (!a.empty() && !b.empty()) {
    const bool da = is_digit(a[0]), db = is_digit(b[0]);
    if (da != db) return da ? 1 : -1;  // "1.0a" vs "1.01": a number outranks a letter
    auto ra = take_run(a), rb = take_run(b);
    int c = da ? compare_numbers(ra, rb) : ra.compare(rb);
    if (c != 0) {
      // A pre-release tag sorts before the release it precedes: "1.0.0-rc1" < "1.0.0".
      return c < 0 ? -1 : 1;
    }
  }
  if (a.empty() && b.empty()) return 0;
  // One is a prefix of the other: "1.0.0-rc1" vs "1.0.0" -> the suffixed one is a pre-release
  // when its remainder starts with '-' or '~', otherwise it is a later version ("1.0.0.1").
  std::string_view rest = a.empty() ? b : a;
  const bool rest_is_pre = rest[0] == '-' || rest[0] == '~';
  const int longer_is_greater = rest_is_pre ? -1 : 1;
  return a.empty() ? -longer_is_greater : longer_is_greater;
}

}  // namespace mallorn::server
