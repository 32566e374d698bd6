// The seed's fingerprint computed with coreutils (head/tail | md5sum), not with our code, so tests
// can compare the two.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>

#include "support/shell.hpp"

namespace mallorn::test {

struct coreutils_fingerprint {
  std::string header_hash;    // md5 of the first 64 KiB
  std::string tail_hash;      // md5 of the last 4 KiB
  std::string combined_hash;  // bytewise XOR of the two
};

inline coreutils_fingerprint fingerprint_with_coreutils(const std::filesystem::path& f) {
  coreutils_fingerprint fp;
  fp.header_hash = first_word("head -c 65536 '" + f.string() + "' | md5sum");
  fp.tail_hash = first_word("tail -c 4096 '" + f.string() + "' | md5sum");
  for (std::size_t i = 0; i + 1 < fp.header_hash.size() && i + 1 < fp.tail_hash.size(); i += 2) {
    unsigned x = std::stoul(fp.header_hash.substr(i, 2), nullptr, 16) ^ std::stoul(fp.tail_hash.substr(i, 2), nullptr, 16);
    char b[3];
    std::snprintf(b, sizeof b, "%02x", x);
    fp.combined_hash += b;
  }
  return fp;
}

}  // namespace mallorn::test
