// The k-quant encoders: one type-independent search (EncodeKBlock, parameterised by KSpec) that chooses a
// super-block's integers to minimise the (importance-)weighted squared reconstruction error exactly as the
// decoder will compute it, plus the per-type row wrappers. Method, per 256-element super-block:
//  A. per sub-block, a continuous fit: for ~20 candidate inverse scales round the levels, then solve the
//     weighted least-squares scale (and min ≤ 0 for affine types) for those levels; keep the best, then
//     re-round against the fit twice (a Lloyd step).
//  B. quantize the sub-block scales (and mins) against one fp16 super-block scale, weighting each by its
//     error sensitivity (Σw·L² for a scale, Σw for a min), trying 11 candidate super-scales per sign + LSQ
//     refit of each.
//  C. per sub-block, try the integer sub-scales (and mins) around the target (floor, ceil, previous) and
//     re-round all levels for each, keeping the exact best (decoder arithmetic, fp16-rounded d/dmin).
//  D. refit d (and dmin) by least squares given all integers, round to fp16, repeat C; keep the best.
// Cost is O(n · ~25) per type — the same order as ggml's reference search. Q6_K (64 levels, 8-bit
// sub-scales) searches fewer candidates in A, B and D: see kFineGrid in EncodeBlock.
//
// Steps A and C run on a transposed super-block: row i holds element i of every sub-block as one vector of
// N lanes (8 sub-blocks of 32, or 16 of 16), so one instruction advances all sub-blocks at once. Each
// sub-block's sums are a chain in its own lane (no horizontal reductions) and its decisions become per-lane
// selects. Every lane does the float operations that a
// one-sub-block-at-a-time search does, in the same order; candidates such a search would skip (levels
// unchanged, repeated integers) are scored anyway — or skipped only when no lane can gain — which changes
// nothing, since a tie never replaces the incumbent.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <utility>

#include "k_quants_internal.h"
#include "qforge/core/fp16.h"

// Step D's sums over the super-block are left to the compiler to reassociate (vectorized reductions, fixed
// order at compile time, so the bytes still do not depend on the thread count). AVX-512 (x86-64-v4) and
// AVX2 clones of the block search are chosen at load time. No FMA contraction: the AVX2 clone cannot
// contract (no "fma" in its target), so the AVX-512 clone rounds each product the same way and the two
// differ at most in the order of reassociated sums.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no per-file optimize pragma: it builds as is
#pragma GCC optimize("O3", "associative-math", "no-signed-zeros", "no-trapping-math", "fp-contract=off")
#endif
// Not under ThreadSanitizer: the clones' ifunc resolvers run during relocation, before the TSan runtime is
// initialised, and the instrumented resolver crashes every binary at startup.
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define QF_HOT_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define QF_HOT_CLONES
#endif
// Everything a clone calls is inlined into it, so each clone compiles the lane vectors for its own registers;
// GCC's and clang's note that returning a 32/64-byte vector would change the ABI is moot (no such call remains).
#define QF_LANE_INLINE inline __attribute__((always_inline))
#define QF_LAMBDA_INLINE __attribute__((always_inline))
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace qforge::kquant {
namespace {

constexpr float kF16Max = 65504.f;
constexpr double kInf = std::numeric_limits<double>::infinity();

// N lanes of float, double and 32-bit int (GCC/clang generic vectors: each clone maps them onto its own
// registers, e.g. 8 doubles = one zmm for AVX-512, two ymm for AVX2). Comparisons give lane masks
// (−1 or 0) that pick lanes with Select.
template <int N>
struct Lanes {
  typedef float F __attribute__((vector_size(4 * N)));
  typedef double D __attribute__((vector_size(8 * N)));
  typedef int32_t I __attribute__((vector_size(4 * N)));
};

template <typename V, typename T>
QF_LANE_INLINE V Splat(T s) {
  V v;
  for (int j = 0; j < static_cast<int>(sizeof(V) / sizeof(T)); ++j) v[j] = s;
  return v;
}
// |v|. The <cmath> wrappers (std::fabs, std::rint, ...) are compiled before the optimize pragma above and
// GCC does not inline a function built with other optimisation flags, so the hot code calls builtins.
QF_LANE_INLINE float Abs(float v) { return __builtin_fabsf(v); }
template <typename F>
QF_LANE_INLINE F Abs(const F& v) {  // per lane: clears the sign bits
  using I = decltype(v < v);
  return reinterpret_cast<F>(reinterpret_cast<I>(v) & 0x7fffffff);
}
// GCC (12) lowers ?:, comparisons and conversions of a generic vector wider than one register (16 doubles
// in AVX-512, 8 in AVX2) one lane at a time, with a branch or a spill per lane. So the lane code selects
// with bitwise and/or (Select, which splits into whole-register blends) and compares and converts through
// Lanewise / Convert, which halve a vector until each piece has at most 64 bytes. Same bits either way.
// Smaller pieces were measured (AVX-512 clone, 1 thread): converts and float compares in 32-byte pieces
// cost Q6_K up to 2x; double compares in two halves (32 bytes for Q4_K's 8 lanes) cut Q4_K by ~10%, and
// in 4 pieces (Q6_K's 16 lanes) cost Q6_K ~15%. Hence: doubles in two halves, everything else whole.
constexpr size_t kPiece = 64;
template <typename V>
using MaskOf = decltype(V{} < V{});
// The generic vector of `bytes` bytes of T (a typedef local to a template would drop the attribute).
template <typename T, int bytes>
struct VecOf {
  typedef T type __attribute__((vector_size(bytes)));
};
template <typename V>
using HalfOf = typename VecOf<std::remove_cvref_t<decltype(V{}[0])>, sizeof(V) / 2>::type;
template <typename V>
constexpr int kLanesOf = sizeof(V) / sizeof(V{}[0]);
// The low / high half of v's lanes, and two halves joined, as shuffles (register moves, never memory).
template <typename V, size_t... i>
QF_LANE_INLINE HalfOf<V> Part(const V& v, std::index_sequence<i...>) {
  return __builtin_shufflevector(v, v, static_cast<int>(i)...);
}
template <typename V>
QF_LANE_INLINE HalfOf<V> Low(const V& v) { return Part(v, std::make_index_sequence<kLanesOf<V> / 2>{}); }
template <typename V, size_t... i>
QF_LANE_INLINE HalfOf<V> HighPart(const V& v, std::index_sequence<i...>) {
  return __builtin_shufflevector(v, v, static_cast<int>(i + kLanesOf<V> / 2)...);
}
template <typename V>
QF_LANE_INLINE HalfOf<V> High(const V& v) { return HighPart(v, std::make_index_sequence<kLanesOf<V> / 2>{}); }
template <typename H, size_t... i>
QF_LANE_INLINE auto JoinParts(const H& lo, const H& hi, std::index_sequence<i...>) {
  return __builtin_shufflevector(lo, hi, static_cast<int>(i)...);
}
template <typename H>
QF_LANE_INLINE auto Join(const H& lo, const H& hi) { return JoinParts(lo, hi, std::make_index_sequence<2 * kLanesOf<H>>{}); }
template <typename V, typename Op, bool Halved = false>
QF_LANE_INLINE MaskOf<V> Lanewise(const V& a, const V& b, Op op) {
  constexpr bool halve_doubles = sizeof(a[0]) == 8 && sizeof(V) > 16 && !Halved;
  if constexpr (sizeof(V) <= kPiece && !halve_doubles) {
    return op(a, b);
  } else {
    return Join(Lanewise<HalfOf<V>, Op, true>(Low(a), Low(b), op), Lanewise<HalfOf<V>, Op, true>(High(a), High(b), op));
  }
}
struct LessOp {
  template <typename V>
  QF_LANE_INLINE auto operator()(const V& a, const V& b) const { return a < b; }
};
struct NotEqualOp {
  template <typename V>
  QF_LANE_INLINE auto operator()(const V& a, const V& b) const { return a != b; }
};
template <typename V>
QF_LANE_INLINE MaskOf<V> Less(const V& a, const V& b) { return Lanewise(a, b, LessOp{}); }
template <typename V>
QF_LANE_INLINE MaskOf<V> Greater(const V& a, const V& b) { return Lanewise(b, a, LessOp{}); }
template <typename V>
QF_LANE_INLINE MaskOf<V> NotEqual(const V& a, const V& b) { return Lanewise(a, b, NotEqualOp{}); }
// __builtin_convertvector(v, To), in pieces of at most kPiece (64) bytes on either side.
template <typename To, typename From>
QF_LANE_INLINE To Convert(const From& v) {
  if constexpr (sizeof(From) <= kPiece && sizeof(To) <= kPiece) {
    return __builtin_convertvector(v, To);
  } else {
    return Join(Convert<HalfOf<To>>(Low(v)), Convert<HalfOf<To>>(High(v)));
  }
}
// Per-lane m ? a : b for a lane mask m (−1 or 0) of a's lane width, as bitwise and/or.
template <typename V, typename M>
QF_LANE_INLINE V Select(const M& m, const V& a, const V& b) {
  static_assert(sizeof(V) == sizeof(M) && sizeof(a[0]) == sizeof(m[0]));
  return reinterpret_cast<V>((m & reinterpret_cast<M>(a)) | (~m & reinterpret_cast<M>(b)));
}
// Nearest integer (ties to even) per lane, clamped to [lo, hi]; NaN gives lo. rint is one vroundps /
// vrndscaleps in the AVX2 / AVX-512 clones (the 2^23 trick, inline, in the baseline one).
template <typename F>
QF_LANE_INLINE F RoundClamp(const F& v, float lo, float hi) {
  const F vlo = Splat<F>(lo), vhi = Splat<F>(hi);
  F c = Select(Greater(v, vlo), v, vlo);
  c = Select(Less(c, vhi), c, vhi);
  F r;
  for (int j = 0; j < static_cast<int>(sizeof(F) / sizeof(float)); ++j) r[j] = __builtin_rintf(c[j]);
  return r;
}
// A double-lane mask as a float-lane mask, to select float results by a decision made in double.
template <int N>
QF_LANE_INLINE typename Lanes<N>::I Narrow(const decltype(typename Lanes<N>::D{} < typename Lanes<N>::D{})& m) {
  return Convert<typename Lanes<N>::I>(m);
}
template <int N>
QF_LANE_INLINE typename Lanes<N>::D Widen(const typename Lanes<N>::F& v) {
  return Convert<typename Lanes<N>::D>(v);
}
template <typename M>
QF_LANE_INLINE bool AnyLane(const M& m) {
  bool any = false;
  for (int j = 0; j < static_cast<int>(sizeof(M) / sizeof(m[0])); ++j) any |= m[j] != 0;
  return any;
}

inline int FloorClamp(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(__builtin_floorf(v));
}
// fp16 bits of v, saturating at ±65504 (so huge inputs never decode to Inf/NaN); NaN gives 0.
inline uint16_t ToF16(float v) {
  if (std::isnan(v)) return 0;
  if (std::fabs(v) > kF16Max) v = std::copysign(kF16Max, v);
  return F32ToF16(v);
}

// One super-block transposed: x[i] lane j is element i of sub-block j. wd and wx are the weights and the
// weighted values in double, computed once because every candidate needs them (w·x of two floats is exact
// in double, so this is the product the per-candidate sums would form).
template <int N, int S>
struct LaneBlock {
  using F = typename Lanes<N>::F;
  using D = typename Lanes<N>::D;
  F x[S], w[S];
  D wd[S], wx[S];
};

template <int N, int S>
QF_LANE_INLINE void Transpose(const float* x, const float* w, LaneBlock<N, S>* t) {
  for (int j = 0; j < N; ++j)
    for (int i = 0; i < S; ++i) t->x[i][j] = x[j * S + i], t->w[i][j] = w[j * S + i];
  for (int i = 0; i < S; ++i) {
    t->wd[i] = Widen<N>(t->w[i]);
    t->wx[i] = t->wd[i] * Widen<N>(t->x[i]);
  }
}

// Step A's result per sub-block: x ≈ s·L − m, with the error sensitivities ws (Σw·L²) and wm (Σw) for step B.
template <int N>
struct LaneTargets {
  float s[N], m[N];
  double ws[N], wm[N];
};

// Whether LevelSums keeps its double accumulators as two halves. Without 512-bit registers (the AVX2 and
// baseline clones) a 64-byte accumulator (Q4_K's 8 doubles) has no register, and GCC moves it through
// memory every element: halves cut a forced-AVX2 Q4_K quantize from 18.7 to 11.6 s of user CPU (same
// bytes). With them (the AVX-512 clone) the halves cost Q4_K ~12%, so the whole vectors stay there. Read
// per call (one load of libgcc's cpu model): both clones compile both forms.
QF_LANE_INLINE bool SplitAccumulators() {
#if defined(__x86_64__) && defined(__GNUC__)
  return !__builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

// The least-squares inputs for levels level_of(i): sl = Σ(w·L as a float product), sll = Σw·L², sxl = Σw·x·L.
// With unit weights sl and sll are sums of integers below 2^24, exact in float, so they are summed in float:
// the same doubles without widening every product.
template <bool Unit, int N, int S, typename LevelOf>
QF_LANE_INLINE void LevelSums(const LaneBlock<N, S>& t, LevelOf level_of, typename Lanes<N>::D* sl,
                              typename Lanes<N>::D* sll, typename Lanes<N>::D* sxl) {
  using F = typename Lanes<N>::F;
  using D = typename Lanes<N>::D;
  if (!SplitAccumulators()) {
    if constexpr (Unit) {
      F l1 = {}, l2 = {};
      D xl = {};
      for (int i = 0; i < S; ++i) {
        const F L = level_of(i);
        l1 += L;
        l2 += L * L;
        xl += t.wx[i] * Widen<N>(L);
      }
      *sl = Widen<N>(l1), *sll = Widen<N>(l2), *sxl = xl;
    } else {
      D l1 = {}, l2 = {}, xl = {};
      for (int i = 0; i < S; ++i) {
        const F L = level_of(i);
        l1 += Widen<N>(t.w[i] * L);
        const D Ld = Widen<N>(L);
        l2 += t.wd[i] * Ld * Ld;
        xl += t.wx[i] * Ld;
      }
      *sl = l1, *sll = l2, *sxl = xl;
    }
    return;
  }
  // The same sums per lane with each double accumulator kept as two half vectors.
  using H = HalfOf<D>;
  auto widen_lo = [](const F& v) QF_LAMBDA_INLINE { return Convert<H>(Low(v)); };
  auto widen_hi = [](const F& v) QF_LAMBDA_INLINE { return Convert<H>(High(v)); };
  if constexpr (Unit) {
    F l1 = {}, l2 = {};
    H xl0 = {}, xl1 = {};
    for (int i = 0; i < S; ++i) {
      const F L = level_of(i);
      l1 += L;
      l2 += L * L;
      xl0 += Low(t.wx[i]) * widen_lo(L);
      xl1 += High(t.wx[i]) * widen_hi(L);
    }
    *sl = Widen<N>(l1), *sll = Widen<N>(l2), *sxl = Join(xl0, xl1);
  } else {
    H l10 = {}, l11 = {}, l20 = {}, l21 = {}, xl0 = {}, xl1 = {};
    for (int i = 0; i < S; ++i) {
      const F L = level_of(i);
      const F wL = t.w[i] * L;
      l10 += widen_lo(wL), l11 += widen_hi(wL);
      const H L0 = widen_lo(L), L1 = widen_hi(L);
      l20 += Low(t.wd[i]) * L0 * L0, l21 += High(t.wd[i]) * L1 * L1;
      xl0 += Low(t.wx[i]) * L0, xl1 += High(t.wx[i]) * L1;
    }
    *sl = Join(l10, l11), *sll = Join(l20, l21), *sxl = Join(xl0, xl1);
  }
}

// Step A, affine types: x̂ = s·L + o with o ≤ 0 (the stored min is −o).
template <bool Unit, int N, int S>
QF_LANE_INLINE void FitAffineLanes(const LaneBlock<N, S>& t, int nq, LaneTargets<N>* r) {
  using F = typename Lanes<N>::F;
  using D = typename Lanes<N>::D;
  using DM = decltype(D{} < D{});
  F xmin = {}, xmax = Splat<F>(-std::numeric_limits<float>::infinity());
  D sw = {}, swx = {}, swxx = {};
  for (int i = 0; i < S; ++i) {
    const F x = t.x[i];
    xmin = Select(Less(x, xmin), x, xmin);
    xmax = Select(Greater(x, xmax), x, xmax);
    sw += t.wd[i];
    swx += t.wx[i];
    swxx += t.wx[i] * Widen<N>(x);
  }
  const F range = xmax - xmin;
  F shifted[S];  // x − xmin, the same for every candidate scale
  for (int i = 0; i < S; ++i) shifted[i] = t.x[i] - xmin;

  D best = Splat<D>(kInf), best_sll = {};
  F bs = {}, bo = xmin;
  const D zero = {}, one = Splat<D>(1.0);
  // Least-squares (s, o ≤ 0) for the levels summarised by sl = Σ(w·L as a float product), sll = Σw·L²,
  // sxl = Σw·x·L; the lanes in `active` keep it if strictly better. Returns the lanes that did.
  auto keep_better = [&](const D& sl, const D& sll, const D& sxl, const DM& active) QF_LAMBDA_INLINE {
    // All three quotients are computed in every lane (one vector division each), then selected.
    const D det = sll * sw - sl * sl;
    const D ds_pair = (sw * sxl - swx * sl) / det;
    const D of_pair = (sll * swx - sl * sxl) / det;
    const D ds_alone = sxl / sll;
    const DM solvable = Greater(det, 1e-9 * sll * sw);  // not all levels equal
    D ds = Select(solvable, ds_pair, zero);
    D dof = Select(solvable, of_pair, one);
    const DM refit = Greater(dof, zero);  // the min must subtract: fit the scale alone
    ds = Select(refit, ds_alone, ds);
    dof = Select(refit, zero, dof);
    const D e = swxx - 2 * ds * sxl - 2 * dof * swx + ds * ds * sll + 2 * ds * dof * sl + dof * dof * sw;
    const DM better = active & Greater(sll, zero) & ~Less(ds, zero) & Less(e, best);
    const auto fbetter = Narrow<N>(better);
    best = Select(better, e, best);
    best_sll = Select(better, sll, best_sll);  // Σw·L² of the kept levels: step B's scale weight
    bs = Select(fbetter, Convert<F>(ds), bs);
    bo = Select(fbetter, Convert<F>(dof), bo);
    return better;
  };
  const float fq = static_cast<float>(nq);
  const DM all = zero == zero;
  for (int k = 0; k <= 20; ++k) {
    const F iscale = Splat<F>(fq - 1.0f + 0.1f * static_cast<float>(k)) / range;
    D sl, sll, sxl;
    LevelSums<Unit>(t, [&](int i) QF_LAMBDA_INLINE { return RoundClamp(shifted[i] * iscale, 0.f, fq); }, &sl, &sll, &sxl);
    keep_better(sl, sll, sxl, all);
  }
  // Re-round against the fit (twice), per lane only while it keeps improving and the scale stays positive.
  DM active = Greater(Widen<N>(bs), zero);
  for (int it = 0; it < 2 && AnyLane(active); ++it) {
    D sl, sll, sxl;
    LevelSums<Unit>(t, [&](int i) QF_LAMBDA_INLINE { return RoundClamp((t.x[i] - bo) / bs, 0.f, fq); }, &sl, &sll, &sxl);
    active = keep_better(sl, sll, sxl, active) & Greater(Widen<N>(bs), zero);
  }
  for (int j = 0; j < N; ++j) {
    const bool flat = !(xmax[j] > xmin[j]);  // constant ≤ 0 (or all zero): the min alone reproduces it
    r->s[j] = flat ? 0.f : bs[j];
    r->m[j] = flat ? -xmin[j] : -bo[j];
    r->ws[j] = flat ? 0.0 : best_sll[j];
    r->wm[j] = sw[j];
  }
}

// Step A, symmetric types: x̂ = s·L. Error = Σw·x² − sxl²/sll, so the best levels maximise sxl²/sll.
template <bool Unit, bool FineGrid, int N, int S>
QF_LANE_INLINE void FitSymmetricLanes(const LaneBlock<N, S>& t, int lmin, int lmax, LaneTargets<N>* r) {
  using F = typename Lanes<N>::F;
  using D = typename Lanes<N>::D;
  using DM = decltype(D{} < D{});
  F xm = {};  // the first value of largest magnitude
  for (int i = 0; i < S; ++i) xm = Select(Greater(Abs(t.x[i]), Abs(xm)), t.x[i], xm);
  D best_gain = Splat<D>(-1.0), best_sll = {};
  F bs = {};
  const D zero = {};
  auto keep_better = [&](const D& sll, const D& sxl, const DM& active) QF_LAMBDA_INLINE {
    const D gain = sxl * sxl / sll;
    const DM better = active & Greater(sll, zero) & Greater(gain, best_gain);
    best_gain = Select(better, gain, best_gain);
    best_sll = Select(better, sll, best_sll);
    bs = Select(Narrow<N>(better), Convert<F>(sxl / sll), bs);
    return better;
  };
  const float flo = static_cast<float>(lmin), fhi = static_cast<float>(lmax);
  const DM all = zero == zero;
  // Map the largest |x| near the negative or the positive end.
  // 64 levels (Q6_K): 7 candidates 0.6 apart per end. On the RMSE table of k_quants_test.cc this wider,
  // sparser set fits better than 9 candidates 0.2 apart, with and without importance (0.2–3% lower RMSE on
  // all three data sets), for 14 roundings of the sub-blocks instead of 18. 8 levels (Q3_K): 9, 0.2 apart.
  constexpr int half = FineGrid ? 3 : 4;
  constexpr float step = FineGrid ? 0.6f : 0.2f;
  for (int end : {lmin, lmax}) {
    for (int k = -half; k <= half; ++k) {
      const F iscale = Splat<F>(static_cast<float>(end) + step * static_cast<float>(k)) / xm;
      D sl, sll, sxl;  // sl unused (and not computed once inlined)
      LevelSums<Unit>(t, [&](int i) QF_LAMBDA_INLINE { return RoundClamp(iscale * t.x[i], flo, fhi); }, &sl, &sll, &sxl);
      keep_better(sll, sxl, all);
    }
  }
  DM active = NotEqual(Widen<N>(bs), zero);
  for (int it = 0; it < 2 && AnyLane(active); ++it) {
    D sl, sll, sxl;
    LevelSums<Unit>(t, [&](int i) QF_LAMBDA_INLINE { return RoundClamp(t.x[i] / bs, flo, fhi); }, &sl, &sll, &sxl);
    active = keep_better(sll, sxl, active) & NotEqual(Widen<N>(bs), zero);
  }
  for (int j = 0; j < N; ++j) {
    const bool none = !(Abs(xm[j]) > 0);
    r->s[j] = none ? 0.f : bs[j];
    r->ws[j] = none ? 0.0 : best_sll[j];
    r->m[j] = 0, r->wm[j] = 0;
  }
}

// Step B: super-scale d so that v_j ≈ d·l_j with l_j = round(v_j / d) ∈ [lo, hi], minimising
// Σ wt_j (v_j − d·l_j)². The (up to 22) candidate scales are scored side by side, one per lane, each lane
// summing over j in order; a one-at-a-time scan in the candidates' order then keeps the strictly better ones
// (a candidate's scores do not depend on the incumbent, so scoring first and comparing after is the same).
template <int N, bool FineScales>
QF_LANE_INLINE float QuantizeScaleSet(const float* v, const double* wt, int lo, int hi) {
  float vm = 0;
  for (int j = 0; j < N; ++j)
    if (Abs(v[j]) > Abs(vm)) vm = v[j];
  if (!(Abs(vm) > 0)) return 0;
  constexpr int C = 8;  // candidates per vector
  using F = typename Lanes<C>::F;
  using D = typename Lanes<C>::D;
  const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
  float cand[24];
  int nc = 0;
  // 8-bit sub-scales (Q6_K) sit on a grid so fine that the 11 candidates per end bought nothing measurable
  // over the exact end maps (each is refit by least squares below): one candidate per end there.
  constexpr int half = FineScales ? 0 : 5;
  for (int end : {lo, hi}) {
    if (end == 0) continue;
    for (int k = -half; k <= half; ++k) cand[nc++] = vm / (static_cast<float>(end) + 0.1f * static_cast<float>(k));
  }
  for (int c = nc; c < 24; ++c) cand[c] = 1.f;  // padding lanes, never compared
  double err[24], refit_err[24];
  float refit_d[24];
  bool refit_ok[24];
  for (int c0 = 0; c0 < nc; c0 += C) {
    F d;
    for (int c = 0; c < C; ++c) d[c] = cand[c0 + c];
    const D dd = Widen<C>(d);
    D e = {}, svl = {}, sll = {};
    for (int j = 0; j < N; ++j) {
      const D l = Widen<C>(RoundClamp(Splat<F>(v[j]) / d, flo, fhi));
      const D diff = Splat<D>(static_cast<double>(v[j])) - dd * l;
      const D w = Splat<D>(wt[j]);
      e += w * diff * diff;
      svl += Splat<D>(wt[j] * v[j]) * l;
      sll += w * l * l;
    }
    const F d2 = Convert<F>(svl / sll);  // least-squares d for these integers
    const D dd2 = Widen<C>(d2);
    D e2 = {};
    for (int j = 0; j < N; ++j) {
      const D diff = Splat<D>(static_cast<double>(v[j])) - dd2 * Widen<C>(RoundClamp(Splat<F>(v[j]) / d2, flo, fhi));
      e2 += Splat<D>(wt[j]) * diff * diff;
    }
    for (int c = 0; c < C; ++c)
      err[c0 + c] = e[c], refit_err[c0 + c] = e2[c], refit_d[c0 + c] = d2[c], refit_ok[c0 + c] = sll[c] > 0;
  }
  double best = kInf;
  float best_d = vm / fhi;
  for (int c = 0; c < nc; ++c) {
    if (!(Abs(cand[c]) > 0) || !(Abs(cand[c]) <= std::numeric_limits<float>::max())) continue;  // 0, Inf, NaN
    if (err[c] < best) best = err[c], best_d = cand[c];
    if (refit_ok[c] && refit_err[c] < best) best = refit_err[c], best_d = refit_d[c];
  }
  return best_d;
}

// A step-C result. Its levels v.L are rounded only when needed (by step D or as the answer: FillLevels):
// the last candidate of a block usually loses, and rounding 256 levels cost as much as scoring it.
struct Config {
  KValues v;
  double err = kInf;
  float ml[16], inv[16];  // per sub-block: the winner's offset dmin·lm and 1/(d·ls) (0 if d·ls = 0)
  bool live[16] = {};     // sub-blocks where some candidate scored below infinity (else v keeps old values)
  bool filled = true;     // v.L matches ml/inv
};

// Step C: given fp16 d/dmin, choose each sub-block's integers among a few candidates, exactly.
// Candidate slots per lane, in the order they are tried: sub-scale floor, ceil, previous × min floor, ceil,
// previous. A slot repeating an earlier slot of its lane scores the same and cannot win (strict <), so a
// slot is skipped when it repeats in every lane and scored (harmlessly) otherwise.
template <KSpec Sp, bool Unit, int N = Sp.n_sub, int S = Sp.sub_len>
QF_LANE_INLINE void ChooseInts(const LaneBlock<N, S>& t, const LaneTargets<N>& tg, const KValues* prev,
                               uint16_t d16, uint16_t dmin16, Config* out) {
  using F = typename Lanes<N>::F;
  using D = typename Lanes<N>::D;
  using I = typename Lanes<N>::I;
  const float d = F16ToF32(d16), dmin = Sp.affine ? F16ToF32(dmin16) : 0.f;
  out->v.d = d16;
  out->v.dmin = Sp.affine ? dmin16 : 0;
  out->err = 0;
  I cs[3], cm[3];
  int ncs = 1, ncm = 1;
  if (d != 0) {
    for (int j = 0; j < N; ++j) {
      const int f = FloorClamp(tg.s[j] / d, Sp.smin, Sp.smax);
      cs[0][j] = f, cs[1][j] = f < Sp.smax ? f + 1 : f, cs[2][j] = prev ? prev->ls[j] : f;
    }
    ncs = prev ? 3 : 2;
  } else {
    for (int j = 0; j < N; ++j) cs[0][j] = prev ? prev->ls[j] : 0;
  }
  if (Sp.affine && dmin != 0) {
    for (int j = 0; j < N; ++j) {
      const int f = FloorClamp(tg.m[j] / dmin, 0, Sp.smax);
      cm[0][j] = f, cm[1][j] = f < Sp.smax ? f + 1 : f, cm[2][j] = prev ? prev->lm[j] : f;
    }
    ncm = prev ? 3 : 2;
  } else {
    cm[0] = I{};
  }
  auto repeats_everywhere = [](const I* c, int q) QF_LAMBDA_INLINE {
    auto seen = c[0] == c[q];
    for (int p = 1; p < q; ++p) seen |= c[p] == c[q];
    for (int j = 0; j < N; ++j)
      if (!seen[j]) return false;
    return true;
  };
  const float flo = static_cast<float>(Sp.lmin), fhi = static_cast<float>(Sp.lmax);
  const F fd = Splat<F>(d), fdmin = Splat<F>(dmin), fzero = {};
  D best = Splat<D>(kInf);
  F best_ml = {}, best_inv = {};
  I best_ls = {}, best_lm = {};
  for (int a = 0; a < ncs; ++a) {
    if (a > 0 && repeats_everywhere(cs, a)) continue;
    const F dl = fd * Convert<F>(cs[a]);
    const F inv = Select(NotEqual(dl, fzero), Splat<F>(1.f) / dl, fzero);
    for (int b = 0; b < ncm; ++b) {
      if (b > 0 && repeats_everywhere(cm, b)) continue;
      const F ml = fdmin * Convert<F>(cm[b]);
      D e = {};
      for (int i = 0; i < S; ++i) {
        const F L = RoundClamp((t.x[i] + ml) * inv, flo, fhi);
        const F xh = dl * L - ml;  // the decoder's two roundings: (d·ls)·L, then − dmin·lm
        const D diff = Widen<N>(t.x[i]) - Widen<N>(xh);
        if constexpr (Unit)
          e += diff * diff;  // w·diff·diff with w = 1: the same double
        else
          e += t.wd[i] * diff * diff;
      }
      const auto better = Less(e, best);
      const I ibetter = Narrow<N>(better);
      best = Select(better, e, best);
      best_ml = Select(ibetter, ml, best_ml);
      best_inv = Select(ibetter, inv, best_inv);
      best_ls = Select(ibetter, cs[a], best_ls);
      best_lm = Select(ibetter, cm[b], best_lm);
    }
  }
  // A lane where nothing scored below infinity (overflowing inputs) keeps whatever *out held.
  for (int j = 0; j < N; ++j) {
    out->err += best[j];
    out->live[j] = best[j] < kInf;
    if (!out->live[j]) continue;
    out->v.ls[j] = best_ls[j];
    out->v.lm[j] = best_lm[j];
    out->ml[j] = best_ml[j], out->inv[j] = best_inv[j];
  }
  out->filled = false;
}

// The winners' levels of a step-C result, recomputed with the arithmetic that scored them, straight from
// the untransposed sub-block (one contiguous run each).
template <KSpec Sp>
QF_LANE_INLINE void FillLevels(const float* x, Config* c) {
  if (c->filled) return;
  const float flo = static_cast<float>(Sp.lmin), fhi = static_cast<float>(Sp.lmax);
  for (int j = 0; j < Sp.n_sub; ++j) {
    if (!c->live[j]) continue;
    const float ml = c->ml[j], inv = c->inv[j];
    const float* xs = x + j * Sp.sub_len;
    int8_t* L = c->v.L + j * Sp.sub_len;
    for (int i = 0; i < Sp.sub_len; ++i) {
      const float q = (xs[i] + ml) * inv;
      L[i] = static_cast<int8_t>(q > flo ? (q < fhi ? __builtin_rintf(q) : fhi) : flo);
    }
  }
  c->filled = true;
}

// Step D: least-squares d (and dmin ≥ 0) for fixed integers. Returns false if degenerate.
template <KSpec Sp>
QF_LANE_INLINE bool RefitSuper(const float* x, const float* w, const KValues& v, float* d, float* dmin) {
  double saa = 0, sab = 0, sbb = 0, sax = 0, sbx = 0;
  for (int j = 0; j < Sp.n_sub; ++j) {  // per sub-block: no index division per element
    const double ls = v.ls[j], b = Sp.affine ? v.lm[j] : 0;
    for (int e = j * Sp.sub_len; e < (j + 1) * Sp.sub_len; ++e) {
      const double a = ls * v.L[e];
      saa += w[e] * a * a, sab += w[e] * a * b, sbb += w[e] * b * b;
      sax += w[e] * a * x[e], sbx += w[e] * b * x[e];
    }
  }
  if (!(saa > 0)) return false;
  // x ≈ d·a − dmin·b: normal equations in (d, u = −dmin).
  const double det = saa * sbb - sab * sab;
  double dd = sax / saa, dm = 0;
  if (Sp.affine && det > 1e-12 * saa * sbb) {
    dd = (sbb * sax - sab * sbx) / det;
    dm = -(saa * sbx - sab * sax) / det;
    if (dm < 0) dd = sax / saa, dm = 0;
  }
  *d = static_cast<float>(dd);
  *dmin = static_cast<float>(dm);
  return std::isfinite(*d) && std::isfinite(*dmin);
}

// Step D for a symmetric type on the transposed block: each sub-block's sums in its own lane, the levels
// re-rounded there with the arithmetic that scored them (so step C's levels need not be written out first).
// Sums in another order than RefitSuper's; used for Q6_K only, whose bytes were free to move. Falls back to
// RefitSuper if a sub-block had no finite candidate.
template <KSpec Sp, bool Unit, int N = Sp.n_sub, int S = Sp.sub_len>
QF_LANE_INLINE bool RefitSymmetricLanes(const float* x, const float* w, const LaneBlock<N, S>& t, Config* c,
                                        float* d) {
  static_assert(!Sp.affine);
  using F = typename Lanes<N>::F;
  using D = typename Lanes<N>::D;
  using I = typename Lanes<N>::I;
  bool all_live = true;
  for (int j = 0; j < N; ++j) all_live &= c->live[j];
  if (c->filled || !all_live) {
    float dmin;
    FillLevels<Sp>(x, c);
    return RefitSuper<Sp>(x, w, c->v, d, &dmin);
  }
  I ls;
  F inv;
  for (int j = 0; j < N; ++j) ls[j] = c->v.ls[j], inv[j] = c->inv[j];
  const D lsd = Convert<D>(ls);
  const float flo = static_cast<float>(Sp.lmin), fhi = static_cast<float>(Sp.lmax);
  D saa = {}, sax = {};
  for (int i = 0; i < S; ++i) {
    const D a = lsd * Widen<N>(RoundClamp(t.x[i] * inv, flo, fhi));
    if constexpr (Unit)
      saa += a * a;
    else
      saa += t.wd[i] * a * a;
    sax += t.wx[i] * a;
  }
  double sum_aa = 0, sum_ax = 0;
  for (int j = 0; j < N; ++j) sum_aa += saa[j], sum_ax += sax[j];
  if (!(sum_aa > 0)) return false;
  *d = static_cast<float>(sum_ax / sum_aa);
  return std::isfinite(*d);
}

// Steps A–D for one super-block of type Sp, compiled once per clone.
template <KSpec Sp, bool Unit>
QF_HOT_CLONES void EncodeBlock(const float* x, const float* w, KValues* out) {
  constexpr int N = Sp.n_sub, S = Sp.sub_len;
  // Q6_K's 64 levels and 8-bit sub-scales leave little for the wide searches to find: its step A tries fewer
  // candidates, step B only the two end maps, and step D refits once (more refits changed its RMSE by <0.1%).
  constexpr bool kFineGrid = Sp.lmax - Sp.lmin >= 63 && Sp.smax - Sp.smin >= 255;
  constexpr int kRefits = kFineGrid ? 1 : 3;
  LaneBlock<N, S> t;
  Transpose(x, w, &t);
  LaneTargets<N> tg;
  if constexpr (Sp.affine)
    FitAffineLanes<Unit>(t, Sp.lmax, &tg);
  else
    FitSymmetricLanes<Unit, kFineGrid>(t, Sp.lmin, Sp.lmax, &tg);
  const float d0 = QuantizeScaleSet<N, kFineGrid>(tg.s, tg.ws, Sp.smin, Sp.smax);
  const float m0 = Sp.affine ? QuantizeScaleSet<N, false>(tg.m, tg.wm, 0, Sp.smax) : 0.f;
  Config best, cur;
  ChooseInts<Sp, Unit>(t, tg, nullptr, ToF16(d0), ToF16(m0), &best);
  for (int it = 0; it < kRefits; ++it) {
    float d, dmin = 0;
    if constexpr (kFineGrid) {
      if (!RefitSymmetricLanes<Sp, Unit>(x, w, t, &best, &d)) break;
    } else {
      FillLevels<Sp>(x, &best);
      if (!RefitSuper<Sp>(x, w, best.v, &d, &dmin)) break;
    }
    const uint16_t d16 = ToF16(d), m16 = Sp.affine ? ToF16(dmin) : 0;
    if (d16 == best.v.d && m16 == best.v.dmin) break;
    ChooseInts<Sp, Unit>(t, tg, &best.v, d16, m16, &cur);
    if (!(cur.err < best.err)) break;
    best = cur;
  }
  FillLevels<Sp>(x, &best);
  *out = best.v;
}

// unit: every w is 1 (no importance), so the cheaper exact sums of LevelSums and ChooseInts apply.
template <KSpec Sp>
void EncodeBlockFor(const float* x, const float* w, bool unit, KValues* out) {
  if (unit)
    EncodeBlock<Sp, true>(x, w, out);
  else
    EncodeBlock<Sp, false>(x, w, out);
}

}  // namespace

void EncodeKBlock(const KSpec& sp, const float* x, const float* w, KValues* out) {
  bool unit = true;
  for (int i = 0; i < kKSuper; ++i) unit &= w[i] == 1.f;
  if (sp == kSpecQ2K) return EncodeBlockFor<kSpecQ2K>(x, w, unit, out);
  if (sp == kSpecQ3K) return EncodeBlockFor<kSpecQ3K>(x, w, unit, out);
  if (sp == kSpecQ4K) return EncodeBlockFor<kSpecQ4K>(x, w, unit, out);
  if (sp == kSpecQ5K) return EncodeBlockFor<kSpecQ5K>(x, w, unit, out);
  if (sp == kSpecQ6K) return EncodeBlockFor<kSpecQ6K>(x, w, unit, out);
  std::abort();  // the search is compiled per type: any other spec is a programming error
}

namespace {
// Per-element weights for one super-block: 1 without importance; otherwise the importance (negative or
// NaN treated as 0) plus 1e-6 of its mean, so all-zero sub-blocks stay well-posed without changing the
// objective measurably. A super-block with no positive importance falls back to unit weights. Returns
// whether the weights are the unit ones.
bool BlockWeights(const float* importance, float* w) {
  if (!importance) {
    for (int i = 0; i < kKSuper; ++i) w[i] = 1.f;
    return true;
  }
  double sum = 0;
  for (int i = 0; i < kKSuper; ++i) {
    w[i] = importance[i] > 0 ? importance[i] : 0.f;  // NaN compares false
    if (!std::isfinite(w[i])) w[i] = 0;
    sum += w[i];
  }
  if (!(sum > 0)) {
    for (int i = 0; i < kKSuper; ++i) w[i] = 1.f;
    return true;
  }
  const float eps = static_cast<float>(1e-6 * sum / kKSuper);
  for (int i = 0; i < kKSuper; ++i) w[i] += eps;
  return false;  // (if all happen to be 1 the weighted search chooses the same, only slower)
}

template <KSpec Sp, typename Block, void (*Pack)(const KValues&, Block*)>
void EncodeRow(const float* x, uint8_t* out, int64_t n, const float* importance) {
  float w[kKSuper];
  for (int64_t i = 0; i < n / kKSuper; ++i) {
    const bool unit = BlockWeights(importance ? importance + i * kKSuper : nullptr, w);
    KValues v;
    EncodeBlockFor<Sp>(x + i * kKSuper, w, unit, &v);
    Block b{};
    Pack(v, &b);
    std::memcpy(out + i * sizeof(Block), &b, sizeof(Block));
  }
}

}  // namespace

void EncodeRowQ2K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<kSpecQ2K, block_q2_K, PackQ2K>(x, out, n, imp);
}
void EncodeRowQ3K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<kSpecQ3K, block_q3_K, PackQ3K>(x, out, n, imp);
}
void EncodeRowQ4K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<kSpecQ4K, block_q4_K, PackQ4K>(x, out, n, imp);
}
void EncodeRowQ5K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<kSpecQ5K, block_q5_K, PackQ5K>(x, out, n, imp);
}
void EncodeRowQ6K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<kSpecQ6K, block_q6_K, PackQ6K>(x, out, n, imp);
}

}  // namespace qforge::kquant
