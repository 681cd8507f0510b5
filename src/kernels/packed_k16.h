// The k-quant super-block types Q4_K and Q6_K interleaved by 16 rows ("q4_kx16", "q6_kx16"): the packed layouts
// the AVX-512 VNNI kernels read (PackedLayout in qforge/kernels/matvec.h), their scalar spec and the kernel
// tables. Q4_K_M files are Q4_K and Q6_K matrices (attn_v, half of ffn_down and the output matrix are Q6_K: about
// a quarter of the bytes a token reads), and llama.cpp-style Q4_0 files keep their output matrix in Q6_K.
//
// Both layouts take rows in groups of 16 (the last padded with all-zero rows). A group is nsb = cols / 256
// packed super-blocks of K16SuperBytes(type) bytes each, group g starting at g * nsb * K16SuperBytes(type).
// In both, one 64-byte "chunk" is 4 elements of every row: the 32-bit lanes a VNNI dot product accumulates, so
// lanes are rows. Offsets below are within super-block i of the group, for row r < 16, from row r's stored
// block i.
//
// q4_kx16 (stored block_q4_K: d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes qs whose byte 32j + l holds
// element 64j + l in its low nibble and 64j + 32 + l in its high one):
//   [0, 2048)     qs: byte 32j + 4c + k (j < 4, c < 8, k < 4) at 512j + 64c + 4r + k
//   [2048, 2080)  d of row r (fp16) at 2048 + 2r;   [2080, 2112) dmin at 2080 + 2r
//   [2112, 2240)  the unpacked 6-bit scale of sub-block s (< 8) at 2112 + 16s + r (a byte)
//   [2240, 2368)  the unpacked 6-bit min of sub-block s at 2240 + 32 * (s / 2) + 2r + s % 2 (a byte; zero-extended
//                 to 16 bits, the 32 bytes of a sub-block pair are 16 lanes of int16 min pairs)
//   16 rows take 2368 bytes per super-block instead of the stored 2304 (+2.8%): the scales are stored unpacked.
//
// q6_kx16 (stored block_q6_K: ql[128], qh[64], int8 scales[16], fp16 d; element e = 128h + 32m + l (h < 2,
// m < 4, l < 32) is the 6-bit q = low nibble | 2 high bits << 4, its low nibble in ql[64h + 32(m % 2) + l] (low
// half of the byte for m < 2, high half for m >= 2), its high bits in qh[32h + l] bits 2m, 2m + 1, and it is
// sub-block (16 elements) e / 16 with weight scales[e / 16] * (q - 32) * d):
//   [0, 3072)     16 steps t = 8h + c (h < 2, c < 8) of 3 chunks each, in the order the decode kernel reads them:
//                 at 192t + 64p + 4r + k (p < 2, k < 4) ql byte 64h + 32p + 4c + k, whose low nibble is element
//                 128h + 32p + 4c + k and high nibble the same + 64; at 192t + 128 + 4r + k qh byte 32h + 4c + k,
//                 whose bit pair m is element 128h + 32m + 4c + k. (Until session 10 the 32 ql chunks came first
//                 and the 16 qh chunks after them: decode then read three places of each super-block at once.)
//   [3072, 3328)  scales[s] of row r at 3072 + 16s + r (int8)
//   [3328, 3360)  d of row r (fp16) at 3328 + 2r
//   16 rows take 3360 bytes per super-block, exactly the stored 16 * 210.
//
// Spec: exactly the stored types' specs (DotQ4_K, DotQ6_K in dot_scalar.h): per super-block the exact integers
// (isum = sum_s sc_s * dot_s, and for Q4_K summs = sum_s m_s * (bsums of sub-block s)), then CombineK in order.
// Those integers are the same in any summation order, so interleaving changes no result: a packed matrix gives
// the same bits as the stored one under every kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qforge/formats/ggml_type.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

inline constexpr int kK16Rows = 16;
inline constexpr size_t kQ4_K16SuperBytes = 2368;
inline constexpr size_t kQ6_K16SuperBytes = 3360;

// q6_kx16: the offsets of step t = 8h + c's ql chunk p and qh chunk within a super-block (see above).
constexpr size_t Q6_K16Ql(int h, int p, int c) { return 192 * static_cast<size_t>(8 * h + c) + 64 * p; }
constexpr size_t Q6_K16Qh(int h, int c) { return 192 * static_cast<size_t>(8 * h + c) + 128; }

// Packed bytes per super-block of 16 rows (0 for a type without a k16 layout).
size_t K16SuperBytes(GgmlType type);
size_t PackedK16Bytes(GgmlType type, int64_t rows, size_t row_bytes);
// Packs rows [0, rows) of `type` (Q4_K or Q6_K).
void PackK16(GgmlType type, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols, uint8_t* dst);
// The spec for row r (0..15) of the group at `group` (nsb super-blocks), against standard ActQ8_K bytes.
float DotK16Row(GgmlType type, const uint8_t* group, int64_t nsb, int r, const uint8_t* act);

// The scalar spec kernel on packed bytes, the AVX-512 VNNI one (nullptr when not compiled for x86), and the
// layout whatever the CPU (nullptr for a type without a k16 layout).
const MatVecKernel* ScalarK16Kernel(GgmlType type);
const MatVecKernel* Avx512K16Kernel(GgmlType type);
// The AVX-512 kernel with its batch (prefill) product on AMX tiles (packed_k16_amx.cc); nullptr without AMX.
const MatVecKernel* AmxK16Kernel(GgmlType type);
const PackedLayout* K16Layout(GgmlType type);

}  // namespace qforge
