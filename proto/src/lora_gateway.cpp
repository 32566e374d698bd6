#include "mallorn/proto/lora_gateway.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "event_queue.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/proto/block_messages.hpp"
#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/topics.hpp"

namespace mallorn::proto {

using clock = std::chrono::steady_clock;

struct lora_gateway::queue : event_queue<mqtt_in> {};

struct lora_gateway::device {
  std::uint32_t addr = 0;
  std::string id;
  sockaddr_in endpoint{};
  // The offer in force.
  std::uint32_t session = 0, block_size = 0;
  std::uint64_t patch_size = 0;
  // The generation being served.
  std::uint16_t gen = 0;
  bool gen_open = false, gen_sent = false;
  radio_request gen_request;  // to tell a repeated request from a new one
  std::vector<std::uint32_t> blocks;
  std::map<std::uint32_t, std::vector<std::uint8_t>> got;
  std::optional<frag_encoder> encoder;
  std::uint32_t next_parity = 1, sent_in_gen = 0;
  clock::time_point requested_at, sent_at;
  int re_requests = 0;
  double loss_estimate = 0.1;
  // Counters for the benchmark.
  std::uint64_t frames_down = 0, bytes_down = 0, lost_down = 0, frames_up = 0, bytes_up = 0, generations = 0, more = 0;
  std::string state = "announced";
  std::uint32_t final_session = 0;  // the session whose final report was forwarded
};

std::string lora_device_id(std::uint32_t addr) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", addr);
  return std::string("lora-") + buf;
}

lora_gateway::lora_gateway(gateway_options opts) : opts_(std::move(opts)), inbox_(std::make_unique<queue>()) {}
lora_gateway::~lora_gateway() {
  if (mqtt_) mqtt_->stop();
}

void lora_gateway::log(int level, const std::string& line) const {
  if (opts_.log) opts_.log(level, line);
}

core::result<void> lora_gateway::start() {
  MALLORN_TRY(validate(opts_.radio));
  auto air = udp_air::open(opts_.radio_port);
  if (!air) return air.err();
  air_.emplace(std::move(*air));
  downlink_ = std::make_unique<radio_link>(opts_.radio);
  mqtt_options m;
  m.broker = opts_.broker;
  m.client_id = opts_.client_id;
  m.on_message = [this](const std::string& topic, std::span<const std::uint8_t> p) {
    inbox_->push({topic, {p.begin(), p.end()}});
  };
  m.on_state = [this](bool up, const std::string& what) { log(up ? 1 : 2, "mqtt: " + what); };
  mqtt_ = std::make_unique<mqtt_client>(std::move(m));
  if (!mqtt_->setup_error().empty()) return core::make_error(core::errc::invalid_argument, mqtt_->setup_error());
  mqtt_->start();
  return {};
}

std::uint16_t lora_gateway::radio_port() const { return air_ ? air_->port() : 0; }

void lora_gateway::run() {
  auto last_tick = clock::now();
  while (!stopping_) {
    if (auto d = air_->receive(5)) on_uplink(*d);
    while (auto m = inbox_->pop(std::chrono::milliseconds(0))) on_mqtt(*m);
    if (clock::now() - last_tick > std::chrono::milliseconds(200)) {
      tick();
      last_tick = clock::now();
    }
  }
  write_stats();
}

lora_gateway::device& lora_gateway::device_for(std::uint32_t addr, const sockaddr_in& from) {
  auto& slot = devices_[addr];
  if (!slot) {
    slot = std::make_unique<device>();
    slot->addr = addr;
    slot->id = lora_device_id(addr);
    slot->loss_estimate = opts_.assumed_loss;
    by_id_[slot->id] = addr;
    mqtt_->subscribe(device_topic(opts_.prefix, slot->id, topic_kind::offer), 1);
    mqtt_->subscribe(device_topic(opts_.prefix, slot->id, topic_kind::block), 0);
    log(1, "device " + slot->id + " heard on the radio");
  }
  slot->endpoint = from;  // devices may move (a new socket after a reboot)
  return *slot;
}

void lora_gateway::on_uplink(const udp_air::datagram& dg) {
  auto frame = decode_frame(dg.bytes);
  if (!frame) {
    log(0, std::string("dropping a malformed uplink: ") + frame.err().what());
    return;
  }
  auto& d = device_for(frame_addr(*frame), dg.from);
  d.frames_up++;
  d.bytes_up += dg.bytes.size();
  auto publish = [&](topic_kind k, const std::string& payload, int qos) {
    if (auto r = mqtt_->publish(device_topic(opts_.prefix, d.id, k), payload, qos, false); !r)
      log(2, d.id + ": " + r.err().what());
  };
  if (const auto* a = std::get_if<radio_announce>(&*frame)) {
    d.gen_open = false;  // a (re)booted device starts its generations afresh
    d.sent_in_gen = 0;
    announce_msg m;
    m.sha256 = core::to_hex(a->sha256);
    m.free_ram = a->free_ram;
    m.max_block = std::min<std::uint32_t>(a->max_block, opts_.max_block);
    publish(topic_kind::announce, to_json(m), 1);
  } else if (const auto* r = std::get_if<radio_request>(&*frame)) {
    start_generation(d, *r);
  } else if (const auto* more = std::get_if<radio_more>(&*frame)) {
    if (more->gen != d.gen || !d.gen_sent || more->needed == 0) return;
    d.more++;
    // What the device heard of this generation so far measures its link better than any prior.
    if (d.sent_in_gen > 0) {
      const double heard = std::min<double>(more->rx, d.sent_in_gen) / d.sent_in_gen;
      d.loss_estimate = 0.3 * d.loss_estimate + 0.7 * (1 - heard);
    }
    send_parity(d, parity_budget(d, more->needed));
  } else if (const auto* s = std::get_if<radio_status>(&*frame)) {
    status_msg m{s->session, static_cast<device_state>(s->state), s->received, d.patch_size};
    m.error = device_error_name(static_cast<device_error>(s->error));
    const bool repeat = m.final() && d.final_session == s->session;
    d.state = device_state_name(m.state);
    if (m.final()) d.final_session = s->session;
    // Final reports are confirmed: the device repeats one until this ack gets through.
    if (m.final()) send_frame(d, radio_ack{d.addr, s->session});
    if (repeat) return;  // forwarded once
    publish(topic_kind::status, to_json(m), 1);
    if (m.final()) {
      log(1, d.id + ": update " + d.state + " after " + std::to_string(d.frames_down) + " downlink frames");
      write_stats();
    }
  }
}

void lora_gateway::start_generation(device& d, const radio_request& r) {
  const bool repeat = d.gen_open && r.gen == d.gen && r.session == d.gen_request.session && r.first == d.gen_request.first &&
                      r.count == d.gen_request.count && r.bitmap == d.gen_request.bitmap;
  if (repeat) {
    // The device heard nothing of this generation: send it the fragments again, as new parity.
    // A repeat that crossed the burst on the air (sent before any of it arrived) is ignored.
    if (d.gen_sent && clock::now() - d.sent_at > std::chrono::milliseconds(1000)) {
      d.sent_at = clock::now();
      send_parity(d, parity_budget(d, d.encoder->fragments()));
    }
    return;
  }
  if (d.sent_in_gen > 0) {
    // What the device heard of the last generation tells how lossy its link is.
    const double heard = std::min<double>(r.prev_rx, d.sent_in_gen) / d.sent_in_gen;
    d.loss_estimate = 0.5 * d.loss_estimate + 0.5 * (1 - heard);
  }
  d.gen = r.gen;
  d.gen_request = r;
  d.gen_open = true;
  d.gen_sent = false;
  d.session = r.session;
  d.blocks.clear();
  d.got.clear();
  d.encoder.reset();
  d.next_parity = 1;
  d.sent_in_gen = 0;
  d.re_requests = 0;
  d.generations++;
  bitmap_request req{r.session, r.first, r.count, r.bitmap};
  for (std::uint32_t i = 0; i < r.count; ++i)
    if (req.wants(i)) d.blocks.push_back(r.first + i);
  d.requested_at = clock::now();
  const auto bytes = encode(req);
  if (auto p = mqtt_->publish(device_topic(opts_.prefix, d.id, topic_kind::request), bytes, 0, false); !p)
    log(2, d.id + ": " + p.err().what());
}

void lora_gateway::on_mqtt(const mqtt_in& m) {
  auto parts = parse_device_topic(opts_.prefix, m.topic);
  if (!parts) return;
  auto it = by_id_.find(parts->device_id);
  if (it == by_id_.end()) return;
  auto& d = *devices_.at(it->second);
  if (parts->kind == topic_kind::offer) {
    if (m.payload.empty()) return;
    auto offer = parse_offer(m.payload);
    if (!offer) {
      log(2, d.id + ": bad offer from the server: " + offer.err().what());
      return;
    }
    radio_offer f{d.addr, static_cast<std::uint8_t>(offer->status)};
    if (offer->status == offer_status::wait) f.patch_size = offer->retry_after;
    if (offer->status == offer_status::ready) {
      if (offer->patch_size > UINT32_MAX || offer->block_size > UINT16_MAX) {
        log(2, d.id + ": offer too large for the radio protocol");
        return;
      }
      d.session = f.session = offer->session;
      d.patch_size = f.patch_size = static_cast<std::uint32_t>(offer->patch_size);
      d.block_size = f.block_size = static_cast<std::uint16_t>(offer->block_size);
      f.frag_size = static_cast<std::uint8_t>(opts_.radio.frame_size - fragment_header_size);
      core::from_hex(offer->patch_sha256, f.patch_sha256);
      d.state = "offered";
    }
    send_frame(d, f);
  } else if (parts->kind == topic_kind::block) {
    auto blk = decode_block(m.payload);
    if (!blk || blk->session != d.session || !d.gen_open || d.gen_sent) return;
    if (std::find(d.blocks.begin(), d.blocks.end(), blk->index) == d.blocks.end()) return;
    d.got[blk->index].assign(blk->data.begin(), blk->data.end());
    if (d.got.size() == d.blocks.size()) send_generation(d);
  }
}

std::uint32_t lora_gateway::parity_budget(const device& d, std::uint32_t needed) const {
  // Enough that `needed` survive the expected loss, plus one for the random code's shortfall.
  const double p = std::clamp(d.loss_estimate, 0.0, 0.9);
  return static_cast<std::uint32_t>(std::ceil(needed * p / (1 - p))) + needed + 1;
}

void lora_gateway::send_generation(device& d) {
  std::vector<std::uint8_t> data;
  for (auto i : d.blocks) data.insert(data.end(), d.got[i].begin(), d.got[i].end());
  d.encoder.emplace(data, static_cast<std::uint32_t>(opts_.radio.frame_size - fragment_header_size));
  d.gen_sent = true;
  d.sent_at = clock::now();
  const auto m = d.encoder->fragments();
  for (std::uint32_t i = 1; i <= m; ++i) {
    const auto frag = d.encoder->fragment(i);
    send_frame(d, radio_fragment{d.addr, d.gen, static_cast<std::uint16_t>(i), frag});
  }
  // Half the parity the expected loss calls for: the device's "more" (which also tells the loss
  // it sees) fills the rest exactly, so a better link than assumed wastes little air time.
  send_parity(d, (parity_budget(d, m) - m) / 2);
}

void lora_gateway::send_parity(device& d, std::uint32_t count) {
  const auto m = d.encoder->fragments();
  for (std::uint32_t k = 0; k < count && m + d.next_parity <= 0xFFFF; ++k, ++d.next_parity) {
    const auto frag = d.encoder->fragment(m + d.next_parity);
    send_frame(d, radio_fragment{d.addr, d.gen, static_cast<std::uint16_t>(m + d.next_parity), frag});
  }
}

void lora_gateway::send_frame(device& d, const radio_frame& f) {
  const auto bytes = encode(f);
  d.frames_down++;
  d.bytes_down += bytes.size();
  if (std::holds_alternative<radio_fragment>(f)) d.sent_in_gen++;
  if (!downlink_->transmit(bytes.size())) {
    d.lost_down++;
    return;
  }
  if (auto r = air_->send_to(d.endpoint, bytes); !r) log(2, d.id + ": " + r.err().what());
}

void lora_gateway::tick() {
  // Blocks the server did not deliver (a QoS 0 message lost, a server restart): ask again.
  for (auto& [addr, dp] : devices_) {
    auto& d = *dp;
    if (!d.gen_open || d.gen_sent || clock::now() - d.requested_at < std::chrono::seconds(2) || d.re_requests >= 3) continue;
    std::vector<std::uint32_t> missing;
    for (auto i : d.blocks)
      if (!d.got.count(i)) missing.push_back(i);
    if (missing.empty()) continue;
    const auto count = static_cast<std::uint16_t>(missing.back() - missing.front() + 1);
    const auto bytes = encode(make_bitmap_request(d.session, missing.front(), count, missing));
    (void)mqtt_->publish(device_topic(opts_.prefix, d.id, topic_kind::request), bytes, 0, false);
    d.requested_at = clock::now();
    d.re_requests++;
  }
}

std::string lora_gateway::stats_json() const {
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& [addr, d] : devices_)
    devices.push_back({{"device_id", d->id},          {"state", d->state},           {"frames_down", d->frames_down},
                       {"bytes_down", d->bytes_down}, {"lost_down", d->lost_down},   {"frames_up", d->frames_up},
                       {"bytes_up", d->bytes_up},     {"generations", d->generations}, {"more_requests", d->more},
                       {"loss_estimate", d->loss_estimate}});
  const auto c = downlink_ ? downlink_->counters() : link_counters{};
  return nlohmann::json{{"devices", devices},
                        {"downlink", {{"frames", c.frames}, {"bytes", c.bytes}, {"lost", c.lost}, {"air_time_s", c.air_time_s},
                                      {"duty_cycle_clock_s", c.clock_s}}},
                        {"radio", {{"loss", opts_.radio.loss}, {"frame_size", opts_.radio.frame_size},
                                   {"duty_cycle", opts_.radio.duty_cycle}, {"spreading_factor", opts_.radio.spreading_factor}}}}
      .dump();
}

void lora_gateway::write_stats() const {
  if (opts_.stats_file.empty()) return;
  const auto text = stats_json() + "\n";
  if (auto w = core::write_file_atomic(opts_.stats_file, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}); !w)
    log(3, w.err().what());
}

}  // namespace mallorn::proto
