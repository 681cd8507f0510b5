// AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration",
// section 3.2 "Searching to scale"): input channels that carry large activations matter most, so each
// input column j of a group of linear layers reading the same input is multiplied by s_j = mean|x_j|^α
// before quantization and the input is divided by s_j (folded into whatever produces it: the RMSNorm weight
// or the rows of the previous linear layer), which leaves the unquantized function unchanged. α is chosen
// on a grid to minimise the group's output error ‖Q(W·diag(s))·diag(1/s)·Xᵀ − W·Xᵀ‖² on calibration rows.
// The quantizer inside the search is the registry's round-to-nearest encoder of each layer's planned type.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qforge/algo/layer_forward.h"
#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"

namespace qforge {

struct AwqOptions {
  int grid = 20;           // α ∈ {0, 1/grid, ..., (grid-1)/grid}; α = 0 is s = 1 (plain RTN)
  bool force_unit = false; // only α = 0 (tests: must equal RTN byte for byte)
  int threads = 1;         // encoder threads; results do not depend on it
};

// One linear layer of a group: row-major [rows x cols] weights and the type it will be stored in.
struct AwqLinear {
  std::string name;
  const float* w = nullptr;
  int64_t rows = 0;
  GgmlType type = GgmlType::F32;
};

struct AwqResult {
  std::vector<float> scales;  // s per input column (all 1 when α = 0 wins)
  double alpha = 0;
  double error = 0;           // the group's summed squared output error at the chosen α
  double error_rtn = 0;       // ... at α = 0 (plain RTN), for reporting
};

// s = mean_abs^α normalised by sqrt(max·min) so the scales straddle 1 (neither the weights nor the folded
// norm drift in magnitude). Columns whose mean is below 1e-4·max are raised to it: a dead input would
// otherwise give an unbounded 1/s in the folded norm.
std::vector<float> AwqScalesForAlpha(const std::vector<double>& mean_abs, double alpha);

// The squared output error Σ‖(Q(W·diag(s))·diag(1/s) − W)·xᵀ‖² of one layer over the rows of x
// [n x cols]. scales empty means s = 1.
StatusOr<double> AwqOutputError(const AwqLinear& linear, int64_t cols, std::span<const float> scales, const float* x,
                                int64_t n, int threads);

// Searches α for one group. x: calibration rows [n x cols] of the group's input; mean_abs: mean |x| per
// column over all calibration tokens.
StatusOr<AwqResult> SearchAwqScales(std::span<const AwqLinear> group, int64_t cols,
                                    const std::vector<double>& mean_abs, const float* x, int64_t n,
                                    const AwqOptions& options);

// In place: columns of W [rows x cols] times s (W·diag(s)).
void ScaleColumns(float* w, int64_t rows, int64_t cols, std::span<const float> s);
// In place: rows of W [rows x cols] divided by s (diag(1/s)·W), the fold into a preceding linear layer.
void DivideRows(float* w, int64_t rows, int64_t cols, std::span<const float> s);

// The four groups of a Llama block whose linear layers share an input.
enum class AwqGroup { kAttnQkv, kAttnOutput, kFfnGateUp, kFfnDown };

// Whether the group's input can absorb 1/s exactly: attn_output only without GQA (each attention output
// channel then comes from exactly one V channel, and attention is linear in V).
bool AwqGroupFoldable(const BlockShape& shape, AwqGroup group);

// W·diag(s) for the group's layers and 1/s folded into what produces their input: attn_norm (q/k/v),
// attn_v's rows and bias (attn_output), ffn_norm (gate/up), ffn_up's rows (down: silu(gate)·up is linear
// in up). The block's float function is unchanged up to float rounding.
void FoldAwqScales(const BlockShape& shape, AwqGroup group, std::span<const float> s, BlockWeights* w);

}  // namespace qforge
