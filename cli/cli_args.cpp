#include "cli_args.hpp"

#include <charconv>

namespace mallorn::cli {

std::optional<std::string> parse_args(const std::vector<std::string>& argv, const std::set<std::string>& value_options,
                                      const std::set<std::string>& flag_options, parsed_args& out) {
  bool options_done = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (options_done || a.size() < 2 || a[0] != '-') {  // "-" alone is a (file) name
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string key = a, val;
    bool inline_value = false;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      key = a.substr(0, eq);
      val = a.substr(eq + 1);
      inline_value = true;
    }
    if (value_options.count(key)) {
      if (!inline_value) {
        if (i + 1 >= argv.size()) return "option " + key + " needs a value";
        val = argv[++i];
      }
      out.values[key] = val;
    } else if (flag_options.count(key) && !inline_value) {
      out.flags.insert(key);
    } else {
      return "unknown option " + a;
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_uint(const std::string& s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace mallorn::cli
