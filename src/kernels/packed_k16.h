// Q4_K interleaved by 16 rows ("q4_kx16"): the packed layout the AVX-512 VNNI Q4_K kernels read (PackedLayout in
// qforge/kernels/matvec.h), its scalar spec and the kernel tables.
//
// Layout. Rows are taken in groups of 16 (the last padded with all-zero rows). A group is nsb = cols / 256
// packed super-blocks of kK16SuperBytes bytes each, group g starting at g * nsb * kK16SuperBytes. Super-block i
// of the group, for row r < 16 (the stored block_q4_K of that row: d, dmin, 12 bytes of 6-bit scales and mins,
// 128 bytes qs whose byte 32j + l holds element 64j + l in its low nibble and 64j + 32 + l in its high one):
//   [0, 2048)     qs: byte 32j + 4c + k (j < 4, c < 8, k < 4) of row r at 512j + 64c + 4r + k. One 64-byte chunk
//                 is 4 elements of every row: the 32-bit lanes a VNNI dot product accumulates, so lanes are rows.
//   [2048, 2080)  d of row r (fp16) at 2048 + 2r;   [2080, 2112) dmin at 2080 + 2r
//   [2112, 2240)  the unpacked 6-bit scale of sub-block s (< 8) at 2112 + 16s + r (a byte)
//   [2240, 2368)  the unpacked 6-bit min of sub-block s at 2240 + 32 * (s / 2) + 2r + s % 2 (a byte; zero-extended
//                 to 16 bits, the 32 bytes of a sub-block pair are 16 lanes of int16 min pairs)
// 16 rows take 2368 bytes per super-block instead of the stored 2304 (+2.8%): the scales are stored unpacked.
//
// Spec: exactly the stored Q4_K spec (DotQ4_K in dot_scalar.h): per super-block the exact integers
// isum = sum_s sc_s * dot_s and summs = sum_s m_s * (bsums[2s] + bsums[2s+1]), then CombineK in order. Those
// integers are the same in any summation order, so interleaving changes no result: a packed Q4_K matrix gives
// the same bits as the stored one under every kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qforge/kernels/matvec.h"

namespace qforge {

inline constexpr int kK16Rows = 16;
inline constexpr size_t kK16SuperBytes = 2368;

size_t PackedQ4_Kx16Bytes(int64_t rows, size_t row_bytes);
void PackQ4_Kx16(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst);
// The spec for row r (0..15) of the group at `group` (nsb super-blocks), against standard ActQ8_K bytes.
float DotQ4_Kx16Row(const uint8_t* group, int64_t nsb, int r, const uint8_t* act);

// The scalar spec kernel on packed bytes, the AVX-512 VNNI one (nullptr when not compiled for x86), and the
// layout whatever the CPU.
const MatVecKernel* ScalarQ4_Kx16Kernel();
const MatVecKernel* Avx512Q4_Kx16Kernel();
const PackedLayout* Q4_Kx16Layout();

}  // namespace qforge
