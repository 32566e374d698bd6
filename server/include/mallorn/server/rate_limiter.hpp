// Per-client token buckets: `rate` requests per second with bursts of up to `burst`.
// The clock is passed in, so tests need no sleeping.
#pragma once
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mallorn::server {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  // rate <= 0 disables limiting. At most `max_clients` buckets are kept; full buckets are dropped
  // first when the table is full, so a flood of spoofed sources cannot grow memory without bound.
  rate_limiter(double rate, double burst, std::size_t max_clients = 100000);

  // True if the client may make a request now (and takes a token).
  bool allow(const std::string& client, clock::time_point now);
  // Seconds until the next token for this client (for Retry-After), at least 1.
  unsigned retry_after(const std::string& client, clock::time_point now);
  bool enabled() const { return rate_ > 0; }

 private:
  struct bucket {
    double tokens;
    clock::time_point updated;
  };
  void refill(bucket& b, clock::time_point now) const;
  void prune(clock::time_point now);

  double rate_, burst_;
  std::size_t max_clients_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace mallorn::server
