#include "mallorn/server/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace mallorn::server {

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_clients)
    : rate_(rate), burst_(std::max(burst, 1.0)), max_clients_(std::max<std::size_t>(max_clients, 1)) {}

void rate_limiter::refill(bucket& b, clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - b.updated).count();
  if (elapsed > 0) {
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.updated = now;
  }
}

void rate_limiter::prune(clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now);
    it = it->second.tokens >= burst_ ? buckets_.erase(it) : std::next(it);
  }
}

bool rate_limiter::allow(const std::string& client, clock::time_point now) {
  if (rate_ <= 0) return true;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) prune(now);
    if (buckets_.size() >= max_clients_) return false;  // table full of active clients: shed load
    it = buckets_.emplace(client, bucket{burst_, now}).first;
  }
  refill(it->second, now);
  if (it->second.tokens < 1.0) return false;
  it->second.tokens -= 1.0;
  return true;
}

unsigned rate_limiter::retry_after(const std::string& client, clock::time_point now) {
  if (rate_ <= 0) return 1;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(client);
  if (it == buckets_.end()) return 1;
  refill(it->second, now);
  const double missing = 1.0 - it->second.tokens;
  return missing <= 0 ? 1u : static_cast<unsigned>(std::max(1.0, std::ceil(missing / rate_)));
}

}  // namespace mallorn::server
