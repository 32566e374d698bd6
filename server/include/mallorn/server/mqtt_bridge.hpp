// mallornd's MQTT bridge: speaks docs/protocol.md to devices through a broker, using the same
// store and patch cache as the HTTP routes. A device announces its model, gets an offer (the
// patch built on demand, pushed when a queued build finishes), asks for blocks by bitmap or
// range, and reports progress and the result (stored like POST /report).
//
// Threads: Paho's callback thread only queues messages; one worker handles them in order,
// re-checks queued builds and expires idle sessions. Everything is off unless --mqtt-broker is set.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "mallorn/server/index_db.hpp"
#include "mallorn/server/keyring_source.hpp"
#include "mallorn/server/metrics.hpp"
#include "mallorn/server/model_store.hpp"
#include "mallorn/server/patch_cache.hpp"

namespace mallorn::server {
namespace fleet {
class rollout_engine;
}

struct mqtt_bridge_options {
  std::string broker;  // tcp://host:port
  std::string client_id = "mallornd";
  std::string prefix = "mallorn/v1";
  std::uint32_t max_block = 4096;  // blocks are min(device's max_block, this)
  std::chrono::seconds session_idle{600};
  std::size_t max_queue = 10000;  // messages waiting for the worker; more are dropped
  // --keyring: the binary keyring is kept as a retained message on <prefix>/keyring (republished
  // on every connect and when the served version changes).
  std::shared_ptr<keyring_source> keyring;
  // Device ids are free to invent: at most this many download sessions (one per device id, the
  // patch file's descriptor shared by every session of that patch) and devices waiting for a
  // build. Past either, a new device is told to wait (retry_after 30) and nothing is kept.
  std::size_t max_sessions = 10000;
  std::size_t max_waiting = 10000;
  // Staged rollouts (docs/rollouts.md): the same decision as HTTP check-update, and reports feed
  // the rollouts' counts and health gate. nullptr: every device is offered the latest version.
  fleet::rollout_engine* rollouts = nullptr;
};

class mqtt_bridge {
 public:
  mqtt_bridge(mqtt_bridge_options opts, model_store& store, patch_cache& cache, index_db& db, metrics& m);
  ~mqtt_bridge();
  mqtt_bridge(const mqtt_bridge&) = delete;
  mqtt_bridge& operator=(const mqtt_bridge&) = delete;

  // Connects in the background (retrying while the broker is away) and starts the worker.
  void start();
  // Publishes "offline", disconnects and joins the worker.
  void stop();

  // Sessions open and devices waiting for a build (gauges; tests check the bounds).
  std::size_t sessions() const;
  std::size_t waiting() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mallorn::server
