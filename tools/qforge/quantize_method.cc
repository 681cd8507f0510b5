// The calibrated methods of `qforge quantize` (see quantize_method.h).
#include "quantize_method.h"

#include <filesystem>

#include <fmt/format.h>

#include "qforge/pipeline/calibrated_encoder.h"
#include "qforge/runtime/tokenizer.h"

namespace qforge::cli {
namespace {

class CalibratedSession : public MethodSession {
 public:
  CalibratedSession(std::unique_ptr<CalibratedEncoder> encoder, int blocks, ProgressMode mode)
      : encoder_(std::move(encoder)), bar_("calibrate+quantize", static_cast<uint64_t>(blocks), mode, "blocks"),
        quiet_(mode == ProgressMode::kOff) {}

  ~CalibratedSession() override {
    bar_.Finish();
    if (quiet_) return;
    for (const BlockReport& r : encoder_->reports()) {
      if (r.awq.empty() && r.notes.empty()) continue;
      std::string line = fmt::format("block {}:", r.layer);
      for (const auto& g : r.awq) {
        line += fmt::format(" {} α={:.2f} err/rtn={:.3f}", g.name, g.alpha,
                            g.error_rtn > 0 ? g.error / g.error_rtn : 1.0);
      }
      for (const auto& n : r.notes) line += " [" + n + "]";
      fmt::print(stderr, "{}\n", line);
    }
  }

  CalibratedEncoder* encoder() { return encoder_.get(); }
  ProgressBar& bar() { return bar_; }

 private:
  std::unique_ptr<CalibratedEncoder> encoder_;
  ProgressBar bar_;
  bool quiet_;
};

}  // namespace

void AddMethodOptions(CLI::App* cmd, MethodArgs* args) {
  cmd->add_option("--method", args->method,
                  "rtn (round to nearest), imatrix (RTN weighted by Σx² per column), gptq, awq (then RTN), "
                  "awq+gptq; all but rtn need --calib")
      ->check(CLI::IsMember({"rtn", "imatrix", "gptq", "awq", "awq+gptq"}))
      ->capture_default_str();
  cmd->add_option("--calib", args->calib.file, "Calibration text (UTF-8); chunks are drawn evenly across it");
  cmd->add_option("--calib-tokens", args->calib.tokens, "Calibration tokens in total")->capture_default_str();
  cmd->add_option("--calib-ctx", args->calib.ctx, "Tokens per calibration chunk (each starts with BOS)")
      ->capture_default_str();
  cmd->add_option("--damp", args->damp, "GPTQ damping: fraction of the mean Hessian diagonal")->capture_default_str();
  cmd->add_flag("--act-order", args->act_order, "GPTQ: quantize blocks in order of decreasing Hessian diagonal");
  cmd->add_option("--awq-grid", args->awq_grid, "AWQ: grid steps for the exponent α in [0, 1)")->capture_default_str();
}

StatusOr<std::unique_ptr<MethodSession>> PrepareMethod(const MethodArgs& args, const SourceModel& model,
                                                       const Policy& policy, ProgressMode progress,
                                                       QuantizeOptions* options) {
  QF_ASSIGN_OR_RETURN(QuantMethod method, ParseQuantMethod(args.method));
  if (method == QuantMethod::kRtn) {
    if (!args.calib.file.empty()) return Status::Error("--calib is only used by --method imatrix|gptq|awq|awq+gptq");
    return std::unique_ptr<MethodSession>(new MethodSession());
  }
  if (args.calib.file.empty()) return Status::Error(fmt::format("--method {} needs --calib FILE", args.method));
  if (args.awq_grid < 1 || args.awq_grid > 1000) return Status::Error("--awq-grid must be in [1, 1000]");
  if (!(args.damp > 0) || args.damp > 10) return Status::Error("--damp must be in (0, 10]");
  QF_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::FromMetadata(model.metadata));
  QF_ASSIGN_OR_RETURN(auto chunks, LoadCalibrationChunks(tokenizer, args.calib));
  QF_ASSIGN_OR_RETURN(QuantizeReport plan, PlanQuantization(model, policy));

  CalibratedOptions copt;
  copt.method = method;
  copt.threads = options->threads;
  copt.gptq.damp = args.damp;
  copt.gptq.act_order = args.act_order;
  copt.awq.grid = args.awq_grid;
  const size_t n_chunks = chunks.size();
  QF_ASSIGN_OR_RETURN(auto encoder, CalibratedEncoder::Create(model, std::move(plan.plan), std::move(chunks), copt));
  QF_ASSIGN_OR_RETURN(BlockShape shape, ReadBlockShape(model));
  auto session = std::make_unique<CalibratedSession>(std::move(encoder), shape.n_layer, progress);
  CalibratedSession* s = session.get();
  // One bar per block (the blocks are where the time goes) instead of the per-tensor bar.
  options->progress = nullptr;
  s->encoder()->SetBlockCallback([s](int done, int total) { s->bar().Update(static_cast<uint64_t>(done),
                                                                              fmt::format("block {}/{}", done, total)); });
  options->encoder = s->encoder();
  options->extra_metadata.emplace_back("quantize.method", MetaValue::String(args.method));
  options->extra_metadata.emplace_back("quantize.calib.file",
                                       MetaValue::String(std::filesystem::path(args.calib.file).filename().string()));
  options->extra_metadata.emplace_back("quantize.calib.chunks", MetaValue::U32(static_cast<uint32_t>(n_chunks)));
  options->extra_metadata.emplace_back("quantize.calib.ctx", MetaValue::U32(static_cast<uint32_t>(args.calib.ctx)));
  options->extra_metadata.emplace_back("quantize.calib.tokens", MetaValue::U64(static_cast<uint64_t>(s->encoder()->tokens())));
  if (method == QuantMethod::kGptq || method == QuantMethod::kAwqGptq) {
    options->extra_metadata.emplace_back("quantize.gptq.damp", MetaValue::F32(static_cast<float>(args.damp)));
    options->extra_metadata.emplace_back("quantize.gptq.act_order", MetaValue::Bool(args.act_order));
  }
  if (method == QuantMethod::kAwq || method == QuantMethod::kAwqGptq) {
    options->extra_metadata.emplace_back("quantize.awq.grid", MetaValue::U32(static_cast<uint32_t>(args.awq_grid)));
  }
  return std::unique_ptr<MethodSession>(std::move(session));
}

}  // namespace qforge::cli
