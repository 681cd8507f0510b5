// The type registry: for every tensor type qforge can store, its layout (from formats/ggml_type.h) plus
// how to encode a row of floats into blocks and decode blocks back. Formats, algorithms, kernels, the CLI
// and the planner read only this table. Each family of types lives in its own file and contributes rows
// (float_types.cc, legacy_quants.cc, k_quants.cc, iq4_quants.cc); registry.cc joins them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "qforge/formats/ggml_type.h"

namespace qforge {

// Encodes n floats (n a multiple of the block size) into n / block_size blocks at `out`.
// importance: nullptr, or n non-negative per-element weights of the squared error the encoder should
// minimise (an imatrix column weight, repeated per row). Deterministic; never reads past x[n-1].
using EncodeRowFn = void (*)(const float* x, uint8_t* out, int64_t n, const float* importance);
// Decodes n elements (a multiple of the block size) from blocks at `in`. Bit-exact with ggml's
// dequantize_row_* for every GGUF type.
using DecodeRowFn = void (*)(const uint8_t* in, float* y, int64_t n);

struct QuantType {
  GgmlType type;
  EncodeRowFn encode;
  DecodeRowFn decode;

  GgmlTypeLayout layout() const { return GgmlLayout(type); }
  std::string_view name() const { return GgmlTypeName(type); }
};

// nullptr if qforge cannot encode/decode this type.
const QuantType* FindQuantType(GgmlType type);
std::span<const QuantType> AllQuantTypes();

// Family rows (each defined in its own file under src/quant/).
std::span<const QuantType> FloatQuantTypes();   // F32, F16, BF16
std::span<const QuantType> LegacyQuantTypes();  // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
std::span<const QuantType> KQuantTypes();       // Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
std::span<const QuantType> Iq4QuantTypes();     // IQ4_NL, IQ4_XS

}  // namespace qforge
