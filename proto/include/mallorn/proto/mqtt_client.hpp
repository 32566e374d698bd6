// A small MQTT client over Paho (async C++ API) for the bridge, the gateway and the device
// simulator: connects in the background and keeps reconnecting (1 s, doubling up to 10 s) when
// the broker is away, re-subscribes after every connect (clean sessions), and hands messages to one
// callback. Libraries do not log: state changes go to the on_state callback.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mqtt {
class async_client;
}

namespace mallorn::proto {

// "tcp://HOST:PORT" (the only scheme these programs use); invalid_argument otherwise.
core::result<void> check_broker_uri(const std::string& uri);

struct mqtt_will {
  std::string topic, payload;
  bool retained = true;
};

struct mqtt_options {
  std::string broker;  // tcp://host:port
  std::string client_id;
  std::vector<std::pair<std::string, int>> subscriptions;  // filter, QoS
  std::optional<mqtt_will> will;
  std::chrono::seconds keep_alive{20};
  std::chrono::milliseconds connect_timeout{3000};
  // Called on the supervisor thread after every (re)connect and re-subscribe.
  std::function<void()> on_connected;
  // Called for every state change with a human-readable line ("connected to ...", "lost: ...").
  std::function<void(bool connected, const std::string& what)> on_state;
  // Called on Paho's callback thread; keep it short (queue the work).
  std::function<void(const std::string& topic, std::span<const std::uint8_t> payload)> on_message;
};

class mqtt_client {
 public:
  explicit mqtt_client(mqtt_options opts);
  ~mqtt_client();
  mqtt_client(const mqtt_client&) = delete;
  mqtt_client& operator=(const mqtt_client&) = delete;

  // Starts the supervisor thread; returns at once.
  void start();
  // Waits until connected and subscribed, up to `timeout`.
  bool wait_connected(std::chrono::milliseconds timeout);
  bool connected() const { return connected_.load(); }
  // Non-empty when the client could not even be created (e.g. a malformed broker URI).
  const std::string& setup_error() const { return setup_error_; }
  // Queues a publish (does not wait for delivery); io_error when offline.
  core::result<void> publish(const std::string& topic, std::span<const std::uint8_t> payload, int qos, bool retained);
  core::result<void> publish(const std::string& topic, const std::string& text, int qos, bool retained);
  // Adds a subscription now (when connected) and after every reconnect.
  void subscribe(const std::string& filter, int qos);
  // Publishes `last` (if given) and waits up to 2 s for it, then disconnects and stops reconnecting.
  void stop(std::optional<mqtt_will> last = std::nullopt);

 private:
  void supervise();
  bool try_connect();

  mqtt_options opts_;
  std::unique_ptr<mqtt::async_client> client_;
  std::thread supervisor_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> connected_{false};
  std::string setup_error_;
};

}  // namespace mallorn::proto
