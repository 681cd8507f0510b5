// Legacy 32-element block types interleaved by 16 rows: "q4_0x16" and "q8_0x16", the packed layouts the
// AVX-512 VNNI kernels read (PackedLayout in qforge/kernels/matvec.h), their scalar spec, and the kernel tables.
//
// Layout. A stored block is an fp16 scale d and Q quant bytes qs (Q4_0: Q = 16, two 4-bit weights per byte;
// Q8_0: Q = 32, one int8 weight per byte). Rows are taken in groups of 16 (the last group padded with all-zero
// rows). Group g occupies the same bytes the stored rows 16g..16g+15 did, 16 * row_bytes starting at
// 16 * g * row_bytes, as nb = cols / 32 blocks of 16 * Q quant bytes, then nb blocks of 16 fp16 scales:
//   quant bytes of block b: at 16 * Q * b + 64 * c + 4 * r + k (chunk c < Q / 4, row r < 16, k < 4) is the stored
//     byte qs[4c + k] of row r's block b. One 64-byte chunk is 4 consecutive bytes of every row: the 32-bit lanes
//     a VNNI dot product accumulates, so the lanes are rows. (Q4_0: a byte's low nibble is element 4c + k, its
//     high nibble element 16 + 4c + k. Q8_0: the byte is element 4c + k.)
//   scales of block b: at 16 * Q * nb + 32 * b + 2 * r, row r's fp16 d.
// (A group is 16 * (2 + Q) * nb bytes: the same size as the stored rows.)
//
// Spec, per row, with the standard Q8_0 activations (activation_quant.h):
//   acc = 0; for each block b in order: isum = sum_{j<32} w_j * a_j (exact int32; w_j = q_j - 8 for Q4_0,
//   the int8 for Q8_0; |isum| <= 32 * 128 * 127 < 2^24, so its conversion to float is exact),
//   d = float(dw) * float(da) (one rounding), acc = fma(float(isum), d, acc) (one rounding).
// This differs from the stored types' lane-strided spec (dot_scalar.h) only by float summation order; the
// block's integer sum may be formed in any order, so a kernel whose lanes are rows needs one conversion, one
// multiply and one FMA per block for 16 rows, and no horizontal sums at all.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qforge/formats/ggml_type.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

inline constexpr int kX16Rows = 16;

// Quant bytes per block (16 for Q4_0, 32 for Q8_0; 0 for a type without an x16 layout).
int X16QuantBytes(GgmlType type);
size_t PackedX16Bytes(int64_t rows, size_t row_bytes);
// Packs rows [0, rows) of `type` (Q4_0 or Q8_0).
void PackX16(GgmlType type, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst);
// The spec for row r (0..15) of the group at `group` (nb blocks), against standard ActQ8_0 bytes.
float DotX16Row(GgmlType type, const uint8_t* group, int64_t nb, int r, const uint8_t* act);

// The scalar spec kernel on packed bytes, and the AVX-512 VNNI one (nullptr when not compiled for x86).
const MatVecKernel* ScalarX16Kernel(GgmlType type);
const MatVecKernel* Avx512X16Kernel(GgmlType type);
// The AVX-512 kernel with its batch (prefill) product on AMX tiles (packed_x16_amx.cc); nullptr without AMX.
const MatVecKernel* AmxX16Kernel(GgmlType type);
// The packed layout of `type` (nullptr if it has none), whatever the CPU.
const PackedLayout* X16Layout(GgmlType type);

}  // namespace qforge
