// A minimal TFLite flatbuffer with pruned (sparse, CSR) int8 weight matrices: the layout whose
// index vectors the index_bitmap transform codes, which no real pair in ../shared/models has.
// Deterministic (fixed seeds). Only the fields the parser reads are written.
#pragma once
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "support/synthetic_models.hpp"

namespace mallorn::test {

// Writes flatbuffer objects strictly forward: every offset points to a later object, linked once
// that object exists. Table fields all take 4-byte slots (scalars in their low bytes).
class flatbuffer_writer {
 public:
  byte_vec bytes;

  struct table_pos {
    std::uint64_t at;
    std::map<int, std::uint64_t> slot;  // field id -> slot position
  };
  // A table with the given (field id, scalar) pairs; offset fields take a placeholder and link().
  table_pos table(const std::vector<std::pair<int, std::uint32_t>>& fields) {
    align();
    int max_id = 0;
    for (const auto& f : fields) max_id = std::max(max_id, f.first);
    std::uint64_t vtable = bytes.size();
    put_u(bytes, 4 + 2 * (max_id + 1), 2);
    put_u(bytes, 4 + 4 * fields.size(), 2);
    for (int id = 0; id <= max_id; ++id) {
      std::uint64_t off = 0;
      for (std::size_t k = 0; k < fields.size(); ++k)
        if (fields[k].first == id) off = 4 + 4 * k;
      put_u(bytes, off, 2);
    }
    align();
    table_pos t{bytes.size(), {}};
    put_u(bytes, t.at - vtable, 4);
    for (std::size_t k = 0; k < fields.size(); ++k) {
      t.slot[fields[k].first] = bytes.size();
      put_u(bytes, fields[k].second, 4);
    }
    return t;
  }
  // A vector of `width`-byte scalars; returns its position (the count).
  std::uint64_t scalars(const std::vector<std::uint32_t>& v, int width) {
    align();
    std::uint64_t at = bytes.size();
    put_u(bytes, v.size(), 4);
    for (auto x : v) put_u(bytes, x, width);
    return at;
  }
  // A vector of n offsets, each linked later: element i's slot is at return + 4 + 4i.
  std::uint64_t offsets(std::size_t n) { return scalars(std::vector<std::uint32_t>(n, 0), 4); }
  void link(std::uint64_t slot, std::uint64_t target) {
    for (int i = 0; i < 4; ++i) bytes[slot + i] = static_cast<std::uint8_t>((target - slot) >> (8 * i));
  }

 private:
  void align() {
    while (bytes.size() % 4) bytes.push_back(0);
  }
};

struct sparse_matrix_spec {
  unsigned rows, columns;
  int index_width;  // 1 (Uint8Vector), 2 (Uint16Vector) or 4 (Int32Vector)
};

// One subgraph of int8 matrices pruned at random (a quarter of the columns of each row kept,
// chosen by `seed`), each stored as TFLite sparsity: dim 0 dense, dim 1 CSR with u16 segments.
// The kept values are all 0x11, so the index vectors are what differs between two seeds.
inline byte_vec make_sparse_tflite(const std::vector<sparse_matrix_spec>& specs, unsigned seed) {
  std::mt19937 rng(seed);
  flatbuffer_writer w;
  w.bytes = {0, 0, 0, 0, 'T', 'F', 'L', '3'};
  auto model = w.table({{0, 3}, {2, 0}, {4, 0}});
  w.link(0, model.at);
  auto subgraphs = w.offsets(1);
  w.link(model.slot[2], subgraphs);
  auto subgraph = w.table({{0, 0}});
  w.link(subgraphs + 4, subgraph.at);
  auto tensors = w.offsets(specs.size());
  w.link(subgraph.slot[0], tensors);
  std::vector<std::uint32_t> kept_counts;
  for (std::size_t t = 0; t < specs.size(); ++t) {
    const auto& s = specs[t];
    std::vector<std::uint32_t> segments{0}, indices;
    for (unsigned r = 0; r < s.rows; ++r) {
      for (unsigned c = 0; c < s.columns; ++c)
        if (rng() % 4 == 0) indices.push_back(c);
      segments.push_back(static_cast<std::uint32_t>(indices.size()));
    }
    kept_counts.push_back(static_cast<std::uint32_t>(indices.size()));
    auto tensor = w.table({{0, 0}, {1, 9}, {2, static_cast<std::uint32_t>(t + 1)}, {3, 0}, {6, 0}});
    w.link(tensors + 4 + 4 * t, tensor.at);
    w.link(tensor.slot[0], w.scalars({s.rows, s.columns}, 4));
    std::string name = "dense_" + std::to_string(t) + "/weights";
    w.link(tensor.slot[3], w.scalars(std::vector<std::uint32_t>(name.begin(), name.end()), 1));
    auto sparsity = w.table({{2, 0}});
    w.link(tensor.slot[6], sparsity.at);
    auto dims = w.offsets(2);
    w.link(sparsity.slot[2], dims);
    w.link(dims + 4, w.table({{0, 0}, {1, s.rows}}).at);
    std::uint32_t index_type = s.index_width == 4 ? 1 : s.index_width == 2 ? 2 : 3;
    auto csr = w.table({{0, 1}, {2, 2}, {3, 0}, {4, index_type}, {5, 0}});
    w.link(dims + 8, csr.at);
    auto seg_table = w.table({{0, 0}});
    w.link(csr.slot[3], seg_table.at);
    w.link(seg_table.slot[0], w.scalars(segments, 2));
    auto idx_table = w.table({{0, 0}});
    w.link(csr.slot[5], idx_table.at);
    w.link(idx_table.slot[0], w.scalars(indices, s.index_width));
  }
  auto buffers = w.offsets(specs.size() + 1);  // buffer 0: the empty one every TFLite model has
  w.link(model.slot[4], buffers);
  w.link(buffers + 4, w.table({}).at);
  for (std::size_t t = 0; t < specs.size(); ++t) {
    auto buffer = w.table({{0, 0}});
    w.link(buffers + 8 + 4 * t, buffer.at);
    w.link(buffer.slot[0], w.scalars(std::vector<std::uint32_t>(kept_counts[t], 0x11), 1));
  }
  return w.bytes;
}

}  // namespace mallorn::test
