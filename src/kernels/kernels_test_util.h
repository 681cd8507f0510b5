// Test-only helpers for the kernel tests: random weight rows of every type (random bits everywhere except
// sane fp16 scales, so every integer pattern occurs), activations, and dequantized activations.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "activation_quant.h"
#include "qforge/core/fp16.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/quant/registry.h"

namespace qforge::testing {

inline constexpr GgmlType kAllTypes[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
    GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::Q2_K,
    GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS,
};

// Byte offsets of the fp16 scale fields inside one block (ggml's layouts, quant/blocks.h, k_blocks.h).
inline std::vector<int> Fp16Fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K: return {0, 2};
    case GgmlType::Q2_K: return {80, 82};
    case GgmlType::Q3_K: return {108};
    case GgmlType::Q6_K: return {208};
    default: return {0};
  }
}

inline void PutF16(uint8_t* p, float v) {
  const uint16_t h = F32ToF16(v);
  std::memcpy(p, &h, 2);
}

// n elements of `type` (n a multiple of the block size) at w.
inline void RandomWeights(GgmlType type, uint8_t* w, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16) {
    for (int64_t c = 0; c < n; ++c) {
      const float v = normal(rng);
      if (type == GgmlType::F32) std::memcpy(w + 4 * c, &v, 4);
      if (type == GgmlType::F16) PutF16(w + 2 * c, v);
      if (type == GgmlType::BF16) {
        const uint16_t b = F32ToBF16(v);
        std::memcpy(w + 2 * c, &b, 2);
      }
    }
    return;
  }
  const GgmlTypeLayout l = GgmlLayout(type);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(1e-3f, 1e-1f);
  for (int64_t b = 0; b < n / l.block_size; ++b) {
    uint8_t* blk = w + b * l.type_size;
    for (uint32_t i = 0; i < l.type_size; ++i) blk[i] = static_cast<uint8_t>(byte(rng));
    for (int off : Fp16Fields(type)) PutF16(blk + off, byte(rng) < 128 ? mag(rng) : -mag(rng));
  }
}

// Mostly N(0,1) with a few outliers, like hidden states.
inline std::vector<float> RandomActivations(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 63);
  std::vector<float> x(n);
  for (auto& v : x) v = normal(rng) * (pick(rng) == 0 ? 20.0f : 1.0f);
  return x;
}

// The activations the kernels actually multiply with.
inline void DequantizeAct(ActFormat f, const uint8_t* q, const float* x, float* out, int64_t n) {
  switch (f) {
    case ActFormat::kQ8_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        ActQ8_0 blk;
        std::memcpy(&blk, q + b * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 32; ++j) out[32 * b + j] = F16ToF32(blk.d) * blk.qs[j];
      }
      break;
    case ActFormat::kQ8_1:
      for (int64_t b = 0; b < n / 32; ++b) {
        ActQ8_1 blk;
        std::memcpy(&blk, q + b * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 32; ++j) out[32 * b + j] = F16ToF32(blk.d) * blk.qs[j];
      }
      break;
    case ActFormat::kQ8_K:
      for (int64_t b = 0; b < n / 256; ++b) {
        ActQ8_K blk;
        std::memcpy(&blk, q + b * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 256; ++j) out[256 * b + j] = blk.d * blk.qs[j];
      }
      break;
    case ActFormat::kF16:
      for (int64_t c = 0; c < n; ++c) {
        uint16_t h;
        std::memcpy(&h, q + 2 * c, 2);
        out[c] = F16ToF32(h);
      }
      break;
    case ActFormat::kBF16:
      for (int64_t c = 0; c < n; ++c) {
        uint16_t h;
        std::memcpy(&h, q + 2 * c, 2);
        out[c] = BF16ToF32(h);
      }
      break;
    case ActFormat::kF32:
      std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
      break;
  }
}

// Weights placed so that their last byte is the last byte before an inaccessible page: a SIMD kernel that
// loads past the end of the matrix (e.g. a 64-byte load of a 36-byte block pair in the last row) crashes here
// instead of silently reading a neighbour's bytes. Results must still equal the scalar spec.
class GuardedBytes {
 public:
  explicit GuardedBytes(size_t n) : n_(n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_pages_ = (n + page - 1) / page * page;
    base_ = static_cast<uint8_t*>(
        mmap(nullptr, data_pages_ + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) base_ = nullptr;
    if (base_ != nullptr) mprotect(base_ + data_pages_, page, PROT_NONE);
    page_ = page;
  }
  ~GuardedBytes() {
    if (base_ != nullptr) munmap(base_, data_pages_ + page_);
  }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;
  uint8_t* data() const { return base_ == nullptr ? nullptr : base_ + data_pages_ - n_; }

 private:
  size_t n_, data_pages_ = 0, page_ = 0;
  uint8_t* base_ = nullptr;
};

}  // namespace qforge::testing

namespace qforge {
inline void ExactDecode(GgmlType t, const uint8_t* row, float* out, int64_t n) {
  FindQuantType(t)->decode(row, out, n);
}
}  // namespace qforge
