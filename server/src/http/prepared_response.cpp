// prepare_response(): an answer serialized once, with exactly the bytes write_response() would
// send for it (same header copy, same framing), so a cache hit can skip formatting.
#include <sstream>

#include "http_session.hpp"

namespace mallorn::server {

namespace {

std::string serialize(const http_response& r, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
  detail::copy_headers(r, res);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  return std::move(out).str();
}

}  // namespace

http_response prepare_response(http_response answer) {
  auto p = std::make_shared<prepared_response>();
  p->keep_alive = serialize(answer, true);
  p->close = serialize(answer, false);
  http_response r;
  r.status = answer.status;
  r.route = answer.route;
  r.close = answer.close;
  p->answer = std::move(answer);
  r.prepared = std::move(p);
  return r;
}

}  // namespace mallorn::server
