// libFuzzer target: everything the agent parses from a server. The first byte picks the parser:
// 0 the check-update JSON body, 1 Content-Range, 2 a download head (Content-Length,
// Content-Range, status) checked against an offset and size taken from the input, 3 Retry-After,
// and always log_safe on the rest. A parsed answer must satisfy what the parser promises.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mallorn/agent/http_client.hpp"
#include "mallorn/agent/server_answer.hpp"

using namespace mallorn::agent;

namespace {
std::uint64_t read_u64(const std::uint8_t*& data, std::size_t& size) {
  std::uint64_t v = 0;
  const std::size_t n = size < 8 ? size : 8;
  std::memcpy(&v, data, n);
  data += n;
  size -= n;
  return v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t which = data[0] % 4;
  ++data;
  --size;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string safe = log_safe(text, 64);
  for (char c : safe)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) std::abort();
  switch (which) {
    case 0: {
      constexpr std::uint64_t max = 1u << 20;
      auto a = parse_check_update(text, max);
      if (a && a->update_available) {
        const auto& o = a->offer;
        if (o.full_size == 0 || o.full_size > max || !is_server_path(o.full_url) || o.target_sha256.size() != 64 ||
            o.target_version.empty())
          std::abort();
        if (!o.patch_url.empty() && (o.patch_size == 0 || o.patch_size > max || !is_server_path(o.patch_url)))
          std::abort();
      }
      break;
    }
    case 1: {
      auto r = parse_content_range(text);
      if (r && (r->last < r->first || r->last >= r->total)) std::abort();
      break;
    }
    case 2: {
      const std::uint64_t offset = read_u64(data, size) % 4096, total = read_u64(data, size) % 8192;
      http_reply head;
      head.status = size && (data[0] & 1) ? 206 : 200;
      // The rest: "Content-Length\nContent-Range"
      const std::string_view rest(reinterpret_cast<const char*>(data), size);
      const auto nl = rest.find('\n');
      head.headers["content-length"] = std::string(rest.substr(0, nl));
      if (nl != std::string_view::npos) head.headers["content-range"] = std::string(rest.substr(nl + 1));
      auto ok = check_download_head(head, offset, total);
      if (ok && (total == 0 || offset >= total)) std::abort();
      break;
    }
    case 3: {
      const std::string v(text);
      const unsigned s = parse_retry_after(&v);
      if (s < 1 || s > 3600) std::abort();
      break;
    }
  }
  return 0;
}
