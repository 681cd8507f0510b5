// Memory planning: how many bytes a model needs at a type and context length, before anything is
// downloaded or quantized. Weights come from the same policy code `quantize` uses (exact per-tensor
// bytes, fallbacks included); the KV cache and runtime allowance are formulas stated in docs/plan.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// "24GB" (1e9), "24GiB" (2^30), "512MB", "512MiB", "1.5TB", "100KB", "123" (bytes); case-insensitive,
// optional space before the unit, "G"/"M"/"K"/"T" alone mean the decimal units.
StatusOr<uint64_t> ParseSize(std::string_view text);
// "16.06 GB (14.96 GiB)": decimal first, binary in brackets.
std::string FormatSize(uint64_t bytes);

// A published model configuration (Hugging Face config.json values).
struct ModelPreset {
  std::string name;
  int n_embd = 0;
  int n_ff = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_vocab = 0;
  bool tied = false;     // output shares token_embd (no output.weight)
  bool qkv_bias = false;  // Qwen2: attn_q/k/v biases
};
const std::vector<ModelPreset>& Presets();
const ModelPreset* FindPreset(std::string_view name);  // case-insensitive

// The tensor list (GGUF names and shapes, F16, no data) and llama.* metadata of a preset, so the
// quantization policy applies to it exactly as to a real file.
SourceModel SynthesizeModel(const ModelPreset& preset);

// The sizes the KV cache and the compute buffers depend on.
struct ModelShape {
  int n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_vocab = 0;
};
// From llama.* metadata, or from the tensor shapes where a key is missing.
StatusOr<ModelShape> ShapeFromModel(const SourceModel& model);

// Bytes per KV-cache element: F16 2, F32 4, Q8_0 34/32 (a 32-element block of int8 plus an f16 scale).
StatusOr<double> KvBytesPerElement(GgmlType kv_type);
// n_layer x 2 (K and V) x n_head_kv x head_dim x n_ctx x bytes per element.
uint64_t KvCacheBytes(const ModelShape& shape, uint64_t n_ctx, GgmlType kv_type);

// Compute buffers and runtime allowance (docs/plan.md):
//   logits      n_vocab x n_batch x 4
//   scores      n_head x n_ctx x n_batch x 4           (one layer's attention scores, no flash attention)
//   activations (4 n_embd + 2 n_ff) x n_batch x 4      (residual, norm, attention out, gate, up)
//   fixed       256 MiB                                (runtime, thread scratch, allocator slack)
struct OverheadBreakdown {
  uint64_t logits = 0, scores = 0, activations = 0, fixed = 0;
  uint64_t total() const { return logits + scores + activations + fixed; }
};
OverheadBreakdown RuntimeOverhead(const ModelShape& shape, uint64_t n_ctx, uint64_t n_batch);

struct PlanOptions {
  std::string type = "Q4_K_M";  // any name MakePolicy accepts
  bool pure = false;             // every quantizable tensor at `type`, no mix rules, no output rule
  uint64_t n_ctx = 8192;
  GgmlType kv_type = GgmlType::F16;
  uint64_t n_batch = 512;        // llama.cpp's default micro-batch
};

struct MemoryPlan {
  std::string model;   // preset name or path
  std::string type;    // policy name ("Q4_K_M", "Q4_0 (pure)")
  ModelShape shape;
  PlanOptions options;
  uint64_t params = 0;
  uint64_t weight_bytes = 0;
  size_t fallbacks = 0;
  uint64_t kv_bytes = 0;
  OverheadBreakdown overhead;
  double bits_per_weight() const { return params ? 8.0 * weight_bytes / static_cast<double>(params) : 0.0; }
  uint64_t total() const { return weight_bytes + kv_bytes + overhead.total(); }
};
StatusOr<MemoryPlan> PlanMemory(const SourceModel& model, const PlanOptions& options);

// The textbook figure: params x bits / 8, with no block scales and no higher-precision tensors.
inline uint64_t PureWeightBytes(uint64_t params, double bits) {
  return static_cast<uint64_t>(static_cast<double>(params) * bits / 8.0 + 0.5);
}

// Where a plan has to fit. Capacities are binary (GiB): memory parts come in powers of two, and a
// "24 GB" GPU has 24 GiB. usable_fraction: the share a model may take (the OS, the driver or the
// display need the rest).
struct Device {
  std::string name;
  uint64_t capacity = 0;
  double usable_fraction = 1.0;
  std::string note;
  uint64_t usable() const { return static_cast<uint64_t>(static_cast<double>(capacity) * usable_fraction); }
};
const std::vector<Device>& Devices();
inline bool Fits(uint64_t total, const Device& d) { return total <= d.usable(); }

// The types --compare sweeps, most bits first.
const std::vector<std::string>& CompareTypes();
// Every preset x CompareTypes() plan, whether it fits or not, sorted by params then bits per weight.
StatusOr<std::vector<MemoryPlan>> PlanAllPresets(const PlanOptions& base);

}  // namespace qforge
