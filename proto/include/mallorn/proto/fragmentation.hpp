// Forward error correction for the LoRa link, after LoRaWAN's fragmented data block transport
// (TS004 v1.0.0): data is cut into M fragments; fragment n (1-based) for n <= M is data fragment n,
// and n > M is parity fragment n - M, the XOR of the data fragments its parity-matrix row selects.
// Rows come from the specification's PRBS23 generator, so any sender and receiver agree on them
// without sending the matrix. The code is low-density and random, not MDS: the decoder rebuilds
// every fragment the received rows determine (usually after M + a few fragments), and reports how
// many unknowns remain so the device can ask for just that many more parity fragments.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::proto {

// TS004's pseudo-random binary sequence step.
std::uint32_t prbs23(std::uint32_t x);
// Row `n` (1-based parity number) of the parity matrix for `m` data fragments: m entries of 0/1.
// For m == 1 (where the specification's row would be empty) the row is [1]: a plain repeat.
std::vector<std::uint8_t> parity_row(std::uint32_t n, std::uint32_t m);

inline constexpr std::uint32_t max_fragments = 4096;  // data fragments per session

// Cuts `data` into fragments of `frag_size` bytes (the last zero-padded) and makes any fragment.
class frag_encoder {
 public:
  frag_encoder(std::span<const std::uint8_t> data, std::uint32_t frag_size);
  std::uint32_t fragments() const { return m_; }
  std::uint32_t frag_size() const { return frag_size_; }
  // index 1..M: data; index > M: parity index - M.
  std::vector<std::uint8_t> fragment(std::uint32_t index) const;

 private:
  std::vector<std::uint8_t> padded_;
  std::uint32_t frag_size_, m_;
};

// Rebuilds M fragments from any mix of data and parity fragments, by incremental Gaussian
// elimination over GF(2) (each stored equation keeps a distinct lowest set bit).
class frag_decoder {
 public:
  frag_decoder(std::uint32_t fragments, std::uint32_t frag_size);

  // Adds fragment `index` (see frag_encoder). Returns true when it taught the decoder something,
  // false for a duplicate or a combination of what it already had; invalid_argument for a wrong
  // size or index 0.
  core::result<bool> add(std::uint32_t index, std::span<const std::uint8_t> payload);
  bool complete() const { return rank_ == m_; }
  // Data fragments not yet determined (M - rank): how many more independent fragments are needed.
  std::uint32_t missing() const { return m_ - rank_; }
  std::uint32_t received() const { return received_; }
  std::uint32_t fragments() const { return m_; }
  // The M * frag_size bytes (padding included); valid once complete().
  std::vector<std::uint8_t> data();

 private:
  struct equation {
    std::vector<std::uint64_t> bits;
    std::vector<std::uint8_t> payload;
  };
  static int lowest_bit(const std::vector<std::uint64_t>& bits);
  void solve();

  std::uint32_t m_, frag_size_;
  std::uint32_t rank_ = 0, received_ = 0;
  std::vector<equation> pivots_;  // pivots_[b] has lowest set bit b (empty bits: none yet)
  bool solved_ = false;
};

}  // namespace mallorn::proto
