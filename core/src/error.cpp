#include "mallorn/core/error.hpp"

#include <cerrno>

namespace mallorn::core {
namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mallorn"; }
  std::string message(int ev) const override { return errc_name(static_cast<errc>(ev)); }
};
}  // namespace

const std::error_category& mallorn_category() noexcept {
  static const category c;
  return c;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), mallorn_category()}; }

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::invalid_patch: return "InvalidPatch";
    case errc::source_hash_mismatch: return "SourceHashMismatch";
    case errc::target_hash_mismatch: return "TargetHashMismatch";
    case errc::signature_error: return "SignatureError";
    case errc::io_error: return "IoError";
    case errc::unsupported_version: return "UnsupportedVersion";
    case errc::malformed_model: return "MalformedModel";
    case errc::invalid_argument: return "InvalidArgument";
    case errc::downgrade_refused: return "DowngradeRefused";
  }
  return "UnknownError";
}
bool is_transient_errno(int e) noexcept {
  return e == EMFILE || e == ENFILE || e == ENOSPC || e == EDQUOT || e == EIO || e == ENOMEM || e == EAGAIN ||
         e == ENOBUFS;
}

bool error::is_transient() const { return is_transient_errno(sys_errno); }

}  // namespace mallorn::core
