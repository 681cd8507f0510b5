// The plain integer schemes of quantization introductions: round-to-nearest with an absmax scale
// (symmetric) or a min/max scale and zero point (asymmetric), per tensor, per output channel (row) or per
// group of g consecutive weights along the input dimension (a row). Stored in safetensors by
// pipeline/quantize_int.h; these are not GGUF block types and the runtime does not execute them.
//
// Math (b = bits, x one weight, the range taken over the tensor / row / group):
//   symmetric:  scale = absmax / (2^(b-1) - 1)
//               q = clamp(round(x / scale), -(2^(b-1)-1), 2^(b-1)-1),           x̂ = q · scale
//   asymmetric: min' = min(min, 0), max' = max(max, 0)  (0 is always in range: exactly representable,
//               zero fits in [0, 2^b-1] and no element is clipped, so |x - x̂| <= scale/2 always holds)
//               scale = (max' - min') / (2^b - 1),  zero = clamp(round(-min' / scale), 0, 2^b - 1)
//               q = clamp(round(x / scale) + zero, 0, 2^b - 1),                 x̂ = (q - zero) · scale
// round() is half away from zero (std::round); arithmetic is float. A zero range (all-zero tensor/row/group)
// gets scale 0, zero 0 and q = 0 (asymmetric: q = zero = 0), which decodes to exactly 0 without NaN.
// Non-finite inputs are rejected with an error.
//
// Storage of q: int8 symmetric as signed bytes (I8); int8 asymmetric as unsigned bytes (U8); int4 as two
// 4-bit values per byte, low nibble = even column, a row padded to a whole byte: asymmetric stores q
// (0..15), symmetric stores q + 8 (1..15; 8 = zero). Scales are F32, zero points U8 (one per scale).
//
// Bits per weight including scales (32 bits each) and zero points (8 bits each), for rows whose length is a
// multiple of g (otherwise the last group of a row is partial and costs a whole scale/zero):
//   int8-sym-tensor   8 + 32/numel  (~8)          int8-sym-channel  8 + 32/cols
//   int8-sym-g32   9.0      int8-sym-g64   8.5      int8-sym-g128   8.25
//   int8-asym-g32  9.25     int8-asym-g64  8.625    int8-asym-g128  8.3125
//   int4-sym-g32   5.0      int4-sym-g64   4.5      int4-sym-g128   4.25
//   int4-asym-g32  5.25     int4-asym-g64  4.625    int4-asym-g128  4.3125
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/status.h"

namespace qforge {

enum class IntGranularity { kTensor, kChannel, kGroup };

struct IntScheme {
  std::string name;  // canonical lower-case name, e.g. "int4-asym-g128"
  int bits = 8;      // 8 or 4
  bool symmetric = true;
  IntGranularity granularity = IntGranularity::kGroup;
  uint64_t group_size = 0;  // kGroup only

  int qmin() const { return symmetric ? -((1 << (bits - 1)) - 1) : 0; }
  int qmax() const { return symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
  // Scales per row (columns of the scales tensor) and rows of the scales tensor.
  uint64_t GroupsPerRow(uint64_t cols) const;
  uint64_t ScaleRows(uint64_t rows) const { return granularity == IntGranularity::kTensor ? 1 : rows; }
  uint64_t PackedRowBytes(uint64_t cols) const { return bits == 8 ? cols : (cols + 1) / 2; }
  // Bytes of qweight + scales + zeros for a [rows, cols] weight, and the bits per weight that makes.
  uint64_t StorageBytes(uint64_t rows, uint64_t cols) const;
  double BitsPerWeight(uint64_t rows, uint64_t cols) const;
};

// Every accepted name, in a fixed order (int8-sym-tensor, int8-sym-channel, int8-sym-g32, ...).
std::vector<std::string> IntSchemeNames();
// Case-insensitive. Unknown names fail with a message listing the valid ones.
StatusOr<IntScheme> ParseIntScheme(std::string_view name);

// A quantized [rows, cols] weight (row-major, cols contiguous = ggml ne[0]).
struct IntQuantized {
  IntScheme scheme;
  uint64_t rows = 0;
  uint64_t cols = 0;
  std::vector<uint8_t> qweight;  // rows * PackedRowBytes(cols); int8 symmetric bytes are int8_t
  std::vector<float> scales;     // ScaleRows(rows) * GroupsPerRow(cols), row-major
  std::vector<uint8_t> zeros;    // same count as scales; asymmetric only (empty for symmetric)
};

StatusOr<IntQuantized> QuantizeInt(const IntScheme& scheme, const float* x, uint64_t rows, uint64_t cols);
// out holds rows * cols floats. Checks that the buffer sizes match the scheme.
Status DequantizeInt(const IntQuantized& q, float* out);

// The single-value rules (exposed for tests).
int QuantizeSymmetric(float x, float scale, int qmax);
int QuantizeAsymmetric(float x, float scale, int zero, int qmax);
// Scale and zero point of an asymmetric range (min/max already taken over the values).
void AsymmetricParams(float min, float max, int qmax, float* scale, int* zero);

}  // namespace qforge
