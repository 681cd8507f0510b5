// The float storage types F32, F16 (IEEE binary16) and BF16: one element per "block", no scales.
// Encoding rounds to nearest-even (core/fp16.h); importance does not apply — every element is stored as
// close as the format allows. Decoding is exact (every half/bfloat16 value is a float).
#include <cmath>
#include <cstring>

#include "qforge/core/fp16.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

void EncodeF32(const float* x, uint8_t* out, int64_t n, const float*) {
  std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
}
void DecodeF32(const uint8_t* in, float* y, int64_t n) {
  std::memcpy(y, in, static_cast<size_t>(n) * sizeof(float));
}

// Halves are read and written byte-wise (little-endian) so `out` needs no alignment.
void EncodeF16(const float* x, uint8_t* out, int64_t n, const float*) {
  for (int64_t j = 0; j < n; ++j) {
    uint16_t h = F32ToF16(x[j]);
    std::memcpy(out + 2 * j, &h, 2);
  }
}
void DecodeF16(const uint8_t* in, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    uint16_t h;
    std::memcpy(&h, in + 2 * j, 2);
    float f = F16ToF32(h);
    // ggml converts through float arithmetic, which quiets signalling NaNs: match it bit for bit.
    if (std::isnan(f)) f = BitsFloat(FloatBits(f) | 0x00400000u);
    y[j] = f;
  }
}

void EncodeBF16(const float* x, uint8_t* out, int64_t n, const float*) {
  for (int64_t j = 0; j < n; ++j) {
    uint16_t h = F32ToBF16(x[j]);
    std::memcpy(out + 2 * j, &h, 2);
  }
}
void DecodeBF16(const uint8_t* in, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    uint16_t h;
    std::memcpy(&h, in + 2 * j, 2);
    y[j] = BF16ToF32(h);
  }
}

const QuantType kFloatTypes[] = {
    {GgmlType::F32, EncodeF32, DecodeF32},
    {GgmlType::F16, EncodeF16, DecodeF16},
    {GgmlType::BF16, EncodeBF16, DecodeBF16},
};

}  // namespace

std::span<const QuantType> FloatQuantTypes() { return kFloatTypes; }

}  // namespace qforge
