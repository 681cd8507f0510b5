// Accumulation of per-input calibration statistics. Sums are kept in double: 16k tokens of float squares
// summed in float would lose ~4 digits; XᵀX of one chunk is formed in float by Eigen (a chunk is at most a
// few thousand tokens) and added to the double total.
#include "qforge/algo/calibration_stats.h"

#include <cmath>

#include <Eigen/Dense>

namespace qforge {

InputStats::InputStats(int64_t cols, StatsWanted wanted) : cols_(cols), wanted_(wanted) {
  sum_sq_.assign(static_cast<size_t>(cols), 0.0);
  sum_abs_.assign(static_cast<size_t>(cols), 0.0);
  if (wanted_.hessian) hessian_.assign(static_cast<size_t>(cols * cols), 0.0);
}

void InputStats::Add(const float* x, int64_t n, int64_t first_token) {
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x + t * cols_;
    for (int64_t i = 0; i < cols_; ++i) {
      sum_sq_[i] += static_cast<double>(row[i]) * row[i];
      sum_abs_[i] += std::fabs(static_cast<double>(row[i]));
    }
    if (wanted_.sample_stride > 0 && (first_token + t) % wanted_.sample_stride == 0) {
      sample_.insert(sample_.end(), row, row + cols_);
    }
  }
  if (wanted_.hessian) {
    using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const RowMat> X(x, n, cols_);
    RowMat h(cols_, cols_);
    h.noalias() = X.transpose() * X;
    for (int64_t i = 0; i < cols_ * cols_; ++i) hessian_[i] += h.data()[i];
  }
  tokens_ += n;
}

void InputStats::DivideColumns(const std::vector<float>& s) {
  for (int64_t i = 0; i < cols_; ++i) {
    const double inv = 1.0 / s[i];
    sum_sq_[i] *= inv * inv;
    sum_abs_[i] *= inv;
  }
  if (!hessian_.empty()) {
    for (int64_t i = 0; i < cols_; ++i)
      for (int64_t j = 0; j < cols_; ++j) hessian_[i * cols_ + j] /= static_cast<double>(s[i]) * s[j];
  }
  const int64_t rows = sample_rows();
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t i = 0; i < cols_; ++i) sample_[t * cols_ + i] /= s[i];
}

std::vector<float> InputStats::MeanSquares() const {
  std::vector<float> out(static_cast<size_t>(cols_));
  const double n = tokens_ > 0 ? static_cast<double>(tokens_) : 1.0;
  for (int64_t i = 0; i < cols_; ++i) out[i] = static_cast<float>(sum_sq_[i] / n);
  return out;
}

std::vector<double> InputStats::MeanAbs() const {
  std::vector<double> out(static_cast<size_t>(cols_));
  const double n = tokens_ > 0 ? static_cast<double>(tokens_) : 1.0;
  for (int64_t i = 0; i < cols_; ++i) out[i] = sum_abs_[i] / n;
  return out;
}

}  // namespace qforge
