// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers") into every GGUF block type the registry encodes. The quantizer inside GPTQ's column loop
// is the registry's own encoder: when the loop reaches the first column of a quant block (a k-quant or
// IQ4_XS super-block: its first of 256 columns), the block's scales (and mins) are chosen by the registry
// encoder from the current, already error-corrected weights of that block; every column of the block is
// then rounded to the grid those scales allow, and its rounding error is propagated to the columns not
// yet quantized through the Cholesky factor of the inverse Hessian. The result is a valid block encoding
// (decodes with the ordinary ggml decoder); with H = identity it equals round-to-nearest byte for byte.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/quant/int_schemes.h"

namespace qforge {

struct GptqOptions {
  // Added to H's diagonal before inversion, as a fraction of the mean diagonal. If the damped H is still
  // not positive definite (dead inputs, rank-deficient calibration), the damping is escalated x10 a few
  // times before giving up with an error naming the tensor.
  double damp = 0.01;
  // Columns per lazy-update batch: errors inside a batch are propagated column by column, the rest of the
  // matrix is updated once per batch (one matrix product). Rounded up to whole quant blocks.
  int block_columns = 128;
  // Quantize columns in order of decreasing H diagonal. Quant blocks stay contiguous (every block is one
  // set of scales): blocks are ordered by their summed diagonal, columns within a block by their own.
  bool act_order = false;
  // Rows are independent given H's factor: they run in parallel; bytes do not depend on this.
  int threads = 1;
  // Optional: cols non-negative per-column weights handed to the registry encoder when it chooses a
  // block's scales (e.g. the imatrix, H's diagonal / tokens), exactly as RTN with the same importance would
  // use them. nullptr: the encoder's unweighted choice.
  const float* importance = nullptr;
};

// Types GptqQuantize accepts: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS.
bool GptqSupportsType(GgmlType type);

// W: rows x cols row-major floats (GGUF: cols = ne[0], the input dimension). H: cols x cols row-major,
// symmetric positive semi-definite (X^T X of the layer's calibration inputs; any positive scale).
// Writes the encoded tensor (GgufTensorBytes(type, {cols, rows}) bytes) to out. name is used in errors.
Status GptqQuantize(std::string_view name, GgmlType type, const float* W, int64_t rows, int64_t cols,
                    const double* H, std::span<uint8_t> out, const GptqOptions& options);

// GPTQ for the plain integer schemes (quant/int_schemes.h): a group's scale (and zero point) is chosen with
// QuantizeInt's rules when the loop reaches the group's first column; per-channel schemes choose once per
// row at its first column, the per-tensor scale is QuantizeInt's (from the original W). With H = identity the
// result equals QuantizeInt's. Rows whose length is not a multiple of the group end in a shorter group.
StatusOr<IntQuantized> GptqQuantizeInt(std::string_view name, const IntScheme& scheme, const float* W, int64_t rows,
                                       int64_t cols, const double* H, const GptqOptions& options);

}  // namespace qforge
