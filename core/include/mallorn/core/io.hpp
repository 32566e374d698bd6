// Small I/O interfaces: everything that touches bytes goes through these so that tests can inject
// short reads, failing writes and power cuts without mocking the world.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::core {

// Random-access, read-only bytes (the old model on disk, a patch in memory, ...).
class byte_source {
 public:
  virtual ~byte_source() = default;
  virtual std::uint64_t size() const = 0;
  // Reads exactly out.size() bytes at offset or fails with io_error.
  virtual result<void> read_at(std::uint64_t offset, std::span<std::uint8_t> out) = 0;
};

// Forward-only output (the new model being written).
class byte_sink {
 public:
  virtual ~byte_sink() = default;
  virtual result<void> write(std::span<const std::uint8_t> bytes) = 0;
};

class memory_source final : public byte_source {
 public:
  explicit memory_source(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  result<void> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override;

 private:
  std::span<const std::uint8_t> bytes_;
};

class memory_sink final : public byte_sink {
 public:
  result<void> write(std::span<const std::uint8_t> bytes) override {
    data.insert(data.end(), bytes.begin(), bytes.end());
    return {};
  }
  std::vector<std::uint8_t> data;
};

// pread()-backed file source.
class file_source final : public byte_source {
 public:
  static result<std::unique_ptr<file_source>> open(const std::filesystem::path& path);
  ~file_source() override;
  std::uint64_t size() const override { return size_; }
  result<void> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override;

 private:
  file_source(int fd, std::uint64_t size, std::string name) : fd_(fd), size_(size), name_(std::move(name)) {}
  int fd_;
  std::uint64_t size_;
  std::string name_;
};

// Writes to "<final>.tmp-XXXXXX" beside the final path; commit() fsyncs, renames over the final
// path and fsyncs the directory. Destroying an uncommitted sink removes the temp file, so nothing
// half-written ever appears at the final path.
class atomic_file_sink final : public byte_sink {
 public:
  static result<std::unique_ptr<atomic_file_sink>> create(const std::filesystem::path& final_path);
  ~atomic_file_sink() override;
  result<void> write(std::span<const std::uint8_t> bytes) override;
  result<void> commit();
  void discard();

 private:
  atomic_file_sink(int fd, std::filesystem::path tmp, std::filesystem::path final_path)
      : fd_(fd), tmp_(std::move(tmp)), final_(std::move(final_path)) {}
  int fd_;
  std::filesystem::path tmp_;
  std::filesystem::path final_;
  std::vector<std::uint8_t> buffer_;
  result<void> flush_buffer();
};

// Read-only memory map of a whole file (empty files map to an empty span).
class mapped_file {
 public:
  static result<mapped_file> open(const std::filesystem::path& path);
  mapped_file() = default;
  mapped_file(mapped_file&& o) noexcept;
  mapped_file& operator=(mapped_file&& o) noexcept;
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file();
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Reads a whole (small) file: keys, patches for inspection.
result<std::vector<std::uint8_t>> read_file(const std::filesystem::path& path);
// Atomically replaces path with bytes (temp + fsync + rename + dir fsync).
result<void> write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);

}  // namespace mallorn::core
