// qforge imatrix -m MODEL.gguf --calib FILE [--calib-tokens N] [--calib-ctx N] [-t N] -o OUT(.gguf|.dat)
// Runs calibration text through the model and writes llama.cpp's importance-matrix file. Also the loader
// behind `qforge quantize --imatrix FILE` (ApplyImatrixFile).
#include <chrono>

#include <fmt/format.h>

#include "commands.h"
#include "progress.h"
#include "qforge/algo/calibration_text.h"
#include "qforge/algo/imatrix_collect.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/imatrix.h"
#include "qforge/pipeline/quantize.h"

namespace qforge::cli {
namespace {

struct ImatrixArgs {
  std::string model, output;
  CalibrationOptions calib;
  int threads = 0;
  bool progress = false;
};

int RunImatrix(const ImatrixArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  auto model = LlamaModel::Load(a.model);
  if (!model.ok()) return ReportError(model.status());
  auto tok = Tokenizer::FromMetadata(model->gguf().metadata);
  if (!tok.ok()) return ReportError(tok.status().WithFile(a.model));
  auto chunks = LoadCalibrationChunks(*tok, a.calib);
  if (!chunks.ok()) return ReportError(chunks.status());
  const int n_ctx_train = model->hparams().n_ctx_train;
  if (n_ctx_train > 0 && a.calib.ctx > n_ctx_train)
    return ReportError(Status::Error(
        fmt::format("--calib-ctx {} exceeds the model's training context {}", a.calib.ctx, n_ctx_train), a.model));

  ProgressBar bar("imatrix", chunks->size(), a.progress || StderrIsTerminal());
  ImatrixCollectOptions opt;
  opt.threads = a.threads > 0 ? a.threads : DefaultThreads();
  opt.dataset = a.calib.file;
  opt.progress = [&bar](size_t done, size_t) { bar.Update(done); };
  auto im = CollectImatrix(*model, *chunks, opt);
  bar.Finish();
  if (!im.ok()) return ReportError(im.status().WithFile(a.model));
  Status st = WriteImatrix(*im, a.output);
  if (!st.ok()) return ReportError(st);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t tokens = static_cast<int64_t>(chunks->size()) * a.calib.ctx;
  fmt::print("imatrix: {} chunks x {} tokens = {} tokens from {}\n", chunks->size(), a.calib.ctx, tokens, a.calib.file);
  fmt::print("imatrix: {} tensors -> {} ({} format)\n", im->entries.size(), a.output,
             a.output.size() >= 4 && a.output.substr(a.output.size() - 4) == ".dat" ? "legacy .dat" : "GGUF");
  fmt::print("imatrix: {:.2f} s ({:.0f} tokens/s, {} threads)\n", seconds, seconds > 0 ? tokens / seconds : 0.0,
             opt.threads);
  return 0;
}

}  // namespace

Status ApplyImatrixFile(const std::string& path, const SourceModel& model, ImportanceMap* holder,
                        QuantizeOptions* options) {
  QF_ASSIGN_OR_RETURN(Imatrix im, ReadImatrix(path));
  *holder = ToImportanceMap(im);
  std::vector<std::string> unknown;
  QF_RETURN_IF_ERROR(CheckImportanceAgainstModel(*holder, model, &unknown).WithContext("--imatrix " + path));
  // An entry the model lacks is harmless (llama.cpp ignores it too) but usually means the imatrix was
  // made for another model, so say so.
  for (const auto& name : unknown)
    fmt::print(stderr, "qforge: warning: {}: imatrix entry {} is not a tensor of {}\n", path, name, model.path);
  for (auto& kv : ImatrixProvenance(im, path)) options->extra_metadata.push_back(std::move(kv));
  options->importance = holder;
  fmt::print(stderr, "qforge: imatrix {}: {} entries ({} used), {} chunks{}\n", path, holder->size(),
             holder->size() - unknown.size(), im.chunk_count,
             im.datasets.empty() ? "" : ", dataset " + im.datasets.front());
  return Status::Ok();
}

void RegisterImatrix(CLI::App& app, CommandRegistry& reg) {
  auto args = std::make_shared<ImatrixArgs>();
  auto* cmd = app.add_subcommand("imatrix", "Compute an importance matrix (llama.cpp's format) from calibration text");
  cmd->add_option("-m,--model", args->model, "Model GGUF to run")->required();
  cmd->add_option("--calib", args->calib.file, "Calibration text (UTF-8)")->required();
  cmd->add_option("--calib-tokens", args->calib.tokens, "Tokens to use, spread over the whole file")
      ->capture_default_str();
  cmd->add_option("--calib-ctx", args->calib.ctx, "Tokens per chunk (each chunk runs from position 0)")
      ->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Output: .dat = llama.cpp's legacy format, else GGUF")->required();
  cmd->add_option("-t,--threads", args->threads, "Threads (default: all cores)");
  cmd->add_flag("--progress", args->progress, "Show the progress bar even when stderr is not a terminal");
  cmd->callback([&reg, args] { reg.Set([args] { return RunImatrix(*args); }); });
}

}  // namespace qforge::cli
