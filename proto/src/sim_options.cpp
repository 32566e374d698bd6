#include "mallorn/proto/sim_options.hpp"

#include <charconv>
#include <cstdlib>

namespace mallorn::proto {
namespace {
core::error bad(const std::string& w) { return core::make_error(core::errc::invalid_argument, w); }
}  // namespace

core::result<cli_args> cli_args::parse(const std::vector<std::string>& args, const std::set<std::string>& options,
                                       const std::set<std::string>& flags) {
  cli_args out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "-h") {
      out.values_["help"] = "1";
      continue;
    }
    if (a.rfind("--", 0) != 0) return bad("unexpected argument '" + a + "' (see --help)");
    std::string name = a.substr(2), value;
    const auto eq = name.find('=');
    if (eq != std::string::npos) value = name.substr(eq + 1), name = name.substr(0, eq);
    if (flags.count(name)) {
      out.values_[name] = "1";
      continue;
    }
    if (!options.count(name)) return bad("unknown option --" + name + " (see --help)");
    if (eq == std::string::npos) {
      if (i + 1 >= args.size()) return bad("--" + name + " needs a value");
      value = args[++i];
    }
    out.values_[name] = value;
  }
  return out;
}

std::string cli_args::text(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

core::result<double> cli_args::real(const std::string& name, double fallback, double min, double max) const {
  if (!has(name)) return fallback;
  const auto& s = values_.at(name);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end || !(v >= min && v <= max))
    return bad("--" + name + ": expected a number in " + std::to_string(min) + ".." + std::to_string(max) + ", got '" + s + "'");
  return v;
}

core::result<std::uint64_t> cli_args::whole(const std::string& name, std::uint64_t fallback, std::uint64_t min,
                                             std::uint64_t max) const {
  if (!has(name)) return fallback;
  const auto& s = values_.at(name);
  std::uint64_t v = 0;
  std::uint64_t mult = 1;
  std::string digits = s;
  if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) mult = 1024, digits.pop_back();
  else if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) mult = 1 << 20, digits.pop_back();
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc{} || p != digits.data() + digits.size() || digits.empty() || v * mult < min || v * mult > max)
    return bad("--" + name + ": expected a whole number in " + std::to_string(min) + ".." + std::to_string(max) + ", got '" + s + "'");
  return v * mult;
}

}  // namespace mallorn::proto
