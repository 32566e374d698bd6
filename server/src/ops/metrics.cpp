#include "mallorn/server/metrics.hpp"

#include <cstdio>

namespace mallorn::server {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

const std::vector<double> latency_bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,    10};
const std::vector<double> build_bounds = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

void header(std::string& out, const char* name, const char* help, const char* type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// Adds `label` to every sample line of an exposition (comments untouched): the replica label is
// put on here once rather than threaded through every series and section.
std::string with_label(const std::string& text, const std::string& label) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    if (line.empty() || line.front() == '#' || line.find("replica=\"") != std::string_view::npos) {
      out += line;
    } else {
      const auto brace = line.find('{'), space = line.find(' ');
      if (brace != std::string_view::npos && brace < space) {
        out += line.substr(0, brace + 1);
        out += label;
        if (line[brace + 1] != '}') out += ',';
        out += line.substr(brace + 1);
      } else {
        out += line.substr(0, space);
        out += '{' + label + '}';
        out += line.substr(space);
      }
    }
    out += '\n';
    pos = end + 1;
  }
  return out;
}

}  // namespace

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + (i < bounds_.size() ? number(bounds_[i]) : "+Inf") + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(sum_.load()) + "\n";
  out += name + "_count" + braces + " " + std::to_string(cumulative) + "\n";  // consistent with the buckets
}

metrics::route_stats::route_stats() : latency(latency_bounds) {}

metrics::metrics() : build_seconds_(build_bounds) {}

void metrics::request_done(const std::string& route, unsigned status, double seconds) {
  route_stats* r = nullptr;
  {
    std::shared_lock lock(routes_mutex_);
    if (auto it = routes_.find(route); it != routes_.end()) r = it->second.get();
  }
  if (!r) {
    std::unique_lock lock(routes_mutex_);
    auto& slot = routes_[route];
    if (!slot) slot = std::make_unique<route_stats>();
    r = slot.get();
  }
  r->by_status[status < 600 ? status : 599].fetch_add(1, std::memory_order_relaxed);
  r->latency.observe(seconds);
}

void metrics::bytes_served(const std::string& kind, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  bytes_[kind] += bytes;
}

void metrics::cache_lookup(bool hit) { (hit ? cache_hits_ : cache_misses_)++; }

void metrics::build_finished(bool ok, double seconds) {
  (ok ? builds_ok_ : builds_failed_)++;
  build_seconds_.observe(seconds);
}

void metrics::connection_rejected() { rejected_++; }
void metrics::connection_shed() { shed_++; }
void metrics::accept_failed() { accept_failed_++; }
void metrics::rate_limited() { rate_limited_++; }
void metrics::device_write_shed() { writes_shed_++; }
void metrics::index_lookup_shed() { lookups_shed_++; }
void metrics::tls_handshake(tls_handshake_result result) {
  (result == tls_handshake_result::full ? tls_full_ : result == tls_handshake_result::resumed ? tls_resumed_ : tls_failed_)++;
}

void metrics::add_gauge(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_.push_back({std::move(name), std::move(help), std::move(read)});
}

std::string metrics::render() const {
  std::string out;
  std::shared_lock routes_lock(routes_mutex_);
  header(out, "mallornd_requests_total", "HTTP requests answered, by route and status.", "counter");
  for (const auto& [route, r] : routes_)
    for (unsigned status = 0; status < r->by_status.size(); ++status)
      if (const auto n = r->by_status[status].load())
        out += "mallornd_requests_total{route=\"" + route + "\",status=\"" + std::to_string(status) + "\"} " +
               std::to_string(n) + "\n";
  header(out, "mallornd_request_duration_seconds", "Time from request parsed to response written, by route.",
         "histogram");
  for (const auto& [route, r] : routes_) r->latency.render(out, "mallornd_request_duration_seconds", "route=\"" + route + "\"");
  routes_lock.unlock();
  std::lock_guard lock(mutex_);
  header(out, "mallornd_bytes_served_total", "Response body bytes sent for patches and full models.", "counter");
  for (const auto& [kind, n] : bytes_)
    out += "mallornd_bytes_served_total{kind=\"" + kind + "\"} " + std::to_string(n) + "\n";
  header(out, "mallornd_patch_cache_hits_total", "Check-updates answered with a patch already built.", "counter");
  out += "mallornd_patch_cache_hits_total " + std::to_string(cache_hits_.load()) + "\n";
  header(out, "mallornd_patch_cache_misses_total", "Check-updates that needed a patch not built yet.", "counter");
  out += "mallornd_patch_cache_misses_total " + std::to_string(cache_misses_.load()) + "\n";
  header(out, "mallornd_builds_total", "Patch builds finished, by result.", "counter");
  out += "mallornd_builds_total{result=\"ok\"} " + std::to_string(builds_ok_.load()) + "\n";
  out += "mallornd_builds_total{result=\"failed\"} " + std::to_string(builds_failed_.load()) + "\n";
  header(out, "mallornd_build_duration_seconds", "Wall time of patch builds (diff + verification).", "histogram");
  build_seconds_.render(out, "mallornd_build_duration_seconds", "");
  header(out, "mallornd_connections_active", "Open client connections.", "gauge");
  out += "mallornd_connections_active " + std::to_string(connections_active.load()) + "\n";
  header(out, "mallornd_connections_rejected_total",
         "Connections answered 503 because the global or per-address connection cap was reached.",
         "counter");
  out += "mallornd_connections_rejected_total " + std::to_string(rejected_.load()) + "\n";
  header(out, "mallornd_connections_shed_total",
         "Idle keep-alive connections closed to make room for a new client (global or per-address cap).", "counter");
  out += "mallornd_connections_shed_total " + std::to_string(shed_.load()) + "\n";
  header(out, "mallornd_accept_errors_total", "accept(2) failures (EMFILE, ENFILE, ENOBUFS, ...).", "counter");
  out += "mallornd_accept_errors_total " + std::to_string(accept_failed_.load()) + "\n";
  header(out, "mallornd_rate_limited_total", "Requests answered 429 by the per-client rate limit.", "counter");
  out += "mallornd_rate_limited_total " + std::to_string(rate_limited_.load()) + "\n";
  header(out, "mallornd_device_writes_shed_total",
         "Reports answered 503 because the queue of device writes was full.", "counter");
  out += "mallornd_device_writes_shed_total " + std::to_string(writes_shed_.load()) + "\n";
  header(out, "mallornd_index_lookups_shed_total",
         "Device requests answered 503 because too many index lookups (uncached credentials or "
         "check-update answers) were queued.",
         "counter");
  out += "mallornd_index_lookups_shed_total " + std::to_string(lookups_shed_.load()) + "\n";
  header(out, "mallornd_tls_handshakes_total",
         "TLS handshakes by result: full, resumed (a session ticket: no certificate checks or key "
         "agreement), failed.",
         "counter");
  out += "mallornd_tls_handshakes_total{result=\"full\"} " + std::to_string(tls_full_.load()) + "\n";
  out += "mallornd_tls_handshakes_total{result=\"resumed\"} " + std::to_string(tls_resumed_.load()) + "\n";
  out += "mallornd_tls_handshakes_total{result=\"failed\"} " + std::to_string(tls_failed_.load()) + "\n";
  for (const auto& g : gauges_) {
    header(out, g.name.c_str(), g.help.c_str(), "gauge");
    out += g.name + " " + number(g.read()) + "\n";
  }
  for (const auto& section : sections_) section(out);
  return replica_.empty() ? out : with_label(out, "replica=\"" + replica_ + "\"");
}

}  // namespace mallorn::server
