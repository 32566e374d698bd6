// Error codes and the result type used across the Mallorn libraries.
// Libraries return result<T>; only binaries (main) turn errors into exit codes / exceptions.
#pragma once
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace mallorn::core {

// Stable codes: the numeric values appear in --json output and must not change.
enum class errc {
  invalid_patch = 1,
  source_hash_mismatch = 2,
  target_hash_mismatch = 3,
  signature_error = 4,
  io_error = 5,
  unsupported_version = 6,
  malformed_model = 7,
  invalid_argument = 8,
  downgrade_refused = 9,
};

const std::error_category& mallorn_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// The seed's taxonomy name for a code ("SourceHashMismatch", "InvalidPatch", ...).
const char* errc_name(errc e) noexcept;

struct error {
  errc code;
  std::string message;  // human text with context, e.g. "patch header: bad magic"
  // The errno behind an io_error from a system call (0: none or unknown). Callers use it to tell
  // a missing file from a machine out of descriptors or space (is_transient()).
  int sys_errno = 0;

  // Prefixes context on the way up: err.with("reading old.tflite").
  error with(const std::string& context) const { return {code, context + ": " + message, sys_errno}; }
  std::string what() const { return std::string(errc_name(code)) + ": " + message; }
  // True for resource exhaustion and device errors (EMFILE, ENFILE, ENOSPC, EDQUOT, EIO, ENOMEM,
  // EAGAIN): retrying later can succeed, so the failure must not be remembered as an answer.
  bool is_transient() const;
};

// The errno values is_transient() treats as "try again later".
bool is_transient_errno(int e) noexcept;

// A small expected<T, error>; C++20 has no std::expected.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(error err) : v_(std::move(err)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const error& err() const { return err_; }

 private:
  error err_{errc::invalid_patch, {}};
  bool ok_ = true;
};

inline error make_error(errc code, std::string message) { return {code, std::move(message)}; }

}  // namespace mallorn::core

template <>
struct std::is_error_code_enum<mallorn::core::errc> : std::true_type {};

// Propagates an error from an expression returning result<...>.
#define MALLORN_TRY(expr)                                   \
  do {                                                      \
    auto&& mallorn_try_r_ = (expr);                         \
    if (!mallorn_try_r_.ok()) return mallorn_try_r_.err();  \
  } while (0)
