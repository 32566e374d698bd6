#include "download_checkpoint.hpp"

#include <algorithm>
#include <fstream>

#include "mallorn/core/io.hpp"

namespace mallorn::agent {

std::string current_boot_id() {
  std::string id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> id;
  return id;
}

std::filesystem::path checkpoint_path(const std::filesystem::path& part) {
  auto p = part;
  p += ".sync";
  return p;
}

std::optional<download_checkpoint> load_checkpoint(const std::filesystem::path& part) {
  download_checkpoint c;
  std::ifstream in(checkpoint_path(part));
  if (!(in >> c.boot_id >> c.synced)) return std::nullopt;
  return c;
}

core::result<void> save_checkpoint(const std::filesystem::path& part, std::uint64_t synced) {
  const std::string text = current_boot_id() + " " + std::to_string(synced) + "\n";
  return core::write_file_atomic(checkpoint_path(part), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

std::uint64_t trusted_prefix(const std::filesystem::path& part, std::uint64_t size) {
  const auto c = load_checkpoint(part);
  const std::string boot = current_boot_id();
  if (c && !boot.empty() && c->boot_id == boot) return size;  // no power cut since it was written
  return c ? std::min(c->synced, size) : 0;
}

}  // namespace mallorn::agent
