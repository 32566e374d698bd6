// libFuzzer target: the POST /enroll and POST /token body parsers and the strict base64 decoder
// on arbitrary bytes must not crash, must refuse with a code, and what they accept must hold what
// they promise (a valid device id, exact key and signature sizes, canonical base64).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mallorn/server/identity/device_requests.hpp"
#include "mallorn/server/request_path.hpp"

using namespace mallorn::server;
using namespace mallorn::server::identity;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  request_problem why;
  if (auto e = parse_enroll_request(body, why)) {
    if (!is_valid_device_id(e->device_id)) std::abort();
  } else if (why.code.empty()) {
    std::abort();
  }
  why = {};
  if (auto t = parse_token_request(body, why)) {
    if (!is_valid_device_id(t->device_id) || t->nonce.size() < 16 || t->nonce.size() > 64) std::abort();
    (void)token_message(t->device_id, t->timestamp, t->nonce);
  } else if (why.code.empty()) {
    std::abort();
  }
  if (auto raw = decode_base64(body)) {
    if (encode_base64(*raw) != body) std::abort();  // canonical: one text per byte string
  }
  return 0;
}
