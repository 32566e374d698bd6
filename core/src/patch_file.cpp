// File-level helpers over patch_applier and the header: apply, verify, inspect, sign.
#include <algorithm>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/patch_applier.hpp"

namespace mallorn::core {
namespace {

constexpr std::size_t feed_block = 256u << 10;

class hashing_null_sink final : public byte_sink {
 public:
  result<void> write(std::span<const std::uint8_t>) override { return {}; }
};

result<apply_report> run_applier(byte_source& old, byte_source& patch, byte_sink& out, const apply_options& opts) {
  patch_applier applier(old, out, opts);
  MALLORN_TRY(feed_all_and_finish(applier, patch));
  return apply_report{*applier.header(), applier.actual_target()};
}

}  // namespace

result<void> feed_all_and_finish(patch_applier& applier, byte_source& patch) {
  std::vector<std::uint8_t> block(feed_block);
  std::uint64_t at = 0;
  apply_status status = apply_status::need_more;
  while (at < patch.size()) {
    auto n = std::min<std::uint64_t>(block.size(), patch.size() - at);
    std::span<std::uint8_t> piece(block.data(), n);
    MALLORN_TRY(patch.read_at(at, piece));
    at += n;
    auto r = applier.feed(piece);
    if (!r) return r.err();
    status = *r;
  }
  if (status != apply_status::done && !applier.header() && patch.size() < header_fixed_size)
    return make_error(errc::invalid_patch, "patch is truncated inside its header (" + std::to_string(patch.size()) + " bytes)");
  return applier.finish();
}

result<apply_report> apply_patch_file(const std::filesystem::path& old_model, const std::filesystem::path& patch,
                                      const std::filesystem::path& out, const apply_options& opts) {
  auto old = file_source::open(old_model);
  if (!old) return old.err();
  auto p = file_source::open(patch);
  if (!p) return p.err();
  auto sink = atomic_file_sink::create(out);
  if (!sink) return sink.err();
  auto report = run_applier(**old, **p, **sink, opts);
  if (!report) {
    (*sink)->discard();
    return report.err();
  }
  MALLORN_TRY((*sink)->commit());
  return report;
}

result<apply_report> verify_patch_file(const std::filesystem::path& old_model, const std::filesystem::path& patch,
                                       const apply_options& opts) {
  auto old = file_source::open(old_model);
  if (!old) return old.err();
  auto p = file_source::open(patch);
  if (!p) return p.err();
  hashing_null_sink sink;
  return run_applier(**old, **p, sink, opts);
}

result<patch_header> read_patch_header(const std::filesystem::path& patch) {
  auto p = file_source::open(patch);
  if (!p) return p.err();
  std::vector<std::uint8_t> head(std::min<std::uint64_t>((*p)->size(), header_fixed_size));
  MALLORN_TRY((*p)->read_at(0, head));
  auto probe = parse_header(head);
  if (!probe) return probe.err();
  if (probe->header_size == 0 || probe->header_size > (*p)->size())
    return make_error(errc::invalid_patch, "patch is truncated inside its header");
  head.resize(probe->header_size);
  MALLORN_TRY((*p)->read_at(0, head));
  probe = parse_header(head);
  if (!probe) return probe.err();
  return std::move(*probe->header);
}

result<std::vector<std::uint8_t>> sign_patch(std::span<const std::uint8_t> patch, const ed25519_private_key& key) {
  auto probe = parse_header(patch);
  if (!probe) return probe.err();
  if (!probe->header) return make_error(errc::invalid_patch, "patch is truncated inside its header");
  patch_header h = std::move(*probe->header);
  auto body = patch.subspan(probe->header_size);
  // Never vouch for a damaged patch.
  if (body.size() != h.body_size || sha256_of(body) != h.body_sha256)
    return make_error(errc::invalid_patch, "patch body does not match its header; refusing to sign");
  MALLORN_TRY(sign_header(h, key));
  auto out = encode_header(h);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

}  // namespace mallorn::core
