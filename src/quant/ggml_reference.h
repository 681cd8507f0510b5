// Test-only bridge to llama.cpp's ggml (libggml-base from the pinned npm package): decode through
// ggml_get_type_traits(type)->to_float and encode through ggml_quantize_chunk (with an optional imatrix),
// so quant tests can compare qforge's registry rows against the reference bit for bit or by error.
// Header-only; available when the test binary links qforge_referee_libs (QFORGE_HAVE_REFEREE=1).
#pragma once

#if defined(QFORGE_HAVE_REFEREE)

#include <ggml.h>

#include <cstdint>
#include <vector>

#include "qforge/formats/ggml_type.h"

namespace qforge::testing {

inline constexpr bool kHaveGgmlReference = true;

inline ggml_type ToGgml(GgmlType t) { return static_cast<ggml_type>(static_cast<uint32_t>(t)); }

// Decodes n elements (a multiple of the block size) of `type` with ggml's own dequantizer.
inline std::vector<float> GgmlDecode(GgmlType type, const uint8_t* blocks, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  const ggml_type_traits* traits = ggml_get_type_traits(ToGgml(type));
  traits->to_float(blocks, y.data(), n);
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

}  // namespace qforge::testing

#else

namespace qforge::testing {
inline constexpr bool kHaveGgmlReference = false;
}  // namespace qforge::testing

#endif
