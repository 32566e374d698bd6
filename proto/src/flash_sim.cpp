#include "mallorn/proto/flash_sim.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace mallorn::proto {
namespace {

core::error io(const std::string& what) { return core::make_error(core::errc::io_error, "flash: " + what); }
core::error power_lost() { return io("power lost"); }

}  // namespace

core::result<flash_sim> flash_sim::open(const std::filesystem::path& file, std::uint64_t size, std::uint32_t sector_size) {
  if (sector_size == 0 || size == 0 || size % sector_size) return io("size must be a whole number of sectors");
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return io("open " + file.string() + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  if (static_cast<std::uint64_t>(st.st_size) != size) {
    // A new (or resized) part comes erased.
    std::vector<std::uint8_t> ff(sector_size, 0xFF);
    if (::ftruncate(fd, 0) != 0) return ::close(fd), io("truncate " + file.string());
    for (std::uint64_t off = 0; off < size; off += sector_size)
      if (::pwrite(fd, ff.data(), ff.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(ff.size()))
        return ::close(fd), io("initialise " + file.string());
  }
  return flash_sim(fd, size, sector_size);
}

flash_sim::flash_sim(flash_sim&& o) noexcept
    : fd_(o.fd_), size_(o.size_), sector_size_(o.sector_size_), ops_(o.ops_), cut_at_(o.cut_at_), powered_(o.powered_) {
  o.fd_ = -1;
}

flash_sim::~flash_sim() {
  if (fd_ >= 0) ::close(fd_);
}

bool flash_sim::tick() {
  ++ops_;
  if (cut_at_ != 0 && ops_ >= cut_at_) powered_ = false;
  return powered_;
}

core::result<void> flash_sim::erase_sector(std::uint64_t sector) {
  if (!powered_) return power_lost();
  if ((sector + 1) * sector_size_ > size_) return io("erase of sector " + std::to_string(sector) + " past the end");
  std::vector<std::uint8_t> ff(sector_size_, 0xFF);
  // Power lost mid-erase leaves the first half erased and the rest as it was.
  const std::size_t n = tick() ? ff.size() : ff.size() / 2;
  if (::pwrite(fd_, ff.data(), n, static_cast<off_t>(sector * sector_size_)) != static_cast<ssize_t>(n)) return io("pwrite");
  if (!powered_) return power_lost();
  return {};
}

core::result<void> flash_sim::write(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
  if (!powered_) return power_lost();
  if (offset + bytes.size() > size_) return io("write past the end");
  std::vector<std::uint8_t> current(bytes.size());
  MALLORN_TRY(read(offset, current));
  if (std::any_of(current.begin(), current.end(), [](std::uint8_t b) { return b != 0xFF; }))
    return io("write to unerased flash at " + std::to_string(offset));
  const std::size_t n = tick() ? bytes.size() : bytes.size() / 2;
  if (::pwrite(fd_, bytes.data(), n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) return io("pwrite");
  if (!powered_) return power_lost();
  return {};
}

core::result<void> flash_sim::read(std::uint64_t offset, std::span<std::uint8_t> out) const {
  if (offset + out.size() > size_) return io("read past the end");
  if (::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(out.size())) return io("pread");
  return {};
}

}  // namespace mallorn::proto
