#include "mallorn/server/http_framing.hpp"

#include <cctype>

namespace mallorn::server {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

framing_verdict refuse(unsigned status, std::string code, std::string message) {
  return {false, status, std::move(code), std::move(message)};
}

}  // namespace

framing_verdict check_framing(const std::vector<std::string_view>& transfer_encodings, bool has_content_length,
                              unsigned http_version) {
  if (transfer_encodings.empty()) return {};
  if (http_version < 11)
    return refuse(400, "bad_framing", "Transfer-Encoding is not allowed in an HTTP/1.0 request");
  if (has_content_length)
    return refuse(400, "bad_framing", "a request must not carry both Transfer-Encoding and Content-Length");
  std::size_t chunked = 0, codings = 0;
  for (auto value : transfer_encodings) {
    while (!value.empty()) {
      const auto comma = value.find(',');
      const auto token = trim(value.substr(0, comma));
      value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
      if (token.empty()) continue;  // RFC 9110 §5.6.1: empty list elements are ignored
      ++codings;
      if (iequals(token, "chunked")) ++chunked;
      else
        return refuse(501, "unsupported_transfer_coding",
                      "only the 'chunked' transfer-coding is accepted on requests");
    }
  }
  if (codings == 0) return refuse(400, "bad_framing", "an empty Transfer-Encoding");
  if (chunked > 1) return refuse(400, "bad_framing", "'chunked' may be applied only once");
  return {};
}

}  // namespace mallorn::server
