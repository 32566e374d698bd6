#include "mallorn/proto/mcu_device.hpp"

#include "mallorn/proto/radio_frames.hpp"

namespace mallorn::proto {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool power_lost(const core::error& e) { return e.message.find("power lost") != std::string::npos; }

}  // namespace

mcu_device::mcu_device(device_options opts, device_link& link, patch_consumer& sink)
    : opts_(std::move(opts)), link_(link), sink_(sink) {}

device_result mcu_device::run() {
  device_result res;
  const auto start = clock::now();
  const auto deadline = start + opts_.deadline;
  auto finish = [&](std::string outcome, std::string error = {}) {
    res.outcome = std::move(outcome);
    res.error = std::move(error);
    res.link = link_.stats();
    res.seconds = std::chrono::duration<double>(clock::now() - start).count();
    return res;
  };
  if (auto c = link_.connect(milliseconds(10000)); !c) return finish("failed", c.err().what());

  announce_msg hello{opts_.model, opts_.sha256, "", opts_.version, "", opts_.free_ram, opts_.max_block};
  // 1. Announce until an offer arrives (a "wait" offer is followed by a pushed one when ready).
  offer_msg offer;
  auto next_announce = clock::now();
  for (;;) {
    if (clock::now() >= deadline) return finish("timeout", "no offer");
    if (clock::now() >= next_announce) {
      (void)link_.announce(hello);
      next_announce = clock::now() + milliseconds(2000);
    }
    auto e = link_.next(milliseconds(100));
    if (!e) continue;
    if (e->what == link_event::kind::server_online) next_announce = clock::now();
    if (e->what != link_event::kind::offer) continue;
    if (e->offer.status == offer_status::wait) {
      next_announce = clock::now() + milliseconds(1000) * std::max<std::uint32_t>(1, std::min<std::uint32_t>(e->offer.retry_after, 5));
      continue;
    }
    offer = e->offer;
    break;
  }
  res.offer = offer;
  if (offer.status == offer_status::up_to_date) return finish("up_to_date");
  if (offer.status != offer_status::ready) return finish("unavailable", offer.reason);

  // 2. Fetch every block into the download area.
  auto fail = [&](device_error code, const core::error& err) {
    if (power_lost(err)) return finish("power_lost", err.what());  // a dead device reports nothing
    status_msg s{offer.session, device_state::failed, 0, offer.patch_size, opts_.version, offer.target_version,
                 device_error_name(code)};
    (void)link_.report(s);
    return finish("failed", err.what());
  };
  if (auto b = sink_.begin(offer); !b)
    return fail(b.err().code == core::errc::invalid_argument ? device_error::too_large : device_error::flash, b.err());
  block_map map(offer.patch_size, offer.block_size);
  for (auto i : sink_.held_blocks())
    if (map.mark(i)) ++res.blocks_resumed;  // in flash from before a reboot
  const auto limits = link_.window(offer.block_size);
  std::uint64_t next_report = offer.patch_size / 4;
  while (!map.complete()) {
    if (clock::now() >= deadline) return finish("timeout", "patch incomplete: " + std::to_string(map.held()) + "/" + std::to_string(map.blocks()) + " blocks");
    const auto window = map.next_window(limits.max_blocks, limits.max_span, limits.max_bytes);
    if (auto r = link_.request(offer.session, window, map); !r) return finish("failed", r.err().what());
    ++res.requests;
    auto last_progress = clock::now();
    auto window_done = [&] {
      for (auto i : window)
        if (!map.has(i)) return false;
      return true;
    };
    while (!window_done() && clock::now() - last_progress < link_.request_timeout() && clock::now() < deadline) {
      auto e = link_.next(milliseconds(50));
      if (!e) continue;
      if (e->what == link_event::kind::offer && e->offer.status == offer_status::ready && e->offer.session != offer.session &&
          e->offer.patch_sha256 == offer.patch_sha256 && e->offer.block_size == offer.block_size) {
        offer.session = e->offer.session;  // the server restarted: same patch, new session; keep what we have
        break;
      }
      if (e->what == link_event::kind::server_online) (void)link_.announce(hello);
      if (e->what != link_event::kind::block || e->session != offer.session) continue;
      if (e->index >= map.blocks() || e->data.size() != map.length_of(e->index)) continue;  // not ours
      if (map.has(e->index)) {
        ++res.duplicate_blocks;
        continue;
      }
      if (auto w = sink_.write(map.offset_of(e->index), e->data); !w) return fail(device_error::flash, w.err());
      map.mark(e->index);
      ++res.blocks_received;
      last_progress = clock::now();
      if (map.bytes_held() >= next_report && !map.complete()) {
        (void)link_.report({offer.session, device_state::downloading, map.bytes_held(), offer.patch_size});
        next_report += offer.patch_size / 4;
      }
    }
  }

  // 3. Verify and install.
  (void)link_.report({offer.session, device_state::verifying, map.bytes_held(), offer.patch_size});
  auto installed = sink_.finish();
  if (!installed) {
    const auto code = installed.err().code == core::errc::invalid_patch ? device_error::patch_hash : device_error::apply;
    return fail(code, installed.err());
  }
  res.new_sha256 = *installed;
  (void)link_.report({offer.session, device_state::committed, map.bytes_held(), offer.patch_size, opts_.version,
                      offer.target_version});
  return finish("committed");  // the link flushes the report when it closes
}

}  // namespace mallorn::proto
