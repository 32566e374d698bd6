#include <charconv>

#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server::storage {

bool sql_row::is_null(std::size_t i) const { return i >= cols_.size() || std::holds_alternative<std::nullptr_t>(cols_[i]); }

std::string sql_row::text(std::size_t i) const {
  if (i >= cols_.size()) return {};
  const auto& v = cols_[i];
  if (auto s = std::get_if<std::string>(&v)) return *s;
  if (auto n = std::get_if<std::int64_t>(&v)) return std::to_string(*n);
  if (auto d = std::get_if<double>(&v)) return std::to_string(*d);
  return {};
}

std::int64_t sql_row::integer(std::size_t i) const {
  if (i >= cols_.size()) return 0;
  const auto& v = cols_[i];
  if (auto n = std::get_if<std::int64_t>(&v)) return *n;
  if (auto d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
  if (auto s = std::get_if<std::string>(&v)) {
    // PostgreSQL sends every column as text; booleans arrive as "t"/"f".
    if (*s == "t") return 1;
    if (*s == "f") return 0;
    std::int64_t out = 0;
    std::from_chars(s->data(), s->data() + s->size(), out);
    return out;
  }
  return 0;
}

double sql_row::real(std::size_t i) const {
  if (i >= cols_.size()) return 0;
  const auto& v = cols_[i];
  if (auto d = std::get_if<double>(&v)) return *d;
  if (auto n = std::get_if<std::int64_t>(&v)) return static_cast<double>(*n);
  if (auto s = std::get_if<std::string>(&v)) {
    try {
      return std::stod(*s);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

}  // namespace mallorn::server::storage
