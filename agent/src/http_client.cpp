#include "mallorn/agent/http_client.hpp"

#include "mallorn/agent/device_credentials.hpp"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace mallorn::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

core::result<http_client> http_client::create(const std::string& base_url, tls_options tls, std::chrono::seconds timeout) {
  http_client c;
  std::string rest;
  if (base_url.rfind("http://", 0) == 0) {
    rest = base_url.substr(7);
  } else if (base_url.rfind("https://", 0) == 0) {
    rest = base_url.substr(8);
    c.https_ = true;
  } else {
    return core::make_error(core::errc::invalid_argument, "server URL must start with http:// or https://: " + base_url);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos)
    return core::make_error(core::errc::invalid_argument, "server URL must not have a path: " + base_url);
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string::npos) return core::make_error(core::errc::invalid_argument, "bad server URL " + base_url);
    c.host_ = rest.substr(1, close - 1);
    c.port_ = close + 2 <= rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "";
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    c.host_ = rest.substr(0, colon);
    c.port_ = rest.substr(colon + 1);
  } else {
    c.host_ = rest;
  }
  if (c.port_.empty()) c.port_ = c.https_ ? "443" : "80";
  c.tls_ = std::move(tls);
  c.timeout_ = timeout;
  return c;
}

core::result<http_reply> http_client::post_json(const std::string& target, const std::string& json) {
  return authenticated("POST", target, json, {{"Content-Type", "application/json"}}, nullptr);
}

core::result<http_reply> http_client::get(const std::string& target, const std::map<std::string, std::string>& extra,
                                          const body_sink& sink) {
  return authenticated("GET", target, {}, extra, sink);
}

core::result<http_reply> http_client::authenticated(const std::string& method, const std::string& target,
                                                    const std::string& body, std::map<std::string, std::string> extra,
                                                    const body_sink& sink) {
  // The credential routes themselves go without a token (and must not ask for one: recursion).
  if (!credentials_ || target == "/enroll" || target == "/token") return request(method, target, body, extra, sink);
  for (int attempt = 0;; ++attempt) {
    if (auto token = credentials_->token(*this)) extra["Authorization"] = "Bearer " + *token;
    else extra.erase("Authorization");
    auto reply = request(method, target, body, extra, sink);
    // 401: the token expired early or was revoked; get a new one and try once more. A 401 is
    // never streamed to the sink, so repeating the request is safe.
    if (!reply || reply->status != 401 || attempt > 0 || !extra.count("Authorization")) return reply;
    credentials_->invalidate();
  }
}

namespace {

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, http::request<http::string_body>& req, std::chrono::seconds timeout,
                               const body_sink& sink, http_reply& reply, std::optional<core::error>& failure) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_after(timeout);
  co_await http::async_write(stream, req, asio::use_awaitable);
  const auto deadline = std::chrono::steady_clock::now() + timeout;  // for everything but a streamed body
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  tcp_layer.expires_at(deadline);
  co_await http::async_read_header(stream, buffer, parser, asio::use_awaitable);  // 8 KiB header limit
  reply.status = parser.get().result_int();
  for (const auto& f : parser.get()) {
    std::string name(f.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    reply.headers[name] = std::string(f.value());
  }
  const bool stream_body = sink && (reply.status == 200 || reply.status == 206);
  std::array<std::uint8_t, 64 * 1024> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // Streamed, per chunk: a slow transfer is fine, a stalled one is not. Buffered: one deadline,
    // so a drip-fed answer cannot hold the agent.
    if (stream_body) tcp_layer.expires_after(timeout);
    else tcp_layer.expires_at(deadline);
    beast::error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    const std::size_t got = chunk.size() - parser.get().body().size;
    if (ec && ec != http::error::need_buffer) {
      // The connection broke mid-body: keep what did arrive, so a resume fetches none of it again.
      if (stream_body && got > 0)
        if (auto r = sink(reply, {chunk.data(), got}); !r) failure = r.err();
      throw beast::system_error(ec);
    }
    if (got == 0) continue;
    if (stream_body) {
      if (auto r = sink(reply, {chunk.data(), got}); !r) {
        failure = r.err();
        co_return;
      }
    } else if (reply.body.size() + got > max_buffered_body) {
      failure = core::make_error(core::errc::invalid_argument, "bad server answer: HTTP " + std::to_string(reply.status) +
                                                                   " body longer than " +
                                                                   std::to_string(max_buffered_body) + " bytes");
      co_return;
    } else {
      reply.body.append(reinterpret_cast<const char*>(chunk.data()), got);
    }
  }
}

}  // namespace

core::result<http_reply> http_client::request(const std::string& method, const std::string& target,
                                              const std::string& body, const std::map<std::string, std::string>& extra,
                                              const body_sink& sink) {
  asio::io_context ioc;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host_ + ":" + port_);
  req.set(http::field::user_agent, "mallorn-agent");
  for (const auto& [k, v] : extra) req.set(k, v);
  if (!body.empty() || method == "POST") {
    req.body() = body;
    req.prepare_payload();
  }
  req.keep_alive(false);
  http_reply reply;
  std::optional<core::error> failure;
  std::exception_ptr thrown;
  std::optional<asio::ssl::context> ssl;
  if (https_) {
    ssl.emplace(asio::ssl::context::tls_client);
    beast::error_code ec;
    if (tls_.ca_file.empty()) ssl->set_default_verify_paths(ec);
    else ssl->load_verify_file(tls_.ca_file.string(), ec);
    if (!ec && !tls_.client_cert.empty()) ssl->use_certificate_chain_file(tls_.client_cert.string(), ec);
    if (!ec && !tls_.client_key.empty()) ssl->use_private_key_file(tls_.client_key.string(), asio::ssl::context::pem, ec);
    if (ec) return core::make_error(core::errc::io_error, "TLS setup: " + ec.message());
    ssl->set_verify_mode(asio::ssl::verify_peer);
  }
  const std::shared_ptr<ssl_session_st> offered_session = tls_session_;
  // A copy: freeing a connection that was not shut down marks its own session unresumable, and
  // the server closes these connections first (keep-alive off).
  auto keep_session = [this](SSL* connection) {
    SSL_SESSION* session = SSL_get0_session(connection);
    if (!session || !SSL_SESSION_is_resumable(session)) return;
    if (SSL_SESSION* copy = SSL_SESSION_dup(session)) tls_session_.reset(copy, SSL_SESSION_free);
  };
  auto run = [&]() -> asio::awaitable<void> {
    tcp::resolver resolver(ioc);
    auto endpoints = co_await resolver.async_resolve(host_, port_, asio::use_awaitable);
    beast::tcp_stream tcp_stream(ioc);
    tcp_stream.expires_after(timeout_);
    if (!https_) {
      co_await tcp_stream.async_connect(endpoints, asio::use_awaitable);
      co_await exchange(tcp_stream, req, timeout_, sink, reply, failure);
      beast::error_code ec;
      tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    } else {
      beast::ssl_stream<beast::tcp_stream> tls_stream(ioc, *ssl);
      if (!SSL_set_tlsext_host_name(tls_stream.native_handle(), host_.c_str()))
        throw beast::system_error(beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()));
      tls_stream.set_verify_callback(asio::ssl::host_name_verification(host_));
      if (offered_session) SSL_set_session(tls_stream.native_handle(), offered_session.get());
      beast::get_lowest_layer(tls_stream).expires_after(timeout_);
      co_await beast::get_lowest_layer(tls_stream).async_connect(endpoints, asio::use_awaitable);
      co_await tls_stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
      co_await exchange(tls_stream, req, timeout_, sink, reply, failure);
      // Taken after the answer: a TLS 1.3 server sends its session ticket after the handshake.
      if (!failure) keep_session(tls_stream.native_handle());
    }
  };
  asio::co_spawn(ioc, run(), [&](std::exception_ptr e) { thrown = e; });
  ioc.run();
  if ((failure || thrown) && offered_session && tls_session_ == offered_session) tls_session_.reset();
  if (failure) return *failure;
  if (thrown) {
    try {
      std::rethrow_exception(thrown);
    } catch (const std::exception& e) {
      return core::make_error(core::errc::io_error, method + " " + host_ + ":" + port_ + target + ": " + e.what());
    }
  }
  return reply;
}

}  // namespace mallorn::agent
