// What calibration records about the input X [tokens x cols] of a linear layer (or of a group of linear
// layers that read the same input: q/k/v, gate/up): Σx² per column (importance matrix), H = XᵀX (GPTQ),
// Σ|x| per column (AWQ's activation scale) and an evenly spaced sample of rows (AWQ's error search).
#pragma once

#include <cstdint>
#include <vector>

namespace qforge {

struct StatsWanted {
  bool hessian = false;        // cols x cols doubles: only GPTQ pays for it
  int64_t sample_stride = 0;   // keep every sample_stride-th token's row (0: keep none)
};

class InputStats {
 public:
  InputStats(int64_t cols, StatsWanted wanted);

  // Adds n rows of x (row-major [n x cols]). first_token: global index of row 0 (decides the sample).
  void Add(const float* x, int64_t n, int64_t first_token);

  // The statistics of X·diag(1/s) instead of X (after AWQ moved s into the weights): exact rescaling,
  // no second pass over the tokens.
  void DivideColumns(const std::vector<float>& s);

  int64_t cols() const { return cols_; }
  int64_t tokens() const { return tokens_; }
  const std::vector<double>& sum_sq() const { return sum_sq_; }
  const std::vector<double>& sum_abs() const { return sum_abs_; }
  const std::vector<double>& hessian() const { return hessian_; }  // empty unless wanted
  const std::vector<float>& sample() const { return sample_; }     // sample_rows() x cols
  int64_t sample_rows() const { return cols_ ? static_cast<int64_t>(sample_.size()) / cols_ : 0; }

  // Σx²/tokens per column, as the registry encoders take importance.
  std::vector<float> MeanSquares() const;
  // Σ|x|/tokens per column.
  std::vector<double> MeanAbs() const;

 private:
  int64_t cols_;
  StatsWanted wanted_;
  int64_t tokens_ = 0;
  std::vector<double> sum_sq_, sum_abs_, hessian_;
  std::vector<float> sample_;
};

}  // namespace qforge
