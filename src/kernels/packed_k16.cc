// The k16 layouts (packed_k16.h): packing from stored Q4_K / Q6_K rows, the scalar spec on packed bytes, the
// layout table.
#include "packed_k16.h"

#include <cstring>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "kernels_internal.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/k_blocks.h"

namespace qforge {
namespace {

// One stored super-block of row r into packed super-block sb.
void PackSuperQ4_K(const uint8_t* stored, int r, uint8_t* sb) {
  block_q4_K b;
  std::memcpy(&b, stored, sizeof(b));
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

void PackSuperQ6_K(const uint8_t* stored, int r, uint8_t* sb) {
  block_q6_K b;
  std::memcpy(&b, stored, sizeof(b));
  for (int h = 0; h < 2; ++h)
    for (int c = 0; c < 8; ++c) {
      for (int p = 0; p < 2; ++p) std::memcpy(sb + Q6_K16Ql(h, p, c) + 4 * r, b.ql + 64 * h + 32 * p + 4 * c, 4);
      std::memcpy(sb + Q6_K16Qh(h, c) + 4 * r, b.qh + 32 * h + 4 * c, 4);
    }
  for (int s = 0; s < 16; ++s) std::memcpy(sb + 3072 + 16 * s + r, &b.scales[s], 1);
  std::memcpy(sb + 3328 + 2 * r, &b.d, 2);
}

float DotSuperQ4_K(const uint8_t* sb, int r, const ActQ8_K& y, float sumf) {
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
  return CombineK(sumf, isum, summs, F16ToF32(d), F16ToF32(dmin), y.d);
}

float DotSuperQ6_K(const uint8_t* sb, int r, const ActQ8_K& y, float sumf) {
  int32_t dots[16] = {};
  for (int h = 0; h < 2; ++h)
    for (int c = 0; c < 8; ++c)
      for (int k = 0; k < 4; ++k) {
        const uint8_t qh = sb[Q6_K16Qh(h, c) + 4 * r + k];
        for (int m = 0; m < 4; ++m) {
          const uint8_t ql = sb[Q6_K16Ql(h, m % 2, c) + 4 * r + k];
          const int q = ((ql >> (4 * (m / 2))) & 15) | ((qh >> (2 * m)) & 3) << 4;
          const int e = 128 * h + 32 * m + 4 * c + k;
          dots[e / 16] += y.qs[e] * (q - 32);
        }
      }
  int32_t isum = 0;
  for (int s = 0; s < 16; ++s) isum += static_cast<int8_t>(sb[3072 + 16 * s + r]) * dots[s];
  uint16_t d;
  std::memcpy(&d, sb + 3328 + 2 * r, 2);
  return CombineK(sumf, isum, 0, F16ToF32(d), 0.0f, y.d);
}

template <GgmlType kType>
void RowsScalar(const uint8_t* w, size_t /*row_bytes*/, const PreparedActivation& act, float* y, int64_t r0,
                int64_t r1) {
  const int64_t nsb = act.cols / 256;
  const size_t super_bytes = K16SuperBytes(kType);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* group = w + static_cast<size_t>(r / kK16Rows * nsb) * super_bytes;
    y[r - r0] = DotK16Row(kType, group, nsb, static_cast<int>(r % kK16Rows), act.quantized.data());
  }
}

constexpr MatVecKernel kScalarQ4_K = {"scalar", PrepareScalar<ActFormat::kQ8_K>, RowsScalar<GgmlType::Q4_K>};
constexpr MatVecKernel kScalarQ6_K = {"scalar", PrepareScalar<ActFormat::kQ8_K>, RowsScalar<GgmlType::Q6_K>};

template <GgmlType kType>
size_t Bytes(int64_t rows, size_t row_bytes) {
  return PackedK16Bytes(kType, rows, row_bytes);
}
template <GgmlType kType>
void Pack(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  PackK16(kType, src, row_bytes, rows, cols, dst);
}

}  // namespace

size_t K16SuperBytes(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_K: return kQ4_K16SuperBytes;
    case GgmlType::Q6_K: return kQ6_K16SuperBytes;
    default: return 0;
  }
}

size_t PackedK16Bytes(GgmlType type, int64_t rows, size_t row_bytes) {
  const size_t stored_super = type == GgmlType::Q4_K ? sizeof(block_q4_K) : sizeof(block_q6_K);
  const int64_t groups = (rows + kK16Rows - 1) / kK16Rows;
  return static_cast<size_t>(groups) * (row_bytes / stored_super) * K16SuperBytes(type);
}

void PackK16(GgmlType type, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst) {
  const int64_t nsb = cols / 256, groups = (rows + kK16Rows - 1) / kK16Rows;
  const size_t super_bytes = K16SuperBytes(type), stored_super = row_bytes / static_cast<size_t>(nsb);
  for (int64_t g = 0; g < groups; ++g) {
    uint8_t* out = dst + static_cast<size_t>(g * nsb) * super_bytes;
    // Padding rows of the last group: all zero (their results are computed, never stored).
    if ((g + 1) * kK16Rows > rows) std::memset(out, 0, static_cast<size_t>(nsb) * super_bytes);
    for (int r = 0; r < kK16Rows && g * kK16Rows + r < rows; ++r) {
      const uint8_t* row = src + static_cast<size_t>(g * kK16Rows + r) * row_bytes;
      for (int64_t i = 0; i < nsb; ++i) {
        if (type == GgmlType::Q4_K) {
          PackSuperQ4_K(row + i * stored_super, r, out + i * super_bytes);
        } else {
          PackSuperQ6_K(row + i * stored_super, r, out + i * super_bytes);
        }
      }
    }
  }
}

float DotK16Row(GgmlType type, const uint8_t* group, int64_t nsb, int r, const uint8_t* act) {
  const size_t super_bytes = K16SuperBytes(type);
  float sumf = 0;
  for (int64_t i = 0; i < nsb; ++i) {
    ActQ8_K y;
    std::memcpy(&y, act + i * sizeof(ActQ8_K), sizeof(y));
    const uint8_t* sb = group + i * super_bytes;
    sumf = type == GgmlType::Q4_K ? DotSuperQ4_K(sb, r, y, sumf) : DotSuperQ6_K(sb, r, y, sumf);
  }
  return sumf;
}

const MatVecKernel* ScalarK16Kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_K: return &kScalarQ4_K;
    case GgmlType::Q6_K: return &kScalarQ6_K;
    default: return nullptr;
  }
}

namespace {
const MatVecKernel* BestK16Kernel(GgmlType type) {
  if (AmxEnabled()) return AmxK16Kernel(type);
  return Avx512K16Kernel(type);
}
}  // namespace

const PackedLayout* K16Layout(GgmlType type) {
  static const PackedLayout q4_k = {"q4_kx16", Bytes<GgmlType::Q4_K>, Pack<GgmlType::Q4_K>, &kScalarQ4_K,
                                    BestK16Kernel(GgmlType::Q4_K)};
  static const PackedLayout q6_k = {"q6_kx16", Bytes<GgmlType::Q6_K>, Pack<GgmlType::Q6_K>, &kScalarQ6_K,
                                    BestK16Kernel(GgmlType::Q6_K)};
  switch (type) {
    case GgmlType::Q4_K: return &q4_k;
    case GgmlType::Q6_K: return &q6_k;
    default: return nullptr;
  }
}

}  // namespace qforge
