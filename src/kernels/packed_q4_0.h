// Q4_0 interleaved by 16 rows ("q4_0x16"): the packed layout the AVX-512 VNNI kernels read (PackedLayout in
// qforge/kernels/matvec.h), its scalar spec, and the kernel tables.
//
// Layout. Rows are taken in groups of 16 (the last group padded with all-zero rows). Group g occupies the same
// bytes the stored rows 16g..16g+15 did, 16 * row_bytes starting at 16 * g * row_bytes, as nb = cols / 32
// blocks of 256 nibble bytes, then nb blocks of 16 fp16 scales:
//   nibbles of block b: at 256 * b + 64 * c + 4 * r + k (chunk c < 4, row r < 16, k < 4) is the stored byte
//     qs[4c + k] of row r's block b. Its low nibble is element 4c + k, its high nibble element 16 + 4c + k, so
//     one 64-byte chunk yields, for all 16 rows, the 4-element groups c and 4 + c in the 32-bit lanes a VNNI
//     dot product accumulates: lanes are rows.
//   scales of block b: at 256 * nb + 32 * b + 2 * r, row r's fp16 d.
// (A group is 16 * 18 * nb bytes = 256 nb + 32 nb: the same size as the stored rows.)
//
// Spec, per row, with the standard Q8_0 activations (activation_quant.h):
//   acc = 0; for each block b in order: isum = sum_{j<32} (q_j - 8) * a_j (exact int32, |isum| <= 32512),
//   d = float(dw) * float(da) (one rounding), acc = fma(float(isum), d, acc) (one rounding).
// This differs from the stored type's lane-strided spec (dot_scalar.h) only by float summation order; the
// block's integer sum may be formed in any order, so a kernel whose lanes are rows needs one conversion, one
// multiply and one FMA per block for 16 rows, and no horizontal sums at all.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qforge/kernels/matvec.h"

namespace qforge {

inline constexpr int kQ4_0x16Rows = 16;

size_t PackedQ4_0x16Bytes(int64_t rows, size_t row_bytes);
void PackQ4_0x16(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst);
// The spec for one row r (0..15) of the group at `group` (nb blocks), against standard ActQ8_0 bytes.
float DotQ4_0x16Row(const uint8_t* group, int64_t nb, int r, const uint8_t* act);

// The scalar spec kernel on packed bytes, and the AVX-512 VNNI one (nullptr when not compiled for x86).
const MatVecKernel* ScalarQ4_0x16Kernel();
const MatVecKernel* Avx512Q4_0x16Kernel();

}  // namespace qforge
