// The fast form of SearchScale (quant_search.h) for the common case of the legacy symmetric types
// without importance: 32-element blocks, unit weights, a uniform integer grid, no clipping. Same candidate
// scales and the same acceptance rule (keep the lowest error among scales that clip nothing, exactly as
// the decoder computes it), but one fused pass per candidate (levels, error, clip test and the
// least-squares sums together), in AVX2 when the CPU has it.
#pragma once

#include <cstdint>

namespace qforge {

// x ~ d * (qmin + L[j]) for one block of 32 finite values. Candidates: 0, (end + k * 0.1) / max|x| for
// end in {qmin, qmax} and k in -steps..steps, and ref_d (the format's reference rule), each followed by
// its least-squares refit; steps < 0 tries only ref_d and its refit (enough when ref_d never clips, as
// for Q8_0). Returns the fp16-representable scale and fills L (indices from qmin).
float SearchSymmetricUnweighted32(const float* x, int qmin, int qmax, float ref_d, int steps, uint8_t* L);

// Tests only: true makes the search use the portable evaluator even on AVX2 CPUs, false restores the
// runtime choice. The two must choose the same levels, or files would differ between machines.
void UseUniformSearchPortableForTesting(bool portable);
bool UniformSearchHasSimdPath();

}  // namespace qforge
