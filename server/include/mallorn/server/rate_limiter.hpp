// Per-client token buckets: `rate` requests per second with bursts of up to `burst`.
// The clock is passed in, so tests need no sleeping.
//
// Bounded and O(1) per request whatever the number of clients (a flood of IPv6 sources): the
// buckets are split over shards by a hash of the client (one mutex each), and each shard keeps
// its buckets in least-recently-used order. A new client in a full shard takes the slot of the
// least recently seen bucket if that one has refilled completely (forgetting it changes
// nothing); otherwise the shard is full of active clients and the newcomer is refused.
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mallorn::server {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  // rate <= 0 disables limiting. At most `max_clients` buckets are kept (spread over the shards).
  rate_limiter(double rate, double burst, std::size_t max_clients = 100000);

  // True if the client may make a request now (and takes a token).
  bool allow(const std::string& client, clock::time_point now);
  // Seconds until the next token for this client (for Retry-After), at least 1.
  unsigned retry_after(const std::string& client, clock::time_point now);
  bool enabled() const { return rate_ > 0; }
  // Buckets held (tests check the bound).
  std::size_t size() const;
  // Buckets other than the client's own looked at so far, in total: the cost of admitting
  // newcomers into a full table (tests check it is one per newcomer, whatever the table size).
  std::size_t buckets_inspected() const { return inspected_.load(std::memory_order_relaxed); }

  static constexpr std::size_t shard_count = 16;

 private:
  struct bucket {
    std::string client;
    double tokens;
    clock::time_point updated;
  };
  struct shard {
    mutable std::mutex mutex;
    std::list<bucket> lru;  // front: most recently used
    std::unordered_map<std::string, std::list<bucket>::iterator> index;
  };
  void refill(bucket& b, clock::time_point now) const;
  shard& shard_of(const std::string& client);

  double rate_, burst_;
  std::size_t used_shards_;  // shard_count, or 1 for a small table (exact LRU over all clients)
  std::size_t per_shard_;
  std::array<shard, shard_count> shards_;
  std::atomic<std::size_t> inspected_{0};
};

}  // namespace mallorn::server
