// Command-line parsing shared by the device simulator and the gateway: "--name value" pairs with
// numbers range-checked; errors name the flag.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::proto {

class cli_args {
 public:
  // `flags` take no value (e.g. "json", "help"); every other known option takes one.
  static core::result<cli_args> parse(const std::vector<std::string>& args, const std::set<std::string>& options,
                                      const std::set<std::string>& flags);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string text(const std::string& name, const std::string& fallback = {}) const;
  core::result<double> real(const std::string& name, double fallback, double min, double max) const;
  core::result<std::uint64_t> whole(const std::string& name, std::uint64_t fallback, std::uint64_t min, std::uint64_t max) const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace mallorn::proto
