// qforge plan [MODEL_OR_DIR] [--preset NAME] [--type T] [--ctx N] [--kv-type f16] [--batch N] [--pure]
//             [--compare BUDGET] [--list-presets] [--json]
// Memory needed to run a model: weights (exact, from the quantization policy), KV cache and compute
// buffers, and which devices it fits. Formulas: docs/plan.md.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "qforge/algo/policy.h"
#include "qforge/formats/model_source.h"
#include "qforge/plan/memory_plan.h"

namespace qforge::cli {
namespace {

struct PlanArgs {
  std::string input;
  std::string preset;
  std::string type = "Q4_K_M";
  uint64_t n_ctx = 8192;
  std::string kv_type = "f16";
  uint64_t n_batch = 512;
  std::string compare;
  bool pure = false;
  bool list_presets = false;
  bool json = false;
};

double Gb(uint64_t b) { return b / 1e9; }
double GiB(uint64_t b) { return b / double(1ull << 30); }

nlohmann::json PlanJson(const MemoryPlan& p) {
  const auto& s = p.shape;
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& d : Devices()) {
    devices.push_back({{"name", d.name}, {"capacity_bytes", d.capacity}, {"usable_fraction", d.usable_fraction},
                       {"usable_bytes", d.usable()}, {"fits", Fits(p.total(), d)}});
  }
  return {{"model", p.model},
          {"type", p.type},
          {"shape", {{"n_embd", s.n_embd}, {"n_ff", s.n_ff}, {"n_layer", s.n_layer}, {"n_head", s.n_head},
                     {"n_head_kv", s.n_head_kv}, {"head_dim", s.head_dim}, {"n_vocab", s.n_vocab}}},
          {"n_ctx", p.options.n_ctx},
          {"kv_type", std::string(GgmlTypeName(p.options.kv_type))},
          {"n_batch", p.options.n_batch},
          {"params", p.params},
          {"bits_per_weight", p.bits_per_weight()},
          {"fallbacks", p.fallbacks},
          {"bytes", {{"weights", p.weight_bytes}, {"kv_cache", p.kv_bytes}, {"logits", p.overhead.logits},
                     {"attention_scores", p.overhead.scores}, {"activations", p.overhead.activations},
                     {"runtime_fixed", p.overhead.fixed}, {"total", p.total()}}},
          {"devices", devices}};
}

void PrintPlan(const MemoryPlan& p) {
  const auto& s = p.shape;
  fmt::print("model: {}  (n_layer {}, n_embd {}, n_ff {}, n_head {}, n_head_kv {}, head_dim {}, n_vocab {})\n",
             p.model, s.n_layer, s.n_embd, s.n_ff, s.n_head, s.n_head_kv, s.head_dim, s.n_vocab);
  fmt::print("type {}, context {} tokens, KV cache {}, batch {}\n\n", p.type, p.options.n_ctx,
             GgmlTypeName(p.options.kv_type), p.options.n_batch);
  const auto row = [](const std::string& what, uint64_t b) {
    fmt::print("  {:<52} {:>16} {:>9.2f} GB {:>9.2f} GiB\n", what, b, Gb(b), GiB(b));
  };
  fmt::print("  {:<52} {:>16} {:>12} {:>13}\n", "component", "bytes", "GB", "GiB");
  const std::string params = p.params >= 1e9 ? fmt::format("{:.2f} B", p.params / 1e9)
                                             : fmt::format("{:.3f} M", p.params / 1e6);
  row(fmt::format("weights ({} params, {:.3f} bits/weight{})", params, p.bits_per_weight(),
                  p.fallbacks ? fmt::format(", {} fallbacks", p.fallbacks) : ""),
      p.weight_bytes);
  row(fmt::format("KV cache ({} x 2 x {} x {} x {} ctx, {})", s.n_layer, s.n_head_kv, s.head_dim, p.options.n_ctx,
                  GgmlTypeName(p.options.kv_type)),
      p.kv_bytes);
  row(fmt::format("logits ({} vocab x {} batch x 4 B)", s.n_vocab, p.options.n_batch), p.overhead.logits);
  row(fmt::format("attention scores ({} heads x {} ctx x {} x 4 B)", s.n_head, p.options.n_ctx, p.options.n_batch),
      p.overhead.scores);
  row(fmt::format("activations ((4x{} + 2x{}) x {} x 4 B)", s.n_embd, s.n_ff, p.options.n_batch),
      p.overhead.activations);
  row("runtime allowance (fixed 256 MiB)", p.overhead.fixed);
  row("total", p.total());
  fmt::print("\n  {:<30} {:>10} {:>8} {:>12}  {}\n", "device", "capacity", "usable", "usable", "fits");
  for (const auto& d : Devices()) {
    fmt::print("  {:<30} {:>6.0f} GiB {:>7.0f}% {:>8.1f} GiB  {}\n", d.name, GiB(d.capacity),
               100 * d.usable_fraction, GiB(d.usable()),
               Fits(p.total(), d) ? "yes" : fmt::format("no (short {:.1f} GiB)", GiB(p.total() - d.usable())));
  }
}

int RunCompare(const PlanArgs& args, const PlanOptions& base, const SourceModel* model) {
  auto budget = ParseSize(args.compare);
  if (!budget.ok()) return ReportError(budget.status());
  std::vector<MemoryPlan> plans;
  if (model != nullptr) {
    for (const auto& type : CompareTypes()) {
      PlanOptions o = base;
      o.type = type;
      auto p = PlanMemory(*model, o);
      if (!p.ok()) return ReportError(p.status());
      plans.push_back(std::move(*p));
    }
  } else {
    auto all = PlanAllPresets(base);
    if (!all.ok()) return ReportError(all.status());
    plans = std::move(*all);
  }
  std::vector<const MemoryPlan*> fit;
  for (const auto& p : plans)
    if (p.total() <= *budget) fit.push_back(&p);
  if (args.json) {
    nlohmann::json j = {{"budget_bytes", *budget}, {"n_ctx", base.n_ctx},
                        {"kv_type", std::string(GgmlTypeName(base.kv_type))}, {"n_batch", base.n_batch},
                        {"considered", plans.size()}, {"fits", nlohmann::json::array()}};
    for (const auto* p : fit) {
      j["fits"].push_back({{"model", p->model}, {"type", p->type}, {"params", p->params},
                           {"bits_per_weight", p->bits_per_weight()}, {"weights_bytes", p->weight_bytes},
                           {"kv_cache_bytes", p->kv_bytes}, {"overhead_bytes", p->overhead.total()},
                           {"total_bytes", p->total()}});
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("budget {} = {:.2f} GB ({:.2f} GiB); context {}, KV {}, batch {}: {} of {} combinations fit\n\n",
             args.compare, Gb(*budget), GiB(*budget), base.n_ctx, GgmlTypeName(base.kv_type), base.n_batch,
             fit.size(), plans.size());
  fmt::print("  {:<16} {:>8} {:<7} {:>6} {:>9} {:>8} {:>9} {:>9}\n", "model", "params", "type", "bpw", "weights",
             "KV", "overhead", "total GB");
  for (const auto* p : fit) {
    fmt::print("  {:<16} {:>7.2f}B {:<7} {:>6.3f} {:>9.2f} {:>8.2f} {:>9.2f} {:>9.2f}\n", p->model, p->params / 1e9,
               p->type, p->bits_per_weight(), Gb(p->weight_bytes), Gb(p->kv_bytes), Gb(p->overhead.total()),
               Gb(p->total()));
  }
  if (fit.empty()) {
    fmt::print("  (nothing fits)\n");
  } else {
    const MemoryPlan& big = *fit.back();  // most parameters, then most bits
    fmt::print("\nmost parameters that fit: {} at {} ({:.2f} B params, {:.2f} GB total)\n", big.model, big.type,
               big.params / 1e9, Gb(big.total()));
  }
  return 0;
}

int RunPlan(const PlanArgs& args) {
  if (args.list_presets) {
    nlohmann::json j = nlohmann::json::array();
    if (!args.json) {
      fmt::print("{:<16} {:>6} {:>6} {:>7} {:>6} {:>9} {:>7} {:>5} {:>5}\n", "preset", "n_embd", "n_ff", "n_layer",
                 "n_head", "n_head_kv", "n_vocab", "tied", "bias");
    }
    for (const auto& p : Presets()) {
      if (args.json) {
        j.push_back({{"name", p.name}, {"n_embd", p.n_embd}, {"n_ff", p.n_ff}, {"n_layer", p.n_layer},
                     {"n_head", p.n_head}, {"n_head_kv", p.n_head_kv}, {"n_vocab", p.n_vocab}, {"tied", p.tied},
                     {"qkv_bias", p.qkv_bias}});
      } else {
        fmt::print("{:<16} {:>6} {:>6} {:>7} {:>6} {:>9} {:>7} {:>5} {:>5}\n", p.name, p.n_embd, p.n_ff, p.n_layer,
                   p.n_head, p.n_head_kv, p.n_vocab, p.tied ? "yes" : "no", p.qkv_bias ? "qkv" : "-");
      }
    }
    if (args.json) fmt::print("{}\n", j.dump(2));
    return 0;
  }
  PlanOptions options;
  options.type = args.type;
  options.pure = args.pure;
  options.n_ctx = args.n_ctx;
  options.n_batch = args.n_batch;
  auto kv = GgmlTypeFromName(args.kv_type);
  if (!kv) return ReportError(Status::Error(fmt::format("--kv-type '{}': unknown type", args.kv_type)));
  options.kv_type = *kv;
  if (auto s = KvBytesPerElement(*kv); !s.ok()) return ReportError(s.status());

  std::optional<SourceModel> model;
  if (!args.input.empty() && !args.preset.empty()) {
    return ReportError(Status::Error("give either a model path or --preset, not both"));
  }
  if (!args.preset.empty()) {
    const ModelPreset* p = FindPreset(args.preset);
    if (p == nullptr) {
      std::string names;
      for (const auto& q : Presets()) names += (names.empty() ? "" : ", ") + q.name;
      return ReportError(Status::Error(fmt::format("unknown preset '{}' (known: {})", args.preset, names)));
    }
    model = SynthesizeModel(*p);
  } else if (!args.input.empty()) {
    auto m = OpenModelSource(args.input);
    if (!m.ok()) return ReportError(m.status());
    model = std::move(*m);
  }
  if (!args.compare.empty()) return RunCompare(args, options, model ? &*model : nullptr);
  if (!model) return ReportError(Status::Error("give a model path, --preset NAME, --compare BUDGET or --list-presets"));
  auto plan = PlanMemory(*model, options);
  if (!plan.ok()) return ReportError(plan.status());
  if (args.json) {
    fmt::print("{}\n", PlanJson(*plan).dump(2));
  } else {
    PrintPlan(*plan);
  }
  return 0;
}

}  // namespace

void RegisterPlan(CLI::App& app, CommandRegistry& reg) {
  auto args = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand("plan", "Memory needed for a model at a type and context length, and what fits");
  cmd->add_option("model", args->input, "GGUF file, llama2.c checkpoint or Hugging Face folder (or use --preset)");
  cmd->add_option("--preset", args->preset, "A published configuration (see --list-presets), e.g. Llama-3-8B");
  std::string names;
  for (const auto& n : PolicyNames()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("--type", args->type, "Weight type or mix: " + names)->capture_default_str();
  cmd->add_flag("--pure", args->pure, "Every quantizable tensor at --type (no mix rules, no Q6_K output)");
  cmd->add_option("-c,--ctx", args->n_ctx, "Context length in tokens")->capture_default_str();
  cmd->add_option("--kv-type", args->kv_type, "KV cache element type: f16, bf16, f32, q8_0, q4_0")
      ->capture_default_str();
  cmd->add_option("-b,--batch", args->n_batch, "Tokens per forward pass (llama.cpp n_ubatch)")->capture_default_str();
  cmd->add_option("--compare", args->compare,
                  "Memory budget (24GB = 24e9 B, 24GiB = 24 x 2^30 B): list every preset x type that fits");
  cmd->add_flag("--list-presets", args->list_presets, "Print the built-in model configurations");
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->callback([&reg, args] { reg.Set([args] { return RunPlan(*args); }); });
}

}  // namespace qforge::cli
