// Prometheus metrics (text exposition format 0.0.4): request counts by route and status, latency
// histograms by route, bytes served, cache hits, builds, connections. Thread-safe.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace mallorn::server {

// Lock-free: observe() is on every request's path, on every I/O thread.
class histogram {
 public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends the _bucket/_sum/_count lines for `name` with extra `labels` ("" or `a="b"`).
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // one per bound, plus +Inf
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

class metrics {
 public:
  metrics();

  void request_done(const std::string& route, unsigned status, double seconds);
  void bytes_served(const std::string& kind, std::uint64_t bytes);  // kind: patch | model
  void cache_lookup(bool hit);
  void build_finished(bool ok, double seconds);
  void connection_rejected();
  void connection_shed();  // an idle keep-alive connection closed to make room for a new client
  void accept_failed();
  void rate_limited();
  void device_write_shed();  // a report answered 503: the writer's queue was full
  void index_lookup_shed();  // a device request answered 503: too many index lookups queued
  enum class tls_handshake_result { full, resumed, failed };
  void tls_handshake(tls_handshake_result result);
  std::atomic<std::int64_t> connections_active{0};

  // Gauges owned elsewhere (builds queued, patches cached, ...), read at render time.
  void add_gauge(std::string name, std::string help, std::function<double()> read);
  // Labelled series owned elsewhere (rollouts): appends complete HELP/TYPE/sample lines.
  void add_section(std::function<void(std::string&)> render) { sections_.push_back(std::move(render)); }

  // Every sample render() writes carries replica="<name>" (several replicas behind one scrape job;
  // unset: samples unlabelled, as for a single server).
  void set_replica(std::string name) { replica_ = std::move(name); }
  std::string render() const;

 private:
  // Per route: answers by status and the latency histogram. Routes come from a fixed set, so the
  // map only grows at first use; a request takes the shared lock and touches atomics.
  struct route_stats {
    std::array<std::atomic<std::uint64_t>, 600> by_status{};
    histogram latency;
    route_stats();
  };
  mutable std::shared_mutex routes_mutex_;
  std::map<std::string, std::unique_ptr<route_stats>, std::less<>> routes_;
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> bytes_;
  std::atomic<std::uint64_t> cache_hits_{0}, cache_misses_{0}, builds_ok_{0}, builds_failed_{0};
  std::atomic<std::uint64_t> rejected_{0}, shed_{0}, accept_failed_{0}, rate_limited_{0}, writes_shed_{0},
      lookups_shed_{0}, tls_full_{0}, tls_resumed_{0}, tls_failed_{0};
  histogram build_seconds_;
  struct gauge {
    std::string name, help;
    std::function<double()> read;
  };
  std::vector<gauge> gauges_;
  std::vector<std::function<void(std::string&)>> sections_;
  std::string replica_;
};

}  // namespace mallorn::server
