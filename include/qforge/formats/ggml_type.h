// The storage layout of every tensor type a GGUF file may declare (ggml's type ids): name, elements per
// block and bytes per block. Facts from ggml/src/ggml.c's type traits (llama.cpp v0.4.0 bundle).
// Readers use it to validate files; the quant/ registry adds encode/decode on top of these same rows.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace qforge {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
};

struct GgmlTypeLayout {
  GgmlType type;
  std::string_view name;  // upper-case, as users and llama.cpp's tools spell it ("Q4_K")
  uint32_t block_size;    // elements per block
  uint32_t type_size;     // bytes per block
  double bits_per_weight() const { return 8.0 * type_size / block_size; }
};

// nullopt for ids GGUF files may not use (removed, deprecated or unknown).
std::optional<GgmlTypeLayout> GgmlLayout(uint32_t id);
inline GgmlTypeLayout GgmlLayout(GgmlType t) { return *GgmlLayout(static_cast<uint32_t>(t)); }
std::optional<GgmlType> GgmlTypeFromName(std::string_view name);  // case-insensitive
std::string_view GgmlTypeName(GgmlType t);

// F32, F16 or BF16: the unblocked float types (what `convert` writes; never "quantized").
inline bool IsFloatGgmlType(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

// Bytes of a row of n elements; nullopt if n is not a multiple of the block size.
std::optional<uint64_t> GgmlRowBytes(GgmlType t, uint64_t n);

}  // namespace qforge
