// The unweighted symmetric scale search (uniform_search.h) for 16 blocks at once: one block per AVX-512
// lane, the blocks' 32 elements transposed to 32 element-major vectors. Each lane does the float operations
// the per-block search does for its block, in the same order, so it chooses the same scale and levels:
//  - candidates in the reference's order (end-mapped scales k = -steps..steps for qmin then qmax, then the
//    reference scale, each followed by its least-squares refit), fp16 rounding by the same conversion;
//  - a clipping candidate is recognised from the block's minimum and maximum (x / d is monotonic in x);
//  - levels by multiplying with the reciprocal and rounding to nearest even, e = x - l*d as a multiply then
//    a subtraction, per-lane-of-8 partial sums over k = 0..3 and the fixed tree of Lanes(). An element
//    within about 1e-4 steps of a midpoint (e² > (0.4999 d)²) is redone with the exact evaluator's
//    operations (division, clamp, nearer-neighbour check), only in the lanes that need it;
//  - a lane takes a candidate only if its error is strictly lower, and skips a scale equal to one of the
//    first 16 distinct scales it has met, as the reference does: a proposal that repeats an earlier refit
//    is then not refitted itself, which can change the result, so the list is kept per lane.
//  - a lane whose every candidate clips takes the reference's "best overall" branch here too: the proposals
//    it met for the first time are scored again with levels clamped to the grid, in order, against the
//    error of scale 0. (Q4_0/Q5_0 score only ggml's scale and its refit; the scale clips in ~15% / ~7.5% of
//    blocks of Gaussian weights.)
// Lanes the batch cannot settle (non-finite or all-zero blocks, or a best-overall choice of scale 0) are
// handed to the per-block search. legacy_quants_test checks that the bytes equal the portable search's.
#include "uniform_search.h"

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// The per-lane results must be rounded exactly like the portable search's separate multiplies and adds;
// AVX-512 implies FMA, which GCC would otherwise fuse them into. (Clang fuses only within one expression.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge operand, which -W(maybe-)uninitialized
// reports at every use (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qforge {

#if defined(__x86_64__)
namespace {

constexpr int kLanes = 16;
constexpr int kBlock = 32;
constexpr int kMaxSteps = 5;                           // the row search's limit (SearchSymmetricUnweightedRow)
constexpr int kMaxProposals = 2 * (2 * kMaxSteps + 1) + 1;  // end-mapped scales and the reference scale
#define QF_AVX512 __attribute__((target("avx512f")))

// out[c] = column c of the 16 x 16 matrix whose rows are in[0..15].
QF_AVX512 inline void Transpose16(const __m512* in, __m512* out) {
  __m512 a[16], b[16], c[16];
  for (int p = 0; p < 8; ++p) {
    a[2 * p] = _mm512_unpacklo_ps(in[2 * p], in[2 * p + 1]);
    a[2 * p + 1] = _mm512_unpackhi_ps(in[2 * p], in[2 * p + 1]);
  }
  // b[4g + s], 128-bit lane q: column 4q + s of rows 4g..4g+3.
  for (int g = 0; g < 4; ++g) {
    b[4 * g + 0] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0x44);
    b[4 * g + 1] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0xEE);
    b[4 * g + 2] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0x44);
    b[4 * g + 3] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0xEE);
  }
  // Gather 128-bit lane q of b[s], b[4 + s], b[8 + s], b[12 + s] into out[4q + s].
  for (int s = 0; s < 4; ++s) {
    c[4 * s + 0] = _mm512_shuffle_f32x4(b[s], b[4 + s], 0x88);
    c[4 * s + 1] = _mm512_shuffle_f32x4(b[s], b[4 + s], 0xDD);
    c[4 * s + 2] = _mm512_shuffle_f32x4(b[8 + s], b[12 + s], 0x88);
    c[4 * s + 3] = _mm512_shuffle_f32x4(b[8 + s], b[12 + s], 0xDD);
    out[0 + s] = _mm512_shuffle_f32x4(c[4 * s + 0], c[4 * s + 2], 0x88);
    out[8 + s] = _mm512_shuffle_f32x4(c[4 * s + 0], c[4 * s + 2], 0xDD);
    out[4 + s] = _mm512_shuffle_f32x4(c[4 * s + 1], c[4 * s + 3], 0x88);
    out[12 + s] = _mm512_shuffle_f32x4(c[4 * s + 1], c[4 * s + 3], 0xDD);
  }
}

struct Sums {
  __m512 err, lx, l2;
};

// Lanes() of uniform_search.cc on eight per-lane partial sums.
QF_AVX512 inline __m512 Tree8(const __m512* v) {
  return _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v[0], v[1]), _mm512_add_ps(v[2], v[3])),
                       _mm512_add_ps(_mm512_add_ps(v[4], v[5]), _mm512_add_ps(v[6], v[7])));
}

// The exact evaluator's level and error for one element, in the lanes of `redo` (the others keep l, e).
QF_AVX512 __attribute__((noinline)) void ExactElement(__m512 x, __m512 d, __m512 lo, __m512 hi, __mmask16 redo,
                                                      __m512* l, __m512* e) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(x, d);
  const __m512 r = _mm512_roundscale_ps(_mm512_min_ps(_mm512_max_ps(t, lo), hi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 rm = _mm512_max_ps(_mm512_sub_ps(r, one), lo), rp = _mm512_min_ps(_mm512_add_ps(r, one), hi);
  const __m512 er = _mm512_sub_ps(x, _mm512_mul_ps(r, d));
  const __m512 em = _mm512_sub_ps(x, _mm512_mul_ps(rm, d)), ep = _mm512_sub_ps(x, _mm512_mul_ps(rp, d));
  __mmask16 better = _mm512_cmp_ps_mask(_mm512_abs_ps(em), _mm512_abs_ps(er), _CMP_LT_OQ);
  __m512 lb = _mm512_mask_mov_ps(r, better, rm), eb = _mm512_mask_mov_ps(er, better, em);
  better = _mm512_cmp_ps_mask(_mm512_abs_ps(ep), _mm512_abs_ps(eb), _CMP_LT_OQ);
  lb = _mm512_mask_mov_ps(lb, better, rp);
  eb = _mm512_mask_mov_ps(eb, better, ep);
  *l = _mm512_mask_mov_ps(*l, redo, lb);
  *e = _mm512_mask_mov_ps(*e, redo, eb);
}

// Scores scale d (per lane; inv_d = 1 / d) in the `active` lanes, which must not clip unless kClamp. kFit: also
// the least-squares sums; kLevels: also write l - qmin per element to levels. Lanes outside `active` compute
// garbage. kClamp clamps each rounded level to the grid, for a clipping scale: a clamped element lies more
// than half a step from its level, so it is redone exactly, like a level rounded off the grid. An element is
// redone exactly when e² > (0.4999 d)², the per-block fast path's |e| > 0.4999 |d| up to a few ulps (redoing
// more elements is always safe: the exact evaluator is the specification), with the square the error needs
// anyway. Without the clamp of the exact evaluator: a level off the grid has |e| ~ |d|/2 and is redone.
// Σl·x starts from its first product instead of 0 + it: that differs only in the sign of a zero sum, whose
// refit is 0 and skipped either way. Σl² adds exact small integers, so its order and fusing do not matter.
template <bool kFit, bool kLevels, bool kClamp = false>
QF_AVX512 inline Sums Evaluate(const float (*x)[kLanes], __m512 d, __m512 inv_d, __mmask16 active, __m512 lo,
                               __m512 hi, float (*levels)[kLanes]) {
  const __m512 margin = _mm512_mul_ps(_mm512_set1_ps(0.4999f), d), margin2 = _mm512_mul_ps(margin, margin);
  __m512 err_part[8], lx_part[8], l2 = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int m = 0; m < 8; ++m) {
    __m512 err_acc = _mm512_setzero_ps(), lx_acc = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const int j = 8 * k + m;
      const __m512 xv = _mm512_load_ps(x[j]);
      __m512 l = _mm512_roundscale_ps(_mm512_mul_ps(xv, inv_d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      if constexpr (kClamp) l = _mm512_min_ps(_mm512_max_ps(l, lo), hi);
      __m512 e = _mm512_sub_ps(xv, _mm512_mul_ps(l, d));
      __m512 ee = _mm512_mul_ps(e, e);
      const __mmask16 near = _mm512_mask_cmp_ps_mask(active, ee, margin2, _CMP_GT_OQ);
      if (__builtin_expect(near != 0, 0)) {
        ExactElement(xv, d, lo, hi, near, &l, &e);
        ee = _mm512_mul_ps(e, e);
      }
      err_acc = k == 0 ? ee : _mm512_add_ps(err_acc, ee);  // 0 + e² is e² exactly
      if constexpr (kFit) {
        const __m512 lxv = _mm512_mul_ps(l, xv);
        lx_acc = k == 0 ? lxv : _mm512_add_ps(lx_acc, lxv);
        l2 = _mm512_fmadd_ps(l, l, l2);
      }
      if constexpr (kLevels) _mm512_store_ps(levels[j], _mm512_sub_ps(l, lo));
    }
    err_part[m] = err_acc;
    lx_part[m] = lx_acc;
  }
  Sums s;
  s.err = Tree8(err_part);
  s.lx = kFit ? Tree8(lx_part) : _mm512_setzero_ps();
  s.l2 = l2;
  return s;
}

// StoredF16 (quant_search.h) per lane: NaN to 0, clamp to ±65504, round to the nearest fp16.
QF_AVX512 inline __m512 StoredF16x16(__m512 v) {
  v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
  v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-65504.0f)), _mm512_set1_ps(65504.0f));
  return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// One batch of up to 16 blocks.
class BatchSearch {
 public:
  QF_AVX512 BatchSearch(int qmin, int qmax, int steps, SymmetricReference ref)
      : qmin_(static_cast<float>(qmin)), qmax_(static_cast<float>(qmax)), steps_(steps), ref_(ref) {}

  // Searches blocks x[0 .. 32 * n) (n <= 16); returns the lanes settled here, whose d_out and L_out are set.
  QF_AVX512 __mmask16 Run(const float* x, int n, float* d_out, uint8_t* L_out) {
    const __mmask16 present = static_cast<__mmask16>((1u << n) - 1);
    Load(x, n);
    const __mmask16 ok = Scan() & present;
    if (ok == 0) return 0;
    lo_ = _mm512_set1_ps(qmin_), hi_ = _mm512_set1_ps(qmax_);
    lo_h_ = _mm512_set1_ps(qmin_ - 0.5f), hi_h_ = _mm512_set1_ps(qmax_ + 0.5f);
    best_err_ = _mm512_set1_ps(std::numeric_limits<float>::infinity());
    best_d_ = _mm512_setzero_ps();
    n_slots_ = 0;
    n_seen_ = _mm512_setzero_si512();
    // The proposals (scale, reciprocal, clip test) do not depend on the scoring: prepared first, so the
    // divisions need not wait for it.
    const __m512 zero = _mm512_setzero_ps(), inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
    Candidate proposals[kMaxProposals];
    int n_proposals = 0;
    for (float target : {qmin_, qmax_}) {
      for (int k = -steps_; k <= steps_; ++k) {  // steps < 0: no end-mapped candidates
        const float c = target + static_cast<float>(k) * 0.1f;
        const __m512 inv = _mm512_div_ps(_mm512_set1_ps(c), max_);
        const __mmask16 valid = _mm512_mask_cmp_ps_mask(ok, inv, zero, _CMP_NEQ_OQ) &
                                _mm512_cmp_ps_mask(_mm512_abs_ps(inv), inf, _CMP_LT_OQ);
        proposals[n_proposals++] = Prepare(StoredF16x16(_mm512_div_ps(_mm512_set1_ps(1.0f), inv)), valid);
      }
    }
    const __m512 ref_d = ref_ == SymmetricReference::kSignedMaxOverQmin ? _mm512_div_ps(max_, lo_)
                                                                      : _mm512_div_ps(amax_, hi_);
    proposals[n_proposals++] = Prepare(StoredF16x16(ref_d), ok);
    __mmask16 fresh[kMaxProposals];
    for (int i = 0; i < n_proposals; ++i) fresh[i] = ScoreWithRefit(proposals[i]);
    const __mmask16 done = _mm512_mask_cmp_ps_mask(ok, best_err_, inf, _CMP_LT_OQ);
    if (done != 0)
      Evaluate<false, true>(x_, best_d_, _mm512_div_ps(_mm512_set1_ps(1.0f), best_d_), done, lo_, hi_, levels_);
    const __mmask16 stuck = ok & static_cast<__mmask16>(~done);
    const __mmask16 settled = done | (stuck == 0 ? 0 : BestOverall(proposals, fresh, n_proposals, stuck));
    if (settled != 0) Store(settled, d_out, L_out);
    return settled;
  }

 private:
  // x_[j][b] = element j of block b; missing blocks are zero.
  QF_AVX512 void Load(const float* x, int n) {
    for (int half = 0; half < 2; ++half) {
      __m512 rows[kLanes], cols[kLanes];
      for (int b = 0; b < kLanes; ++b)
        rows[b] = b < n ? _mm512_loadu_ps(x + kBlock * b + 16 * half) : _mm512_setzero_ps();
      Transpose16(rows, cols);
      for (int j = 0; j < kLanes; ++j) _mm512_store_ps(x_[16 * half + j], cols[j]);
    }
  }

  // Per lane: largest magnitude and the first element having it, minimum, maximum. Returns the lanes whose
  // block is finite and not all zero.
  QF_AVX512 __mmask16 Scan() {
    const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
    __m512 amax = _mm512_setzero_ps(), max = amax, lo = _mm512_load_ps(x_[0]), hi = lo;
    __mmask16 finite = 0xffff;
    for (int j = 0; j < kBlock; ++j) {
      const __m512 v = _mm512_load_ps(x_[j]), a = _mm512_abs_ps(v);
      const __mmask16 larger = _mm512_cmp_ps_mask(a, amax, _CMP_GT_OQ);
      amax = _mm512_mask_mov_ps(amax, larger, a);
      max = _mm512_mask_mov_ps(max, larger, v);
      lo = _mm512_min_ps(lo, v);
      hi = _mm512_max_ps(hi, v);
      finite &= _mm512_cmp_ps_mask(a, inf, _CMP_LT_OQ);
    }
    amax_ = amax, max_ = max, xlo_ = lo, xhi_ = hi;
    return finite & _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_NEQ_OQ);
  }

  // Lanes where scale d clips some element of the block: x / d outside [qmin - 0.5, qmax + 0.5].
  QF_AVX512 __mmask16 Clips(__m512 d) const {
    const __m512 tlo = _mm512_div_ps(xlo_, d), thi = _mm512_div_ps(xhi_, d);
    const __mmask16 inside = _mm512_cmp_ps_mask(tlo, lo_h_, _CMP_GE_OQ) & _mm512_cmp_ps_mask(tlo, hi_h_, _CMP_LE_OQ) &
                             _mm512_cmp_ps_mask(thi, lo_h_, _CMP_GE_OQ) & _mm512_cmp_ps_mask(thi, hi_h_, _CMP_LE_OQ);
    return static_cast<__mmask16>(~inside);
  }

  // The lanes of `lanes` where d is not among the scales the reference remembers (the first 16 distinct ones
  // it met, clipping or not); remembers d in them while fewer than 16 are.
  QF_AVX512 __mmask16 FirstTime(__m512 d, __mmask16 lanes) {
    __mmask16 repeat = 0;
    for (int t = 0; t < n_slots_; ++t) repeat |= _mm512_mask_cmp_ps_mask(lanes, seen_[t], d, _CMP_EQ_OQ);
    const __mmask16 fresh = lanes & static_cast<__mmask16>(~repeat);
    const __mmask16 add = _mm512_mask_cmplt_epi32_mask(fresh, n_seen_, _mm512_set1_epi32(16));
    if (add != 0) {  // slots hold NaN (equal to nothing) in the lanes that did not remember this scale
      seen_[n_slots_++] = _mm512_mask_mov_ps(_mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()), add, d);
      n_seen_ = _mm512_mask_add_epi32(n_seen_, add, n_seen_, _mm512_set1_epi32(1));
    }
    return fresh;
  }

  // A stored scale in the lanes of `lanes`, with its reciprocal and clip test.
  struct Candidate {
    __m512 d, inv_d;
    __mmask16 lanes, clips;
  };
  QF_AVX512 Candidate Prepare(__m512 d, __mmask16 lanes) const {
    return {d, _mm512_div_ps(_mm512_set1_ps(1.0f), d), lanes, Clips(d)};
  }

  // Scores candidate c in its lanes where it is non-zero, new (FirstTime) and does not clip; kFit keeps the
  // sums for a refit. Returns the lanes scored; *fresh = the lanes where it was new (clipping or not).
  template <bool kFit>
  QF_AVX512 __mmask16 Score(const Candidate& c, Sums* s, __mmask16* fresh) {
    *fresh = 0;
    const __mmask16 nonzero = _mm512_mask_cmp_ps_mask(c.lanes, c.d, _mm512_setzero_ps(), _CMP_NEQ_OQ);
    if (nonzero == 0) return 0;
    *fresh = FirstTime(c.d, nonzero);
    const __mmask16 active = *fresh & static_cast<__mmask16>(~c.clips);
    if (active == 0) return 0;
    *s = Evaluate<kFit, false>(x_, c.d, c.inv_d, active, lo_, hi_, nullptr);
    const __mmask16 better = _mm512_mask_cmp_ps_mask(active, s->err, best_err_, _CMP_LT_OQ);
    best_err_ = _mm512_mask_mov_ps(best_err_, better, s->err);
    best_d_ = _mm512_mask_mov_ps(best_d_, better, c.d);
    return active;
  }

  // A proposed scale, then (where it was scored and some level is non-zero) its least-squares refit. Returns
  // the lanes where the proposal was new.
  QF_AVX512 __mmask16 ScoreWithRefit(const Candidate& c) {
    Sums s;
    __mmask16 fresh, refit_fresh;
    const __mmask16 scored = Score<true>(c, &s, &fresh);
    const __mmask16 fit = _mm512_mask_cmp_ps_mask(scored, s.l2, _mm512_setzero_ps(), _CMP_GT_OQ);
    if (fit == 0) return fresh;
    Sums unused;
    Score<false>(Prepare(StoredF16x16(_mm512_div_ps(s.lx, s.l2)), fit), &unused, &refit_fresh);
    return fresh;
  }

  // The reference's branch for a block whose every candidate clips. No refit is made in such a lane, so the
  // candidates it met are exactly the proposals, fresh[i] the lanes that met proposal i for the first time.
  // It keeps the lowest clamped error, strictly below the error of scale 0 (Σx², summed in element order)
  // and of the earlier candidates. Sets best_d_ and levels_ in the lanes of `stuck` that settle on a
  // non-zero scale and returns them.
  QF_AVX512 __mmask16 BestOverall(const Candidate* proposals, const __mmask16* fresh, int n_proposals,
                                  __mmask16 stuck) {
    __m512 any_err = _mm512_setzero_ps(), any_d = _mm512_setzero_ps();
    for (int j = 0; j < kBlock; ++j) {
      const __m512 v = _mm512_load_ps(x_[j]);
      any_err = _mm512_add_ps(any_err, _mm512_mul_ps(v, v));
    }
    for (int i = 0; i < n_proposals; ++i) {
      const __mmask16 lanes = stuck & fresh[i];
      if (lanes == 0) continue;
      const Candidate& c = proposals[i];
      const Sums s = Evaluate<false, true, true>(x_, c.d, c.inv_d, lanes, lo_, hi_, clamped_);
      const __mmask16 better = _mm512_mask_cmp_ps_mask(lanes, s.err, any_err, _CMP_LT_OQ);
      if (better == 0) continue;
      any_err = _mm512_mask_mov_ps(any_err, better, s.err);
      any_d = _mm512_mask_mov_ps(any_d, better, c.d);
      for (int j = 0; j < kBlock; ++j)
        _mm512_store_ps(levels_[j], _mm512_mask_mov_ps(_mm512_load_ps(levels_[j]), better, _mm512_load_ps(clamped_[j])));
    }
    const __mmask16 settled = _mm512_mask_cmp_ps_mask(stuck, any_d, _mm512_setzero_ps(), _CMP_NEQ_OQ);
    best_d_ = _mm512_mask_mov_ps(best_d_, settled, any_d);
    return settled;
  }

  // Levels back to block order as bytes, scales to d_out, for the lanes in `done`.
  QF_AVX512 void Store(__mmask16 done, float* d_out, uint8_t* L_out) {
    alignas(64) float d[kLanes];
    _mm512_store_ps(d, best_d_);
    for (int half = 0; half < 2; ++half) {
      __m512 cols[kLanes], rows[kLanes];
      for (int j = 0; j < kLanes; ++j) cols[j] = _mm512_load_ps(levels_[16 * half + j]);
      Transpose16(cols, rows);
      for (int b = 0; b < kLanes; ++b)
        if (done >> b & 1)
          _mm_storeu_si128(reinterpret_cast<__m128i*>(L_out + kBlock * b + 16 * half),
                           _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(rows[b])));
    }
    for (int b = 0; b < kLanes; ++b)
      if (done >> b & 1) d_out[b] = d[b];
  }

  float qmin_, qmax_;
  int steps_;
  SymmetricReference ref_;
  __m512 amax_, max_, xlo_, xhi_, lo_, hi_, lo_h_, hi_h_, best_err_, best_d_;
  __m512 seen_[2 * kMaxProposals];  // FirstTime's remembered scales: at most a proposal and its refit each
  int n_slots_ = 0;
  __m512i n_seen_;   // per lane: how many scales it remembers (at most 16)
  alignas(64) float x_[kBlock][kLanes];
  alignas(64) float levels_[kBlock][kLanes];
  alignas(64) float clamped_[kBlock][kLanes];  // BestOverall's levels for one candidate
};

}  // namespace

QF_AVX512 void SearchSymmetricUnweightedRowAvx512(const float* x, int64_t n_blocks, int qmin, int qmax, int steps,
                                                  SymmetricReference ref, float* d_out, uint8_t* L_out) {
  BatchSearch batch(qmin, qmax, steps, ref);
  // Wider searches than the batch's candidate arrays hold go block by block.
  const int64_t batched = steps <= kMaxSteps ? n_blocks : 0;
  for (int64_t i0 = 0; i0 < n_blocks; i0 += kLanes) {
    const int n = static_cast<int>(n_blocks - i0 < kLanes ? n_blocks - i0 : kLanes);
    const float* xb = x + kBlock * i0;
    const __mmask16 done = i0 < batched ? batch.Run(xb, n, d_out + i0, L_out + kBlock * i0) : 0;
    for (int b = 0; b < n; ++b) {
      if (done >> b & 1) continue;
      const float* xi = xb + kBlock * b;
      d_out[i0 + b] = SearchSymmetricUnweighted32(xi, qmin, qmax, SymmetricReferenceScale(xi, qmin, qmax, ref), steps,
                                                  L_out + kBlock * (i0 + b));
    }
  }
}

#else  // not x86-64: never called (UniformSearchHasAvx512Path() is false)

void SearchSymmetricUnweightedRowAvx512(const float* x, int64_t n_blocks, int qmin, int qmax, int steps,
                                        SymmetricReference ref, float* d_out, uint8_t* L_out) {
  for (int64_t i = 0; i < n_blocks; ++i, x += 32)
    d_out[i] = SearchSymmetricUnweighted32(x, qmin, qmax, SymmetricReferenceScale(x, qmin, qmax, ref), steps,
                                           L_out + 32 * i);
}

#endif

}  // namespace qforge
