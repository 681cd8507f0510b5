// Test-only bridge to llama.cpp's ggml (libggml-base from the pinned npm package): decode through
// ggml_get_type_traits(type)->to_float and encode through ggml_quantize_chunk (with an optional imatrix),
// so quant tests can compare qforge's registry rows against the reference bit for bit or by error.
// Header-only; available when the test binary links qforge_referee_libs (QFORGE_HAVE_REFEREE=1).
#pragma once

#if defined(QFORGE_HAVE_REFEREE)

#include <ggml.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "qforge/formats/ggml_type.h"

namespace qforge::testing {

inline constexpr bool kHaveGgmlReference = true;

inline ggml_type ToGgml(GgmlType t) { return static_cast<ggml_type>(static_cast<uint32_t>(t)); }

// Decodes n elements (a multiple of the block size) of `type` with ggml's own dequantizer.
inline std::vector<float> GgmlDecode(GgmlType type, const uint8_t* blocks, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  const ggml_type_traits* traits = ggml_get_type_traits(ToGgml(type));
  if (traits->to_float) {
    traits->to_float(blocks, y.data(), n);
  } else if (type == GgmlType::F32) {  // ggml has no to_float for F32: it is the identity
    std::memcpy(y.data(), blocks, static_cast<size_t>(n) * sizeof(float));
  }
  return y;
}

// Encodes nrows rows of n_per_row floats with ggml_quantize_chunk. imatrix: nullptr or n_per_row column
// weights (ggml applies the same vector to every row). Returns the packed rows.
inline std::vector<uint8_t> GgmlEncode(GgmlType type, const float* x, int64_t nrows, int64_t n_per_row,
                                       const float* imatrix = nullptr) {
  const ggml_type t = ToGgml(type);
  ggml_quantize_init(t);
  std::vector<uint8_t> out(ggml_row_size(t, n_per_row) * static_cast<size_t>(nrows));
  ggml_quantize_chunk(t, x, out.data(), 0, nrows, n_per_row, imatrix);
  return out;
}

// Encode with ggml, then decode with ggml: the reference reconstruction of x.
inline std::vector<float> GgmlRoundTrip(GgmlType type, const float* x, int64_t nrows, int64_t n_per_row,
                                        const float* imatrix = nullptr) {
  std::vector<uint8_t> q = GgmlEncode(type, x, nrows, n_per_row, imatrix);
  return GgmlDecode(type, q.data(), nrows * n_per_row);
}

// ---- data sets for error comparisons (plain file I/O, no qforge readers involved) -----------------

struct ErrorDataset {
  std::string name;
  std::vector<float> x;   // nrows * n_per_row values
  int64_t n_per_row = 0;
  int64_t nrows() const { return n_per_row ? static_cast<int64_t>(x.size()) / n_per_row : 0; }
};

// The weights of a llama2.c checkpoint (28-byte header of 7 int32: dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; then float32 tensors), without the trailing RoPE tables
// (2 * seq_len * head_size / 2 floats), cut into rows of n_per_row (dim if 0); the tail that does not
// fill a row is dropped. Empty if the file cannot be read.
inline ErrorDataset LoadLlama2cWeights(const std::string& path, int64_t n_per_row = 0) {
  ErrorDataset ds;
  ds.name = path.substr(path.find_last_of('/') + 1);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return ds;
  int32_t h[7];
  std::vector<float> all;
  if (std::fread(h, 4, 7, f) == 7 && h[0] > 0 && h[3] > 0) {
    std::fseek(f, 0, SEEK_END);
    const long bytes = std::ftell(f) - 28;
    std::fseek(f, 28, SEEK_SET);
    all.resize(static_cast<size_t>(bytes / 4));
    if (std::fread(all.data(), 4, all.size(), f) != all.size()) all.clear();
    const size_t rope = static_cast<size_t>(h[6]) * (h[0] / h[3]);
    all.resize(all.size() > rope ? all.size() - rope : 0);
  }
  std::fclose(f);
  ds.n_per_row = n_per_row ? n_per_row : h[0];
  all.resize(all.size() / ds.n_per_row * ds.n_per_row);
  ds.x = std::move(all);
  return ds;
}

// Gaussian rows (sigma 0.02, like trained weights) with ~1% outliers of 10..50 sigma.
inline ErrorDataset GaussianWithOutliers(int64_t nrows, int64_t n_per_row, uint32_t seed) {
  ErrorDataset ds{"gaussian+outliers", std::vector<float>(static_cast<size_t>(nrows * n_per_row)), n_per_row};
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.02f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float& v : ds.x) {
    v = g(rng);
    if (u(rng) < 0.01f) v = (u(rng) < 0.5f ? -1.0f : 1.0f) * 0.02f * (10.0f + 40.0f * u(rng));
  }
  return ds;
}

// A random positive importance vector (log-normal, like imatrix column weights).
inline std::vector<float> RandomImportance(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::lognormal_distribution<float> ln(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = ln(rng);
  return w;
}

// sqrt(sum w (x - y)^2 / sum w) with w[j % w_period] (w == nullptr: plain RMSE).
inline double WeightedRmse(const float* x, const float* y, size_t n, const float* w, size_t w_period) {
  double num = 0, den = 0;
  for (size_t j = 0; j < n; ++j) {
    const double wj = w ? w[j % w_period] : 1.0;
    const double e = static_cast<double>(x[j]) - y[j];
    num += wj * e * e;
    den += wj;
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

// ---- qforge vs ggml ------------------------------------------------------------------------------

// Random bytes for `nblocks` blocks, then per block the fp16 fields at `f16_offsets` overwritten from a
// cycle of edge patterns (0, -0, smallest/largest subnormal, smallest normal, max, Inf, -Inf, NaNs) or
// random finite halves. Returns the index of the first element whose float bits differ between
// ggml's to_float and `decode`, or -1 when all match.
template <typename DecodeFn>
int64_t FirstDecodeMismatch(GgmlType type, DecodeFn decode, int64_t nblocks, std::vector<size_t> f16_offsets,
                            uint32_t seed) {
  const size_t bs = ggml_type_size(ToGgml(type));
  const int64_t qk = ggml_blck_size(ToGgml(type));
  static const uint16_t kEdge[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0xfbff,
                                   0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x7c01, 0x3c00, 0x1234};
  std::mt19937 rng(seed);
  std::vector<uint8_t> blocks(bs * static_cast<size_t>(nblocks));
  for (auto& b : blocks) b = static_cast<uint8_t>(rng());
  for (int64_t i = 0; i < nblocks; ++i) {
    for (size_t k = 0; k < f16_offsets.size(); ++k) {
      const size_t which = static_cast<size_t>(i) + 5 * k;
      uint16_t h = which % 2 == 0 ? kEdge[(which / 2) % std::size(kEdge)]
                                  : static_cast<uint16_t>(rng() % 0x7800 | (rng() & 0x8000));  // finite
      uint8_t* p = blocks.data() + static_cast<size_t>(i) * bs + f16_offsets[k];
      p[0] = static_cast<uint8_t>(h);
      p[1] = static_cast<uint8_t>(h >> 8);
    }
  }
  // Edge payloads: block 0 all-zero quants, block 1 all-ones bytes.
  if (nblocks > 1) {
    for (size_t j = 2; j < bs; ++j) blocks[j] = 0;
    for (size_t j = 2; j < bs; ++j) blocks[bs + j] = 0xff;
  }
  const int64_t n = nblocks * qk;
  std::vector<float> ref = GgmlDecode(type, blocks.data(), n), ours(static_cast<size_t>(n));
  decode(blocks.data(), ours.data(), n);
  for (int64_t j = 0; j < n; ++j) {
    uint32_t a, b;
    std::memcpy(&a, &ref[j], 4);
    std::memcpy(&b, &ours[j], 4);
    if (a != b) return j;
  }
  return -1;
}

struct RmsePair {
  double ours = 0, ggml = 0;
};
struct ErrorComparison {
  RmsePair plain;     // encoded without importance, plain RMSE
  RmsePair weighted;  // encoded with the importance vector, weighted RMSE
};

// Encodes the data set row by row with `encode` (importance: the same vector for every row) and with
// ggml_quantize_chunk (imatrix = that vector), decodes both with ggml, and measures the errors.
template <typename EncodeFn>
ErrorComparison CompareWithGgml(GgmlType type, EncodeFn encode, const ErrorDataset& ds,
                                const std::vector<float>& importance) {
  const int64_t nrows = ds.nrows(), k = ds.n_per_row;
  const size_t row_bytes = ggml_row_size(ToGgml(type), k);
  ErrorComparison c;
  for (bool weighted : {false, true}) {
    const float* imp = weighted ? importance.data() : nullptr;
    std::vector<uint8_t> q(row_bytes * static_cast<size_t>(nrows));
    for (int64_t r = 0; r < nrows; ++r) encode(ds.x.data() + r * k, q.data() + r * row_bytes, k, imp);
    std::vector<float> ours = GgmlDecode(type, q.data(), nrows * k);
    std::vector<float> ref = GgmlRoundTrip(type, ds.x.data(), nrows, k, imp);
    RmsePair& p = weighted ? c.weighted : c.plain;
    p.ours = WeightedRmse(ds.x.data(), ours.data(), ds.x.size(), imp, static_cast<size_t>(k));
    p.ggml = WeightedRmse(ds.x.data(), ref.data(), ds.x.size(), imp, static_cast<size_t>(k));
  }
  return c;
}

}  // namespace qforge::testing

#else

namespace qforge::testing {
inline constexpr bool kHaveGgmlReference = false;
}  // namespace qforge::testing

#endif
