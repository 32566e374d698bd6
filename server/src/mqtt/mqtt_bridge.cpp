#include "mallorn/server/mqtt_bridge.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <spdlog/spdlog.h>
#include <thread>

#include "mallorn/core/log_safe.hpp"
#include "mallorn/proto/block_messages.hpp"
#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/mqtt_client.hpp"
#include "mallorn/proto/topics.hpp"
#include "mallorn/server/fleet/rollout_engine.hpp"

namespace mallorn::server {

namespace proto = mallorn::proto;
using clock = std::chrono::steady_clock;

namespace {

// Devices on MQTT and LoRa are microcontrollers: they get the mcu profile, which mallorn_lite
// applies in 1 KiB of RAM (the patch cache proves every such patch with mallorn_lite first).
std::string device_patch_profile() { return "mcu"; }

struct message {
  std::string topic;
  std::vector<std::uint8_t> payload;
};

struct patch_file {
  explicit patch_file(int fd) : fd(fd) {}
  ~patch_file() { ::close(fd); }
  patch_file(const patch_file&) = delete;
  patch_file& operator=(const patch_file&) = delete;
  int fd;
};

// One device's update in progress: the offer it was given and the open patch file.
struct session {
  std::uint32_t id = 0;
  patch_row patch;
  std::string source_sha256, source_version;
  std::uint32_t block_size = 0, blocks = 0;
  std::shared_ptr<patch_file> file;  // shared by every session of the same patch
  int fd = -1;                        // file->fd
  std::shared_ptr<void> pin;
  std::string offer_json;
  clock::time_point last_active;
  std::uint64_t bytes_sent = 0;
};

// A device whose patch is still being built: answered when the build is done.
struct pending {
  proto::announce_msg announce;
  clock::time_point since;
};

}  // namespace

struct mqtt_bridge::impl {
  mqtt_bridge_options opts;
  model_store& store;
  patch_cache& cache;
  index_db& db;
  metrics& stats;
  std::unique_ptr<proto::mqtt_client> client;
  std::thread worker;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<message> inbox;
  bool stopping = false;
  std::map<std::string, std::unique_ptr<session>> sessions;  // by device id; worker thread only
  std::map<std::string, pending> waiting;                    // worker thread only
  std::map<std::string, std::weak_ptr<patch_file>> open_patches;  // by patch id; worker thread only
  std::uint64_t rejected = 0;
  std::atomic<std::size_t> session_count{0}, waiting_count{0};  // for sessions() / waiting()
  std::mt19937 rng{std::random_device{}()};
  std::uint64_t dropped = 0;

  impl(mqtt_bridge_options o, model_store& s, patch_cache& c, index_db& d, metrics& m)
      : opts(std::move(o)), store(s), cache(c), db(d), stats(m) {}

  std::string topic(const std::string& device, proto::topic_kind k) const { return proto::device_topic(opts.prefix, device, k); }

  void publish_offer(const std::string& device, const proto::offer_msg& offer) {
    // Retained: a device that went to sleep while its patch was built finds the offer on its next
    // subscribe. Cleared (empty retained message) when the device reports the result.
    if (auto r = client->publish(topic(device, proto::topic_kind::offer), proto::to_json(offer), 1, true); !r)
      spdlog::warn("mqtt: {}", r.err().what());
  }

  void on_message(const std::string& t, std::span<const std::uint8_t> payload) {
    std::lock_guard lock(mutex);
    if (inbox.size() >= opts.max_queue) {
      if (dropped++ % 1000 == 0) spdlog::warn("mqtt: worker queue full ({} messages); dropping", inbox.size());
      return;
    }
    inbox.push_back({t, {payload.begin(), payload.end()}});
    cv.notify_one();
  }

  void run() {
    auto last_tick = clock::now();
    std::unique_lock lock(mutex);
    while (!stopping) {
      cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return stopping || !inbox.empty(); });
      while (!inbox.empty() && !stopping) {
        auto m = std::move(inbox.front());
        inbox.pop_front();
        lock.unlock();
        handle(m);
        lock.lock();
        session_count = sessions.size();
        waiting_count = waiting.size();
      }
      if (clock::now() - last_tick >= std::chrono::milliseconds(250)) {
        lock.unlock();
        tick();
        lock.lock();
        session_count = sessions.size();
        waiting_count = waiting.size();
        last_tick = clock::now();
      }
    }
  }

  void handle(const message& m) {
    auto parts = proto::parse_device_topic(opts.prefix, m.topic);
    if (!parts) return;
    switch (parts->kind) {
      case proto::topic_kind::announce: return on_announce(parts->device_id, m.payload);
      case proto::topic_kind::request: return on_request(parts->device_id, m.payload);
      case proto::topic_kind::status: return on_status(parts->device_id, m.payload);
      default: return;
    }
  }

  void on_announce(const std::string& device, std::span<const std::uint8_t> payload) {
    auto a = proto::parse_announce(payload);
    if (!a) {
      spdlog::info("mqtt: {}: bad announce: {}", core::log_safe(device), core::log_safe(a.err().what()));
      proto::offer_msg o;
      o.reason = a.err().message;
      publish_offer(device, o);
      return;
    }
    answer(device, *a);
  }

  // Works out the device's offer; queues it in `waiting` while its patch is being built.
  void answer(const std::string& device, const proto::announce_msg& a) {
    auto cat = store.snapshot();
    const model_version* current = nullptr;
    if (!a.sha256.empty()) {
      current = cat->find_by_sha256(a.sha256, a.model);
    } else {
      auto matches = cat->find_by_short_id(a.short_id, a.model);
      if (matches.size() == 1) current = matches[0];
    }
    proto::offer_msg o;
    if (!current) {
      o.reason = "the server does not know this model; it cannot be patched";
      publish_offer(device, o);
      return;
    }
    const model_entry* entry = cat->model(current->model);
    const model_version* target = entry->target_for(a.channel);
    o.model = current->model;
    // Rollouts decide as for HTTP check-update (an announce carries no tags: groups select MQTT
    // devices by explicit device ids).
    const auto d = fleet::decide_for_device(opts.rollouts, *cat, current->model, current->sha256, {}, device, a.channel, {});
    if (d.what == fleet::decision::kind::outside_window) {
      o.status = proto::offer_status::wait;
      const auto until = d.next_window_start - static_cast<std::int64_t>(std::time(nullptr));
      o.retry_after = static_cast<std::uint32_t>(std::clamp<std::int64_t>(until, 60, 86400));
      o.reason = "outside the rollout's maintenance window";
      publish_offer(device, o);
      return;
    }
    if (d.what == fleet::decision::kind::offer)
      if (const auto* v = entry->find(d.version)) target = v;
    if (d.what == fleet::decision::kind::hold) target = current;
    o.target_version = target->version;
    if (target->sha256 == current->sha256) {
      o.status = proto::offer_status::up_to_date;
      publish_offer(device, o);
      return;
    }
    // The device announced again while downloading (it lost the offer, or rebooted): same session.
    if (auto it = sessions.find(device); it != sessions.end() && it->second->source_sha256 == current->sha256 &&
                                         it->second->patch.target_sha256 == target->sha256) {
      it->second->last_active = clock::now();
      if (auto r = client->publish(topic(device, proto::topic_kind::offer), it->second->offer_json, 1, true); !r)
        spdlog::warn("mqtt: {}", r.err().what());
      return;
    }
    build_job job{{current->sha256, target->sha256, device_patch_profile()}, *current, *target};
    auto status = cache.request(job);
    stats.cache_lookup(status.state == build_state::ready);
    switch (status.state) {
      case build_state::ready: return open_session(device, a, *current, *target, *status.patch);
      case build_state::queued:
      case build_state::running:
      case build_state::queue_full:
        o.status = proto::offer_status::wait;
        o.retry_after = status.state == build_state::queue_full ? 30 : 2;
        // Bounded: past max_waiting devices, a device is told to come back instead of being
        // remembered (it announces again after retry_after).
        if (!waiting.count(device) && waiting.size() >= opts.max_waiting) o.retry_after = 30;
        else waiting[device] = {a, clock::now()};
        publish_offer(device, o);
        return;
      case build_state::failed:
        if (status.transient) {  // out of descriptors or space: not the pair's fault
          o.status = proto::offer_status::wait;
          o.retry_after = 5;
        } else {
          o.reason = "the patch could not be built";  // status.error names server paths: log only
        }
        publish_offer(device, o);
        return;
    }
  }

  // One descriptor per patch however many devices download it (a device id is free to invent,
  // a descriptor is not).
  std::shared_ptr<patch_file> open_patch(const patch_row& patch) {
    auto& slot = open_patches[patch.id];
    if (auto f = slot.lock()) return f;
    const int fd = ::open(cache.file_of(patch.id).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      open_patches.erase(patch.id);
      return nullptr;
    }
    auto f = std::make_shared<patch_file>(fd);
    slot = f;
    return f;
  }

  void open_session(const std::string& device, const proto::announce_msg& a, const model_version& current,
                    const model_version& target, const patch_row& patch) {
    if (!sessions.count(device) && sessions.size() >= opts.max_sessions) {
      // Full: the device waits like for a build; idle sessions expire and make room.
      proto::offer_msg o;
      o.status = proto::offer_status::wait;
      o.retry_after = 30;
      o.model = current.model;
      o.target_version = target.version;
      publish_offer(device, o);
      if (rejected++ % 1000 == 0)
        spdlog::warn("mqtt: {} download sessions open (--mqtt-max-sessions); new devices are told to wait", sessions.size());
      return;
    }
    for (auto it = open_patches.begin(); it != open_patches.end();)  // forget closed files
      it = it->second.expired() ? open_patches.erase(it) : std::next(it);
    auto s = std::make_unique<session>();
    s->patch = patch;
    s->pin = cache.pin(patch.id);
    s->file = open_patch(patch);
    if (!s->file) {
      spdlog::error("mqtt: {}: cannot open patch {}: {}", core::log_safe(device), patch.id, std::strerror(errno));
      proto::offer_msg o;
      o.status = proto::offer_status::wait;  // a missing descriptor is not a verdict on the patch
      o.retry_after = 5;
      publish_offer(device, o);
      return;
    }
    s->fd = s->file->fd;
    do s->id = rng();
    while (s->id == 0);
    s->source_sha256 = current.sha256;
    s->source_version = current.version;
    s->block_size = std::max<std::uint32_t>(64, std::min(a.max_block, opts.max_block));
    s->blocks = static_cast<std::uint32_t>((patch.size + s->block_size - 1) / s->block_size);
    s->last_active = clock::now();
    proto::offer_msg o;
    o.status = proto::offer_status::ready;
    o.session = s->id;
    o.model = current.model;
    o.target_version = target.version;
    o.target_sha256 = target.sha256;
    o.target_size = target.fingerprint.file_size;
    o.patch_id = patch.id;
    o.patch_sha256 = patch.id;  // the cache names patches by their SHA-256
    o.patch_size = patch.size;
    o.block_size = s->block_size;
    o.blocks = s->blocks;
    o.is_signed = patch.is_signed;
    s->offer_json = proto::to_json(o);
    spdlog::info("mqtt: {}: offer {} {} -> {} ({} bytes in {} blocks)", core::log_safe(device), current.model, current.version,
                 target.version, patch.size, s->blocks);
    sessions[device] = std::move(s);
    publish_offer(device, o);
  }

  void on_request(const std::string& device, std::span<const std::uint8_t> payload) {
    auto req = proto::decode_request(payload);
    if (!req) {
      spdlog::debug("mqtt: {}: bad block request: {}", core::log_safe(device), core::log_safe(req.err().what()));
      return;
    }
    auto it = sessions.find(device);
    const std::uint32_t session_id = std::visit([](const auto& r) { return r.session; }, *req);
    if (it == sessions.end() || it->second->id != session_id) {
      spdlog::debug("mqtt: {}: request for unknown session {}", core::log_safe(device), session_id);
      return;  // the device times out and announces again
    }
    auto& s = *it->second;
    s.last_active = clock::now();
    auto blocks = proto::requested_blocks(*req, s.blocks, s.block_size, s.patch.size);
    if (!blocks) {
      spdlog::debug("mqtt: {}: {}", core::log_safe(device), core::log_safe(blocks.err().what()));
      return;
    }
    std::vector<std::uint8_t> buf(s.block_size);
    const auto t = topic(device, proto::topic_kind::block);
    std::uint64_t sent = 0;
    for (auto index : *blocks) {
      const std::uint64_t off = std::uint64_t(index) * s.block_size;
      const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(s.block_size, s.patch.size - off));
      if (::pread(s.fd, buf.data(), len, static_cast<off_t>(off)) != static_cast<ssize_t>(len)) {
        spdlog::error("mqtt: {}: reading patch {} failed", core::log_safe(device), s.patch.id);
        return;
      }
      // QoS 0: a lost block is simply asked for again; QoS 1 would make the broker hold every
      // block of every device until acknowledged, for no gain over the device's bitmap.
      const auto bytes = proto::encode_block(s.id, index, {buf.data(), len});
      if (auto r = client->publish(t, bytes, 0, false); !r) {
        spdlog::warn("mqtt: {}", r.err().what());
        return;
      }
      sent += len;
    }
    s.bytes_sent += sent;
    cache.record_download(s.patch.id, sent);
  }

  void on_status(const std::string& device, std::span<const std::uint8_t> payload) {
    auto st = proto::parse_status(payload);
    if (!st) {
      spdlog::info("mqtt: {}: bad status: {}", core::log_safe(device), core::log_safe(st.err().what()));
      return;
    }
    auto it = sessions.find(device);
    if (it != sessions.end()) it->second->last_active = clock::now();
    if (!st->final()) {
      spdlog::debug("mqtt: {}: {} {}/{}", core::log_safe(device), proto::device_state_name(st->state), st->received, st->total);
      return;
    }
    device_report r;
    r.device_id = device;
    r.state = proto::device_state_name(st->state);
    r.error = st->error;
    r.from_version = st->from_version;
    r.to_version = st->to_version;
    r.bytes_downloaded = st->received;
    r.client = "mqtt";
    r.received_at = static_cast<std::int64_t>(std::time(nullptr));
    if (it != sessions.end()) {
      r.model = it->second->patch.model;
      if (r.from_version.empty()) r.from_version = it->second->patch.source_version;
      if (r.to_version.empty()) r.to_version = it->second->patch.target_version;
    }
    if (auto ok = db.insert_report(r); !ok) spdlog::error("mqtt: {}: {}", core::log_safe(device), ok.err().what());
    if (opts.rollouts) opts.rollouts->on_report(r);  // per-rollout counts and the health gate
    spdlog::info("mqtt: {}: update {} ({} bytes){}", core::log_safe(device), r.state, r.bytes_downloaded, r.error.empty() ? "" : ": " + core::log_safe(r.error));
    if (it != sessions.end()) sessions.erase(it);
    // The offer is spent: clear the retained copy so a reconnecting device does not see it again.
    (void)client->publish(topic(device, proto::topic_kind::offer), std::string(), 1, true);
  }

  std::mutex keyring_mutex;
  std::string keyring_etag;  // what is retained on <prefix>/keyring now ("" = not yet)
  void publish_keyring(bool force) {
    if (!opts.keyring || !client) return;
    auto k = opts.keyring->current();
    std::lock_guard lock(keyring_mutex);
    if (!force && k->etag == keyring_etag) return;
    if (auto r = client->publish(opts.prefix + "/keyring", k->binary, 1, true); r) {
      keyring_etag = k->etag;
      spdlog::info("mqtt: keyring v{} retained on {}/keyring", k->version, opts.prefix);
    } else {
      keyring_etag.clear();  // retried on the next tick
      spdlog::debug("mqtt: keyring not published yet: {}", r.err().what());
    }
  }

  void tick() {
    publish_keyring(false);
    auto due = std::move(waiting);
    waiting.clear();
    for (const auto& [device, p] : due)  // answer() puts back whoever still waits for a build
      if (clock::now() - p.since < std::chrono::minutes(10)) answer(device, p.announce);
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (clock::now() - it->second->last_active > opts.session_idle) {
        spdlog::info("mqtt: {}: session idle for {} s; dropped", core::log_safe(it->first), opts.session_idle.count());
        it = sessions.erase(it);
      } else {
        ++it;
      }
    }
  }
};

mqtt_bridge::mqtt_bridge(mqtt_bridge_options opts, model_store& store, patch_cache& cache, index_db& db, metrics& m)
    : impl_(std::make_unique<impl>(std::move(opts), store, cache, db, m)) {}

mqtt_bridge::~mqtt_bridge() { stop(); }

std::size_t mqtt_bridge::sessions() const { return impl_->session_count.load(); }
std::size_t mqtt_bridge::waiting() const { return impl_->waiting_count.load(); }

void mqtt_bridge::start() {
  auto& i = *impl_;
  proto::mqtt_options o;
  o.broker = i.opts.broker;
  o.client_id = i.opts.client_id;
  o.subscriptions = {{proto::all_devices_filter(i.opts.prefix, proto::topic_kind::announce), 1},
                     {proto::all_devices_filter(i.opts.prefix, proto::topic_kind::request), 0},
                     {proto::all_devices_filter(i.opts.prefix, proto::topic_kind::status), 1}};
  o.will = proto::mqtt_will{proto::server_state_topic(i.opts.prefix), "offline", true};
  o.on_connected = [&i] {
    // Devices waiting on a restarted server announce again when they see this.
    (void)i.client->publish(proto::server_state_topic(i.opts.prefix), "online", 1, true);
    i.publish_keyring(true);
  };
  o.on_state = [](bool up, const std::string& what) {
    if (up) spdlog::info("mqtt: {}", what);
    else spdlog::warn("mqtt: {}", what);
  };
  o.on_message = [&i](const std::string& t, std::span<const std::uint8_t> p) { i.on_message(t, p); };
  i.client = std::make_unique<proto::mqtt_client>(std::move(o));
  if (!i.client->setup_error().empty()) spdlog::error("mqtt: {}; the bridge stays off", i.client->setup_error());
  i.worker = std::thread([&i] { i.run(); });
  i.client->start();
}

void mqtt_bridge::stop() {
  auto& i = *impl_;
  if (!i.client) return;
  {
    std::lock_guard lock(i.mutex);
    i.stopping = true;
  }
  i.cv.notify_all();
  if (i.worker.joinable()) i.worker.join();
  i.client->stop(proto::mqtt_will{proto::server_state_topic(i.opts.prefix), "offline", true});
  i.client.reset();
  i.sessions.clear();
  spdlog::info("mqtt: bridge stopped");
}

}  // namespace mallorn::server
