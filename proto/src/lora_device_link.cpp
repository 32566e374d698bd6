// The device side of the LoRa link: announce / request / "more" / status go up as radio frames;
// the offer and fragments come down. Each window of blocks is one TS004 generation: the device
// decodes it, hands the blocks over when the whole window is rebuilt, and when the air goes quiet
// with unknowns left it asks for exactly that many more parity fragments.
#include <deque>

#include "mallorn/core/hash.hpp"
#include "mallorn/proto/block_messages.hpp"
#include "mallorn/proto/device_link.hpp"
#include "mallorn/proto/fragmentation.hpp"
#include "mallorn/proto/radio_frames.hpp"

namespace mallorn::proto {
namespace {

using clock = std::chrono::steady_clock;
constexpr auto quiet = std::chrono::milliseconds(150);  // no frame for this long: the burst is over
constexpr int max_nudges = 8;                           // "more" / repeated requests per generation

class lora_device_link final : public device_link {
 public:
  explicit lora_device_link(lora_link_options o) : opts_(o), uplink_(o.radio) {}

  core::result<void> connect(std::chrono::milliseconds) override {
    MALLORN_TRY(validate(opts_.radio));
    auto air = udp_air::open(0);
    if (!air) return air.err();
    air_.emplace(std::move(*air));
    gateway_ = udp_air::loopback(opts_.gateway_port);
    return {};
  }

  core::result<void> announce(const announce_msg& m) override {
    radio_announce f{opts_.addr};
    if (!core::from_hex(m.sha256, f.sha256))
      return core::make_error(core::errc::invalid_argument, "LoRa announce needs the model's sha256");
    f.free_ram = m.free_ram;
    f.max_block = static_cast<std::uint16_t>(m.max_block);
    return send(f);
  }

  core::result<void> request(std::uint32_t session, std::span<const std::uint32_t> blocks, const block_map& map) override {
    if (blocks.empty()) return {};
    gen_ = generation{};
    gen_.id = ++gen_counter_;
    gen_.session = session;
    gen_.started = gen_.last_activity = clock::now();
    for (auto b : blocks) {
      gen_.blocks.push_back(b);
      gen_.lengths.push_back(map.length_of(b));
      gen_.bytes += map.length_of(b);
    }
    gen_.active = true;
    const auto fragments = static_cast<std::uint32_t>((gen_.bytes + frag_size_ - 1) / frag_size_);
    gen_.decoder.emplace(fragments, frag_size_);
    const auto count = static_cast<std::uint16_t>(blocks.back() - blocks.front() + 1);
    auto bm = make_bitmap_request(session, blocks.front(), count, blocks);
    gen_.request = radio_request{opts_.addr, session, gen_.id, prev_rx_, blocks.front(), count, std::move(bm.bitmap)};
    return send(gen_.request);
  }

  core::result<void> report(const status_msg& m) override {
    radio_status f{opts_.addr, m.session, static_cast<std::uint8_t>(m.state), static_cast<std::uint32_t>(m.received), 0};
    for (std::uint8_t e = 0; e <= 5; ++e)
      if (m.error == device_error_name(static_cast<device_error>(e))) f.error = e;
    if (!m.error.empty() && f.error == 0) f.error = static_cast<std::uint8_t>(device_error::protocol);
    if (!m.final()) return send(f);
    // A final report is confirmed: repeat it until the gateway's ack is heard (the gateway
    // forwards it once), like a LoRaWAN confirmed uplink.
    for (int attempt = 0; attempt < 12; ++attempt) {
      MALLORN_TRY(send(f));
      const auto until = clock::now() + std::chrono::milliseconds(300);
      while (clock::now() < until) {
        auto d = air_->receive(50);
        if (!d) continue;
        stats_.messages_in++;
        stats_.bytes_in += d->bytes.size();
        auto frame = decode_frame(d->bytes);
        if (!frame) continue;
        if (const auto* a = std::get_if<radio_ack>(&*frame); a && a->addr == opts_.addr && a->session == m.session) return {};
      }
    }
    return core::make_error(core::errc::io_error, "final status not acknowledged by the gateway");
  }

  std::optional<link_event> next(std::chrono::milliseconds timeout) override {
    const auto deadline = clock::now() + timeout;
    for (;;) {
      if (!pending_.empty()) {
        auto e = std::move(pending_.front());
        pending_.pop_front();
        return e;
      }
      const auto now = clock::now();
      if (now >= deadline) return std::nullopt;
      const auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now), quiet);
      if (auto d = air_->receive(static_cast<int>(std::max<std::int64_t>(1, wait.count())))) {
        stats_.messages_in++;
        stats_.bytes_in += d->bytes.size();
        if (auto e = on_frame(d->bytes)) return e;
      } else {
        nudge();
      }
    }
  }

  window_limits window(std::uint32_t) const override {
    const std::uint32_t span = static_cast<std::uint32_t>((opts_.radio.frame_size - 19) * 8);
    return {span, span, std::uint64_t(opts_.max_fragments) * frag_size_};
  }
  std::chrono::milliseconds request_timeout() const override { return std::chrono::milliseconds(3000); }
  link_stats stats() const override { return stats_; }
  void close() override { air_.reset(); }

 private:
  struct generation {
    bool active = false;
    std::uint16_t id = 0;
    std::uint32_t session = 0;
    std::vector<std::uint32_t> blocks, lengths;
    std::uint64_t bytes = 0;
    std::optional<frag_decoder> decoder;
    std::uint16_t rx = 0;
    int nudges = 0;
    radio_request request;
    clock::time_point started, last_activity;
  };

  core::result<void> send(const radio_frame& f) {
    const auto bytes = encode(f);
    stats_.messages_out++;
    stats_.bytes_out += bytes.size();
    if (!uplink_.transmit(bytes.size())) {
      stats_.lost_out++;
      return {};  // lost on the air: the sender cannot tell
    }
    return air_->send_to(gateway_, bytes);
  }

  std::optional<link_event> on_frame(std::span<const std::uint8_t> bytes) {
    auto frame = decode_frame(bytes);
    if (!frame || frame_addr(*frame) != opts_.addr) return std::nullopt;
    if (const auto* o = std::get_if<radio_offer>(&*frame)) {
      link_event e{link_event::kind::offer};
      e.offer.status = static_cast<offer_status>(o->status);
      if (e.offer.status == offer_status::wait) e.offer.retry_after = o->patch_size;
      if (e.offer.status == offer_status::ready) {
        e.offer.session = o->session;
        e.offer.patch_size = o->patch_size;
        e.offer.block_size = o->block_size;
        e.offer.blocks = o->block_size ? static_cast<std::uint32_t>((o->patch_size + o->block_size - 1) / o->block_size) : 0;
        e.offer.patch_sha256 = core::to_hex(o->patch_sha256);
        if (o->frag_size == 0 || o->block_size == 0) return std::nullopt;
        frag_size_ = o->frag_size;
      }
      return e;
    }
    const auto* f = std::get_if<radio_fragment>(&*frame);
    if (!f || !gen_.active || f->gen != gen_.id) return std::nullopt;
    ++gen_.rx;
    gen_.last_activity = clock::now();
    if (!gen_.decoder->add(f->index, f->payload)) return std::nullopt;  // wrong size: not ours
    if (gen_.decoder->complete()) deliver();
    return std::nullopt;
  }

  // The generation is rebuilt: its blocks become events, in order.
  void deliver() {
    const auto data = gen_.decoder->data();
    std::uint64_t off = 0;
    for (std::size_t i = 0; i < gen_.blocks.size(); ++i) {
      link_event e{link_event::kind::block};
      e.session = gen_.session;
      e.index = gen_.blocks[i];
      e.data.assign(data.begin() + static_cast<std::ptrdiff_t>(off), data.begin() + static_cast<std::ptrdiff_t>(off + gen_.lengths[i]));
      off += gen_.lengths[i];
      pending_.push_back(std::move(e));
    }
    prev_rx_ = gen_.rx;
    gen_.active = false;
  }

  // The air went quiet with the generation unfinished: ask for what is missing.
  void nudge() {
    if (!gen_.active || clock::now() - gen_.last_activity < quiet || gen_.nudges >= max_nudges) return;
    if (gen_.rx == 0) {
      // Nothing heard: the request itself may have been lost, or the gateway is still fetching
      // the blocks from the server; repeat it only after a longer silence.
      if (clock::now() - gen_.last_activity < 4 * quiet) return;
      ++gen_.nudges;
      gen_.last_activity = clock::now();
      (void)send(gen_.request);
      return;
    }
    ++gen_.nudges;
    gen_.last_activity = clock::now();
    (void)send(radio_more{opts_.addr, gen_.session, gen_.id, static_cast<std::uint16_t>(gen_.decoder->missing()), gen_.rx});
  }

  lora_link_options opts_;
  radio_link uplink_;
  std::optional<udp_air> air_;
  sockaddr_in gateway_{};
  std::uint32_t frag_size_ = 1;
  std::uint16_t gen_counter_ = 0, prev_rx_ = 0;
  generation gen_;
  std::deque<link_event> pending_;
  link_stats stats_;
};

}  // namespace

std::unique_ptr<device_link> make_lora_link(const lora_link_options& opts) {
  return std::make_unique<lora_device_link>(opts);
}

}  // namespace mallorn::proto
