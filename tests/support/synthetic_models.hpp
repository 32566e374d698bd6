// Builders for small synthetic model files of every format, so tests can cover dtypes and
// changes the real pairs lack. Deterministic (fixed seeds).
#pragma once
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace mallorn::test {

using byte_vec = std::vector<std::uint8_t>;

struct synth_tensor {
  std::string name;
  std::string dtype;  // safetensors spelling: F32, F16, BF16, I8, U8 ...
  std::vector<std::int64_t> shape;
  byte_vec data;
};

inline void put_u(byte_vec& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

inline byte_vec random_weights_f32(std::size_t n, unsigned seed, float scale = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  byte_vec b(n * 4);
  for (std::size_t i = 0; i < n; ++i) {
    float f = d(rng);
    std::memcpy(&b[4 * i], &f, 4);
  }
  return b;
}

// Adds small noise to a fraction of the f32 weights (a "fine-tune").
inline byte_vec perturb_f32(byte_vec b, double fraction, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<float> noise(0.f, 0.001f);
  for (std::size_t i = 0; i + 4 <= b.size(); i += 4) {
    if (u(rng) >= fraction) continue;
    float f;
    std::memcpy(&f, &b[i], 4);
    f += noise(rng);
    std::memcpy(&b[i], &f, 4);
  }
  return b;
}

inline byte_vec make_safetensors(const std::vector<synth_tensor>& ts) {
  std::string json = "{";
  std::uint64_t off = 0;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    std::string shape;
    for (auto d : ts[i].shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    json += (i ? "," : "") + std::string("\"") + ts[i].name + "\":{\"dtype\":\"" + ts[i].dtype + "\",\"shape\":[" +
            shape + "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + ts[i].data.size()) + "]}";
    off += ts[i].data.size();
  }
  json += "}";
  while (json.size() % 8) json += ' ';
  byte_vec b;
  put_u(b, json.size(), 8);
  b.insert(b.end(), json.begin(), json.end());
  for (const auto& t : ts) b.insert(b.end(), t.data.begin(), t.data.end());
  return b;
}

// GGUF v3 with general.alignment 32. ggml types: 0 F32, 1 F16, 8 Q8_0 (34-byte blocks of 32).
struct gguf_tensor {
  std::string name;
  std::uint32_t ggml_type;
  std::vector<std::uint64_t> dims;
  byte_vec data;
};

inline byte_vec make_gguf(const std::vector<gguf_tensor>& ts) {
  byte_vec b = {'G', 'G', 'U', 'F'};
  put_u(b, 3, 4);
  put_u(b, ts.size(), 8);
  put_u(b, 2, 8);  // kv count
  auto str = [&](const std::string& s) { put_u(b, s.size(), 8); b.insert(b.end(), s.begin(), s.end()); };
  str("general.architecture");
  put_u(b, 8, 4);
  str("synthetic");
  str("general.alignment");
  put_u(b, 4, 4);
  put_u(b, 32, 4);
  std::uint64_t off = 0;
  for (const auto& t : ts) {
    str(t.name);
    put_u(b, t.dims.size(), 4);
    for (auto d : t.dims) put_u(b, d, 8);
    put_u(b, t.ggml_type, 4);
    put_u(b, off, 8);
    off += (t.data.size() + 31) / 32 * 32;
  }
  while (b.size() % 32) b.push_back(0);
  for (const auto& t : ts) {
    b.insert(b.end(), t.data.begin(), t.data.end());
    while (b.size() % 32) b.push_back(0);
  }
  return b;
}

// Minimal ONNX ModelProto: ir_version, graph with raw_data initializers (data_type 1 = FLOAT).
inline byte_vec make_onnx(const std::vector<synth_tensor>& ts) {
  auto varint = [](byte_vec& b, std::uint64_t v) {
    while (v >= 0x80) { b.push_back(static_cast<std::uint8_t>(v | 0x80)); v >>= 7; }
    b.push_back(static_cast<std::uint8_t>(v));
  };
  auto field_bytes = [&](byte_vec& b, int field, const byte_vec& payload) {
    varint(b, (static_cast<std::uint64_t>(field) << 3) | 2);
    varint(b, payload.size());
    b.insert(b.end(), payload.begin(), payload.end());
  };
  byte_vec graph;
  for (const auto& t : ts) {
    byte_vec tp;
    for (auto d : t.shape) { varint(tp, 1 << 3); varint(tp, static_cast<std::uint64_t>(d)); }
    varint(tp, 2 << 3);
    varint(tp, 1);
    field_bytes(tp, 8, byte_vec(t.name.begin(), t.name.end()));
    field_bytes(tp, 9, t.data);
    field_bytes(graph, 5, tp);
  }
  byte_vec model;
  varint(model, 1 << 3);
  varint(model, 8);
  field_bytes(model, 7, graph);
  return model;
}

}  // namespace mallorn::test
