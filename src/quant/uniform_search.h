// The fast form of SearchScale (quant_search.h) for the common case of the legacy symmetric types
// without importance: 32-element blocks, unit weights, a uniform integer grid, no clipping. Same candidate
// scales and the same acceptance rule (keep the lowest error among scales that clip nothing, exactly as
// the decoder computes it), but one fused pass per candidate (levels, error, clip test and the
// least-squares sums together): per block in AVX2, or 16 blocks at a time in AVX-512 (one block per lane).
#pragma once

#include <cstdint>

namespace qforge {

// x ~ d * (qmin + L[j]) for one block of 32 finite values. Candidates: 0, (end + k * 0.1) / max|x| for
// end in {qmin, qmax} and k in -steps..steps, and ref_d (the format's reference rule), each followed by
// its least-squares refit; steps < 0 tries only ref_d and its refit (enough when ref_d never clips, as
// for Q8_0). Returns the fp16-representable scale and fills L (indices from qmin).
float SearchSymmetricUnweighted32(const float* x, int qmin, int qmax, float ref_d, int steps, uint8_t* L);

// The format's reference scale ref_d of one 32-element block, from its element of largest magnitude (the
// first one if several tie): Q4_0 and Q5_0 map it to qmin (signed max / qmin), Q8_0 uses |max| / qmax.
enum class SymmetricReference { kSignedMaxOverQmin, kAbsMaxOverQmax };
float SymmetricReferenceScale(const float* x, int qmin, int qmax, SymmetricReference ref);

// SearchSymmetricUnweighted32 for n_blocks consecutive blocks, each with its SymmetricReferenceScale:
// d_out[i] and L_out[32 * i .. 32 * i + 31] are exactly what the per-block search returns for block i.
// One call per row lets the AVX-512 path search 16 blocks at once.
void SearchSymmetricUnweightedRow(const float* x, int64_t n_blocks, int qmin, int qmax, int steps,
                                  SymmetricReference ref, float* d_out, uint8_t* L_out);

// The AVX-512 row search (uniform_search_avx512.cc); only for CPUs with CpuHasAvx512Vnni(). Blocks it
// cannot settle (a NaN or Inf element, all zeros, or no candidate that avoids clipping) go to the
// per-block search.
void SearchSymmetricUnweightedRowAvx512(const float* x, int64_t n_blocks, int qmin, int qmax, int steps,
                                        SymmetricReference ref, float* d_out, uint8_t* L_out);

// Tests only: which implementation the searches use. kAuto is the runtime choice (AVX-512 rows, else AVX2
// blocks, else portable); kAvx2Blocks skips the AVX-512 path; kPortable uses the portable evaluator. All
// must choose the same levels, or files would differ between machines.
enum class UniformSearchPath { kAuto, kAvx2Blocks, kPortable };
void UseUniformSearchPathForTesting(UniformSearchPath path);
bool UniformSearchHasSimdPath();    // the AVX2 per-block path
bool UniformSearchHasAvx512Path();  // the AVX-512 row path

}  // namespace qforge
