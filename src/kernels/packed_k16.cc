// The q4_kx16 layout (packed_k16.h): packing from stored Q4_K rows, the scalar spec on packed bytes.
#include "packed_k16.h"

#include <cstring>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/k_blocks.h"

namespace qforge {

size_t PackedQ4_Kx16Bytes(int64_t rows, size_t row_bytes) {
  const int64_t groups = (rows + kK16Rows - 1) / kK16Rows;
  return static_cast<size_t>(groups) * (row_bytes / sizeof(block_q4_K)) * kK16SuperBytes;
}

void PackQ4_Kx16(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  const int64_t nsb = cols / 256, groups = (rows + kK16Rows - 1) / kK16Rows;
  for (int64_t g = 0; g < groups; ++g) {
    uint8_t* out = dst + static_cast<size_t>(g * nsb) * kK16SuperBytes;
    // Padding rows of the last group: all zero (their results are computed, never stored).
    if ((g + 1) * kK16Rows > rows) std::memset(out, 0, static_cast<size_t>(nsb) * kK16SuperBytes);
    for (int r = 0; r < kK16Rows && g * kK16Rows + r < rows; ++r) {
      const uint8_t* row = src + static_cast<size_t>(g * kK16Rows + r) * row_bytes;
      for (int64_t i = 0; i < nsb; ++i) {
        block_q4_K b;
        std::memcpy(&b, row + i * sizeof(b), sizeof(b));
        uint8_t* sb = out + i * kK16SuperBytes;
        for (int j = 0; j < 4; ++j)
          for (int c = 0; c < 8; ++c) std::memcpy(sb + 512 * j + 64 * c + 4 * r, b.qs + 32 * j + 4 * c, 4);
        std::memcpy(sb + 2048 + 2 * r, &b.d, 2);
        std::memcpy(sb + 2080 + 2 * r, &b.dmin, 2);
        uint8_t sc[8], m[8];
        UnpackScalesMinsK4(b.scales, sc, m);
        for (int s = 0; s < 8; ++s) {
          sb[2112 + 16 * s + r] = sc[s];
          sb[2240 + 32 * (s / 2) + 2 * r + s % 2] = m[s];
        }
      }
    }
  }
}

float DotQ4_Kx16Row(const uint8_t* group, int64_t nsb, int r, const uint8_t* act) {
  float sumf = 0;
  for (int64_t i = 0; i < nsb; ++i) {
    const uint8_t* sb = group + i * kK16SuperBytes;
    ActQ8_K y;
    std::memcpy(&y, act + i * sizeof(ActQ8_K), sizeof(y));
    int32_t isum = 0, summs = 0;
    for (int s = 0; s < 8; ++s) {
      const int j = s / 2, shift = 4 * (s % 2);
      int32_t dot = 0;
      for (int c = 0; c < 8; ++c)
        for (int k = 0; k < 4; ++k)
          dot += ((sb[512 * j + 64 * c + 4 * r + k] >> shift) & 15) * y.qs[64 * j + 32 * (s % 2) + 4 * c + k];
      const int m = sb[2240 + 32 * j + 2 * r + s % 2];
      isum += sb[2112 + 16 * s + r] * dot;
      summs += m * (y.bsums[2 * s] + y.bsums[2 * s + 1]);
    }
    uint16_t d, dmin;
    std::memcpy(&d, sb + 2048 + 2 * r, 2);
    std::memcpy(&dmin, sb + 2080 + 2 * r, 2);
    sumf = CombineK(sumf, isum, summs, F16ToF32(d), F16ToF32(dmin), y.d);
  }
  return sumf;
}

namespace {

void PrepareQ8_K(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->quantized.resize(ActBytes(ActFormat::kQ8_K, cols));
  QuantizeActQ8_K(x, reinterpret_cast<ActQ8_K*>(act->quantized.data()), cols);
}

void RowsScalar(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0, int64_t r1) {
  const int64_t nsb = act.cols / 256;
  (void)row_bytes;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* group = w + static_cast<size_t>(r / kK16Rows * nsb) * kK16SuperBytes;
    y[r - r0] = DotQ4_Kx16Row(group, nsb, static_cast<int>(r % kK16Rows), act.quantized.data());
  }
}

constexpr MatVecKernel kScalar = {"scalar", PrepareQ8_K, RowsScalar};

}  // namespace

const MatVecKernel* ScalarQ4_Kx16Kernel() { return &kScalar; }

const PackedLayout* Q4_Kx16Layout() {
  static const PackedLayout layout = {"q4_kx16", PackedQ4_Kx16Bytes, PackQ4_Kx16, &kScalar, Avx512Q4_Kx16Kernel()};
  return &layout;
}

}  // namespace qforge
