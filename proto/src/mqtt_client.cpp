#include "mallorn/proto/mqtt_client.hpp"

#include <mqtt/async_client.h>

namespace mallorn::proto {

core::result<void> check_broker_uri(const std::string& uri) {
  const std::string scheme = "tcp://";
  const auto colon = uri.rfind(':');
  const bool ok = uri.rfind(scheme, 0) == 0 && colon > scheme.size() && colon + 1 < uri.size() &&
                  uri.find_first_not_of("0123456789", colon + 1) == std::string::npos && uri.size() - colon - 1 <= 5;
  if (!ok) return core::make_error(core::errc::invalid_argument, "expected a broker as tcp://HOST:PORT, got '" + uri + "'");
  return {};
}

mqtt_client::mqtt_client(mqtt_options opts) : opts_(std::move(opts)) {
  try {
    client_ = std::make_unique<mqtt::async_client>(opts_.broker, opts_.client_id);
  } catch (const mqtt::exception& e) {
    setup_error_ = "MQTT client for " + opts_.broker + ": " + e.what();
    return;
  }
  client_->set_message_callback([this](mqtt::const_message_ptr msg) {
    if (!opts_.on_message) return;
    const auto& p = msg->get_payload_ref();
    opts_.on_message(msg->get_topic(), {reinterpret_cast<const std::uint8_t*>(p.data()), p.size()});
  });
  client_->set_connection_lost_handler([this](const std::string& cause) {
    connected_ = false;
    if (opts_.on_state) opts_.on_state(false, "connection to " + opts_.broker + " lost" + (cause.empty() ? "" : ": " + cause));
    cv_.notify_all();
  });
}

mqtt_client::~mqtt_client() { stop(); }

void mqtt_client::start() {
  std::lock_guard lock(mutex_);
  if (!client_ || supervisor_.joinable() || stopping_) return;
  supervisor_ = std::thread([this] { supervise(); });
}

bool mqtt_client::try_connect() {
  auto builder = mqtt::connect_options_builder()
                     .clean_session(true)
                     .keep_alive_interval(opts_.keep_alive)
                     .connect_timeout(std::chrono::duration_cast<std::chrono::seconds>(opts_.connect_timeout) + std::chrono::seconds(1));
  if (opts_.will) builder.will(mqtt::message(opts_.will->topic, opts_.will->payload, 1, opts_.will->retained));
  try {
    auto tok = client_->connect(builder.finalize());
    if (!tok->wait_for(opts_.connect_timeout + std::chrono::seconds(1))) return false;
    std::vector<std::pair<std::string, int>> subs;
    {
      std::lock_guard lock(mutex_);
      subs = opts_.subscriptions;
    }
    for (const auto& [filter, qos] : subs) client_->subscribe(filter, qos)->wait_for(opts_.connect_timeout);
  } catch (const mqtt::exception& e) {
    if (opts_.on_state) opts_.on_state(false, "cannot connect to " + opts_.broker + ": " + e.what());
    return false;
  }
  connected_ = true;
  if (opts_.on_state) opts_.on_state(true, "connected to " + opts_.broker);
  if (opts_.on_connected) opts_.on_connected();
  cv_.notify_all();
  return true;
}

void mqtt_client::supervise() {
  auto backoff = std::chrono::milliseconds(1000);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!connected_) {
      lock.unlock();
      const bool ok = try_connect();
      lock.lock();
      if (ok) {
        backoff = std::chrono::milliseconds(1000);
        continue;
      }
      cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
      continue;
    }
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !connected_; });
  }
}

bool mqtt_client::wait_connected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return connected_.load() || stopping_; }) && connected_;
}

core::result<void> mqtt_client::publish(const std::string& topic, std::span<const std::uint8_t> payload, int qos,
                                        bool retained) {
  if (!connected_ || !client_) return core::make_error(core::errc::io_error, "not connected to " + opts_.broker);
  try {
    client_->publish(topic, payload.data(), payload.size(), qos, retained);
  } catch (const mqtt::exception& e) {
    return core::make_error(core::errc::io_error, "publish " + topic + ": " + e.what());
  }
  return {};
}

core::result<void> mqtt_client::publish(const std::string& topic, const std::string& text, int qos, bool retained) {
  return publish(topic, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, qos, retained);
}

void mqtt_client::subscribe(const std::string& filter, int qos) {
  {
    std::lock_guard lock(mutex_);
    opts_.subscriptions.emplace_back(filter, qos);
  }
  if (!connected_ || !client_) return;
  try {
    client_->subscribe(filter, qos);
  } catch (const mqtt::exception&) {
    // Offline after all: the next connect subscribes.
  }
}

void mqtt_client::stop(std::optional<mqtt_will> last) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !supervisor_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
  if (!client_) return;
  try {
    if (client_->is_connected()) {
      if (last) client_->publish(last->topic, last->payload.data(), last->payload.size(), 1, last->retained)->wait_for(std::chrono::seconds(2));
      // Up to 2 s for in-flight QoS 1 messages (a device's final report) to be acknowledged.
      client_->disconnect(2000)->wait_for(std::chrono::seconds(3));
    }
  } catch (const mqtt::exception&) {
    // Going away anyway; the broker publishes the will if the disconnect did not get through.
  }
  connected_ = false;
}

}  // namespace mallorn::proto
