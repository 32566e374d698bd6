// A tiny option parser: positional arguments plus --flag / --key VALUE / --key=VALUE options.
// Hand-written so the binary needs nothing beyond the libraries it already links.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mallorn::cli {

struct parsed_args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // --key VALUE (the last occurrence wins)
  std::set<std::string> flags;                // --flag

  bool has(const std::string& f) const { return flags.count(f) > 0; }
  std::optional<std::string> value(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::nullopt : std::optional(it->second);
  }
  // -o and --output are the same option everywhere.
  std::optional<std::string> output() const { return value("-o") ? value("-o") : value("--output"); }
};

// `value_options` take an argument (e.g. {"-o", "--level"}); `flag_options` do not. Anything else
// starting with '-' is an error, as is a missing value. "--" ends option parsing. Returns an
// error message, or nullopt on success.
std::optional<std::string> parse_args(const std::vector<std::string>& argv, const std::set<std::string>& value_options,
                                      const std::set<std::string>& flag_options, parsed_args& out);

// Strict whole-number parsing: no sign, no trailing junk, no silent wrap-around (std::stoull
// accepts "-1" and "12abc").
std::optional<std::uint64_t> parse_uint(const std::string& s);

}  // namespace mallorn::cli
