// check-update's rollout decision for one device, the same for HTTP (routes_update.cpp) and the
// MQTT bridge: the device's version is looked up in the catalog snapshot, the engine answers with
// a hash and map lookups (no SQL), and an offer is noted for the per-rollout counts.
#include "mallorn/server/fleet/rollout_engine.hpp"
#include "mallorn/server/model_store.hpp"

namespace mallorn::server::fleet {

decision decide_for_device(rollout_engine* engine, const catalog& cat, const std::string& model,
                           const std::string& sha, const std::string& short_id, const std::string& device,
                           const std::string& channel, const device_tags& tags) {
  // Devices that follow a channel keep following it (docs/rollouts.md).
  if (!engine || !channel.empty()) return {};
  const model_version* current = sha.empty() ? nullptr : cat.find_by_sha256(sha, model);
  if (!current && !short_id.empty())
    if (auto matches = cat.find_by_short_id(short_id, model); !matches.empty()) current = matches[0];
  const model_entry* entry = cat.model(current ? current->model : model);
  if (!entry) return {};
  auto rank_of = [&](const std::string& v) -> std::uint64_t {
    const auto* found = entry->find(v);
    return found ? found->rank : 0;
  };
  auto d = engine->decide(entry->name, device, tags, current ? current->rank : 0, rank_of);
  if (d.what == decision::kind::offer && (!current || current->version != d.version))
    engine->note_offered(d.rollout_id, device);
  return d;
}

}  // namespace mallorn::server::fleet
