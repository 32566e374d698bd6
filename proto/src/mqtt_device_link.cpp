// The device side of the MQTT protocol: subscribes to its offer and block topics and the
// server's presence, publishes announce / requests / status.
#include <atomic>

#include "event_queue.hpp"
#include "mallorn/proto/block_messages.hpp"
#include "mallorn/proto/device_link.hpp"
#include "mallorn/proto/mqtt_client.hpp"
#include "mallorn/proto/topics.hpp"

namespace mallorn::proto {
namespace {

class mqtt_device_link final : public device_link {
 public:
  explicit mqtt_device_link(mqtt_link_options o) : opts_(std::move(o)) {
    mqtt_options m;
    m.broker = opts_.broker;
    m.client_id = "mallorn-dev-" + opts_.device_id;
    m.subscriptions = {{device_topic(opts_.prefix, opts_.device_id, topic_kind::offer), 1},
                       {device_topic(opts_.prefix, opts_.device_id, topic_kind::block), 0},
                       {server_state_topic(opts_.prefix), 1}};
    m.on_message = [this](const std::string& topic, std::span<const std::uint8_t> payload) { on_message(topic, payload); };
    client_ = std::make_unique<mqtt_client>(std::move(m));
  }

  core::result<void> connect(std::chrono::milliseconds timeout) override {
    if (!client_->setup_error().empty()) return core::make_error(core::errc::invalid_argument, client_->setup_error());
    client_->start();
    if (!client_->wait_connected(timeout))
      return core::make_error(core::errc::io_error, "cannot reach the MQTT broker " + opts_.broker);
    return {};
  }
  core::result<void> announce(const announce_msg& m) override {
    return send(device_topic(opts_.prefix, opts_.device_id, topic_kind::announce), to_json(m), 1);
  }
  core::result<void> request(std::uint32_t session, std::span<const std::uint32_t> blocks, const block_map&) override {
    if (blocks.empty()) return {};
    const auto count = static_cast<std::uint16_t>(blocks.back() - blocks.front() + 1);
    const auto bytes = encode(make_bitmap_request(session, blocks.front(), count, blocks));
    return send(device_topic(opts_.prefix, opts_.device_id, topic_kind::request), std::string(bytes.begin(), bytes.end()), 0);
  }
  core::result<void> report(const status_msg& m) override {
    return send(device_topic(opts_.prefix, opts_.device_id, topic_kind::status), to_json(m), 1);
  }
  std::optional<link_event> next(std::chrono::milliseconds timeout) override { return events_.pop(timeout); }
  window_limits window(std::uint32_t block_size) const override {
    // Enough in flight to cover the broker round trip, little enough not to flood its queues.
    return {32, 256, std::max<std::uint64_t>(block_size, 64 << 10)};
  }
  std::chrono::milliseconds request_timeout() const override { return std::chrono::milliseconds(1500); }
  link_stats stats() const override {
    return {out_.load(), out_bytes_.load(), in_.load(), in_bytes_.load(), 0};
  }
  void close() override { client_->stop(); }

 private:
  core::result<void> send(const std::string& topic, const std::string& payload, int qos) {
    ++out_;
    out_bytes_ += payload.size();
    return client_->publish(topic, payload, qos, false);
  }

  void on_message(const std::string& topic, std::span<const std::uint8_t> payload) {
    ++in_;
    in_bytes_ += payload.size();
    if (topic == server_state_topic(opts_.prefix)) {
      if (std::string(payload.begin(), payload.end()) == "online") events_.push({link_event::kind::server_online});
      return;
    }
    auto parts = parse_device_topic(opts_.prefix, topic);
    if (!parts) return;
    if (parts->kind == topic_kind::offer) {
      if (payload.empty()) return;  // a cleared retained offer
      auto offer = parse_offer(payload);
      if (offer) events_.push({link_event::kind::offer, *offer});
    } else if (parts->kind == topic_kind::block) {
      auto blk = decode_block(payload);
      if (!blk) return;  // malformed blocks are dropped and asked for again
      link_event e{link_event::kind::block};
      e.session = blk->session;
      e.index = blk->index;
      e.data.assign(blk->data.begin(), blk->data.end());
      events_.push(std::move(e));
    }
  }

  mqtt_link_options opts_;
  std::unique_ptr<mqtt_client> client_;
  event_queue<link_event> events_;
  std::atomic<std::uint64_t> out_{0}, out_bytes_{0}, in_{0}, in_bytes_{0};
};

}  // namespace

std::unique_ptr<device_link> make_mqtt_link(const mqtt_link_options& opts) {
  return std::make_unique<mqtt_device_link>(opts);
}

}  // namespace mallorn::proto
