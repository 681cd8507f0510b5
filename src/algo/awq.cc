// AWQ's scale search (Lin et al. 2023, section 3.2). Each candidate α costs one quantize-dequantize of the
// group's weights and one [n x cols] x [cols x rows] product per layer; the search visits every α of the
// grid (the error is not unimodal in α in general), smallest error wins, ties go to the smaller α.
#include "qforge/algo/awq.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "qforge/formats/gguf.h"
#include "qforge/pipeline/tensor_codec.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Q(W) as floats: the registry's RTN encoder of `type`, then its bit-exact decoder.
Status QuantizeDequantize(GgmlType type, const float* w, int64_t rows, int64_t cols, float* out, int threads) {
  if (type == GgmlType::F32) {  // exact: no rounding to undo
    std::copy(w, w + rows * cols, out);
    return Status::Ok();
  }
  QF_ASSIGN_OR_RETURN(uint64_t nbytes, GgufTensorBytes(type, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)}));
  std::vector<uint8_t> bytes(nbytes);
  QF_RETURN_IF_ERROR(EncodeTensor(type, w, static_cast<uint64_t>(rows * cols), static_cast<uint64_t>(cols),
                                  bytes.data(), nullptr, threads));
  const QuantType* q = FindQuantType(type);
  const uint64_t row_bytes = nbytes / static_cast<uint64_t>(rows);
  for (int64_t r = 0; r < rows; ++r) q->decode(bytes.data() + r * row_bytes, out + r * cols, cols);
  return Status::Ok();
}

}  // namespace

std::vector<float> AwqScalesForAlpha(const std::vector<double>& mean_abs, double alpha) {
  std::vector<float> s(mean_abs.size(), 1.0f);
  if (alpha == 0 || mean_abs.empty()) return s;
  const double top = *std::max_element(mean_abs.begin(), mean_abs.end());
  if (!(top > 0) || !std::isfinite(top)) return s;
  std::vector<double> raw(mean_abs.size());
  for (size_t i = 0; i < mean_abs.size(); ++i) raw[i] = std::pow(std::max(mean_abs[i], 1e-4 * top), alpha);
  const auto [lo, hi] = std::minmax_element(raw.begin(), raw.end());
  const double norm = std::sqrt(*lo * *hi);
  for (size_t i = 0; i < raw.size(); ++i) s[i] = static_cast<float>(raw[i] / norm);
  return s;
}

void ScaleColumns(float* w, int64_t rows, int64_t cols, std::span<const float> s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] *= s[c];
}

void DivideRows(float* w, int64_t rows, int64_t cols, std::span<const float> s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] /= s[r];
}

StatusOr<double> AwqOutputError(const AwqLinear& linear, int64_t cols, std::span<const float> scales, const float* x,
                                int64_t n, int threads) {
  const int64_t rows = linear.rows;
  std::vector<float> scaled(linear.w, linear.w + rows * cols);
  if (!scales.empty()) ScaleColumns(scaled.data(), rows, cols, scales);
  std::vector<float> q(scaled.size());
  QF_RETURN_IF_ERROR(QuantizeDequantize(linear.type, scaled.data(), rows, cols, q.data(), threads)
                         .WithContext("AWQ search on " + linear.name));
  // D = Q(W·diag(s))·diag(1/s) − W: the error the original input sees.
  RowMat d(rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float inv = scales.empty() ? 1.0f : 1.0f / scales[c];
      d(r, c) = q[r * cols + c] * inv - linear.w[r * cols + c];
    }
  Eigen::Map<const RowMat> X(x, n, cols);
  RowMat e = X * d.transpose();
  return static_cast<double>(e.cast<double>().squaredNorm());
}

StatusOr<AwqResult> SearchAwqScales(std::span<const AwqLinear> group, int64_t cols,
                                    const std::vector<double>& mean_abs, const float* x, int64_t n,
                                    const AwqOptions& options) {
  if (static_cast<int64_t>(mean_abs.size()) != cols) {
    return Status::Error(fmt::format("AWQ: {} activation means for {} columns", mean_abs.size(), cols));
  }
  AwqResult best;
  const int grid = options.force_unit ? 1 : std::max(1, options.grid);
  for (int step = 0; step < grid; ++step) {
    const double alpha = static_cast<double>(step) / std::max(1, options.grid);
    std::vector<float> s = AwqScalesForAlpha(mean_abs, alpha);
    double err = 0;
    for (const AwqLinear& l : group) {
      QF_ASSIGN_OR_RETURN(double e, AwqOutputError(l, cols, alpha == 0 ? std::span<const float>() : s, x, n,
                                                  options.threads));
      err += e;
    }
    if (step == 0) {
      best.error_rtn = err;
      best.error = err;
      best.alpha = 0;
      best.scales = std::move(s);
    } else if (err < best.error) {
      best.error = err;
      best.alpha = alpha;
      best.scales = std::move(s);
    }
  }
  return best;
}

bool AwqGroupFoldable(const BlockShape& shape, AwqGroup group) {
  return group != AwqGroup::kAttnOutput || shape.n_head == shape.n_head_kv;
}

void FoldAwqScales(const BlockShape& shape, AwqGroup group, std::span<const float> s, BlockWeights* w) {
  const int64_t e = shape.n_embd, kv = shape.kv_dim(), ff = shape.n_ff;
  switch (group) {
    case AwqGroup::kAttnQkv:
      ScaleColumns(w->wq.data(), e, e, s);
      ScaleColumns(w->wk.data(), kv, e, s);
      ScaleColumns(w->wv.data(), kv, e, s);
      for (int64_t i = 0; i < e; ++i) w->attn_norm[i] /= s[i];
      break;
    case AwqGroup::kAttnOutput:
      ScaleColumns(w->wo.data(), e, e, s);
      DivideRows(w->wv.data(), kv, e, s);
      for (size_t i = 0; i < w->bv.size(); ++i) w->bv[i] /= s[i];
      break;
    case AwqGroup::kFfnGateUp:
      ScaleColumns(w->gate.data(), ff, e, s);
      ScaleColumns(w->up.data(), ff, e, s);
      for (int64_t i = 0; i < e; ++i) w->ffn_norm[i] /= s[i];
      break;
    case AwqGroup::kFfnDown:
      ScaleColumns(w->down.data(), e, ff, s);
      DivideRows(w->up.data(), ff, e, s);
      break;
  }
}

}  // namespace qforge
