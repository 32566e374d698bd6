// POST /check-update and POST /create-patch: which patch a device needs, built once on demand.
#include <algorithm>
#include <cctype>

#include "mallorn/server/disk_guard.hpp"
#include "mallorn/server/fleet/rollout_engine.hpp"
#include "mallorn/server/request_path.hpp"
#include "mallorn/server/router.hpp"
#include "route_json.hpp"

namespace mallorn::server {
namespace {

// A rough build time, so devices come back about when the patch is ready (diff + verify run at
// tens of MB/s at the server's levels).
unsigned retry_after_for(const model_version& source, const model_version& target) {
  const std::uint64_t bytes = source.fingerprint.file_size + target.fingerprint.file_size;
  return static_cast<unsigned>(std::clamp<std::uint64_t>(1 + bytes / (10u << 20), 1, 120));
}

std::optional<std::string> string_field(const nlohmann::json& doc, const char* name, std::size_t max_len,
                                        http_response& error) {
  if (!doc.contains(name) || doc[name].is_null()) return std::string();
  if (!doc[name].is_string() || doc[name].get_ref<const std::string&>().size() > max_len) {
    error = error_response(400, "bad_field", std::string("'") + name + "' must be a string of at most " +
                                                 std::to_string(max_len) + " characters");
    return std::nullopt;
  }
  return doc[name].get<std::string>();
}

// ASCII only, without the locale calls of isxdigit/tolower (they showed in a check-update profile).
bool is_hex(const std::string& s, std::size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

std::optional<http_response> router::check_update(const http_request& req, bool memory_only) {
  http_response error;
  auto doc = parse_json_object(req.body, error);
  if (!doc) return error;
  auto short_id = string_field(*doc, "short_id", 64, error);
  auto model = string_field(*doc, "model", 128, error);
  auto sha = string_field(*doc, "sha256", 64, error);
  auto device = string_field(*doc, "device_id", 256, error);
  auto channel = string_field(*doc, "channel", 64, error);
  auto profile = string_field(*doc, "profile", 16, error);
  if (!short_id || !model || !sha || !device || !channel || !profile) return error;
  fleet::device_tags tags;
  if (doc->contains("tags") && !(*doc)["tags"].is_null()) {
    auto parsed = fleet::parse_tags((*doc)["tags"]);
    if (!parsed) return error_response(400, "bad_tags", parsed.err().message);
    tags = std::move(*parsed);
  }
  *sha = lower(*sha);
  *short_id = lower(*short_id);
  if (profile->empty()) *profile = "standard";
  if (*profile != "standard" && *profile != "mcu")
    return error_response(400, "unsupported_profile", "profile '" + *profile + "' is not served ('standard' or 'mcu')");
  if (!device->empty() && !is_valid_device_id(*device))
    return error_response(400, "bad_device_id", "'device_id' must match [A-Za-z0-9._:@+-]{1,128}");
  if (auto denied = bind_device_id(req, *device)) return std::move(*denied);  // --device-auth
  if (!sha->empty() && !is_hex(*sha, 64)) return error_response(400, "bad_field", "'sha256' must be 64 hex characters");
  if (!short_id->empty() && !is_hex(*short_id, 16))
    return error_response(400, "bad_field", "'short_id' must be 16 hex characters");
  if (sha->empty() && short_id->empty())
    return error_response(400, "missing_field", "send 'sha256' (preferred) or the seed's 'short_id'");

  auto cat = store_.snapshot();
  const std::uint64_t generation = cache_.generation();
  const auto rollout = fleet::decide_for_device(cfg_.rollouts, *cat, *model, *sha, *short_id, *device, *channel, tags);
  using rollout_kind = fleet::decision::kind;
  if (rollout.what == rollout_kind::outside_window)
    return json_response(200, {{"update_available", false}, {"status", "outside_window"}, {"rollout", rollout.rollout_id},
                               {"next_window_start", rollout.next_window_start}});
  std::string answer_key = *sha + '|' + *short_id + '|' + *model + '|' + *channel + '|' + *profile;
  if (rollout.what != rollout_kind::no_rollouts)
    answer_key += '|' + std::to_string(rollout.rollout_id) + '|' + rollout.version;
  {
    std::shared_lock lock(answers_mutex_);
    if (auto it = answers_.find(answer_key); it != answers_.end() && it->second.catalog_seen == cat &&
                                             it->second.cache_generation == generation) {
      if (it->second.patch_ready) metrics_.cache_lookup(true);
      return it->second.response;  // prepared: shares the serialized bytes
    }
  }
  // Not cached: the patch cache may ask the index (shared: a patch another replica built, or its
  // build claim), so an I/O thread hands the request to the blocking pool (issue 18).
  if (memory_only) return std::nullopt;
  // The answer in its final form (public URLs, Cache-Control), serialized once for every device
  // that asks the same until the catalog or the patch cache changes.
  auto remember = [&](http_response r, bool patch_ready) {
    r = prepare_response(finish_check_update(std::move(r)));
    r.route = "check-update";
    std::unique_lock lock(answers_mutex_);
    if (answers_.size() >= 10000) answers_.clear();  // bounded; refilled by the next requests
    answers_[answer_key] = {cat, generation, patch_ready, r};
    return r;
  };
  const model_version* current = nullptr;
  if (!sha->empty()) {
    current = cat->find_by_sha256(*sha, *model);
    // The same bytes stored under two models (a fork, a rename): the device must say which.
    if (current && model->empty())
      for (const auto& [name, entry] : cat->models)
        if (name != current->model && cat->find_by_sha256(*sha, name))
          return error_response(409, "ambiguous_model", "several models hold this exact file; send 'model'");
  } else {
    auto matches = cat->find_by_short_id(*short_id, *model);
    if (matches.size() > 1 && std::any_of(matches.begin(), matches.end(),
                                          [&](const model_version* v) { return v->model != matches[0]->model; }))
      return error_response(409, "ambiguous_short_id", "several models share this short_id; send 'model' or 'sha256'");
    if (!matches.empty()) current = matches[0];
  }
  const std::string model_name = current ? current->model : *model;
  const model_entry* entry = cat->model(model_name);
  if (!entry) return error_response(404, "unknown_model", "the store has no model matching this request");
  const model_version* target = entry->target_for(*channel);
  if (rollout.what == rollout_kind::offer) target = entry->find(rollout.version);
  if (rollout.what == rollout_kind::hold) {
    if (!current) return json_response(200, {{"update_available", false}, {"status", "held"}, {"model", entry->name}});
    target = current;  // nothing new for this device: "up_to_date"
  }

  nlohmann::json out = {{"model", entry->name},
                        {"current_version", current ? nlohmann::json(current->version) : nlohmann::json(nullptr)},
                        {"target_version", target->version},
                        {"target_sha256", target->sha256},
                        {"target_size", target->fingerprint.file_size},
                        // target_number: the stable release number the patch header carries.
                        // target_rank is kept for older agents and equals it (they compare it
                        // with the number of the version they installed).
                        {"target_number", target->number},
                        {"target_rank", target->number},
                        {"current_number", current ? nlohmann::json(current->number) : nlohmann::json(nullptr)},
                        {"full_url", model_url(*target)},
                        {"full_size", target->fingerprint.file_size},
                        {"patch_id", nullptr},
                        {"patch_url", nullptr},
                        {"patch_size", nullptr},
                        {"patch_sha256", nullptr}};
  if (rollout.what == rollout_kind::offer) out["rollout"] = rollout.rollout_id;
  if (current && current->sha256 == target->sha256) {
    out["update_available"] = false;
    out["status"] = "up_to_date";
    return remember(json_response(200, out), false);
  }
  out["update_available"] = true;
  if (current && current->number > target->number) out["downgrade"] = true;
  if (!current) {
    // An unknown build of a known model: no patch can start from it, the full model can.
    out["status"] = "full_only";
    out["reason"] = "the device's model is not in the store; download the full model";
    return json_response(200, out);
  }

  build_job job{{current->sha256, target->sha256, *profile}, *current, *target};
  if (read_only()) {
    // Disk full: a patch already built is served; a new build could not be stored.
    auto ready = cache_.find(job.key);
    if (!ready || ready->target_number != target->number) {
      metrics_.cache_lookup(false);
      out["status"] = "busy";
      out["code"] = "disk_full";
      out["retry_after"] = disk_guard::retry_after_seconds;
      out["reason"] = "the server's disk is full and cannot build this patch now; retry later";
      auto r = json_response(503, out);
      r.set("Retry-After", std::to_string(disk_guard::retry_after_seconds));
      return r;
    }
  }
  auto status = cache_.request(job);
  metrics_.cache_lookup(status.state == build_state::ready);
  switch (status.state) {
    case build_state::ready: {
      const auto patch = patch_json(*status.patch);
      for (const auto& [k, v] : patch.items())
        if (k.rfind("patch_", 0) == 0 || k == "signed") out[k] = v;
      out["status"] = "ready";
      return remember(json_response(200, out), true);
    }
    case build_state::queued:
    case build_state::running: {
      const unsigned wait = retry_after_for(*current, *target);
      out["status"] = build_state_name(status.state);
      out["retry_after"] = wait;
      auto r = json_response(202, out);
      r.set("Retry-After", std::to_string(wait));
      return r;
    }
    case build_state::queue_full: {
      out["status"] = "busy";
      out["retry_after"] = 30;
      out["reason"] = status.error;
      auto r = json_response(503, out);
      r.set("Retry-After", "30");
      return r;
    }
    case build_state::failed: {
      if (status.transient) {  // out of descriptors or space: says nothing about the pair
        out["status"] = "busy";
        out["retry_after"] = 5;
        out["reason"] = "the server is short of resources; retry later";
        auto r = json_response(503, out);
        r.set("Retry-After", "5");
        return r;
      }
      // status.error names server paths: it is in the log, not in the answer.
      out["status"] = "full_only";
      out["reason"] = "the patch could not be built; download the full model";
      return json_response(200, out);
    }
  }
  return error_response(500, "internal", "unreachable");
}

http_response router::finish_check_update(http_response r) const {
  r = with_public_urls(std::move(r));
  r.set("Cache-Control", "no-store");  // per device and per moment: no proxy or CDN may keep it
  return r;
}

http_response router::with_public_urls(http_response r) const {
  if (cfg_.public_base.empty() || r.status >= 300) return r;
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return r;
  // The paths stay what they are: mallorn-agent only follows paths on the server it asked.
  if (doc.contains("patch_url") && doc["patch_url"].is_string())
    doc["patch_public_url"] = cfg_.public_base + doc["patch_url"].get<std::string>();
  if (doc.contains("full_url") && doc["full_url"].is_string())
    doc["full_public_url"] = cfg_.public_base + doc["full_url"].get<std::string>();
  r.body = doc.dump() + "\n";
  return r;
}

http_response router::create_patch(const http_request& req) {
  auto target_path = parse_target(req.target);
  const auto& q = target_path->query;
  auto get = [&](const char* k) { return q.count(k) ? q.at(k) : std::string(); };
  const std::string source_version = get("source_version"), target_version = get("target_version");
  std::string model = get("model");
  if (source_version.empty() || target_version.empty())
    return error_response(400, "missing_field", "create-patch needs ?source_version=&target_version=[&model=]");
  auto cat = store_.snapshot();
  if (model.empty()) {
    // The seed has a single model; with several, the pair must be unambiguous.
    std::vector<std::string> candidates;
    for (const auto& [name, entry] : cat->models)
      if (entry.find(source_version) && entry.find(target_version)) candidates.push_back(name);
    if (candidates.size() != 1)
      return error_response(candidates.empty() ? 404 : 409, candidates.empty() ? "unknown_version" : "ambiguous_model",
                            candidates.empty() ? "no model has both versions" : "several models have both versions; add &model=");
    model = candidates[0];
  }
  const model_version* source = cat->find(model, source_version);
  const model_version* target = cat->find(model, target_version);
  if (!source || !target) return error_response(404, "unknown_version", "the store has no " + model + " " +
                                                                            (!source ? source_version : target_version));
  if (source->sha256 == target->sha256)
    return error_response(400, "same_version", "source and target have the same content");
  build_job job{{source->sha256, target->sha256, "standard"}, *source, *target};
  if (read_only()) {
    auto ready = cache_.find(job.key);
    if (!ready || ready->target_number != target->number) return disk_full_response();
  }
  auto status = cache_.request(job);
  if (status.state == build_state::queued || status.state == build_state::running) {
    if (q.count("async")) {
      auto r = json_response(202, {{"status", build_state_name(status.state)}, {"model", model},
                                   {"source_version", source_version}, {"target_version", target_version}});
      r.set("Retry-After", std::to_string(retry_after_for(*source, *target)));
      return r;
    }
    status = cache_.wait(job.key, cfg_.create_patch_wait);
  }
  switch (status.state) {
    case build_state::ready: {
      auto body = patch_json(*status.patch);
      body["status"] = "ready";
      body["target_size"] = target->fingerprint.file_size;
      return json_response(200, body);
    }
    case build_state::failed: {
      if (!status.transient)
        return error_response(500, "build_failed", "the patch could not be built; the server log says why");
      auto r = error_response(503, "unavailable", "the server is short of resources; retry later");
      r.set("Retry-After", "5");
      return r;
    }
    case build_state::queue_full: {
      auto r = error_response(503, "busy", status.error);
      r.set("Retry-After", "30");
      return r;
    }
    default: {
      auto r = json_response(202, {{"status", build_state_name(status.state)}});
      r.set("Retry-After", std::to_string(retry_after_for(*source, *target)));
      return r;
    }
  }
}

}  // namespace mallorn::server
