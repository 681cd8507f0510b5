// qforge quantize INPUT OUTPUT --type T [--tensor-type PATTERN=TYPE]... [--dry-run] [-t N]
#include <cctype>

#include <fmt/format.h>

#include "commands.h"
#include "progress.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/quantize.h"
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
  int threads = 0;
};

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

void PrintSummary(const QuantizeReport& report) {
  if (report.fallbacks > 0) {
    fmt::print("{} tensor(s) fell back to another type:\n", report.fallbacks);
    for (const auto& c : report.plan)
      if (c.fallback) fmt::print("  {}: {} -> {}\n", c.name, GgmlTypeName(c.wanted), GgmlTypeName(c.type));
  }
  fmt::print("{} parameters, {} bytes of tensor data, {:.4f} bits per weight (fallbacks included)\n", report.params,
             report.tensor_bytes, report.bits_per_weight());
}

// --type int...: plain integer schemes written to safetensors with their scales (pipeline/quantize_int.h).
int RunQuantizeInt(const QuantizeArgs& args) {
  auto scheme = ParseIntScheme(args.type);
  if (!scheme.ok()) return ReportError(scheme.status());
  if (args.dry_run || !args.overrides.empty())
    return ReportError(Status::Error("--dry-run and --tensor-type are not supported for integer schemes"));
  if (args.output.empty()) return ReportError(Status::Error("an OUTPUT path (.safetensors) is required"));
  auto model = OpenModelSource(args.input, OpenOptions{args.tokenizer});
  if (!model.ok()) return ReportError(model.status());
  auto report = QuantizeToIntSafetensors(*model, *scheme, args.output);
  if (!report.ok()) return ReportError(report.status());
  fmt::print("quantized {} -> {} as {}: {} bytes ({} bytes of tensor data)\n", args.input, args.output, scheme->name,
             report->file_bytes, report->tensor_bytes);
  fmt::print("{} parameters, {} quantized: {:.4f} bits per quantized weight, {:.4f} bits per weight overall\n",
             report->params, report->quantized_params, report->quantized_bits_per_weight(), report->bits_per_weight());
  return 0;
}

int RunQuantize(const QuantizeArgs& args) {
  std::string head = args.type.substr(0, 3);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head == "int") return RunQuantizeInt(args);
  auto model = OpenModelSource(args.input, OpenOptions{args.tokenizer});
  if (!model.ok()) return ReportError(model.status());
  auto policy = MakePolicy(args.type, ModelFactsFromSource(*model));
  if (!policy.ok()) return ReportError(policy.status());
  for (const auto& spec : args.overrides) {
    Status st = AddUserOverride(&*policy, spec);
    if (!st.ok()) return ReportError(st);
  }
  if (args.dry_run) {
    auto report = PlanQuantization(*model, *policy);
    if (!report.ok()) return ReportError(report.status());
    PrintPlan(*policy, *report);
    PrintSummary(*report);
    return 0;
  }
  if (args.output.empty()) return ReportError(Status::Error("an OUTPUT path is required (or use --dry-run)"));
  ProgressBar bar("quantize", model->tensors.size(), args.progress || StderrIsTerminal());
  QuantizeOptions options;
  options.threads = args.threads > 0 ? args.threads : DefaultThreads();
  options.progress = [&bar](size_t done, size_t, const std::string& name) { bar.Update(done, name); };
  auto report = QuantizeToGguf(*model, *policy, args.output, options);
  bar.Finish();
  if (!report.ok()) return ReportError(report.status());
  fmt::print("quantized {} -> {} as {}: {} bytes\n", args.input, args.output, policy->name, report->file_bytes);
  PrintSummary(*report);
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
  cmd->add_option("-t,--threads", args->threads, "Threads for encoding (default: all cores)");
  cmd->add_option("--tokenizer", args->tokenizer, "llama2.c tokenizer.bin (default: found beside the checkpoint)");
  cmd->add_flag("--progress", args->progress, "Show the progress bar even when stderr is not a terminal");
  cmd->callback([&reg, args] { reg.Set([args] { return RunQuantize(*args); }); });
}

}  // namespace qforge::cli
