// qforge convert INPUT -o OUT.gguf --outtype f32|f16|bf16
#include <fmt/format.h>

#include "commands.h"
#include "progress.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/convert.h"

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
  if (!type || (*type != GgmlType::F32 && *type != GgmlType::F16 && *type != GgmlType::BF16)) {
    return ReportError(Status::Error(fmt::format("--outtype '{}' is not one of f32, f16, bf16", args.outtype)));
  }
  OpenOptions open;
  open.tokenizer = args.tokenizer;
  auto model = OpenModelSource(args.input, open);
  if (!model.ok()) return ReportError(model.status());

  ProgressBar bar("convert", model->tensors.size(), args.progress || StderrIsTerminal());
  ConvertOptions options;
  options.outtype = *type;
  options.progress = [&bar](size_t done, size_t, uint64_t, const std::string& name) { bar.Update(done, name); };
  auto report = ConvertToGguf(*model, args.output, options);
  bar.Finish();
  if (!report.ok()) return ReportError(report.status());
  fmt::print("converted {} ({}) -> {}: {} tensors, {} parameters, {} bytes, weights {}\n", args.input,
             model->format, args.output, report->tensors, report->params, report->file_bytes,
             GgmlTypeName(*type));
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
