// A tiny option parser: positional arguments plus --flag / --key VALUE / --key=VALUE options.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mallorn::cli {

struct parsed_args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // --key VALUE
  std::set<std::string> flags;                // --flag

  bool has(const std::string& f) const { return flags.count(f) > 0; }
  std::optional<std::string> value(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::nullopt : std::optional(it->second);
  }
};

// `value_options` take an argument (e.g. {"-o", "--level"}); anything else starting with '-' is a
// flag. Returns an error message for unknown options or missing values.
std::optional<std::string> parse_args(const std::vector<std::string>& argv, const std::set<std::string>& value_options,
                                      const std::set<std::string>& flag_options, parsed_args& out);

}  // namespace mallorn::cli
