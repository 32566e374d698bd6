// TZif files (RFC 8536): the v1 block is skipped, the 64-bit v2+ block gives the transitions and
// the footer gives the rule after them. Every count is checked against the bytes that remain
// before anything is read; a file with leap seconds ("right/" zones) is refused, because its
// times do not count like unix time.
#include <algorithm>

#include "mallorn/server/fleet/time_zone.hpp"

namespace mallorn::server::fleet {
namespace {

core::error bad(const std::string& message) { return core::make_error(core::errc::invalid_argument, "TZif: " + message); }

struct reader {
  std::span<const std::uint8_t> b;
  std::size_t at = 0;
  std::size_t left() const { return b.size() - at; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | b[at++];
    return v;
  }
  std::int64_t i64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | b[at++];
    return static_cast<std::int64_t>(v);
  }
};

struct header {
  std::uint8_t version = 0;
  std::uint32_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
  // Bytes of the data block that follows, for `time_size`-byte times.
  std::uint64_t data_size(std::uint64_t time_size) const {
    return std::uint64_t{timecnt} * time_size + timecnt + std::uint64_t{typecnt} * 6 + charcnt +
           std::uint64_t{leapcnt} * (time_size + 4) + isstdcnt + isutcnt;
  }
};

core::result<header> read_header(reader& r) {
  if (r.left() < 44) return bad("truncated header");
  if (r.b[r.at] != 'T' || r.b[r.at + 1] != 'Z' || r.b[r.at + 2] != 'i' || r.b[r.at + 3] != 'f')
    return bad("not a TZif file (bad magic)");
  header h;
  h.version = r.b[r.at + 4];
  if (h.version != 0 && (h.version < '2' || h.version > '4')) return bad("unknown version");
  r.at += 20;
  h.isutcnt = r.u32();
  h.isstdcnt = r.u32();
  h.leapcnt = r.u32();
  h.timecnt = r.u32();
  h.typecnt = r.u32();
  h.charcnt = r.u32();
  if (h.typecnt == 0 || h.typecnt > 256) return bad("1-256 local time types");
  if (h.charcnt == 0) return bad("no time zone designations");
  if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt))
    return bad("UT/standard indicator counts differ from the type count");
  return h;
}

}  // namespace

core::result<tzif_zone> parse_tzif(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > max_tzif_bytes) return bad("larger than " + std::to_string(max_tzif_bytes) + " bytes");
  reader r{bytes};
  auto v1 = read_header(r);
  if (!v1) return v1.err();
  if (v1->version == 0) return bad("version 1 files (32-bit times, no rule) are not supported");
  if (v1->data_size(4) > r.left()) return bad("truncated version 1 data");
  r.at += static_cast<std::size_t>(v1->data_size(4));
  auto h = read_header(r);
  if (!h) return h.err().with("second header");
  if (h->leapcnt != 0) return bad("zones with leap seconds are not supported");
  if (h->data_size(8) > r.left()) return bad("truncated data");

  tzif_zone z;
  z.transitions.reserve(h->timecnt);
  for (std::uint32_t i = 0; i < h->timecnt; ++i) {
    z.transitions.push_back(r.i64());
    if (i && z.transitions[i] <= z.transitions[i - 1]) return bad("transition times are not increasing");
  }
  std::vector<std::uint8_t> type_of(r.b.begin() + static_cast<std::ptrdiff_t>(r.at),
                                    r.b.begin() + static_cast<std::ptrdiff_t>(r.at + h->timecnt));
  r.at += h->timecnt;
  std::vector<std::int32_t> offsets;
  for (std::uint32_t i = 0; i < h->typecnt; ++i) {
    const auto off = static_cast<std::int32_t>(r.u32());
    r.at += 2;  // is_dst, designation index: not needed for offsets
    if (off < -89999 || off > 93599) return bad("a UT offset is out of range");
    offsets.push_back(off);
  }
  r.at += h->charcnt + h->isstdcnt + h->isutcnt;
  for (std::uint8_t t : type_of) {
    if (t >= h->typecnt) return bad("a transition names a type that does not exist");
    z.offset_after.push_back(offsets[t]);
  }
  z.initial_offset = offsets[0];

  // Footer: "\n" rule "\n"; an empty rule means "no rule" (the last type holds).
  if (r.left() < 2 || r.b[r.at] != '\n') return bad("missing footer");
  const auto* from = r.b.data() + r.at + 1;
  const auto* end = std::find(from, r.b.data() + r.b.size(), std::uint8_t{'\n'});
  if (end == r.b.data() + r.b.size()) return bad("unterminated footer");
  const std::string_view rule(reinterpret_cast<const char*>(from), static_cast<std::size_t>(end - from));
  if (!rule.empty()) {
    auto p = parse_posix_tz(rule);
    if (!p) return p.err().with("TZif footer");
    z.footer = *p;
  }
  return z;
}

std::int32_t tzif_zone::offset_at(std::int64_t utc) const {
  if (transitions.empty() || utc < transitions.front()) {
    if (transitions.empty() && footer) return footer->offset_at(utc);
    return initial_offset;
  }
  if (utc >= transitions.back() && footer) return footer->offset_at(utc);
  const auto i = std::upper_bound(transitions.begin(), transitions.end(), utc) - transitions.begin() - 1;
  return offset_after[static_cast<std::size_t>(i)];
}

}  // namespace mallorn::server::fleet
