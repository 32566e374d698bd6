// libFuzzer target: mallornd's pure HTTP parsers on arbitrary bytes: Range (with a size from the
// input), If-Range and If-None-Match against an ETag, request targets (percent-decoding,
// segments, query) and request framing (Transfer-Encoding fields, Content-Length, version). A
// partial range must lie inside the resource; a parsed target must hold no segment that could
// leave the store; accepted framing is never ambiguous.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "mallorn/server/http_framing.hpp"
#include "mallorn/server/http_range.hpp"
#include "mallorn/server/request_path.hpp"

using namespace mallorn::server;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 9) return 0;
  std::uint64_t resource = 0;
  std::memcpy(&resource, data + 1, 8);
  if (data[0] & 0x80) resource %= 1 << 20;  // small sizes too, where ranges meet the end
  const std::string_view text(reinterpret_cast<const char*>(data + 9), size - 9);
  switch (data[0] % 5) {
    case 0: {
      auto d = decide_range(text, resource);
      if (d.kind == range_kind::partial &&
          (d.range.length == 0 || d.range.first >= resource || d.range.length > resource - d.range.first))
        std::abort();
      break;
    }
    case 1: {
      const auto split = text.find('\n');
      const auto a = text.substr(0, split), b = split == text.npos ? std::string_view() : text.substr(split + 1);
      (void)if_range_matches(a, b);
      (void)if_none_match_matches(a, b);
      break;
    }
    case 2: {
      if (auto t = parse_target(text))
        for (const auto& s : t->segments)
          if (s == "." || s == ".." || s.find('/') != s.npos || s.find('\0') != s.npos) std::abort();
      break;
    }
    case 3: {
      if (auto d = percent_decode(text, data[0] & 0x40))
        if (d->find('\0') != std::string::npos) std::abort();
      (void)is_valid_name(text);
      (void)is_patch_id(text);
      break;
    }
    case 4: {
      // Each line is one Transfer-Encoding field. Accepted framing is only ever a single
      // "chunked" on HTTP/1.1 without Content-Length; a refusal is 400 or 501 with a code.
      std::vector<std::string_view> fields;
      for (std::size_t at = 0; at <= text.size();) {
        const auto end = std::min(text.find('\n', at), text.size());
        fields.push_back(text.substr(at, end - at));
        at = end + 1;
      }
      if (data[0] & 0x40) fields.clear();
      const bool has_length = data[0] & 0x20;
      const unsigned version = data[0] & 0x10 ? 10 : 11;
      const auto v = check_framing(fields, has_length, version);
      if (v.ok && !fields.empty() && (has_length || version != 11)) std::abort();
      if (!v.ok && ((v.status != 400 && v.status != 501) || v.code.empty())) std::abort();
      break;
    }
  }
  return 0;
}
