// Sensitivity measurement: how much damage (mean KL divergence of the next-token distribution against
// the unquantized model) quantizing one tensor to one type is predicted to do, for every quantizable
// tensor and candidate type, so a size budget can be met by choosing types (algo/allocator.h).
//
// The prediction. error(t, T) = Σ_rows Σ_j imp_j (w - deq(enc_T(w)))² with imp_j the mean x² of input
// column j on calibration text (the imatrix; 1 for token_embd and output, which the runtime's hook does
// not see). For a small perturbation the KLD is quadratic in the weight change (½ δᵀ F δ), so KLD ≈ c·error
// with a scale c that depends on where the tensor sits. c is calibrated by probes: the tensor alone is
// replaced by its decoded values at its smallest type and the one nearest 5.5 bits, the model runs on the calibration chunks and
// its mean KLD against the unquantized logits is measured. A probed tensor gets its own c (geometric mean
// of its probes' KLD/error), the others the geometric mean of their kind (attn_q, ffn_down, ...), then of
// all probes. Damages of different tensors are added (independent small perturbations).
//
// The probe runs weights as decoded floats, so it leaves out the activation rounding that quantized
// kernels add (Q8_K/Q8_0 dot formats); that effect is small and the same for every allocation.
//
// The measurement file (JSON, versioned) names the model file, its size and every tensor's shape, so a
// measurement is rejected when used with another model; different budgets reuse one measurement.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qforge/algo/policy.h"
#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/source_model.h"

namespace qforge {

inline constexpr int kMeasurementVersion = 1;

// Q2_K, Q3_K, IQ4_XS, Q4_K, Q5_K, Q6_K, Q8_0, the 32-block types (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) for rows
// the k-quants do not fit, F16 and F32.
std::vector<GgmlType> DefaultCandidateTypes();

// The tensors the policy would give a block type (2-D weights that are not norms), in model order.
std::vector<bool> QuantizableTensors(const SourceModel& model);
// Size of the model file, or of every file in a model folder: what a measurement is tied to.
uint64_t ModelFileBytes(const std::string& path);

// "blk.3.attn_q.weight" -> "attn_q.weight"; names outside blocks are their own kind.
std::string TensorKind(const std::string& name);

struct CandidateSensitivity {
  GgmlType type = GgmlType::F32;  // as stored (a block-size fallback is already applied)
  uint64_t bytes = 0;             // tensor data bytes
  double error = 0;               // importance-weighted squared reconstruction error
  double damage = 0;              // predicted mean KLD: scale x error
};

struct TensorSensitivity {
  std::string name;
  std::vector<uint64_t> ne;
  double scale = 0;          // KLD per unit of error used for this tensor
  std::string scale_source;  // "probed", "kind", "global"
  std::vector<CandidateSensitivity> candidates;  // distinct stored types, in DefaultCandidateTypes order
};

// One single-tensor perturbation run.
struct KldProbe {
  std::string tensor;
  GgmlType type = GgmlType::F32;
  double error = 0;
  double kld = 0;  // measured mean KLD over the calibration positions
};

struct Measurement {
  int version = kMeasurementVersion;
  std::string model_path;
  uint64_t model_file_bytes = 0;
  std::string calib_file;
  int chunks = 0, chunk_tokens = 0;
  std::vector<TensorSensitivity> tensors;  // quantizable tensors, in model order
  std::vector<KldProbe> probes;
  std::map<std::string, double> kind_scale;
  double global_scale = 0;
  // Fit quality over the probes, in log space: with the per-kind scales (each probe predicted from its
  // kind), the correlation of log predicted vs log measured KLD and the median |log ratio|; and with the
  // per-tensor scales (the consistency of one scale across a tensor's two probe types), the median |log ratio|.
  double fit_log_corr_kind = 0, fit_median_abs_log_ratio_kind = 0, fit_median_abs_log_ratio_tensor = 0;
};

struct MeasureOptions {
  std::string calib_file;
  int64_t calib_tokens = 4096;
  int calib_ctx = 128;
  int threads = 1;
  std::vector<GgmlType> candidates;  // empty: DefaultCandidateTypes()
  int max_probe_tensors = 64;        // probe every tensor up to this many, else an even sample of them
  // Progress lines ("error 3/36 blk.0.attn_q.weight", "probe 5/72 ...").
  std::function<void(const std::string&)> progress;
};

// Runs the whole measurement on a model (any source format qforge reads; the runtime needs a Llama-family
// model). Writes a temporary F32 GGUF next to nothing: the model is rebuilt in memory for the probes.
StatusOr<Measurement> MeasureSensitivity(const SourceModel& model, const std::string& model_path,
                                         const MeasureOptions& options);

// Without weights (a preset from plan/): error = numel x 4^-bits per candidate (the rate-distortion slope
// of a Gaussian source, every tensor equally sensitive), scale 1, marked "prior". Good enough to size a
// plan against memory, not to rank tensors.
Measurement PriorMeasurement(const SourceModel& model, const std::vector<GgmlType>& candidates = {});

// Applies the probe fit to the candidates' errors (sets scale, scale_source, damage, the kind and global
// scales and the fit-quality figures). Exposed so the fit can be tested without a model.
void FitDamageScales(Measurement* m);

Status SaveMeasurement(const Measurement& m, const std::string& path);
StatusOr<Measurement> LoadMeasurement(const std::string& path);
// The measurement belongs to this model: same file size, same quantizable tensors with the same shapes.
Status CheckMeasurementMatches(const Measurement& m, const SourceModel& model, uint64_t model_file_bytes,
                               const std::string& measure_path);

// --- Choosing types under a budget ----------------------------------------------------------------------

struct BudgetRequest {
  // The budget for all tensor data (non-quantizable tensors included).
  uint64_t tensor_bytes = 0;
  // true: each tensor counts as the file stores it, padded to the 32-byte alignment (a file-size target);
  // false: its exact data bytes (bits per weight and memory plans count these).
  bool padded = true;
  // Types the user fixed with --tensor-type (applied through the same rules as the policy): tensors they
  // match are not allocated but counted at their fixed size.
  std::vector<std::string> overrides;
};

struct BudgetChoice {
  std::string name;
  GgmlType type = GgmlType::F32;
  uint64_t bytes = 0;       // as the budget counts it (padded or not)
  double damage = 0;        // predicted (0 for tensors kept F32 or fixed by the user)
  bool user = false;        // fixed by --tensor-type
  bool quantizable = false;
};

struct BudgetPlan {
  std::vector<BudgetChoice> tensors;  // model order
  uint64_t budget = 0;
  uint64_t bytes = 0;         // Σ bytes, as the budget counts them (<= budget)
  uint64_t params = 0;
  double damage = 0;          // predicted total mean KLD
  bool proven_optimal = false;
  std::string method;
  // A policy that reproduces the plan: one exact-name rule per tensor, the user's overrides first, so
  // QuantizeToGguf (and any TensorEncoder) uses exactly these types.
  Policy policy;
};

// Errors: the budget is below the smallest possible plan (every candidate at its smallest), or the
// measurement has no entry for a quantizable tensor.
StatusOr<BudgetPlan> PlanBudget(const Measurement& m, const SourceModel& model, const BudgetRequest& request);

// GGUF bytes before the tensor data (32-byte alignment padding included) for `metadata` and the model's
// tensor names and shapes. A tensor's type is a fixed-size field, so this does not depend on the plan;
// file size = header + Σ padded tensor bytes.
uint64_t GgufHeaderBytes(const Metadata& metadata, const SourceModel& model);

}  // namespace qforge
