// qforge quantize INPUT OUTPUT --type T [--tensor-type PATTERN=TYPE]... [--dry-run] [-t N] [--force] [--json]
//
// Layout, so options can be added without touching the rest: QuantizeArgs holds every flag,
// RegisterQuantize declares them, MakeQuantizeOptions turns them into the library's QuantizeOptions, and
// the summary (text or JSON) is printed from a QuantizeReport plus the measured time.
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"
#include "quantize_budget.h"
#include "quantize_method.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/gguf.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/quantize.h"
#include "qforge/plan/memory_plan.h"
#include "qforge/pipeline/quantize_int.h"

namespace qforge::cli {
namespace {

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::string type = "Q4_K_M";
  std::vector<std::string> overrides;
  std::string tokenizer;
  bool dry_run = false;
  bool progress = false;
  bool quiet = false;
  bool force = false;
  bool json = false;
  bool allow_nonfinite = false;
  int threads = 0;
  MethodArgs method;  // --method and calibration flags (quantize_method.cc)
  std::string imatrix;  // --imatrix FILE (ApplyImatrixFile, imatrix.cc)
  BudgetArgs budget;  // --target-bpw/--target-size/--fit (quantize_budget.cc)
};

// Bytes of the input's tensor data as stored (what quantize reads); the throughput is measured against it.
uint64_t StoredBytes(const SourceTensor& t) {
  auto bytes = GgufTensorBytes(t.type, t.ne);
  return bytes.ok() ? *bytes : t.numel() * 4;
}

uint64_t InputTensorBytes(const SourceModel& model) {
  uint64_t total = 0;
  for (const auto& t : model.tensors) total += StoredBytes(t);
  return total;
}

// Refuses to replace an existing file unless --force, and never writes over the input it is reading.
Status CheckOutputPath(const QuantizeArgs& args) {
  std::error_code ec;
  if (!std::filesystem::exists(args.output, ec)) return Status::Ok();
  if (std::filesystem::equivalent(args.input, args.output, ec))
    return Status::Error(fmt::format("{}: OUTPUT is the INPUT file; choose another path", args.output));
  if (!args.force) return Status::Error(fmt::format("{}: already exists; use --force to overwrite it", args.output));
  if (std::filesystem::is_directory(args.output, ec))
    return Status::Error(fmt::format("{}: is a directory", args.output));
  return Status::Ok();
}

struct TypeCount {
  size_t tensors = 0;
  uint64_t params = 0;
  uint64_t bytes = 0;
};

std::map<std::string, TypeCount> CountByType(const SourceModel& model, const QuantizeReport& report) {
  std::map<std::string, TypeCount> by_type;
  for (size_t i = 0; i < report.plan.size() && i < model.tensors.size(); ++i) {
    TypeCount& c = by_type[std::string(GgmlTypeName(report.plan[i].type))];
    c.tensors += 1;
    c.params += model.tensors[i].numel();
    auto bytes = GgufTensorBytes(report.plan[i].type, model.tensors[i].ne);
    c.bytes += bytes.ok() ? *bytes : 0;
  }
  return by_type;
}

void PrintPlan(const Policy& policy, const QuantizeReport& report) {
  fmt::print("policy {} (base {}), rules in order (first match wins):\n", policy.name, GgmlTypeName(policy.base));
  for (const auto& r : policy.rules) {
    fmt::print("  {:<34} layers {:<14} -> {:<7} {}\n", r.pattern, LayerSelectorName(r.layers), GgmlTypeName(r.type),
               r.why);
  }
  fmt::print("\nplan:\n");
  for (const auto& c : report.plan) {
    std::string fb = c.fallback ? fmt::format("  FALLBACK from {} (row length not a multiple of its block)",
                                              GgmlTypeName(c.wanted))
                                : "";
    fmt::print("  {:<32} {:<7} {}{}\n", c.name, GgmlTypeName(c.type), c.reason, fb);
  }
}

// What a run (or a dry run: seconds < 0) produced, for the text table and --json alike.
struct RunSummary {
  std::string input, output, type;
  uint64_t input_bytes = 0;  // input tensor data as stored
  double seconds = -1;
  int threads = 0;
};

double Mb(uint64_t bytes) { return static_cast<double>(bytes) / 1e6; }

void PrintSummary(const SourceModel& model, const QuantizeReport& report, const RunSummary& run) {
  if (report.fallbacks > 0) {
    fmt::print("{} tensor(s) fell back to another type:\n", report.fallbacks);
    for (const auto& c : report.plan)
      if (c.fallback) fmt::print("  {}: {} -> {}\n", c.name, GgmlTypeName(c.wanted), GgmlTypeName(c.type));
  }
  fmt::print("{:<8} {:>8} {:>14} {:>12} {:>7}\n", "type", "tensors", "parameters", "MB", "bpw");
  for (const auto& [name, c] : CountByType(model, report)) {
    const double bpw = c.params ? 8.0 * static_cast<double>(c.bytes) / static_cast<double>(c.params) : 0.0;
    fmt::print("{:<8} {:>8} {:>14} {:>12.2f} {:>7.3f}\n", name, c.tensors, c.params, Mb(c.bytes), bpw);
  }
  fmt::print("{:<8} {:>8} {:>14} {:>12.2f} {:>7.3f}\n", "total", report.plan.size(), report.params,
             Mb(report.tensor_bytes), report.bits_per_weight());
  fmt::print("fallbacks: {}\n", report.fallbacks);
  fmt::print("size: {:.2f} MB -> {:.2f} MB of tensor data ({:.2f}x smaller){}\n", Mb(run.input_bytes),
             Mb(report.tensor_bytes),
             report.tensor_bytes ? static_cast<double>(run.input_bytes) / static_cast<double>(report.tensor_bytes) : 0.0,
             report.file_bytes ? fmt::format(", output file {} bytes", report.file_bytes) : "");
  fmt::print("bits per weight: {:.4f} (fallbacks included)\n", report.bits_per_weight());
  if (run.seconds >= 0) {
    fmt::print("time: {:.2f} s with {} thread(s), {:.1f} MB/s of input\n", run.seconds, run.threads,
               run.seconds > 0 ? Mb(run.input_bytes) / run.seconds : 0.0);
  }
}

nlohmann::json SummaryJson(const SourceModel& model, const QuantizeReport& report, const RunSummary& run,
                           bool with_plan) {
  nlohmann::json j;
  j["input"] = run.input;
  if (!run.output.empty()) j["output"] = run.output;
  j["type"] = run.type;
  j["tensors"] = report.plan.size();
  j["params"] = report.params;
  j["input_bytes"] = run.input_bytes;
  j["tensor_bytes"] = report.tensor_bytes;
  if (report.file_bytes) j["file_bytes"] = report.file_bytes;
  j["bits_per_weight"] = report.bits_per_weight();
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [name, c] : CountByType(model, report))
    types[name] = {{"tensors", c.tensors}, {"params", c.params}, {"bytes", c.bytes}};
  j["types"] = types;
  nlohmann::json fallbacks = nlohmann::json::array();
  for (const auto& c : report.plan)
    if (c.fallback)
      fallbacks.push_back({{"name", c.name}, {"wanted", GgmlTypeName(c.wanted)}, {"type", GgmlTypeName(c.type)}});
  j["fallbacks"] = fallbacks;
  if (run.seconds >= 0) {
    j["seconds"] = run.seconds;
    j["threads"] = run.threads;
    j["mb_per_s"] = run.seconds > 0 ? Mb(run.input_bytes) / run.seconds : 0.0;
  }
  if (with_plan) {
    nlohmann::json plan = nlohmann::json::array();
    for (const auto& c : report.plan)
      plan.push_back({{"name", c.name}, {"type", GgmlTypeName(c.type)}, {"reason", c.reason}});
    j["plan"] = plan;
  }
  return j;
}

// --type int...: plain integer schemes written to safetensors with their scales (pipeline/quantize_int.h).
int RunQuantizeInt(const QuantizeArgs& args) {
  auto scheme = ParseIntScheme(args.type);
  if (!scheme.ok()) return ReportError(scheme.status());
  if (args.dry_run || !args.overrides.empty())
    return ReportError(Status::Error("--dry-run and --tensor-type are not supported for integer schemes"));
  if (args.output.empty()) return ReportError(Status::Error("an OUTPUT path (.safetensors) is required"));
  if (Status st = CheckOutputPath(args); !st.ok()) return ReportError(st);
  auto model = OpenModelSource(args.input, OpenOptions{args.tokenizer});
  if (!model.ok()) return ReportError(model.status());
  auto report = QuantizeToIntSafetensors(*model, *scheme, args.output);
  if (!report.ok()) return ReportError(report.status());
  if (args.json) {
    nlohmann::json j = {{"input", args.input},
                        {"output", args.output},
                        {"type", scheme->name},
                        {"file_bytes", report->file_bytes},
                        {"tensor_bytes", report->tensor_bytes},
                        {"params", report->params},
                        {"quantized_params", report->quantized_params},
                        {"bits_per_weight", report->bits_per_weight()},
                        {"quantized_bits_per_weight", report->quantized_bits_per_weight()}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("quantized {} -> {} as {}: {} bytes ({} bytes of tensor data)\n", args.input, args.output, scheme->name,
             report->file_bytes, report->tensor_bytes);
  fmt::print("{} parameters, {} quantized: {:.4f} bits per quantized weight, {:.4f} bits per weight overall\n",
             report->params, report->quantized_params, report->quantized_bits_per_weight(), report->bits_per_weight());
  return 0;
}

// Flags -> library options. Calibrated methods and importance maps plug in here.
QuantizeOptions MakeQuantizeOptions(const QuantizeArgs& args) {
  QuantizeOptions options;
  options.threads = args.threads > 0 ? args.threads : DefaultThreads();
  options.allow_nonfinite = args.allow_nonfinite;
  return options;
}

int RunQuantize(const QuantizeArgs& args) {
  std::string head = args.type.substr(0, 3);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head == "int") return RunQuantizeInt(args);
  if (!args.dry_run) {
    if (args.output.empty()) return ReportError(Status::Error("an OUTPUT path is required (or use --dry-run)"));
    // Before any work: a refused overwrite should not cost a full quantization.
    if (Status st = CheckOutputPath(args); !st.ok()) return ReportError(st);
  }
  // A size budget on a preset (plan's configurations, no file of that name): plan only, see quantize_budget.
  auto model = BudgetRequested(args.budget) && FindPreset(args.input) && !std::filesystem::exists(args.input)
                   ? StatusOr<SourceModel>(SynthesizeModel(*FindPreset(args.input)))
                   : OpenModelSource(args.input, OpenOptions{args.tokenizer});
  if (!model.ok()) return ReportError(model.status());
  auto policy = MakePolicy(args.type, ModelFactsFromSource(*model));
  if (!policy.ok()) return ReportError(policy.status());
  for (const auto& spec : args.overrides) {
    Status st = AddUserOverride(&*policy, spec);
    if (!st.ok()) return ReportError(st);
  }
  // A size budget replaces the policy with one rule per tensor (quantize_budget.cc); --method then
  // encodes with those types. The reserve covers the keys PrepareMethod adds to the header later.
  std::optional<BudgetOutcome> budget;
  QuantizeOptions options = MakeQuantizeOptions(args);
  ImportanceMap imatrix;  // --imatrix: must outlive QuantizeToGguf
  if (!args.imatrix.empty())
    if (Status st = ApplyImatrixFile(args.imatrix, *model, &imatrix, &options); !st.ok()) return ReportError(st);
  if (BudgetRequested(args.budget)) {
    const uint64_t reserve = args.method.method == "rtn" ? 0 : 512 + args.method.calib.file.size();
    auto b = ApplyBudget(args.budget, args.input, *model, args.overrides, args.dry_run, reserve, options.threads,
                         &*policy, &options);
    if (!b.ok()) return ReportError(b.status());
    if (args.dry_run) return 0;
    budget = std::move(*b);
  }
  RunSummary run{args.input, args.dry_run ? "" : args.output, policy->name, InputTensorBytes(*model)};
  if (args.dry_run) {
    auto report = PlanQuantization(*model, *policy);
    if (!report.ok()) return ReportError(report.status());
    if (args.json) {
      fmt::print("{}\n", SummaryJson(*model, *report, run, /*with_plan=*/true).dump());
      return 0;
    }
    PrintPlan(*policy, *report);
    PrintSummary(*model, *report, run);
    return 0;
  }

  // Progress counts input bytes, so the rate is MB/s and the ETA weighs big tensors by their size.
  std::vector<uint64_t> bytes_before(model->tensors.size() + 1, 0);
  for (size_t i = 0; i < model->tensors.size(); ++i) bytes_before[i + 1] = bytes_before[i] + StoredBytes(model->tensors[i]);
  ProgressBar bar("quantize", run.input_bytes, DefaultProgressMode(args.progress, args.quiet), "B");
  options.progress = [&bar, &bytes_before](size_t done, size_t, const std::string& name) {
    bar.Update(bytes_before[std::min(done, bytes_before.size() - 1)], name);
  };
  auto method = PrepareMethod(args.method, *model, *policy, DefaultProgressMode(args.progress, args.quiet), &options);
  if (!method.ok()) return ReportError(method.status());
  const auto start = std::chrono::steady_clock::now();
  auto report = QuantizeToGguf(*model, *policy, args.output, options);
  method->reset();  // ends the per-block bar and prints its summary
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.threads = options.threads;
  bar.Finish();
  if (!report.ok()) return ReportError(report.status());
  if (budget) {
    if (Status st = FinishBudget(*budget, *report); !st.ok()) return ReportError(st);
  }
  if (args.json) {
    fmt::print("{}\n", SummaryJson(*model, *report, run, /*with_plan=*/false).dump());
    return 0;
  }
  fmt::print("quantized {} -> {} as {}\n", args.input, args.output, policy->name);
  PrintSummary(*model, *report, run);
  return 0;
}

}  // namespace

void RegisterQuantize(CLI::App& app, CommandRegistry& reg) {
  auto args = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a model to a GGUF block type or a named mix (Q4_K_M, ...)");
  cmd->add_option("input", args->input, "Model: GGUF, llama2.c checkpoint or Hugging Face folder")->required();
  cmd->add_option("output", args->output, "Output GGUF path (written atomically)");
  std::string names;
  for (const auto& n : PolicyNames()) names += (names.empty() ? "" : ", ") + n;
  for (const auto& n : IntSchemeNames()) names += ", " + n + " (safetensors)";
  cmd->add_option("--type", args->type, "Target type or mix: " + names)->capture_default_str();
  cmd->add_option("--tensor-type", args->overrides,
                  "PATTERN=TYPE: tensors whose name matches the regex PATTERN get TYPE (always wins; repeatable)");
  cmd->add_flag("--dry-run", args->dry_run, "Print the rules and the per-tensor plan with sizes; write nothing");
  cmd->add_option("-t,--threads", args->threads, "Threads for encoding (default: all cores; output is identical)");
  cmd->add_option("--tokenizer", args->tokenizer, "llama2.c tokenizer.bin (default: found beside the checkpoint)");
  cmd->add_flag("-f,--force", args->force, "Overwrite OUTPUT if it exists");
  cmd->add_flag("--json", args->json, "Print the summary (or, with --dry-run, the plan) as one JSON object");
  cmd->add_flag("--allow-nonfinite", args->allow_nonfinite,
                "Quantize weights containing NaN/Inf instead of stopping with an error");
  cmd->add_flag("--progress", args->progress, "Draw the progress bar even when stderr is not a terminal");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress output");
  AddMethodOptions(cmd, &args->method);
  cmd->add_option("--imatrix", args->imatrix, "llama.cpp imatrix (.gguf or .dat): weigh each column's error by mean x²")
      ->check(CLI::ExistingFile)
      ->excludes(cmd->get_option("--method"));
  AddBudgetOptions(cmd, &args->budget);
  cmd->callback([&reg, args] { reg.Set([args] { return RunQuantize(*args); }); });
}

}  // namespace qforge::cli
