// Memory plan = weights (exact, from the quantization policy) + KV cache + compute buffers, plus the size
// parser, the device table and the preset x type sweep behind `qforge plan --compare`.
#include "qforge/plan/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "qforge/algo/policy.h"
#include "qforge/pipeline/quantize.h"

namespace qforge {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kMiB = 1ull << 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

StatusOr<uint64_t> ParseSize(std::string_view text) {
  const std::string s = Lower(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return Status::Error(fmt::format("size '{}': expected a number, e.g. 24GB, 24GiB or 512MB", text));
  double value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + i, value);
  if (ec != std::errc() || ptr != s.data() + i) return Status::Error(fmt::format("size '{}': bad number", text));
  std::string unit = s.substr(i);
  if (!unit.empty() && unit[0] == ' ') unit.erase(0, 1);
  struct Unit {
    const char* name;
    double scale;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},          {"b", 1},
      {"k", 1e3},       {"kb", 1e3},    {"kib", 1024.0},
      {"m", 1e6},       {"mb", 1e6},    {"mib", 1048576.0},
      {"g", 1e9},       {"gb", 1e9},    {"gib", 1073741824.0},
      {"t", 1e12},      {"tb", 1e12},   {"tib", 1099511627776.0},
  };
  for (const auto& u : kUnits) {
    if (unit != u.name) continue;
    const double bytes = value * u.scale;
    if (!(bytes < 1.8e19)) return Status::Error(fmt::format("size '{}' is too large", text));
    return static_cast<uint64_t>(std::llround(bytes));
  }
  return Status::Error(fmt::format("size '{}': unknown unit '{}' (use B, KB, MB, GB, TB or KiB, MiB, GiB, TiB)",
                                   text, text.substr(std::min(text.size(), i + (s.size() > i && s[i] == ' ')))));
}

std::string FormatSize(uint64_t bytes) {
  if (bytes < 1000000) return fmt::format("{} B", bytes);
  if (bytes < 1000000000) return fmt::format("{:.1f} MB ({:.1f} MiB)", bytes / 1e6, bytes / double(kMiB));
  return fmt::format("{:.2f} GB ({:.2f} GiB)", bytes / 1e9, bytes / double(kGiB));
}

StatusOr<ModelShape> ShapeFromModel(const SourceModel& model) {
  const std::string arch = model.metadata.GetString("general.architecture").value_or("llama");
  const auto key = [&](const char* k, int64_t fallback) {
    return static_cast<int>(model.metadata.GetInt(arch + k).value_or(fallback));
  };
  ModelShape s;
  const SourceTensor* embd = model.FindTensor("token_embd.weight");
  const SourceTensor* up = model.FindTensor("blk.0.ffn_up.weight");
  int n_layer = 0;
  for (const auto& t : model.tensors) {
    int layer = -1;
    if (std::sscanf(t.name.c_str(), "blk.%d.", &layer) == 1) n_layer = std::max(n_layer, layer + 1);
  }
  s.n_embd = key(".embedding_length", embd && embd->ne.size() == 2 ? embd->ne[0] : 0);
  s.n_vocab = key(".vocab_size", embd && embd->ne.size() == 2 ? embd->ne[1] : 0);
  s.n_ff = key(".feed_forward_length", up && up->ne.size() == 2 ? up->ne[1] : 0);
  s.n_layer = key(".block_count", n_layer);
  s.n_head = key(".attention.head_count", 0);
  s.n_head_kv = key(".attention.head_count_kv", s.n_head);
  if (s.n_embd <= 0 || s.n_layer <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.n_vocab <= 0) {
    return Status::Error(fmt::format("{}: cannot tell the model's shape (n_embd {}, n_layer {}, n_head {}, "
                                     "n_head_kv {}, n_vocab {}); {}.* metadata is missing",
                                     model.path, s.n_embd, s.n_layer, s.n_head, s.n_head_kv, s.n_vocab, arch));
  }
  s.head_dim = key(".attention.key_length", s.n_embd / s.n_head);
  return s;
}

StatusOr<double> KvBytesPerElement(GgmlType kv_type) {
  switch (kv_type) {
    case GgmlType::F32: return 4.0;
    case GgmlType::F16: case GgmlType::BF16: return 2.0;
    case GgmlType::Q8_0: return 34.0 / 32.0;
    case GgmlType::Q4_0: return 18.0 / 32.0;
    default:
      return Status::Error(fmt::format("KV cache type {} is not supported (f32, f16, bf16, q8_0, q4_0)",
                                       GgmlTypeName(kv_type)));
  }
}

uint64_t KvCacheBytes(const ModelShape& s, uint64_t n_ctx, GgmlType kv_type) {
  const GgmlTypeLayout layout = GgmlLayout(kv_type);
  // Rows of head_dim x n_head_kv elements per token and layer, for K and for V; whole blocks only.
  const uint64_t row = static_cast<uint64_t>(s.n_head_kv) * s.head_dim;
  const uint64_t row_bytes = (row + layout.block_size - 1) / layout.block_size * layout.type_size;
  return static_cast<uint64_t>(s.n_layer) * 2 * row_bytes * n_ctx;
}

OverheadBreakdown RuntimeOverhead(const ModelShape& s, uint64_t n_ctx, uint64_t n_batch) {
  OverheadBreakdown o;
  o.logits = static_cast<uint64_t>(s.n_vocab) * n_batch * 4;
  o.scores = static_cast<uint64_t>(s.n_head) * n_ctx * n_batch * 4;
  o.activations = (4ull * s.n_embd + 2ull * s.n_ff) * n_batch * 4;
  o.fixed = 256 * kMiB;
  return o;
}

StatusOr<MemoryPlan> PlanMemory(const SourceModel& model, const PlanOptions& options) {
  MemoryPlan plan;
  plan.model = model.path;
  plan.options = options;
  QF_ASSIGN_OR_RETURN(plan.shape, ShapeFromModel(model));
  QF_ASSIGN_OR_RETURN(Policy policy, MakePolicy(options.type, ModelFactsFromSource(model)));
  if (options.pure) policy.rules.clear();
  plan.type = options.pure ? policy.name + " (pure)" : policy.name;
  QF_ASSIGN_OR_RETURN(QuantizeReport report, PlanQuantization(model, policy));
  plan.params = report.params;
  plan.weight_bytes = report.tensor_bytes;
  plan.fallbacks = report.fallbacks;
  QF_RETURN_IF_ERROR(KvBytesPerElement(options.kv_type).status());
  plan.kv_bytes = KvCacheBytes(plan.shape, options.n_ctx, options.kv_type);
  plan.overhead = RuntimeOverhead(plan.shape, options.n_ctx, options.n_batch);
  return plan;
}

const std::vector<Device>& Devices() {
  static const std::vector<Device> kDevices = {
      {"8 GB phone", 8 * kGiB, 0.50, "Android/iOS stop an app well before all RAM is used"},
      {"16 GB laptop", 16 * kGiB, 0.75, "system RAM; the OS, browser and desktop keep the rest"},
      {"24 GB GPU (RTX 3090/4090)", 24 * kGiB, 0.95, "VRAM minus CUDA context and driver (~1 GiB)"},
      {"48 GB GPU (A6000/L40S)", 48 * kGiB, 0.95, "VRAM minus CUDA context and driver"},
      {"80 GB GPU (A100/H100)", 80 * kGiB, 0.95, "VRAM minus CUDA context and driver"},
      {"Mac Studio 192 GB", 192 * kGiB, 0.75, "unified memory; macOS caps GPU working set at ~75%"},
  };
  return kDevices;
}

const std::vector<std::string>& CompareTypes() {
  static const std::vector<std::string> kTypes = {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M",
                                                  "Q2_K"};
  return kTypes;
}

StatusOr<std::vector<MemoryPlan>> PlanAllPresets(const PlanOptions& base) {
  std::vector<MemoryPlan> plans;
  for (const auto& preset : Presets()) {
    const SourceModel model = SynthesizeModel(preset);
    for (const auto& type : CompareTypes()) {
      PlanOptions o = base;
      o.type = type;
      QF_ASSIGN_OR_RETURN(MemoryPlan p, PlanMemory(model, o));
      plans.push_back(std::move(p));
    }
  }
  std::stable_sort(plans.begin(), plans.end(), [](const MemoryPlan& a, const MemoryPlan& b) {
    if (a.params != b.params) return a.params < b.params;
    return a.bits_per_weight() < b.bits_per_weight();
  });
  return plans;
}

}  // namespace qforge
