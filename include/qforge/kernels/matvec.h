// Matrix-vector products straight from stored (block-quantized) weights: the runtime's hot loop.
// Contract: y[r] = sum_c W[r][c] * x[c] for r in [r0, r1), W stored row-major in `type` (rows of `cols`
// elements, `row_bytes` apart). Activations are first rounded the way ggml pairs them with each weight type
// (Q8_0, Q8_1, Q8_K, F16, BF16 or F32: activation_quant.h), then each block's integer dot is exact. One table
// maps each type to its kernel; the scalar version is the specification every SIMD path is tested against
// (kernels_test.cc), and ExactMatVec (float activations, double sums) bounds the error of both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "qforge/formats/ggml_type.h"

namespace qforge {

// Activations prepared once per matrix-vector product (e.g. quantized to 8 bits for integer dot
// products), then shared by all rows and threads.
struct PreparedActivation {
  const float* x = nullptr;         // always set: the float activations
  std::vector<uint8_t> quantized;   // kernel-specific (empty for float paths)
  int64_t cols = 0;
  // Unique to one prepare() call (0: never set): lets a kernel that rearranges a batch of activations for
  // itself (the AMX tiles, packed_x16_amx.cc) recognise a batch it has already rearranged. Set by the
  // prepare() of the kernels that use it.
  uint64_t serial = 0;
};

struct MatVecKernel {
  std::string_view isa;  // "scalar", "avx2", ...
  // Fills act from x (may quantize). Called once per product.
  void (*prepare)(const float* x, int64_t cols, PreparedActivation* act);
  // y[r - r0] for rows [r0, r1).
  void (*rows)(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0, int64_t r1);
  // Optional (nullptr: MatMulRows loops rows() per activation): rows [r0, r1) for n activations at once,
  // writing y[t * ldy + r] for activation t. Must give exactly what rows() gives for each activation; it
  // exists because loading each weight block once for several activations is what makes prefill fast.
  void (*rows_batch)(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                     size_t ldy, int64_t r0, int64_t r1) = nullptr;
};

// Matrix-matrix product for rows [r0, r1): y[t * ldy + r] = W[r] · x_t for the n prepared activations,
// bit-identical to n calls of k.rows(). Uses k.rows_batch when present, else walks the rows in small tiles
// so that each tile's weights stay in cache while every activation passes over them.
void MatMulRows(const MatVecKernel& k, const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n,
                float* y, size_t ldy, int64_t r0, int64_t r1);

enum class KernelIsa { kScalar, kBest };
// The kernel for a weight type: the fastest the CPU supports (kBest), or the scalar reference. nullptr if the
// registry cannot decode the type. QFORGE_KERNELS=scalar in the environment forces the scalar table.
const MatVecKernel* FindMatVecKernel(GgmlType type, KernelIsa isa = KernelIsa::kBest);

// The generic scalar reference for any decodable type (decode a row into floats, then dot).
const MatVecKernel* ScalarMatVecKernel(GgmlType type);

// A row-interleaved copy of a weight matrix that some kernels read much faster than the stored rows (the
// runtime makes it once, at load). In the stored layout a kernel meets one row per vector register and must
// convert and scale small partial sums of every row; interleaved, the vector lanes are rows, so one
// conversion, one scale multiply and one FMA serve 16 rows (kernels/packed_x16.h, kernels/packed_k16.h). A packed
// matrix has its own scalar spec (q4_0x16 and q8_0x16 sum in a different float order than the stored types;
// q4_kx16 and q6_kx16 give the stored Q4_K / Q6_K specs' bits), and its kernels take the packed bytes with the
// stored `row_bytes` and any row range, exactly like MatVecKernel on stored rows.
struct PackedLayout {
  std::string_view name;  // e.g. "q4_0x16"
  // Bytes of the packed copy of `rows` rows (the rows are padded up to a whole number of interleave groups).
  size_t (*bytes)(int64_t rows, size_t row_bytes);
  // Writes the packed copy of rows [0, rows) at dst (bytes(rows, row_bytes) of them).
  void (*pack)(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst);
  const MatVecKernel* spec;    // the scalar reference on the packed bytes
  const MatVecKernel* kernel;  // the fastest kernel on the packed bytes for this CPU
};
// The packed layout worth using for `type` on this CPU, or nullptr (no SIMD kernel reads one, or
// QFORGE_KERNELS=scalar is set).
const PackedLayout* FindPackedLayout(GgmlType type);

}  // namespace qforge
