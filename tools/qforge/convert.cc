// qforge convert INPUT -o OUT.gguf --outtype f32|f16|bf16: the quantize pipeline with a float policy.
#include <fmt/format.h>

#include "commands.h"
#include "progress.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/quantize.h"

namespace qforge::cli {
namespace {

struct ConvertArgs {
  std::string input;
  std::string output;
  std::string outtype = "f16";
  std::string tokenizer;
  bool progress = false;
};

int RunConvert(const ConvertArgs& args) {
  auto type = GgmlTypeFromName(args.outtype);
  if (!type || !IsFloatGgmlType(*type)) {
    return ReportError(Status::Error(
        fmt::format("--outtype '{}' is not one of f32, f16, bf16 (block types: qforge quantize)", args.outtype)));
  }
  auto model = OpenModelSource(args.input, OpenOptions{args.tokenizer});
  if (!model.ok()) return ReportError(model.status());
  auto policy = MakePolicy(std::string(GgmlTypeName(*type)), ModelFactsFromSource(*model));
  if (!policy.ok()) return ReportError(policy.status());

  ProgressBar bar("convert", model->tensors.size(), args.progress || StderrIsTerminal());
  QuantizeOptions options;
  options.progress = [&bar](size_t done, size_t, const std::string& name) { bar.Update(done, name); };
  auto report = QuantizeToGguf(*model, *policy, args.output, options);
  bar.Finish();
  if (!report.ok()) return ReportError(report.status());
  fmt::print("converted {} ({}) -> {}: {} tensors, {} parameters, {} bytes ({:.3f} bits per weight), weights {}\n",
             args.input, model->format, args.output, report->plan.size(), report->params, report->file_bytes,
             report->bits_per_weight(), GgmlTypeName(*type));
  return 0;
}

}  // namespace

void RegisterConvert(CLI::App& app, CommandRegistry& reg) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand("convert", "Convert a model (llama2.c .bin, Hugging Face folder, GGUF) to a float GGUF");
  cmd->add_option("input", args->input, "Model: llama2.c checkpoint, Hugging Face folder or GGUF file")->required();
  cmd->add_option("-o,--output", args->output, "Output GGUF path (written atomically)")->required();
  cmd->add_option("--outtype", args->outtype, "Type of 2-D weights: f32, f16 or bf16 (norms stay f32)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", args->tokenizer,
                  "llama2.c tokenizer.bin (default: tokenizer.bin or tok<vocab>.bin beside the checkpoint)");
  cmd->add_flag("--progress", args->progress, "Show the progress bar even when stderr is not a terminal");
  cmd->callback([&reg, args] { reg.Set([args] { return RunConvert(*args); }); });
}

}  // namespace qforge::cli
