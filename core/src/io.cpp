#include "mallorn/core/io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

namespace mallorn::core {
namespace {

constexpr std::size_t sink_buffer = 1u << 20;

error sys_error(const std::string& what, const std::filesystem::path& path) {
  const int e = errno;
  auto err = make_error(errc::io_error, what + " " + path.string() + ": " + std::strerror(e));
  err.sys_errno = e;
  return err;
}

result<void> fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error("open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return sys_error("fsync directory", dir);
  return {};
}

}  // namespace

result<void> memory_source::read_at(std::uint64_t offset, std::span<std::uint8_t> out) {
  if (offset > bytes_.size() || out.size() > bytes_.size() - offset)
    return make_error(errc::io_error, "read of " + std::to_string(out.size()) + " bytes at " + std::to_string(offset) +
                                          " is past the end (" + std::to_string(bytes_.size()) + " bytes)");
  std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return {};
}

result<std::unique_ptr<file_source>> file_source::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error("open", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto e = sys_error("stat", path);
    ::close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(errc::io_error, path.string() + " is not a regular file");
  }
  return std::unique_ptr<file_source>(new file_source(fd, static_cast<std::uint64_t>(st.st_size), path.string()));
}

file_source::~file_source() { ::close(fd_); }

result<void> file_source::read_at(std::uint64_t offset, std::span<std::uint8_t> out) {
  if (offset > size_ || out.size() > size_ - offset)
    return make_error(errc::io_error, "read past the end of " + name_);
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("read", name_);
    if (n == 0) return make_error(errc::io_error, name_ + " shrank while being read");
    done += static_cast<std::size_t>(n);
  }
  return {};
}

result<std::unique_ptr<atomic_file_sink>> atomic_file_sink::create(const std::filesystem::path& final_path) {
  // Not mkstemp: it creates 0600 files, and the final file should get the usual 0666 & ~umask.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%06llx", static_cast<unsigned long long>(rng() & 0xffffff));
    tmp = final_path.string() + ".tmp-" + suffix;
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return sys_error("create temp file for", final_path);
  auto sink = std::unique_ptr<atomic_file_sink>(new atomic_file_sink(fd, tmp, final_path));
  sink->buffer_.reserve(sink_buffer);
  return sink;
}

atomic_file_sink::~atomic_file_sink() { discard(); }

void atomic_file_sink::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
  }
}

result<void> atomic_file_sink::flush_buffer() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("write", tmp_);
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
  return {};
}

result<void> atomic_file_sink::write(std::span<const std::uint8_t> bytes) {
  if (fd_ < 0) return make_error(errc::io_error, "write to a closed sink for " + final_.string());
  if (buffer_.size() + bytes.size() > sink_buffer) MALLORN_TRY(flush_buffer());
  if (bytes.size() >= sink_buffer) {
    buffer_.assign(bytes.begin(), bytes.end());
    return flush_buffer();
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  return {};
}

result<void> atomic_file_sink::commit() {
  if (fd_ < 0) return make_error(errc::io_error, "commit of a closed sink for " + final_.string());
  MALLORN_TRY(flush_buffer());
  if (::fsync(fd_) != 0) return sys_error("fsync", tmp_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(tmp_.c_str());
    return sys_error("close", tmp_);
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
    auto e = sys_error("rename onto", final_);
    ::unlink(tmp_.c_str());
    return e;
  }
  return fsync_dir(final_.parent_path());
}

result<mapped_file> mapped_file::open(const std::filesystem::path& path) {
  auto src = file_source::open(path);
  if (!src) return src.err();
  mapped_file m;
  m.size_ = static_cast<std::size_t>((*src)->size());
  if (m.size_ == 0) return m;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error("open", path);
  void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return sys_error("mmap", path);
  m.data_ = static_cast<const std::uint8_t*>(p);
  return m;
}

mapped_file::mapped_file(mapped_file&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

mapped_file& mapped_file::operator=(mapped_file&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

mapped_file::~mapped_file() {
  if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

result<std::vector<std::uint8_t>> read_file(const std::filesystem::path& path) {
  auto src = file_source::open(path);
  if (!src) return src.err();
  std::vector<std::uint8_t> bytes((*src)->size());
  MALLORN_TRY((*src)->read_at(0, bytes));
  return bytes;
}

result<void> write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  auto sink = atomic_file_sink::create(path);
  if (!sink) return sink.err();
  MALLORN_TRY((*sink)->write(bytes));
  return (*sink)->commit();
}

}  // namespace mallorn::core
