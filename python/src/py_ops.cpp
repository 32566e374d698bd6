#include "py_ops.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include "mallorn/core/io.hpp"

namespace mallorn::python {
namespace {


// verify: the applier hashes what it produces; the bytes themselves are not needed.
class discard_sink final : public core::byte_sink {
 public:
  core::result<void> write(std::span<const std::uint8_t>) override { return {}; }
};

core::result<std::unique_ptr<core::byte_source>> open_source(const input& in) {
  if (!in.path) return std::unique_ptr<core::byte_source>(std::make_unique<core::memory_source>(in.bytes));
  auto f = core::file_source::open(*in.path);
  if (!f) return f.err();
  return std::unique_ptr<core::byte_source>(std::move(*f));
}

// Bytes of an input: the caller's buffer, or the file mapped into `holder`.
core::result<std::span<const std::uint8_t>> bytes_of(const input& in, core::mapped_file& holder) {
  if (!in.path) return in.bytes;
  auto m = core::mapped_file::open(*in.path);
  if (!m) return m.err();
  holder = std::move(*m);
  return holder.bytes();
}

// The header at the start of a patch, read in two steps (fixed part, then its announced size).
core::result<core::patch_header> header_of(core::byte_source& patch) {
  std::vector<std::uint8_t> head(std::min<std::uint64_t>(patch.size(), core::header_fixed_size));
  MALLORN_TRY(patch.read_at(0, head));
  auto probe = core::parse_header(head);
  if (!probe) return probe.err();
  if (probe->header_size == 0 || probe->header_size > patch.size())
    return core::make_error(core::errc::invalid_patch, "patch is truncated inside its header");
  head.resize(probe->header_size);
  MALLORN_TRY(patch.read_at(0, head));
  probe = core::parse_header(head);
  if (!probe) return probe.err();
  return std::move(*probe->header);
}

}  // namespace

core::result<formats::patch_stats> create_patch(const input& source, const input& target,
                                                const std::filesystem::path& out, const formats::diff_options& opts) {
  core::mapped_file old_map, new_map;
  auto old_bytes = bytes_of(source, old_map);
  if (!old_bytes) return old_bytes.err().with("source");
  auto new_bytes = bytes_of(target, new_map);
  if (!new_bytes) return new_bytes.err().with("target");
  auto sink = core::atomic_file_sink::create(out);
  if (!sink) return sink.err();
  auto st = formats::create_patch(*old_bytes, *new_bytes, **sink, opts);
  if (!st) {
    (*sink)->discard();
    return st.err();
  }
  MALLORN_TRY((*sink)->commit());
  return st;
}

apply_outcome apply_patch(const input& source, const input& patch, const std::optional<std::filesystem::path>& out,
                          const core::apply_options& opts) {
  apply_outcome o;
  auto p = open_source(patch);
  if (!p) {
    o.err = p.err().with("patch");
    return o;
  }
  if (auto h = header_of(**p)) o.header = std::move(*h);
  auto old = open_source(source);
  if (!old) {
    o.err = old.err().with("source");
    return o;
  }
  discard_sink discard;
  std::unique_ptr<core::atomic_file_sink> file;
  core::byte_sink* sink = &discard;
  if (out) {
    auto s = core::atomic_file_sink::create(*out);
    if (!s) {
      o.err = s.err();
      return o;
    }
    file = std::move(*s);
    sink = file.get();
  }
  core::patch_applier applier(**old, *sink, opts);
  auto r = core::feed_all_and_finish(applier, **p);
  o.bytes_written = applier.bytes_written();
  if (r || r.err().code == core::errc::target_hash_mismatch) o.actual_target = applier.actual_target();
  if (!r) {
    if (file) file->discard();
    o.err = r.err();
    return o;
  }
  if (file) {
    if (auto c = file->commit(); !c) o.err = c.err();
  }
  return o;
}

core::result<header_info> read_header(const input& patch) {
  auto p = open_source(patch);
  if (!p) return p.err();
  auto h = header_of(**p);
  if (!h) return h.err();
  return header_info{std::move(*h), (*p)->size()};
}

core::result<std::uint64_t> sign_patch(const input& patch, const core::ed25519_private_key& key,
                                       const std::filesystem::path& out) {
  std::vector<std::uint8_t> from_file;
  std::span<const std::uint8_t> bytes = patch.bytes;
  if (patch.path) {
    auto r = core::read_file(*patch.path);
    if (!r) return r.err();
    from_file = std::move(*r);
    bytes = from_file;
  }
  auto signed_patch = core::sign_patch(bytes, key);
  if (!signed_patch) return signed_patch.err();
  MALLORN_TRY(core::write_file_atomic(out, *signed_patch));
  return static_cast<std::uint64_t>(signed_patch->size());
}

}  // namespace mallorn::python
