// libFuzzer target: the POSIX TZ rule parser (the footer of a TZif file) must not crash on any
// text, and an accepted rule must give one of its two offsets for every instant, with the
// calendar arithmetic far from overflow even at the ends of time.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mallorn/server/fleet/time_zone.hpp"

using namespace mallorn::server::fleet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = parse_posix_tz(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r) return 0;
  for (std::int64_t t = -(std::int64_t{1} << 41); t < (std::int64_t{1} << 41); t += std::int64_t{1} << 37) {
    const auto off = r->offset_at(t);
    if (off != r->std_offset && !(r->has_dst && off == r->dst_offset)) std::abort();
  }
  for (std::int64_t t : {std::int64_t{INT64_MIN}, std::int64_t{0}, std::int64_t{1767225600}, std::int64_t{INT64_MAX}})
    (void)r->offset_at(t);
  return 0;
}
