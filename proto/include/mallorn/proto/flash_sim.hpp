// A NOR-flash stand-in backed by a file: erased bytes read 0xFF, a write may only program erased
// bytes (erase-before-write is enforced), erases work on whole sectors, and power can be cut at
// operation N: that operation is left half done and every later one fails, as on a real device
// losing power mid-write. The file persists, so a "reboot" (a new process) sees what survived.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>

#include "mallorn/core/error.hpp"

namespace mallorn::proto {

class flash_sim {
 public:
  // Opens (or creates, erased) a flash of `size` bytes in `sector_size` sectors.
  static core::result<flash_sim> open(const std::filesystem::path& file, std::uint64_t size, std::uint32_t sector_size);
  flash_sim(flash_sim&& o) noexcept;
  flash_sim& operator=(flash_sim&&) = delete;
  ~flash_sim();

  std::uint64_t size() const { return size_; }
  std::uint32_t sector_size() const { return sector_size_; }

  core::result<void> erase_sector(std::uint64_t sector);
  // io_error "write to unerased flash" if any target byte is not 0xFF.
  core::result<void> write(std::uint64_t offset, std::span<const std::uint8_t> bytes);
  core::result<void> read(std::uint64_t offset, std::span<std::uint8_t> out) const;

  // Operation number (1-based, erases and writes) at which power is lost; 0 = never.
  void cut_power_at(std::uint64_t operation) { cut_at_ = operation; }
  bool powered() const { return powered_; }
  std::uint64_t operations() const { return ops_; }

 private:
  flash_sim(int fd, std::uint64_t size, std::uint32_t sector) : fd_(fd), size_(size), sector_size_(sector) {}
  // Counts an operation; false when this one is where power goes.
  bool tick();
  int fd_ = -1;
  std::uint64_t size_;
  std::uint32_t sector_size_;
  std::uint64_t ops_ = 0, cut_at_ = 0;
  bool powered_ = true;
};

}  // namespace mallorn::proto
