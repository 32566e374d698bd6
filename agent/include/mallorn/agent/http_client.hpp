// A small blocking HTTP(S) client over Boost.Beast for the agent: every operation has a deadline,
// downloads stream to a sink (never into memory), and Range/If-Range resume is built in.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "mallorn/core/error.hpp"

struct ssl_session_st;  // OpenSSL's SSL_SESSION, kept opaque here

namespace mallorn::agent {

class device_credentials;

struct tls_options {
  std::filesystem::path ca_file;      // empty: the system's default CAs
  std::filesystem::path client_cert;  // mTLS (optional)
  std::filesystem::path client_key;
};

struct http_reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                             // empty when streamed to a sink
  const std::string* header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

// Receives the answer's head (status 200 or 206 and its headers; body empty) and body bytes;
// returning an error aborts the transfer.
using body_sink = std::function<core::result<void>(const http_reply& head, std::span<const std::uint8_t>)>;

// An answer that is not streamed to a sink (JSON, error pages) longer than this is refused.
inline constexpr std::size_t max_buffered_body = 1u << 20;

class http_client {
 public:
  // base_url: "http://host:port" or "https://host:port" (no path).
  static core::result<http_client> create(const std::string& base_url, tls_options tls = {},
                                          std::chrono::seconds timeout = std::chrono::seconds(30));

  core::result<http_reply> post_json(const std::string& target, const std::string& json);
  // GET; with `sink`, a 200/206 body goes to the sink chunk by chunk (other statuses are buffered
  // in reply.body). `extra` headers, e.g. Range and If-Range. Redirects are not followed.
  // Deadlines: a buffered answer (headers and body) must arrive within the timeout; a streamed
  // body must bring each 64 KiB read buffer (or its end) within the timeout. Headers over 8 KiB
  // and buffered bodies over max_buffered_body fail the request.
  core::result<http_reply> get(const std::string& target, const std::map<std::string, std::string>& extra = {},
                               const body_sink& sink = nullptr);
  // Device tokens (server --device-auth): every request but /enroll and /token carries
  // "Authorization: Bearer <token>"; a 401 makes the client get a new token and retry once.
  void use_credentials(std::shared_ptr<device_credentials> credentials) { credentials_ = std::move(credentials); }

 private:
  core::result<http_reply> authenticated(const std::string& method, const std::string& target, const std::string& body,
                                         std::map<std::string, std::string> extra, const body_sink& sink);
  core::result<http_reply> request(const std::string& method, const std::string& target, const std::string& body,
                                   const std::map<std::string, std::string>& extra, const body_sink& sink);
  bool https_ = false;
  std::string host_, port_;
  tls_options tls_;
  std::chrono::seconds timeout_{30};
  std::shared_ptr<device_credentials> credentials_;
  // The TLS session of the last good HTTPS exchange (OpenSSL's SSL_SESSION), offered on the next
  // connection: an update cycle makes several requests, and each one that resumes skips the
  // certificate checks and key agreement, on the device's CPU as on the server's. Dropped when a
  // connection that offered it fails, so a refused resumption costs one retry, not every request.
  std::shared_ptr<ssl_session_st> tls_session_;
};

}  // namespace mallorn::agent
