#include "mallorn/server/identity/credential_cache.hpp"

namespace mallorn::server::identity {
namespace {

// One table for both kinds: the prefixes keep a device id from ever equalling a token hash.
std::string token_key(const std::string& sha) { return "t:" + sha; }
std::string device_key(const std::string& id) { return "d:" + id; }

}  // namespace

const credential_cache::entry* credential_cache::lookup(const std::string& key, clock::time_point now) {
  auto fresh = [&](const entry& e) { return now - e.confirmed < opts_.ttl; };
  if (auto it = current_.find(key); it != current_.end()) return fresh(it->second) ? &it->second : nullptr;
  auto old = previous_.find(key);
  if (old == previous_.end() || !fresh(old->second)) return nullptr;
  // Asked for again: it survives the next generation change.
  auto moved = current_.insert_or_assign(key, std::move(old->second)).first;
  previous_.erase(old);
  return &moved->second;
}

void credential_cache::insert(std::string key, entry e, std::uint64_t epoch_seen) {
  if (opts_.ttl.count() <= 0 || opts_.max_entries < 2 || epoch_seen != epoch_) return;
  if (current_.size() >= opts_.max_entries / 2 && !current_.count(key)) {
    previous_ = std::move(current_);
    current_.clear();
  }
  previous_.erase(key);
  current_.insert_or_assign(std::move(key), std::move(e));
}

std::optional<std::string> credential_cache::device_for_token(const std::string& token_sha256, std::int64_t wall_now,
                                                              clock::time_point now) {
  std::lock_guard lock(mutex_);
  const entry* e = lookup(token_key(token_sha256), now);
  if (!e || e->token_expires <= wall_now) return std::nullopt;  // expired: the index says 401
  return e->device_id;
}

std::optional<std::optional<device_state>> credential_cache::state_of(const std::string& device_id, clock::time_point now) {
  std::lock_guard lock(mutex_);
  const entry* e = lookup(device_key(device_id), now);
  if (!e) return std::nullopt;
  return e->state;
}

std::uint64_t credential_cache::epoch() const {
  std::lock_guard lock(mutex_);
  return epoch_;
}

void credential_cache::remember_token(const std::string& token_sha256, const token_holder& holder, clock::time_point now,
                                      std::uint64_t epoch_seen) {
  std::lock_guard lock(mutex_);
  insert(token_key(token_sha256), {holder.device_id, holder.expires_at, std::nullopt, now}, epoch_seen);
}

void credential_cache::remember_state(const std::string& device_id, std::optional<device_state> state, clock::time_point now,
                                      std::uint64_t epoch_seen) {
  std::lock_guard lock(mutex_);
  insert(device_key(device_id), {device_id, 0, state, now}, epoch_seen);
}

void credential_cache::forget_device(const std::string& device_id) {
  std::lock_guard lock(mutex_);
  ++epoch_;
  // A scan, but admission changes are operator actions (rare); lookups stay O(1).
  for (auto* t : {&current_, &previous_})
    std::erase_if(*t, [&](const auto& kv) { return kv.second.device_id == device_id; });
}

std::size_t credential_cache::size() const {
  std::lock_guard lock(mutex_);
  return current_.size() + previous_.size();
}

}  // namespace mallorn::server::identity
