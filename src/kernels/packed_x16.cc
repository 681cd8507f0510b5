// The x16 layouts (packed_x16.h): packing from stored rows, the scalar spec on packed bytes, the layout table.
#include "packed_x16.h"

#include <cmath>
#include <cstring>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "kernels_internal.h"
#include "qforge/core/fp16.h"

namespace qforge {

int X16QuantBytes(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return 16;
    case GgmlType::Q8_0: return 32;
    default: return 0;
  }
}

size_t PackedX16Bytes(int64_t rows, size_t row_bytes) {
  const int64_t groups = (rows + kX16Rows - 1) / kX16Rows;
  return static_cast<size_t>(groups) * kX16Rows * row_bytes;
}

void PackX16(GgmlType type, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  const int q = X16QuantBytes(type);
  const int64_t nb = cols / 32, groups = (rows + kX16Rows - 1) / kX16Rows;
  for (int64_t g = 0; g < groups; ++g) {
    uint8_t* out = dst + static_cast<size_t>(g) * kX16Rows * row_bytes;
    uint8_t* scales = out + kX16Rows * q * nb;
    // Padding rows of the last group: zero scales and weights (their results are computed, never stored).
    if ((g + 1) * kX16Rows > rows) std::memset(out, 0, kX16Rows * row_bytes);
    for (int r = 0; r < kX16Rows && g * kX16Rows + r < rows; ++r) {
      const uint8_t* row = src + static_cast<size_t>(g * kX16Rows + r) * row_bytes;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* block = row + b * (2 + q);
        std::memcpy(scales + 32 * b + 2 * r, block, 2);
        for (int c = 0; c < q / 4; ++c) std::memcpy(out + kX16Rows * q * b + 64 * c + 4 * r, block + 2 + 4 * c, 4);
      }
    }
  }
}

float DotX16Row(GgmlType type, const uint8_t* group, int64_t nb, int r, const uint8_t* act) {
  const int q = X16QuantBytes(type);
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    ActQ8_0 a;
    std::memcpy(&a, act + b * sizeof(ActQ8_0), sizeof(a));
    int32_t isum = 0;
    for (int c = 0; c < q / 4; ++c) {
      for (int k = 0; k < 4; ++k) {
        const uint8_t byte = group[kX16Rows * q * b + 64 * c + 4 * r + k];
        if (type == GgmlType::Q4_0) {
          isum += ((byte & 15) - 8) * a.qs[4 * c + k] + ((byte >> 4) - 8) * a.qs[16 + 4 * c + k];
        } else {
          isum += static_cast<int8_t>(byte) * a.qs[4 * c + k];
        }
      }
    }
    uint16_t dw;
    std::memcpy(&dw, group + kX16Rows * q * nb + 32 * b + 2 * r, 2);
    const float d = Keep(F16ToF32(dw) * F16ToF32(a.d));
    acc = std::fma(static_cast<float>(isum), d, acc);
  }
  return acc;
}

namespace {

template <GgmlType kType>
void RowsScalar(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                int64_t r1) {
  const int64_t nb = act.cols / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* group = w + static_cast<size_t>(r / kX16Rows) * kX16Rows * row_bytes;
    y[r - r0] = DotX16Row(kType, group, nb, static_cast<int>(r % kX16Rows), act.quantized.data());
  }
}

constexpr MatVecKernel kScalarQ4_0 = {"scalar", PrepareScalar<ActFormat::kQ8_0>, RowsScalar<GgmlType::Q4_0>};
constexpr MatVecKernel kScalarQ8_0 = {"scalar", PrepareScalar<ActFormat::kQ8_0>, RowsScalar<GgmlType::Q8_0>};

void PackQ4_0(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  PackX16(GgmlType::Q4_0, src, row_bytes, rows, cols, dst);
}
void PackQ8_0(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  PackX16(GgmlType::Q8_0, src, row_bytes, rows, cols, dst);
}

}  // namespace

const MatVecKernel* ScalarX16Kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return &kScalarQ4_0;
    case GgmlType::Q8_0: return &kScalarQ8_0;
    default: return nullptr;
  }
}

namespace {
const MatVecKernel* BestX16Kernel(GgmlType type) {
  if (AmxEnabled()) return AmxX16Kernel(type);
  return Avx512X16Kernel(type);
}
}  // namespace

const PackedLayout* X16Layout(GgmlType type) {
  static const PackedLayout q4_0 = {"q4_0x16", PackedX16Bytes, PackQ4_0, &kScalarQ4_0,
                                    BestX16Kernel(GgmlType::Q4_0)};
  static const PackedLayout q8_0 = {"q8_0x16", PackedX16Bytes, PackQ8_0, &kScalarQ8_0,
                                    BestX16Kernel(GgmlType::Q8_0)};
  switch (type) {
    case GgmlType::Q4_0: return &q4_0;
    case GgmlType::Q8_0: return &q8_0;
    default: return nullptr;
  }
}

}  // namespace qforge
