// qforge eval -m MODEL.gguf --text FILE [--ref REF.gguf | --ref-logits FILE] [--save-ref FILE] [-c N]
//             [--split-on-blank-lines] [--chunks N] [-t N] [--json]
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "commands.h"
#include "progress.h"
#include "qforge/core/parallel.h"
#include "qforge/eval/evaluate.h"
#include "qforge/eval/report.h"

namespace qforge::cli {
namespace {

struct EvalArgs {
  std::string model, text, ref, ref_logits, save_ref;
  int n_ctx = 512, chunks = -1, threads = 0, ref_k = 64;
  bool per_doc = false, json = false, progress = false;
};

StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error("cannot open the text file", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void PrintSummary(const eval::EvalSummary& s) {
  fmt::print("positions scored     : {}\n", s.count);
  fmt::print("PPL                  : {:.4f} ± {:.4f}   (mean NLL {:.5f} ± {:.5f} nats)\n", s.ppl.value, s.ppl.unc,
             s.nll.value, s.nll.unc);
  if (!s.has_ref) return;
  fmt::print("PPL(ref)             : {:.4f} ± {:.4f}\n", s.ppl_ref.value, s.ppl_ref.unc);
  fmt::print("ΔPPL = PPL - PPL(ref): {:+.4f} ± {:.4f}\n", s.ppl_diff.value, s.ppl_diff.unc);
  fmt::print("ln(PPL/PPL(ref))     : {:+.6f} ± {:.6f}   (cor {:.2f} %)\n", s.ln_ppl_ratio.value, s.ln_ppl_ratio.unc,
             100 * s.cor);
  fmt::print("mean KLD             : {:.6f} ± {:.6f}\n", s.kld.value, s.kld.unc);
  fmt::print("KLD median / 99% / 99.9% / max: {:.6f} / {:.6f} / {:.6f} / {:.6f}\n", s.kld_median, s.kld_p99,
             s.kld_p999, s.kld_max);
  if (s.kld_trunc_bound > 0)
    fmt::print("KLD top-k truncation : the full-reference mean KLD is in [{:.6f}, {:.6f}]\n", s.kld.value,
               s.kld.value + s.kld_trunc_bound);
  fmt::print("same top token       : {:.3f} ± {:.3f} %\n", 100 * s.same_top.value, 100 * s.same_top.unc);
  fmt::print("RMS Δp               : {:.3f} ± {:.3f} %\n", 100 * s.rms_dp.value, 100 * s.rms_dp.unc);
}

int RunEval(const EvalArgs& a) {
  if (!a.ref.empty() && !a.ref_logits.empty())
    return ReportError(Status::Error("give --ref or --ref-logits, not both"));
  auto model = LlamaModel::Load(a.model);
  if (!model.ok()) return ReportError(model.status());
  auto tok = Tokenizer::FromMetadata(model->gguf().metadata);
  if (!tok.ok()) return ReportError(tok.status().WithFile(a.model));
  auto text = ReadText(a.text);
  if (!text.ok()) return ReportError(text.status());
  eval::ProtocolOptions po{a.per_doc ? eval::Protocol::kDocuments : eval::Protocol::kWindows, a.n_ctx, a.chunks};
  auto plan = eval::BuildPlan(*text, *tok, po);
  if (!plan.ok()) return ReportError(plan.status().WithFile(a.text));

  std::optional<LlamaModel> ref_model;
  std::optional<eval::RefLogitsFile> ref_file;
  eval::EvalReference ref;
  if (!a.ref.empty()) {
    auto m = LlamaModel::Load(a.ref);
    if (!m.ok()) return ReportError(m.status());
    ref_model.emplace(std::move(*m));
    ref.model = &*ref_model;
  } else if (!a.ref_logits.empty()) {
    auto f = eval::RefLogitsFile::Open(a.ref_logits);
    if (!f.ok()) return ReportError(f.status());
    ref_file.emplace(std::move(*f));
    ref.logits = &*ref_file;
    ref.logits_path = a.ref_logits;
  }
  ProgressBar bar("eval", plan->positions(), a.progress || StderrIsTerminal());
  eval::EvalOptions opt;
  opt.threads = a.threads > 0 ? a.threads : DefaultThreads();
  opt.progress = [&bar](uint64_t done, uint64_t) { bar.Update(done); };
  opt.save_ref_path = a.save_ref;
  opt.save_ref_k = a.ref_k;
  const auto t0 = std::chrono::steady_clock::now();
  auto s = eval::Evaluate(*model, *plan, ref, opt);
  bar.Finish();
  if (!s.ok()) return ReportError(s.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.json) {
    nlohmann::json j = eval::SummaryToJson(*s);
    j["model"] = a.model;
    j["text"] = a.text;
    j["protocol"] = a.per_doc ? "documents" : "windows";
    j["n_ctx"] = a.n_ctx;
    j["sequences"] = plan->seqs.size();
    j["seconds"] = secs;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{}: {} protocol, {} sequences, n_ctx {}, {:.1f} s\n", a.model,
             a.per_doc ? "per-document" : "windows (llama.cpp)", plan->seqs.size(), a.n_ctx, secs);
  PrintSummary(*s);
  if (!a.save_ref.empty()) fmt::print("saved top-{} reference logits to {}\n", a.ref_k, a.save_ref);
  return 0;
}

}  // namespace

void RegisterEval(CLI::App& app, CommandRegistry& reg) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Perplexity of a GGUF model on a text; KL divergence vs a reference");
  cmd->add_option("-m,--model", a->model, "Model to evaluate (GGUF)")->required();
  cmd->add_option("--text,-f", a->text, "Text file (UTF-8)")->required();
  cmd->add_option("--ref", a->ref, "Reference model (GGUF, e.g. the F32 original): KLD, ΔPPL, same top token");
  cmd->add_option("--ref-logits", a->ref_logits, "Reference logits saved by --save-ref (same text and options)");
  cmd->add_option("--save-ref", a->save_ref,
                  "Save the reference's top-k logits here (the evaluated model's own without --ref)");
  cmd->add_option("--ref-k", a->ref_k, "k for --save-ref")->capture_default_str();
  cmd->add_option("-c,--ctx-size", a->n_ctx, "Window size in tokens (per-document: truncation length)")
      ->capture_default_str();
  cmd->add_flag("--split-on-blank-lines", a->per_doc,
                "Per-document protocol: split on blank lines, BOS + each piece, score every token");
  cmd->add_option("--chunks", a->chunks, "Use only the first N windows (or pieces)");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  cmd->add_flag("--json", a->json, "Print the results as JSON");
  cmd->add_flag("--progress", a->progress, "Show the progress bar even when stderr is not a terminal");
  cmd->callback([&reg, a] { reg.Set([a] { return RunEval(*a); }); });
}

}  // namespace qforge::cli
