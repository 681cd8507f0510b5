// qforge measure -m MODEL --calib FILE -o measure.json: per-tensor, per-type predicted damage for size
// budgets (`qforge quantize --target-bpw/--target-size/--fit --measure measure.json`).
#include <fmt/format.h>

#include "commands.h"
#include "qforge/algo/sensitivity.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/model_source.h"

namespace qforge::cli {
namespace {

struct MeasureArgs {
  std::string model;
  std::string output;
  std::string tokenizer;
  std::vector<std::string> types;
  MeasureOptions options;
  bool quiet = false;
};

int RunMeasure(MeasureArgs args) {
  auto model = OpenModelSource(args.model, OpenOptions{args.tokenizer});
  if (!model.ok()) return ReportError(model.status());
  for (const auto& name : args.types) {
    auto t = GgmlTypeFromName(name);
    if (!t) return ReportError(Status::Error("--types: unknown type '" + name + "'"));
    args.options.candidates.push_back(*t);
  }
  if (args.options.threads <= 0) args.options.threads = DefaultThreads();
  if (!args.quiet) args.options.progress = [](const std::string& s) { fmt::print(stderr, "measure: {}\n", s); };
  auto m = MeasureSensitivity(*model, args.model, args.options);
  if (!m.ok()) return ReportError(m.status());
  if (Status st = SaveMeasurement(*m, args.output); !st.ok()) return ReportError(st);
  fmt::print("{} tensors, {} probes over {} chunks of {} tokens -> {}\n", m->tensors.size(), m->probes.size(),
             m->chunks, m->chunk_tokens, args.output);
  fmt::print("fit (leave-one-out over the probes): log-log correlation {:.3f} with per-kind scales, median "
             "|ln(pred/measured)| {:.3f} per kind, {:.3f} per tensor\n",
             m->fit_log_corr_kind, m->fit_median_abs_log_ratio_kind, m->fit_median_abs_log_ratio_tensor);
  return 0;
}

}  // namespace

void RegisterMeasure(CLI::App& app, CommandRegistry& reg) {
  auto args = std::make_shared<MeasureArgs>();
  auto* cmd = app.add_subcommand(
      "measure", "Measure each tensor's sensitivity to each candidate type (for quantize --target-bpw/--target-size/--fit)");
  cmd->add_option("-m,--model", args->model, "Model: GGUF, llama2.c checkpoint or Hugging Face folder")->required();
  cmd->add_option("--calib", args->options.calib_file, "Calibration text (UTF-8)")->required();
  cmd->add_option("-o,--output", args->output, "Measurement file (JSON, written atomically)")->required();
  cmd->add_option("--calib-tokens", args->options.calib_tokens, "Calibration tokens in total")->capture_default_str();
  cmd->add_option("--calib-ctx", args->options.calib_ctx, "Tokens per chunk")->capture_default_str();
  cmd->add_option("--probe-tensors", args->options.max_probe_tensors,
                  "Tensors whose KLD is measured directly (an even sample when the model has more)")
      ->capture_default_str();
  cmd->add_option("--types", args->types, "Candidate types (default: Q2_K..Q8_0, IQ4_XS, 32-block types, F16, F32)");
  cmd->add_option("-t,--threads", args->options.threads, "Threads (default: all cores)");
  cmd->add_option("--tokenizer", args->tokenizer, "llama2.c tokenizer.bin (default: found beside the checkpoint)");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress lines");
  cmd->callback([&reg, args] { reg.Set([args] { return RunMeasure(*args); }); });
}

}  // namespace qforge::cli
