// Request framing (RFC 9112 §6): how long a request's body is. A request whose framing two
// parsers could read differently (an unknown or repeated transfer-coding, Transfer-Encoding with
// Content-Length, Transfer-Encoding in HTTP/1.0) is request smuggling's raw material: it gets
// one error answer and the connection is closed, so nothing after it is ever read as a request.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace mallorn::server {

struct framing_verdict {
  bool ok = true;
  unsigned status = 0;  // 400 or 501 when !ok
  std::string code, message;
};

// `transfer_encodings`: the value of every Transfer-Encoding field, in order (empty: none).
// Accepted: no Transfer-Encoding, or exactly one "chunked" coding overall (any case), HTTP/1.1,
// no Content-Length. Unknown codings (gzip, identity, ...) are 501, everything else 400.
framing_verdict check_framing(const std::vector<std::string_view>& transfer_encodings, bool has_content_length,
                              unsigned http_version);

}  // namespace mallorn::server
