// The size-budget mode of `qforge quantize` (see quantize_budget.h).
#include "quantize_budget.h"

#include <cmath>

#include <fmt/format.h>

#include "qforge/formats/gguf.h"
#include "qforge/plan/memory_plan.h"

namespace qforge::cli {
namespace {

// The keys recorded in the output. Every value has a size fixed before the allocation (type ids, not
// names), so the header - and the file size - can be predicted exactly before the types are chosen.
void AddPlanMetadata(const BudgetOutcome& o, const std::string& measure, std::vector<std::pair<std::string, MetaValue>>* kv) {
  std::vector<MetaValue> types, damage;
  for (const auto& c : o.plan.tensors) {
    types.push_back(MetaValue::U32(static_cast<uint32_t>(c.type)));
    damage.push_back(MetaValue::F32(static_cast<float>(c.damage)));
  }
  kv->emplace_back("quantize.budget.target", MetaValue::String(o.target));
  kv->emplace_back("quantize.budget.limit_bytes", MetaValue::U64(o.plan.budget));
  kv->emplace_back("quantize.budget.measurement", MetaValue::String(measure));
  kv->emplace_back("quantize.budget.predicted_kld", MetaValue::F64(o.plan.damage));
  kv->emplace_back("quantize.budget.proven_optimal", MetaValue::Bool(o.plan.proven_optimal));
  kv->emplace_back("quantize.budget.tensor_types", MetaValue::Array(GgufValueType::U32, types));
  kv->emplace_back("quantize.budget.tensor_kld", MetaValue::Array(GgufValueType::F32, damage));
}

void PrintBudgetPlan(const BudgetOutcome& o) {
  fmt::print("budget plan ({}): {} solver, {}\n", o.target, o.plan.method,
             o.plan.proven_optimal ? "optimal for the predicted damage" : "NOT proven optimal (node limit)");
  fmt::print("  {:<32} {:<7} {:>12} {:>12}\n", "tensor", "type", "bytes", "pred. KLD");
  for (const auto& c : o.plan.tensors) {
    const char* note = c.user ? "  (--tensor-type)" : c.quantizable ? "" : "  (kept F32)";
    fmt::print("  {:<32} {:<7} {:>12} {:>12.4g}{}\n", c.name, GgmlTypeName(c.type), c.bytes, c.damage, note);
  }
  fmt::print("tensor data: {} of {} bytes allowed ({:.4f} bits per weight)\n", o.plan.bytes, o.plan.budget,
             o.plan.params ? 8.0 * static_cast<double>(o.plan.bytes) / static_cast<double>(o.plan.params) : 0.0);
  if (o.file_limit)
    fmt::print("predicted file size: {} bytes (limit {}, header {})\n", o.header_bytes + o.plan.bytes, o.file_limit,
               o.header_bytes);
  if (o.fit_memory)
    fmt::print("memory: weights {} + KV cache and overhead {} = {} of {} ({})\n", FormatSize(o.plan.bytes),
               FormatSize(o.fit_kv_overhead), FormatSize(o.plan.bytes + o.fit_kv_overhead), FormatSize(o.fit_memory),
               o.plan.bytes + o.fit_kv_overhead <= o.fit_memory ? "fits" : "DOES NOT FIT");
  fmt::print("predicted mean KLD vs the unquantized model: {:.6g}\n", o.plan.damage);
}

}  // namespace

void AddBudgetOptions(CLI::App* cmd, BudgetArgs* args) {
  auto* bpw = cmd->add_option("--target-bpw", args->target_bpw,
                              "Choose a type per tensor (measured sensitivity, exact knapsack) for this many bits per weight");
  auto* size = cmd->add_option("--target-size", args->target_size, "... so the output file has at most this size (20GB, 512MiB, bytes)");
  auto* fit = cmd->add_option("--fit", args->fit,
                              "... so weights + KV cache at --ctx + runtime overhead fit this memory (qforge plan's arithmetic)");
  bpw->excludes(size)->excludes(fit);
  size->excludes(fit);
  cmd->add_option("--ctx", args->ctx, "Context length for --fit")->capture_default_str();
  cmd->add_option("--measure", args->measure, "Sensitivity measurement from `qforge measure` (reused across budgets)");
  cmd->add_option("--budget-calib", args->calib,
                  "Calibration text to measure sensitivity now when no --measure is given (default: --calib)");
}

bool BudgetRequested(const BudgetArgs& args) {
  return args.target_bpw > 0 || !args.target_size.empty() || !args.fit.empty();
}

StatusOr<BudgetOutcome> ApplyBudget(const BudgetArgs& args, const std::string& input, const SourceModel& model,
                                    const std::vector<std::string>& overrides, bool dry_run,
                                    uint64_t method_metadata_reserve, int threads, Policy* policy,
                                    QuantizeOptions* options) {
  BudgetOutcome o;
  // The measurement: reused (and checked to belong to this model) or made now.
  Measurement m;
  std::string measure_name = args.measure;
  if (model.format == "preset") {
    // No weights to measure: size the plan with the prior (sensitivity.h); only --dry-run makes sense.
    if (!dry_run) return Status::Error("a preset has no weights: use --dry-run to see the plan that fits");
    m = PriorMeasurement(model);
    measure_name = "(prior: no weights)";
    fmt::print("preset {}: no weights, damage from the prior numel x 4^-bits (sizes exact, ranking rough)\n",
               model.path);
  } else if (!args.measure.empty()) {
    QF_ASSIGN_OR_RETURN(m, LoadMeasurement(args.measure));
    QF_RETURN_IF_ERROR(CheckMeasurementMatches(m, model, ModelFileBytes(input), args.measure));
  } else {
    if (args.calib.empty())
      return Status::Error("a size budget needs a sensitivity measurement: --measure FILE (qforge measure) or --calib TEXT");
    MeasureOptions mo;
    mo.calib_file = args.calib;
    mo.threads = threads;
    mo.progress = [](const std::string& s) { fmt::print(stderr, "measure: {}\n", s); };
    QF_ASSIGN_OR_RETURN(m, MeasureSensitivity(model, input, mo));
    measure_name = "(measured with " + args.calib + ")";
  }

  BudgetRequest req;
  req.overrides = overrides;
  uint64_t params = 0;
  for (const auto& t : model.tensors) params += t.numel();
  if (args.target_bpw > 0) {
    if (!std::isfinite(args.target_bpw) || args.target_bpw > 64)
      return Status::Error(fmt::format("--target-bpw {} is not a bit width", args.target_bpw));
    o.target = fmt::format("target-bpw {}", args.target_bpw);
    req.padded = false;
    req.tensor_bytes = static_cast<uint64_t>(std::floor(static_cast<double>(params) * args.target_bpw / 8.0));
  } else if (!args.fit.empty()) {
    QF_ASSIGN_OR_RETURN(uint64_t memory, ParseSize(args.fit));
    QF_ASSIGN_OR_RETURN(ModelShape shape, ShapeFromModel(model));
    const PlanOptions po;  // plan's defaults: F16 KV cache, 512-token micro-batch
    const uint64_t kv = KvCacheBytes(shape, args.ctx, po.kv_type);
    const uint64_t overhead = RuntimeOverhead(shape, args.ctx, po.n_batch).total();
    if (kv + overhead >= memory)
      return Status::Error(fmt::format("--fit {}: the KV cache at --ctx {} ({}) and the runtime overhead ({}) "
                                       "already need {}",
                                       args.fit, args.ctx, FormatSize(kv), FormatSize(overhead), FormatSize(kv + overhead)));
    o.target = fmt::format("fit {} ctx {}", args.fit, args.ctx);
    o.fit_memory = memory;
    o.fit_kv_overhead = kv + overhead;
    req.padded = false;  // plan counts weight bytes unpadded
    req.tensor_bytes = memory - kv - overhead;
    fmt::print("--fit {}: KV cache {} + overhead {} leave {} for the weights\n", args.fit, FormatSize(kv),
               FormatSize(overhead), FormatSize(req.tensor_bytes));
  } else {
    QF_ASSIGN_OR_RETURN(o.file_limit, ParseSize(args.target_size));
    o.target = fmt::format("target-size {}", args.target_size);
    req.padded = true;
    // The header the file will have: the model's metadata, the keys QuantizeToGguf sets, the caller's
    // keys, this plan's keys (fixed-size values: a placeholder plan has the same size) and the reserve.
    Metadata meta = model.metadata;
    SetGgufFileTypeKeys(&meta, 0, /*any_quantized=*/true);
    meta.Set("general.quantized_by", MetaValue::String("qforge 0.1.0"));
    for (const auto& [k, v] : options->extra_metadata) meta.Set(k, v);
    BudgetOutcome placeholder = o;
    placeholder.plan.tensors.resize(model.tensors.size());
    std::vector<std::pair<std::string, MetaValue>> kv;
    AddPlanMetadata(placeholder, measure_name, &kv);
    for (const auto& [k, v] : kv) meta.Set(k, v);
    o.header_bytes = GgufHeaderBytes(meta, model) + (method_metadata_reserve + 31) / 32 * 32;
    if (o.header_bytes >= o.file_limit)
      return Status::Error(fmt::format("--target-size {}: the GGUF header alone takes {} bytes", args.target_size,
                                       o.header_bytes));
    req.tensor_bytes = o.file_limit - o.header_bytes;
  }
  QF_ASSIGN_OR_RETURN(o.plan, PlanBudget(m, model, req));
  if (dry_run) {
    PrintBudgetPlan(o);
    return o;
  }
  *policy = o.plan.policy;
  AddPlanMetadata(o, measure_name, &options->extra_metadata);
  return o;
}

Status FinishBudget(const BudgetOutcome& o, const QuantizeReport& report) {
  fmt::print("budget {}: predicted mean KLD {:.6g}, {} solver{}\n", o.target, o.plan.damage, o.plan.method,
             o.plan.proven_optimal ? " (optimal for the prediction)" : " (not proven optimal)");
  if (o.file_limit) {
    fmt::print("file: {} bytes, limit {} ({:.3f}% of it)\n", report.file_bytes, o.file_limit,
               100.0 * static_cast<double>(report.file_bytes) / static_cast<double>(o.file_limit));
    if (report.file_bytes > o.file_limit)
      return Status::Error(fmt::format("the output has {} bytes, over the --target-size limit of {} (the header grew "
                                       "beyond its prediction of {} bytes)",
                                       report.file_bytes, o.file_limit, o.header_bytes));
  } else if (report.tensor_bytes > o.plan.budget) {
    return Status::Error(fmt::format("the output has {} bytes of tensor data, over the budget of {}",
                                     report.tensor_bytes, o.plan.budget));
  } else {
    fmt::print("tensor data: {} bytes, budget {} ({:.3f}% of it), {:.4f} bits per weight\n", report.tensor_bytes,
               o.plan.budget, 100.0 * static_cast<double>(report.tensor_bytes) / static_cast<double>(o.plan.budget),
               report.bits_per_weight());
  }
  return Status::Ok();
}

}  // namespace qforge::cli
