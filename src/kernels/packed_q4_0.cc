// The q4_0x16 layout (packed_q4_0.h): packing from stored Q4_0 rows and the scalar spec on packed bytes.
#include "packed_q4_0.h"

#include <cmath>
#include <cstring>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"

namespace qforge {

size_t PackedQ4_0x16Bytes(int64_t rows, size_t row_bytes) {
  const int64_t groups = (rows + kQ4_0x16Rows - 1) / kQ4_0x16Rows;
  return static_cast<size_t>(groups) * kQ4_0x16Rows * row_bytes;
}

void PackQ4_0x16(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  const int64_t nb = cols / 32, groups = (rows + kQ4_0x16Rows - 1) / kQ4_0x16Rows;
  for (int64_t g = 0; g < groups; ++g) {
    uint8_t* out = dst + static_cast<size_t>(g) * kQ4_0x16Rows * row_bytes;
    uint8_t* scales = out + 256 * nb;
    // Padding rows of the last group: zero scales and nibbles (their results are computed, never stored).
    if ((g + 1) * kQ4_0x16Rows > rows) std::memset(out, 0, kQ4_0x16Rows * row_bytes);
    for (int r = 0; r < kQ4_0x16Rows && g * kQ4_0x16Rows + r < rows; ++r) {
      const uint8_t* row = src + static_cast<size_t>(g * kQ4_0x16Rows + r) * row_bytes;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* block = row + b * sizeof(BlockQ4_0);
        std::memcpy(scales + 32 * b + 2 * r, block, 2);
        for (int c = 0; c < 4; ++c) std::memcpy(out + 256 * b + 64 * c + 4 * r, block + 2 + 4 * c, 4);
      }
    }
  }
}

float DotQ4_0x16Row(const uint8_t* group, int64_t nb, int r, const uint8_t* act) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    ActQ8_0 a;
    std::memcpy(&a, act + b * sizeof(ActQ8_0), sizeof(a));
    int32_t isum = 0;
    for (int c = 0; c < 4; ++c) {
      for (int k = 0; k < 4; ++k) {
        const uint8_t q = group[256 * b + 64 * c + 4 * r + k];
        isum += ((q & 15) - 8) * a.qs[4 * c + k] + ((q >> 4) - 8) * a.qs[16 + 4 * c + k];
      }
    }
    uint16_t dw;
    std::memcpy(&dw, group + 256 * nb + 32 * b + 2 * r, 2);
    const float d = Keep(F16ToF32(dw) * F16ToF32(a.d));
    acc = std::fma(static_cast<float>(isum), d, acc);
  }
  return acc;
}

namespace {

void PrepareQ8_0(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->quantized.resize(ActBytes(ActFormat::kQ8_0, cols));
  QuantizeActQ8_0(x, reinterpret_cast<ActQ8_0*>(act->quantized.data()), cols);
}

void RowsScalarQ4_0x16(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                       int64_t r1) {
  const int64_t nb = act.cols / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* group = w + static_cast<size_t>(r / kQ4_0x16Rows) * kQ4_0x16Rows * row_bytes;
    y[r - r0] = DotQ4_0x16Row(group, nb, static_cast<int>(r % kQ4_0x16Rows), act.quantized.data());
  }
}

constexpr MatVecKernel kScalarQ4_0x16 = {"scalar", PrepareQ8_0, RowsScalarQ4_0x16};

}  // namespace

const MatVecKernel* ScalarQ4_0x16Kernel() { return &kScalarQ4_0x16; }

}  // namespace qforge
