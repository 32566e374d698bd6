// Device credentials the index confirmed a moment ago, so that an I/O thread authenticates a
// device from memory and never waits on the index (issue 18): a token's SHA-256 -> its device and
// expiry, and (mTLS) a device id -> its admission state. A miss is resolved on the blocking pool
// by the caller, which then remembers the answer here.
//
// How stale an entry may be is the price: an entry is trusted for `ttl` after the index confirmed
// it. A revocation made on another replica (sharing PostgreSQL) therefore takes effect here
// within `ttl`; one made through this process (router::admission, enroll) forgets the device at
// once, and a token past its own expiry is refused whatever the cache holds. Unknown tokens are
// not remembered (a flood of random tokens cannot push out the good ones).
//
// Bounded: at most `max_entries`, O(1) per call. Entries live in two generations; when the
// current one is half the budget it becomes the previous one and the old previous is dropped,
// so what is dropped is what nobody asked for during a whole generation.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "mallorn/server/identity/device_registry.hpp"

namespace mallorn::server::identity {

class credential_cache {
 public:
  using clock = std::chrono::steady_clock;
  struct options {
    std::chrono::seconds ttl{10};      // 0: nothing is remembered (every request asks the index)
    std::size_t max_entries = 100000;  // tokens and devices together
  };
  explicit credential_cache(options o) : opts_(o) {}

  // The device holding this token, if the index said so less than ttl ago and the token has not
  // expired by `wall_now` (unix seconds); nullopt: ask the index.
  std::optional<std::string> device_for_token(const std::string& token_sha256, std::int64_t wall_now, clock::time_point now);
  // The registry's state of a device: nullopt = ask the index; a held nullopt = not enrolled.
  std::optional<std::optional<device_state>> state_of(const std::string& device_id, clock::time_point now);

  // Read epoch() before asking the index and pass it here: an answer that raced with a local
  // admission change (forget_device after the index read) is not remembered.
  std::uint64_t epoch() const;
  void remember_token(const std::string& token_sha256, const token_holder& holder, clock::time_point now,
                      std::uint64_t epoch_seen);
  void remember_state(const std::string& device_id, std::optional<device_state> state, clock::time_point now,
                      std::uint64_t epoch_seen);
  // An admission change made here: the device's tokens and state are forgotten at once.
  void forget_device(const std::string& device_id);

  std::size_t size() const;  // tests check the bound

 private:
  struct entry {
    std::string device_id;
    std::int64_t token_expires = 0;       // tokens
    std::optional<device_state> state;    // devices
    clock::time_point confirmed;
  };
  using table = std::unordered_map<std::string, entry>;
  // The fresh entry under `key`, moved into the current generation; nullptr if none.
  const entry* lookup(const std::string& key, clock::time_point now);
  void insert(std::string key, entry e, std::uint64_t epoch_seen);

  options opts_;
  mutable std::mutex mutex_;  // held for map operations only, never across an index call
  table current_, previous_;
  std::uint64_t epoch_ = 0;
};

}  // namespace mallorn::server::identity
