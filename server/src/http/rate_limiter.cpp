#include "mallorn/server/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace mallorn::server {

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_clients)
    : rate_(rate),
      burst_(std::max(burst, 1.0)),
      used_shards_(max_clients >= shard_count * 256 ? shard_count : 1),
      per_shard_(std::max<std::size_t>((std::max<std::size_t>(max_clients, 1) + used_shards_ - 1) / used_shards_, 1)) {}

void rate_limiter::refill(bucket& b, clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - b.updated).count();
  if (elapsed > 0) {
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.updated = now;
  }
}

rate_limiter::shard& rate_limiter::shard_of(const std::string& client) {
  return shards_[std::hash<std::string>{}(client) % used_shards_];
}

bool rate_limiter::allow(const std::string& client, clock::time_point now) {
  if (rate_ <= 0) return true;
  auto& s = shard_of(client);
  std::lock_guard lock(s.mutex);
  auto found = s.index.find(client);
  std::list<bucket>::iterator it;
  if (found != s.index.end()) {
    it = found->second;
    s.lru.splice(s.lru.begin(), s.lru, it);  // most recently used first
  } else {
    if (s.index.size() >= per_shard_) {
      // Only the least recently used bucket is looked at: O(1). If even it is still refilling,
      // every bucket here belongs to an active client: shed the newcomer.
      auto& oldest = s.lru.back();
      inspected_.fetch_add(1, std::memory_order_relaxed);
      refill(oldest, now);
      if (oldest.tokens < burst_) return false;
      s.index.erase(oldest.client);
      s.lru.pop_back();
    }
    s.lru.push_front({client, burst_, now});
    it = s.lru.begin();
    s.index.emplace(client, it);
  }
  refill(*it, now);
  if (it->tokens < 1.0) return false;
  it->tokens -= 1.0;
  return true;
}

unsigned rate_limiter::retry_after(const std::string& client, clock::time_point now) {
  if (rate_ <= 0) return 1;
  auto& s = shard_of(client);
  std::lock_guard lock(s.mutex);
  auto found = s.index.find(client);
  if (found == s.index.end()) return 1;
  refill(*found->second, now);
  const double missing = 1.0 - found->second->tokens;
  return missing <= 0 ? 1u : static_cast<unsigned>(std::max(1.0, std::ceil(missing / rate_)));
}

std::size_t rate_limiter::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.index.size();
  }
  return n;
}

}  // namespace mallorn::server
