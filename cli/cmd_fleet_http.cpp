// The small HTTP/1.1 client `mallorn fleet` talks to mallornd's admin API with (plain HTTP; put
// a TLS-terminating proxy or an SSH tunnel in front for remote servers).
#include "cmd_fleet_http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iostream>

namespace mallorn::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

std::optional<fleet_reply> fleet_request(const fleet_server& server, const std::string& method, const std::string& path,
                                         const std::string& body, std::string& error) {
  std::string url = server.url;
  if (url.rfind("http://", 0) == 0) {
    url = url.substr(7);
  } else if (url.find("://") != std::string::npos) {
    error = "only http:// server URLs are supported (got " + server.url + ")";
    return std::nullopt;
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::string host = url, port = "80";
  if (auto colon = url.rfind(':'); colon != std::string::npos && url.find(']') == std::string::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req{http::string_to_verb(method), path, 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "mallorn-fleet");
    if (!server.token.empty()) req.set(http::field::authorization, "Bearer " + server.token);
    if (!server.actor.empty()) req.set("X-Mallorn-Actor", server.actor);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buffer, parser);
    beast::error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    return fleet_reply{parser.get().result_int(), parser.get().body()};
  } catch (const std::exception& e) {
    error = "cannot reach " + server.url + ": " + e.what();
    return std::nullopt;
  }
}

std::optional<nlohmann::json> fleet_call(const fleet_server& s, const std::string& method, const std::string& path,
                                         const std::string& body) {
  auto fail = [](const std::string& message) {
    std::cerr << "mallorn fleet: " << message << "\n";
    return std::nullopt;
  };
  std::string error;
  auto reply = fleet_request(s, method, path, body, error);
  if (!reply) return fail(error);
  auto doc = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status / 100 != 2) {
    std::string msg = doc.is_object() && doc.contains("error") ? doc["error"].value("message", reply->body) : reply->body;
    return fail("server answered " + std::to_string(reply->status) + ": " + msg);
  }
  if (doc.is_discarded()) return fail("the server's answer is not JSON");
  return doc;
}

}  // namespace mallorn::cli
