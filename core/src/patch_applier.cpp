#include "mallorn/core/patch_applier.hpp"

#include <algorithm>

#include "mallorn/core/body_format.hpp"
#include "mallorn/core/bytes.hpp"
#include "mallorn/core/hash.hpp"

namespace mallorn::core {

namespace {
constexpr std::size_t copy_block = 1u << 20;
error bad(const std::string& what) { return make_error(errc::invalid_patch, what); }
}  // namespace

struct patch_applier::impl {
  enum class phase { header, frame_head, frame_payload, done, failed };
  enum class need { ops_or_end, gap_data, tensor_data };

  byte_source& old;
  byte_sink& out;
  apply_options opts;

  phase ph = phase::header;
  std::optional<error> failure;
  std::vector<std::uint8_t> buf;  // header bytes, then the frame being received
  patch_header hdr;
  bool have_header = false;
  std::uint8_t frame_kind = 0;
  std::uint64_t frame_len = 0;

  sha256 body_hash, target_hash;
  std::uint64_t body_consumed = 0;
  std::uint64_t written = 0;

  std::vector<body::op> ops;
  std::size_t op_index = 0;
  std::uint64_t op_done = 0;
  std::uint64_t prev_copy_end = 0;
  need wanted = need::ops_or_end;
  std::vector<std::uint8_t> gap_buf, tensor_buf, ref_buf, copy_buf;
  std::size_t gap_pos = 0;
  bool tensor_ready = false;
  sha256_digest actual{};

  impl(byte_source& o, byte_sink& s, apply_options a) : old(o), out(s), opts(std::move(a)) {}

  result<apply_status> fail(error e) {
    failure = e;
    ph = phase::failed;
    buf.clear();
    buf.shrink_to_fit();
    return e;
  }

  result<void> emit(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > hdr.target_size - written) return bad("patch produces more bytes than the target size");
    MALLORN_TRY(out.write(bytes));
    target_hash.update(bytes);
    written += bytes.size();
    if (opts.progress) opts.progress(written, hdr.target_size);
    return {};
  }

  result<void> check_header() {
    if (hdr.profile != patch_profile::standard)
      return make_error(errc::unsupported_version, "this patch uses the mcu profile; apply it with mallorn_lite");
    if (opts.public_key) MALLORN_TRY(verify_header_signature(hdr, *opts.public_key));
    if (opts.min_target_version && hdr.target_version < *opts.min_target_version)
      return make_error(errc::downgrade_refused, "patch targets version " + std::to_string(hdr.target_version) +
                                                     ", below the installed " + std::to_string(*opts.min_target_version));
    if (old.size() != hdr.source_size)
      return make_error(errc::source_hash_mismatch, "old model is " + std::to_string(old.size()) +
                                                        " bytes; the patch was made for " +
                                                        std::to_string(hdr.source_size) + " bytes");
    if (opts.verify_source) {
      auto digest = sha256_of(old);
      if (!digest) return digest.err();
      if (*digest != hdr.source_sha256)
        return make_error(errc::source_hash_mismatch,
                          "old model sha256 " + to_hex(*digest) + " != patch source " + to_hex(hdr.source_sha256));
    }
    return {};
  }

  // Executes ops until one needs a frame that has not arrived yet.
  result<void> run() {
    while (op_index < ops.size()) {
      const body::op& o = ops[op_index];
      std::uint64_t left = o.length - op_done;
      if (left > hdr.target_size - written) return bad("body: ops run past the target size");
      switch (o.kind) {
        case body::op_kind::copy: {
          if (o.src_offset > old.size() || o.length > old.size() - o.src_offset)
            return bad("body: copy outside the old model");
          copy_buf.resize(std::min<std::uint64_t>(copy_block, left));
          while (left > 0) {
            auto n = std::min<std::uint64_t>(left, copy_buf.size());
            std::span<std::uint8_t> piece(copy_buf.data(), n);
            MALLORN_TRY(old.read_at(o.src_offset + op_done, piece));
            MALLORN_TRY(emit(piece));
            op_done += n;
            left -= n;
          }
          break;
        }
        case body::op_kind::gap: {
          while (left > 0) {
            if (gap_pos == gap_buf.size()) {
              wanted = need::gap_data;
              return {};
            }
            auto n = std::min<std::uint64_t>(left, gap_buf.size() - gap_pos);
            MALLORN_TRY(emit({gap_buf.data() + gap_pos, n}));
            gap_pos += n;
            op_done += n;
            left -= n;
          }
          break;
        }
        case body::op_kind::tensor: {
          if (!tensor_ready) {
            wanted = need::tensor_data;
            return {};
          }
          MALLORN_TRY(emit(tensor_buf));
          tensor_ready = false;
          break;
        }
      }
      ++op_index;
      op_done = 0;
    }
    wanted = need::ops_or_end;
    return {};
  }

  result<void> load_reference(const std::vector<body::segment>& segs) {
    ref_buf.resize(body::reference_length(segs));
    std::size_t at = 0;
    for (const auto& s : segs) {
      MALLORN_TRY(old.read_at(s.offset, {ref_buf.data() + at, s.length}));
      at += s.length;
    }
    return {};
  }

  result<void> end_of_body() {
    if (wanted != need::ops_or_end || gap_pos != gap_buf.size()) return bad("body: ends in the middle of an op");
    if (written != hdr.target_size) return bad("body: ends before the whole target was produced");
    if (body_consumed != hdr.body_size) return bad("body: trailing bytes after the end frame");
    if (body_hash.finish() != hdr.body_sha256) return bad("body sha256 does not match the header");
    ph = phase::done;
    return {};
  }

  // Version 3: the body is one gap data frame's payload, as if preceded by an ops frame holding
  // the single op `gap target_size` and followed by the end frame.
  result<void> start_single_frame() {
    if (hdr.target_size == 0 || hdr.body_size == 0 || hdr.body_size > body::max_frame)
      return bad("body: single-frame body size out of range");
    ops = {body::op{body::op_kind::gap, hdr.target_size}};
    op_index = 0;
    op_done = 0;
    MALLORN_TRY(run());  // now waiting for gap data
    frame_kind = static_cast<std::uint8_t>(body::frame_type::data);
    frame_len = hdr.body_size;
    ph = phase::frame_payload;
    return {};
  }

  result<void> on_frame(std::span<const std::uint8_t> payload) {
    switch (static_cast<body::frame_type>(frame_kind)) {
      case body::frame_type::ops: {
        if (wanted != need::ops_or_end) return bad("body: ops frame where data was expected");
        auto decoded = body::decode_ops(payload, prev_copy_end);
        if (!decoded) return decoded.err();
        ops = std::move(*decoded);
        op_index = 0;
        op_done = 0;
        return run();
      }
      case body::frame_type::data: {
        auto f = body::parse_data_frame(payload);
        if (!f) return f.err();
        MALLORN_TRY(body::check_data_frame(*f, old.size()));
        bool gap = f->ch == body::channel::gap;
        if (gap ? wanted != need::gap_data : wanted != need::tensor_data)
          return bad("body: data frame for a channel that is not waiting for one");
        if (!gap && f->out_len != ops[op_index].length) return bad("body: tensor frame size differs from its op");
        MALLORN_TRY(load_reference(f->reference));
        MALLORN_TRY(body::decode_payload(*f, ref_buf, gap ? gap_buf : tensor_buf));
        if (gap) gap_pos = 0;
        else tensor_ready = true;
        ref_buf.clear();
        return run();
      }
      case body::frame_type::end: {
        if (!payload.empty()) return bad("body: end frame with a payload");
        return end_of_body();
      }
    }
    return bad("body: unknown frame type " + std::to_string(frame_kind));
  }

  // Accepts body bytes; returns how many were used.
  result<std::size_t> feed_body(std::span<const std::uint8_t> in) {
    std::size_t used = 0;
    while (used < in.size() && ph != phase::done) {
      if (ph == phase::frame_head) {
        buf.push_back(in[used++]);
        byte_cursor c(buf);
        auto kind = c.u8();
        auto len = c.varint();
        if (!len) {
          if (buf.size() > 11) return bad("body: malformed frame header");
          continue;
        }
        if (*len > body::max_frame) return bad("body: frame larger than the limit");
        frame_kind = *kind;
        frame_len = *len;
        buf.clear();
        buf.reserve(frame_len);
        ph = phase::frame_payload;
      }
      if (ph == phase::frame_payload) {
        auto n = std::min<std::uint64_t>(frame_len - buf.size(), in.size() - used);
        buf.insert(buf.end(), in.begin() + used, in.begin() + used + n);
        used += n;
        if (buf.size() == frame_len) {
          std::vector<std::uint8_t> payload;
          payload.swap(buf);
          ph = phase::frame_head;
          if (hdr.single_frame_body()) {
            // Version 3: the channel (gap) and output length (target size) are implied.
            MALLORN_TRY(on_frame(body::expand_single_frame_body(payload, hdr.target_size)));
            MALLORN_TRY(end_of_body());
          } else {
            MALLORN_TRY(on_frame(payload));
          }
        }
      }
    }
    return used;
  }

  result<apply_status> feed(std::span<const std::uint8_t> in) {
    if (ph == phase::failed) return *failure;
    if (ph == phase::header) {
      std::size_t before = buf.size();
      std::size_t want = max_header_size;
      auto take = std::min(in.size(), want - std::min(want, before));
      buf.insert(buf.end(), in.begin(), in.begin() + take);
      auto probe = parse_header(buf);
      if (!probe) return fail(probe.err());
      if (!probe->header) {
        if (buf.size() >= max_header_size) return fail(bad("header larger than the limit"));
        return apply_status::need_more;
      }
      hdr = std::move(*probe->header);
      have_header = true;
      if (auto ok = check_header(); !ok) {
        have_header = false;
        return fail(ok.err());
      }
      std::size_t header_used = probe->header_size - before;
      in = in.subspan(header_used);
      buf.clear();
      ph = phase::frame_head;
      if (hdr.single_frame_body())
        if (auto ok = start_single_frame(); !ok) return fail(ok.err());
    }
    if (ph == phase::done) {
      if (!in.empty()) return fail(bad("bytes after the end of the patch"));
      return apply_status::done;
    }
    if (in.size() > hdr.body_size - body_consumed)
      return fail(bad("patch is longer than its header says"));
    body_hash.update(in);
    body_consumed += in.size();
    auto used = feed_body(in);
    if (!used) return fail(used.err());
    if (*used != in.size()) return fail(bad("bytes after the end frame"));
    return ph == phase::done ? apply_status::done : apply_status::need_more;
  }

  result<void> finish() {
    if (ph == phase::failed) return *failure;
    if (ph != phase::done)
      return bad("patch is truncated: " + std::to_string(body_consumed) + " of " +
                 std::to_string(have_header ? hdr.body_size : 0) + " body bytes received");
    actual = target_hash.finish();
    if (written != hdr.target_size || actual != hdr.target_sha256) {
      error e = make_error(errc::target_hash_mismatch, "output does not match the target sha256 " + to_hex(hdr.target_sha256));
      (void)fail(e);
      return e;
    }
    return {};
  }
};

patch_applier::patch_applier(byte_source& old_model, byte_sink& out, apply_options opts)
    : impl_(std::make_unique<impl>(old_model, out, std::move(opts))) {}
patch_applier::~patch_applier() = default;

result<apply_status> patch_applier::feed(std::span<const std::uint8_t> bytes) { return impl_->feed(bytes); }
result<void> patch_applier::finish() { return impl_->finish(); }
const patch_header* patch_applier::header() const { return impl_->have_header ? &impl_->hdr : nullptr; }
std::uint64_t patch_applier::bytes_written() const { return impl_->written; }
const sha256_digest& patch_applier::actual_target() const { return impl_->actual; }

}  // namespace mallorn::core
