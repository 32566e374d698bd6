// A RAM-backed flash for mallorn_lite tests (after MCUboot's sim): erase-before-write and
// alignment are enforced (a violation fails the call and is recorded), and power can be cut at
// the Nth erase/write, which then happens only in part (a torn write or erase) before every
// later operation fails, until the test "reboots" with restore_power().
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "mallorn_lite.h"

namespace mallorn::test {

struct sim_power {
  long ops = 0;      // erases + writes so far
  long cut_at = -1;  // index of the operation that loses power (-1: never)
  bool off = false;
  void restore_power() { off = false, cut_at = -1; }
};

class sim_flash {
 public:
  sim_flash(sim_power& power, std::uint32_t size, std::uint32_t erase_size, std::uint32_t align, std::uint8_t fill = 0x5A)
      : power_(power), mem_(size, fill), writable_(size, false) {
    area_ = {&ops_, this, size, erase_size, align};
  }
  sim_flash(const sim_flash&) = delete;
  sim_flash& operator=(const sim_flash&) = delete;

  const mallorn_lite_area* area() const { return &area_; }
  std::vector<std::uint8_t>& bytes() { return mem_; }
  std::span<const std::uint8_t> image(std::size_t n) const { return {mem_.data(), n}; }
  bool violated() const { return violation_; }
  // Loads an image as if it had been programmed (the trailer stays as it is).
  void program(std::span<const std::uint8_t> img) {
    std::copy(img.begin(), img.end(), mem_.begin());
    std::fill(writable_.begin(), writable_.begin() + static_cast<long>(img.size()), false);
  }

 private:
  static sim_flash& self(const mallorn_lite_area* a) { return *static_cast<sim_flash*>(a->user); }

  // Counts the operation; returns false when power is (or just went) off.
  bool tick(bool& torn) {
    torn = false;
    if (power_.off) return false;
    if (power_.ops++ == power_.cut_at) {
      power_.off = true;
      torn = true;
    }
    return true;
  }

  static int read(const mallorn_lite_area* a, std::uint32_t off, void* dst, std::uint32_t len) {
    auto& f = self(a);
    if (f.power_.off || off > a->size || len > a->size - off) return -1;
    std::memcpy(dst, f.mem_.data() + off, len);
    return 0;
  }
  static int write(const mallorn_lite_area* a, std::uint32_t off, const void* src, std::uint32_t len) {
    auto& f = self(a);
    bool torn;
    if (!f.tick(torn)) return -1;
    if (off % a->write_align || len % a->write_align || off > a->size || len > a->size - off) return f.violation();
    for (std::uint32_t i = 0; i < len; ++i)
      if (!f.writable_[off + i]) return f.violation();
    std::uint32_t n = torn ? len / 2 : len;  // a torn write programs only its first half
    std::memcpy(f.mem_.data() + off, src, n);
    std::fill(f.writable_.begin() + off, f.writable_.begin() + off + n, false);
    return torn ? -1 : 0;
  }
  static int erase(const mallorn_lite_area* a, std::uint32_t off, std::uint32_t len) {
    auto& f = self(a);
    bool torn;
    if (!f.tick(torn)) return -1;
    if (off % a->erase_size || len % a->erase_size || off > a->size || len > a->size - off) return f.violation();
    std::uint32_t n = torn ? len / 2 : len;  // a torn erase clears only part of the block
    std::fill(f.mem_.begin() + off, f.mem_.begin() + off + n, 0xFF);
    std::fill(f.writable_.begin() + off, f.writable_.begin() + off + n, true);
    return torn ? -1 : 0;
  }
  int violation() {
    violation_ = true;
    return -1;
  }

  static constexpr mallorn_lite_flash_ops ops_{read, write, erase};
  sim_power& power_;
  std::vector<std::uint8_t> mem_;
  std::vector<bool> writable_;  // erased since last written
  mallorn_lite_area area_{};
  bool violation_ = false;
};

}  // namespace mallorn::test
