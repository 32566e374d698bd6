#include "mallorn/server/keyring_source.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/keyring.hpp"
#include "mallorn/server/router.hpp"
#include "route_json.hpp"

namespace mallorn::server {

core::result<std::shared_ptr<keyring_source>> keyring_source::open(const std::filesystem::path& file) {
  std::shared_ptr<keyring_source> src(new keyring_source(file));
  auto k = src->load();
  if (!k) return k.err();
  src->served_ = *k;
  identify(file, src->seen_);
  return src;
}

bool keyring_source::identify(const std::filesystem::path& file, file_identity& out) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return false;
  out.device = st.st_dev;
  out.inode = st.st_ino;
  out.size = static_cast<std::uint64_t>(st.st_size);
  out.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  out.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return true;
}

core::result<std::shared_ptr<const served_keyring>> keyring_source::load() const {
  std::error_code ec;
  if (std::filesystem::file_size(file_, ec) > 4 * core::max_keyring_size)
    return core::make_error(core::errc::invalid_argument, file_.string() + ": too large for a keyring");
  auto bytes = core::read_file(file_);
  if (!bytes) return bytes.err();
  auto k = core::decode_keyring(*bytes);
  if (!k) return k.err().with(file_.string());
  // The server cannot know which root devices trust, but it can refuse to serve a keyring that
  // does not even carry its own roots' signatures (an unsigned or half-signed file).
  if (core::count_valid_signatures(*k, k->root_keys) < k->root_threshold)
    return core::make_error(core::errc::signature_error, file_.string() + ": keyring v" + std::to_string(k->version) +
                                                             " is not signed by its root key(s); run `mallorn keyring sign`");
  auto bin = core::encode_keyring_binary(*k);
  if (!bin) return bin.err();
  auto s = std::make_shared<served_keyring>();
  s->version = k->version;
  s->json = core::encode_keyring_json(*k);
  s->binary = std::move(*bin);
  s->signed_part = std::move(*core::keyring_signed_bytes(*k));
  s->etag = "\"keyring-" + std::to_string(k->version) + "-" + core::to_hex(core::sha256_of(s->binary)).substr(0, 16) + "\"";
  return std::shared_ptr<const served_keyring>(std::move(s));
}

std::shared_ptr<const served_keyring> keyring_source::current() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now == checked_at_) return served_;  // one stat per second at most, however many devices ask
  checked_at_ = now;
  file_identity now_seen;
  if (!identify(file_, now_seen) || now_seen == seen_) return served_;
  seen_ = now_seen;
  auto k = load();
  keyring_publication pub;
  pub.served_before = served_->version;
  if (!k) {
    spdlog::error("keyring: {} changed but is not usable, still serving v{}: {}", file_.string(), served_->version, k.err().what());
    pub.reason = "not usable: " + k.err().what();
  } else if (pub.version = (*k)->version; (*k)->version < served_->version) {
    spdlog::error("keyring: {} now holds v{}, older than the served v{}; ignored", file_.string(), (*k)->version, served_->version);
    pub.reason = "older than the served v" + std::to_string(served_->version);
  } else if ((*k)->version == served_->version && (*k)->signed_part != served_->signed_part) {
    // Devices refuse a second, different keyring under a version they hold: so do we.
    spdlog::error("keyring: {} holds a different keyring under the served version v{}; ignored", file_.string(), served_->version);
    pub.reason = "a different keyring under the served version";
  } else if ((*k)->binary != served_->binary) {  // newer, or the same one with more signatures
    spdlog::info("keyring: serving v{} (was v{})", (*k)->version, served_->version);
    served_ = *k;
    pub.accepted = true;
    pub.reason = "serving v" + std::to_string(pub.version);
  } else {
    return served_;  // the same keyring written again: nothing was published
  }
  if (listener_) listener_(pub);
  return served_;
}

http_response keyring_response(keyring_source* src, const std::map<std::string, std::string>& query,
                               const std::string* if_none_match) {
  if (!src) return error_response(404, "no_keyring", "this server serves no keyring (mallornd --keyring FILE)");
  auto fmt = query.find("format");
  const bool binary = fmt != query.end() && fmt->second == "binary";
  if (fmt != query.end() && !binary && fmt->second != "json")
    return error_response(400, "bad_format", "format is json or binary");
  auto k = src->current();
  http_response r;
  r.set("ETag", k->etag);
  r.set("Cache-Control", "no-cache");
  if (if_none_match && *if_none_match == k->etag) {
    r.status = 304;
    return r;
  }
  r.body = binary ? std::string(k->binary.begin(), k->binary.end()) : k->json;
  r.set("Content-Type", binary ? "application/octet-stream" : "application/json");
  return r;
}

}  // namespace mallorn::server
