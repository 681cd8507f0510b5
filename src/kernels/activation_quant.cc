// Scalar reference activation quantizers (ggml's x86 quantize_row_q8_0 / q8_1 and quantize_row_q8_K_ref), the
// spec the SIMD versions in matvec_avx2.cc are checked against byte for byte.
#include "activation_quant.h"

#include <cmath>
#include <cstring>

#include "qforge/core/fp16.h"

namespace qforge {

ActFormat VecDotFormat(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
    case GgmlType::IQ4_NL:
      return ActFormat::kQ8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      return ActFormat::kQ8_1;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_XS:
      return ActFormat::kQ8_K;
    case GgmlType::F16:
      return ActFormat::kF16;
    case GgmlType::BF16:
      return ActFormat::kBF16;
    default:
      return ActFormat::kF32;
  }
}

int ActBlockElems(ActFormat f) {
  switch (f) {
    case ActFormat::kQ8_0:
    case ActFormat::kQ8_1:
      return 32;
    case ActFormat::kQ8_K:
      return 256;
    default:
      return 1;
  }
}

size_t ActBlockBytes(ActFormat f) {
  switch (f) {
    case ActFormat::kQ8_0: return sizeof(ActQ8_0);
    case ActFormat::kQ8_1: return sizeof(ActQ8_1);
    case ActFormat::kQ8_K: return sizeof(ActQ8_K);
    case ActFormat::kF16:
    case ActFormat::kBF16: return 2;
    case ActFormat::kF32: return 0;  // the float activations are used in place
  }
  return 0;
}

size_t ActBytes(ActFormat f, int64_t n) { return static_cast<size_t>(n / ActBlockElems(f)) * ActBlockBytes(f); }

namespace {

// d = amax / 127 and the multiplier 127 / amax, as ggml's x86 CPU backend computes them (quantize_row_q8_0 in
// ggml-cpu/arch/x86/quants.c, used by every x86 build that has AVX); the fp16 rounding of d is only for
// storage. NOTE: ggml's portable quantize_row_q8_0_ref instead multiplies by 1/d and rounds half away from
// zero; the two differ in rare ties and 1-ulp multiplier differences. We follow what llama.cpp executes.
void Q8Scale(const float* x, float* d, float* id) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  *d = amax / 127.0f;
  *id = amax != 0.0f ? 127.0f / amax : 0.0f;
}

// Round to nearest, ties to even (the default FP environment), like _mm256_round_ps(v, _MM_ROUND_NEAREST).
int8_t RoundQ8(float v) { return static_cast<int8_t>(std::nearbyint(v)); }

}  // namespace

void QuantizeActQ8_0(const float* x, ActQ8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float d, id;
    Q8Scale(x, &d, &id);
    y[i].d = F32ToF16(d);
    for (int j = 0; j < 32; ++j) y[i].qs[j] = RoundQ8(x[j] * id);
  }
}

void QuantizeActQ8_1(const float* x, ActQ8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float d, id;
    Q8Scale(x, &d, &id);
    y[i].d = F32ToF16(d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      y[i].qs[j] = RoundQ8(x[j] * id);
      sum += y[i].qs[j];
    }
    y[i].s = F32ToF16(static_cast<float>(sum) * d);
  }
}

void QuantizeActQ8_K(const float* x, ActQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / 256; ++i, x += 256) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    std::memset(&y[i], 0, sizeof(ActQ8_K));
    if (amax == 0.0f) continue;
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; ++j) {
      // ggml's nearest_int: round to nearest, ties to even (the current FP rounding mode).
      const int v = static_cast<int>(std::nearbyint(iscale * x[j]));
      y[i].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

void QuantizeActF16(const float* x, uint16_t* y, int64_t n) { F32ToF16Row(x, y, static_cast<size_t>(n)); }
void QuantizeActBF16(const float* x, uint16_t* y, int64_t n) { F32ToBF16Row(x, y, static_cast<size_t>(n)); }

void QuantizeAct(ActFormat f, const float* x, uint8_t* out, int64_t n) {
  switch (f) {
    case ActFormat::kQ8_0: QuantizeActQ8_0(x, reinterpret_cast<ActQ8_0*>(out), n); break;
    case ActFormat::kQ8_1: QuantizeActQ8_1(x, reinterpret_cast<ActQ8_1*>(out), n); break;
    case ActFormat::kQ8_K: QuantizeActQ8_K(x, reinterpret_cast<ActQ8_K*>(out), n); break;
    case ActFormat::kF16: QuantizeActF16(x, reinterpret_cast<uint16_t*>(out), n); break;
    case ActFormat::kBF16: QuantizeActBF16(x, reinterpret_cast<uint16_t*>(out), n); break;
    case ActFormat::kF32: break;
  }
}

}  // namespace qforge
