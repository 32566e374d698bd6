// libFuzzer target: the TZif parser (zone files are read by a name a device sends) must not crash
// on any bytes, must only accept increasing transitions with in-range offsets, and a parsed zone
// must answer every instant (including ones far outside its transitions) with an offset in range.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "mallorn/server/fleet/time_zone.hpp"

using namespace mallorn::server::fleet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto z = parse_tzif(std::span<const std::uint8_t>(data, size));
  if (!z) return 0;
  if (z->transitions.size() != z->offset_after.size()) std::abort();
  for (std::size_t i = 1; i < z->transitions.size(); ++i)
    if (z->transitions[i] <= z->transitions[i - 1]) std::abort();
  for (std::int64_t t : {std::int64_t{INT64_MIN}, std::int64_t{-1} << 40, std::int64_t{0}, std::int64_t{1767225600},
                         std::int64_t{4102444800}, std::int64_t{1} << 40, std::int64_t{INT64_MAX}}) {
    const auto off = z->offset_at(t);
    if (off < -200 * 3600 || off > 200 * 3600) std::abort();
  }
  return 0;
}
