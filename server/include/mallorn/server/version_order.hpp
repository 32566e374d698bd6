// Ordering of model versions: natural order ("v2" < "v10", "1.9" < "1.10"), with semver
// pre-releases before their release ("1.0.0-rc1" < "1.0.0").
#pragma once
#include <string_view>

namespace mallorn::server {

// <0, 0, >0 like strcmp. A leading 'v'/'V' before a digit is ignored.
int compare_versions(std::string_view a, std::string_view b);

struct version_less {
  bool operator()(std::string_view a, std::string_view b) const { return compare_versions(a, b) < 0; }
};

}  // namespace mallorn::server
