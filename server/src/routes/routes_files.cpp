// GET|HEAD /patch/<id> and /model/<model>/<version>: immutable files with strong ETags, single
// byte ranges (206/416), If-Range and If-None-Match. The body is streamed from an open fd by
// the session; nothing is loaded into memory here.
#include <fcntl.h>
#include <sys/stat.h>

#include "mallorn/server/http_range.hpp"
#include "mallorn/server/router.hpp"
#include "route_json.hpp"

namespace mallorn::server {
namespace {

http_response serve_file(const http_request& req, const std::string& path, const std::string& sha256,
                         const std::string& kind, const std::string& filename, std::shared_ptr<void> pin,
                         const std::string& patch_id) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // Only a missing file is "not found"; out of descriptors, space or a failing disk is the
    // server's trouble and passes (docs/api.md: 503 + Retry-After).
    if (errno == ENOENT || errno == ENOTDIR) return error_response(404, "not_found", "the file is gone from the store");
    return unavailable_response(errno);
  }
  auto file = std::make_shared<open_file>(fd);
  file->pin = std::move(pin);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return unavailable_response(errno);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::string etag = "\"" + sha256 + "\"";

  http_response r;
  r.set("ETag", etag);
  r.set("Accept-Ranges", "bytes");
  r.set("Cache-Control", "public, max-age=31536000, immutable");
  r.set("Content-Type", "application/octet-stream");
  r.set("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  if (const auto* inm = req.header("if-none-match"); inm && if_none_match_matches(*inm, etag)) {
    r.status = 304;
    r.head_length = size;  // RFC 9110: a 304 may only carry the 200's Content-Length
    return r;
  }
  std::optional<std::string_view> range;
  if (const auto* h = req.header("range")) range = *h;
  if (const auto* ifr = req.header("if-range"); range && ifr && !if_range_matches(*ifr, etag)) range.reset();
  const auto decision = decide_range(range, size);
  file_slice slice{file, 0, size, kind, patch_id};
  if (decision.kind == range_kind::invalid) {
    auto e = error_response(400, "bad_range", "a Range number does not fit in 64 bits");
    e.close = true;  // a framing error: nothing after this request is read
    return e;
  }
  if (decision.kind == range_kind::unsatisfiable) {
    auto e = error_response(416, "range_not_satisfiable", "the range starts beyond the end of the file");
    e.set("Content-Range", "bytes */" + std::to_string(size));
    e.set("ETag", etag);
    return e;
  }
  if (decision.kind == range_kind::partial) {
    r.status = 206;
    slice.offset = decision.range.first;
    slice.length = decision.range.length;
    r.set("Content-Range", "bytes " + std::to_string(slice.offset) + "-" +
                               std::to_string(slice.offset + slice.length - 1) + "/" + std::to_string(size));
  }
  if (req.method == "HEAD") r.head_length = slice.length;
  else r.file = std::move(slice);
  return r;
}

}  // namespace

std::optional<http_response> router::get_patch(const http_request& req, const std::string& id, bool memory_only) {
  // On a shared index the row of a patch another replica built, and this replica's pin row, are
  // index work: an I/O thread hands those requests to the pool (http_session.hpp, index_lookup).
  std::optional<patch_row> row;
  if (memory_only) {
    row = cache_.find_local(id);
    if ((!row && cache_.shared()) || (row && cache_.pin_writes_index(id))) return std::nullopt;
  } else {
    row = cache_.find_by_id(id);
  }
  if (!row) return error_response(404, "unknown_patch", "no patch has this id (it may have been evicted; check for updates again)");
  auto r = serve_file(req, cache_.file_of(id).string(), id, "patch",
                      row->model + "_" + row->source_version + "_to_" + row->target_version + ".mlrn", cache_.pin(id), id);
  r.set("X-Mallorn-Source-SHA256", row->source_sha256);
  r.set("X-Mallorn-Target-SHA256", row->target_sha256);
  return r;
}

http_response router::get_model(const http_request& req, const std::string& model, const std::string& version) {
  auto cat = store_.snapshot();
  const model_version* v = cat->find(model, version);
  if (!v) return error_response(404, "unknown_version", "the store has no " + model + " " + version);
  return serve_file(req, v->path.string(), v->sha256, "model", v->model + "_" + v->version + "." + v->extension, nullptr, {});
}

}  // namespace mallorn::server
