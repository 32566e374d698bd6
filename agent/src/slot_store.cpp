#include "mallorn/agent/slot_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "mallorn/core/io.hpp"

namespace mallorn::agent {
namespace fs = std::filesystem;

core::result<void> fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::make_error(core::errc::io_error, "open " + dir.string() + " failed");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return core::make_error(core::errc::io_error, "fsync " + dir.string() + " failed");
  return {};
}

slot_store::slot_store(fs::path dir, std::string file_name) : dir_(std::move(dir)), file_(std::move(file_name)) {}

bool slot_store::provisioned() const {
  std::error_code ec;
  return fs::is_symlink(dir_ / "current", ec) && fs::exists(current_model(), ec);
}

core::result<std::string> slot_store::active() const {
  std::error_code ec;
  auto target = fs::read_symlink(dir_ / "current", ec);
  if (ec) return core::make_error(core::errc::io_error, (dir_ / "current").string() + " is not a slot link; run `mallorn-agent install`");
  const std::string name = target.filename().string();
  if (name != "a" && name != "b")
    return core::make_error(core::errc::io_error, (dir_ / "current").string() + " points to '" + name + "', not a or b");
  return name;
}

core::result<void> slot_store::activate(const std::string& slot) {
  const fs::path tmp = dir_ / ".current.tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(slot, tmp, ec);
  if (ec) return core::make_error(core::errc::io_error, "symlink " + tmp.string() + ": " + ec.message());
  // rename(2) replaces `current` atomically: a reader sees the old slot or the new one.
  if (std::rename(tmp.c_str(), (dir_ / "current").c_str()) != 0)
    return core::make_error(core::errc::io_error, "rename over " + (dir_ / "current").string() + " failed");
  return fsync_directory(dir_);
}

core::result<void> slot_store::install(const fs::path& model) {
  std::error_code ec;
  fs::create_directories(dir_ / "a", ec);
  fs::create_directories(dir_ / "b", ec);
  if (ec) return core::make_error(core::errc::io_error, "creating " + dir_.string() + ": " + ec.message());
  auto bytes = core::mapped_file::open(model);
  if (!bytes) return bytes.err();
  MALLORN_TRY(core::write_file_atomic(model_path("a"), bytes->bytes()));
  return activate("a");
}

}  // namespace mallorn::agent

namespace mallorn::agent {

core::result<void> slot_store::clear(const std::string& slot) {
  if (auto a = active(); a && *a == slot) return core::make_error(core::errc::invalid_argument, "slot " + slot + " is active");
  std::error_code ec;
  fs::create_directories(dir_ / slot, ec);
  if (ec) return core::make_error(core::errc::io_error, "creating " + (dir_ / slot).string() + ": " + ec.message());
  for (const auto& e : fs::directory_iterator(dir_ / slot, ec)) {
    fs::remove_all(e.path(), ec);
    if (ec) return core::make_error(core::errc::io_error, "emptying slot " + slot + ": " + ec.message());
  }
  return {};
}

void slot_store::remove_stale_temp_files() const {
  // Temp names of core::write_file_atomic ("<name>.tmp-XXXXXX") and of activate().
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp-") != std::string::npos || name == ".current.tmp") fs::remove(e.path(), ec);
  }
}

}  // namespace mallorn::agent
