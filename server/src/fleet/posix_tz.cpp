// POSIX TZ rules ("CET-1CEST,M3.5.0,M10.5.0/3"): the footer of a TZif file, which says what the
// zone does after its last recorded transition. Parsing is strict (the footer is file content,
// and the fuzz target feeds it garbage); evaluation is pure calendar arithmetic.
#include <algorithm>
#include <array>
#include <cctype>

#include "mallorn/server/fleet/time_zone.hpp"

namespace mallorn::server::fleet {
namespace {

core::error bad(const std::string& message) {
  return core::make_error(core::errc::invalid_argument, "POSIX TZ rule: " + message);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::int64_t year_of_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  return yoe + era * 400 + (mp >= 10);  // months 11 and 12 of the March-based year are Jan, Feb
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The local date (days since the epoch) on which `r` falls in year `y`.
std::int64_t rule_day(const posix_tz_rule::date_rule& r, std::int64_t y) {
  const std::int64_t jan1 = days_from_civil(y, 1, 1);
  switch (r.what) {
    case posix_tz_rule::date_rule::kind::julian_no_leap: return jan1 + r.day - 1 + (is_leap(y) && r.day >= 60 ? 1 : 0);
    case posix_tz_rule::date_rule::kind::julian_zero: return jan1 + r.day;
    case posix_tz_rule::date_rule::kind::month_week_day: break;
  }
  const std::int64_t first = days_from_civil(y, r.month, 1);
  const std::int64_t next = r.month == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, r.month + 1, 1);
  const int weekday = static_cast<int>(((first + 4) % 7 + 7) % 7);  // 1970-01-01 was a Thursday (4)
  std::int64_t day = first + (r.day - weekday + 7) % 7 + std::int64_t{r.week - 1} * 7;
  while (day >= next) day -= 7;  // week 5 = the last such weekday of the month
  return day;
}

// A small cursor over the rule text.
struct cursor {
  std::string_view s;
  std::size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i;
    return true;
  }
  // Up to `max_digits` digits, at least one; nullopt otherwise.
  std::optional<int> number(int max_digits) {
    int v = 0, n = 0;
    while (n < max_digits && std::isdigit(static_cast<unsigned char>(peek()))) {
      v = v * 10 + (s[i++] - '0');
      ++n;
    }
    if (!n || std::isdigit(static_cast<unsigned char>(peek()))) return std::nullopt;
    return v;
  }
};

core::result<void> name(cursor& c, const char* what) {
  const std::size_t from = c.i;
  if (c.eat('<')) {
    while (!c.done() && c.peek() != '>') {
      const char ch = c.peek();
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '+' && ch != '-')
        return bad(std::string(what) + " name: '<...>' holds only letters, digits, '+' and '-'");
      ++c.i;
    }
    if (!c.eat('>')) return bad(std::string(what) + " name: '<' without '>'");
    if (c.i - from - 2 < 3) return bad(std::string(what) + " name: at least 3 characters");
    return {};
  }
  while (std::isalpha(static_cast<unsigned char>(c.peek()))) ++c.i;
  if (c.i - from < 3) return bad(std::string(what) + " name: at least 3 letters");
  return {};
}

// [+-]hh[:mm[:ss]] with hh <= max_hours, in seconds.
core::result<std::int32_t> duration(cursor& c, int max_hours, const char* what) {
  int sign = 1;
  if (c.eat('-')) sign = -1;
  else c.eat('+');
  auto h = c.number(3);
  if (!h || *h > max_hours) return bad(std::string(what) + ": hours must be 0-" + std::to_string(max_hours));
  int m = 0, s = 0;
  if (c.eat(':')) {
    auto mm = c.number(2);
    if (!mm || *mm > 59) return bad(std::string(what) + ": minutes must be 00-59");
    m = *mm;
    if (c.eat(':')) {
      auto ss = c.number(2);
      if (!ss || *ss > 59) return bad(std::string(what) + ": seconds must be 00-59");
      s = *ss;
    }
  }
  return sign * (*h * 3600 + m * 60 + s);
}

core::result<posix_tz_rule::date_rule> date(cursor& c) {
  posix_tz_rule::date_rule r;
  using kind = posix_tz_rule::date_rule::kind;
  if (c.eat('J')) {
    auto n = c.number(3);
    if (!n || *n < 1 || *n > 365) return bad("'Jn' needs 1 <= n <= 365");
    r.what = kind::julian_no_leap;
    r.day = *n;
  } else if (c.eat('M')) {
    auto m = c.number(2);
    auto w = m && c.eat('.') ? c.number(1) : std::nullopt;
    auto d = w && c.eat('.') ? c.number(1) : std::nullopt;
    if (!m || !w || !d || *m < 1 || *m > 12 || *w < 1 || *w > 5 || *d > 6)
      return bad("'Mm.w.d' needs month 1-12, week 1-5, weekday 0-6");
    r.what = kind::month_week_day;
    r.month = *m;
    r.week = *w;
    r.day = *d;
  } else {
    auto n = c.number(3);
    if (!n || *n > 365) return bad("a day rule is 'Jn', 'n' (0-365) or 'Mm.w.d'");
    r.what = kind::julian_zero;
    r.day = *n;
  }
  if (c.eat('/')) {
    auto t = duration(c, 167, "rule time");
    if (!t) return t.err();
    r.time = *t;
  }
  return r;
}

}  // namespace

core::result<posix_tz_rule> parse_posix_tz(std::string_view text) {
  if (text.empty() || text.size() > 128) return bad("must be 1-128 characters");
  cursor c{text};
  posix_tz_rule rule;
  MALLORN_TRY(name(c, "standard time"));
  auto std_off = duration(c, 24, "standard offset");
  if (!std_off) return std_off.err();
  rule.std_offset = -*std_off;  // POSIX offsets count west of Greenwich
  if (c.done()) return rule;
  MALLORN_TRY(name(c, "daylight time"));
  rule.has_dst = true;
  rule.dst_offset = rule.std_offset + 3600;
  if (!c.done() && c.peek() != ',') {
    auto dst_off = duration(c, 24, "daylight offset");
    if (!dst_off) return dst_off.err();
    rule.dst_offset = -*dst_off;
  }
  if (!c.eat(',')) return bad("daylight time needs ',start[/time],end[/time]'");
  auto start = date(c);
  if (!start) return start.err();
  if (!c.eat(',')) return bad("daylight time needs an end rule after ','");
  auto end = date(c);
  if (!end) return end.err();
  if (!c.done()) return bad("unexpected text after the end rule");
  rule.start = *start;
  rule.end = *end;
  return rule;
}

std::int32_t posix_tz_rule::offset_at(std::int64_t utc) const {
  if (!has_dst) return std_offset;
  // Beyond +-30000 years nothing is meaningful; keep the arithmetic far from overflow.
  utc = std::clamp<std::int64_t>(utc, -(std::int64_t{1} << 40), std::int64_t{1} << 40);
  const std::int64_t year = year_of_days(floor_div(utc + std_offset, 86400));
  // Daylight time runs from start(y) (given in standard time) to the next end (given in daylight
  // time): end(y) when it comes after start(y), else end(y + 1) (southern hemisphere).
  auto start_of = [&](std::int64_t y) { return rule_day(start, y) * 86400 + start.time - std_offset; };
  auto end_of = [&](std::int64_t y) { return rule_day(end, y) * 86400 + end.time - dst_offset; };
  for (std::int64_t y = year - 1; y <= year + 1; ++y) {
    const std::int64_t s = start_of(y);
    std::int64_t e = end_of(y);
    if (e <= s) e = end_of(y + 1);
    if (utc >= s && utc < e) return dst_offset;
  }
  return std_offset;
}

}  // namespace mallorn::server::fleet
