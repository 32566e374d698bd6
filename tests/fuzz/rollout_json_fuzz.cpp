// libFuzzer target: the rollout, group, window and tags parsers on arbitrary JSON text must not
// crash, must only accept what they promise (bounded, increasing stages, rates in 0..1), and
// what they accept must survive a round trip through to_json().
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mallorn/server/fleet/rollout_spec.hpp"

using namespace mallorn::server::fleet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  auto doc = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (doc.is_discarded()) return 0;
  if (auto r = parse_rollout(doc); r) {
    if (r->stages.empty() || r->stages.size() > max_stages) std::abort();
    for (std::size_t i = 0; i < r->stages.size(); ++i)
      if (!(r->stages[i] > 0 && r->stages[i] <= 100) || (i && r->stages[i] <= r->stages[i - 1])) std::abort();
    if (!(r->max_failure_rate >= 0 && r->max_failure_rate <= 1) || r->min_reports < 1) std::abort();
    auto again = parse_rollout(r->to_json());
    if (!again || again->to_json() != r->to_json()) std::abort();
  }
  if (auto g = parse_group(doc); g) {
    if (g->devices.size() > max_group_devices || g->match.size() > max_selectors) std::abort();
    auto again = parse_group(g->to_json());
    if (!again || again->to_json() != g->to_json()) std::abort();
    (void)g->matches("device", {{"site", "x"}});
  }
  if (auto w = parse_window(doc); w) {
    const std::int64_t t = 1767225600;
    // Zone names are resolved by the engine; the window's arithmetic is checked at a fixed offset.
    const fixed_zone zone(parse_utc_offset(w->tz).value_or(0) * 60);
    const auto next = w->next_open(t, zone);
    if (next < t || next > t + 8 * 86400 || !w->open_at(next, zone)) std::abort();
  }
  if (auto tags = parse_tags(doc); tags && tags->size() > max_tags) std::abort();
  return 0;
}
