// qforge compare SOURCE --types Q8_0,Q4_K_M,... --text FILE [-o DIR] [-c N] [--chunks N]: quantizes SOURCE
// to each type, evaluates each against the unquantized model's saved top-k logits, and writes a table,
// DIR/report.json and DIR/report.html (inline SVG: file size vs mean KLD, Pareto front).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "progress.h"
#include "qforge/core/atomic_file.h"
#include "qforge/core/parallel.h"
#include "qforge/eval/evaluate.h"
#include "qforge/eval/report.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/quantize.h"

namespace qforge::cli {
namespace {

namespace fs = std::filesystem;

struct CompareArgs {
  std::string source, types = "Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K", text, out_dir = "qforge-compare";
  std::string tokenizer;
  int n_ctx = 512, chunks = -1, threads = 0, ref_k = 64;
  bool per_doc = false, progress = false;
};

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status WriteFileAtomically(const std::string& path, const std::string& content) {
  QF_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  QF_RETURN_IF_ERROR(f.Write(content.data(), content.size()));
  return f.Commit();
}

std::vector<std::string> SplitTypes(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) out.push_back(t);
  return out;
}

StatusOr<QuantizeReport> Quantize(const SourceModel& src, const std::string& type, const std::string& out, int threads,
                                  bool show) {
  QF_ASSIGN_OR_RETURN(Policy policy, MakePolicy(type, ModelFactsFromSource(src)));
  ProgressBar bar("quantize " + type, src.tensors.size(), show);
  QuantizeOptions opt;
  opt.threads = threads;
  opt.progress = [&bar](size_t done, size_t, const std::string& name) { bar.Update(done, name); };
  auto r = QuantizeToGguf(src, policy, out, opt);
  bar.Finish();
  return r;
}

StatusOr<eval::EvalSummary> EvalWithBar(const LlamaModel& m, const eval::EvalPlan& plan, const eval::EvalReference& ref,
                                        eval::EvalOptions opt, const std::string& label, bool show) {
  ProgressBar bar(label, plan.positions(), show);
  opt.progress = [&bar](uint64_t done, uint64_t) { bar.Update(done); };
  auto r = eval::Evaluate(m, plan, ref, opt);
  bar.Finish();
  return r;
}

int RunCompare(const CompareArgs& a) {
  const bool show = a.progress || StderrIsTerminal();
  const int threads = a.threads > 0 ? a.threads : DefaultThreads();
  const std::vector<std::string> types = SplitTypes(a.types);
  if (types.empty()) return ReportError(Status::Error("--types is empty"));
  std::error_code ec;
  fs::create_directories(a.out_dir, ec);
  if (ec) return ReportError(Status::Error("cannot create the output folder: " + ec.message(), a.out_dir));
  auto src = OpenModelSource(a.source, OpenOptions{a.tokenizer});
  if (!src.ok()) return ReportError(src.status());
  std::ifstream tf(a.text, std::ios::binary);
  if (!tf) return ReportError(Status::Error("cannot open the text file", a.text));
  std::stringstream ss;
  ss << tf.rdbuf();
  const std::string text = ss.str();
  std::string stem = fs::path(a.source).filename().string();
  if (stem.empty()) stem = fs::path(a.source).parent_path().filename().string();
  if (auto dot = stem.rfind('.'); dot != std::string::npos && dot > 0) stem.resize(dot);

  // The reference: the source itself when it is a GGUF, else its F32 conversion.
  std::string ref_path = a.source;
  if (src->format != "gguf") {
    ref_path = (fs::path(a.out_dir) / (stem + "-F32.gguf")).string();
    auto r = Quantize(*src, "F32", ref_path, threads, show);
    if (!r.ok()) return ReportError(r.status());
    fmt::print("converted {} to {}\n", a.source, ref_path);
  }
  auto ref = LlamaModel::Load(ref_path);
  if (!ref.ok()) return ReportError(ref.status());
  auto tok = Tokenizer::FromMetadata(ref->gguf().metadata);
  if (!tok.ok()) return ReportError(tok.status().WithFile(ref_path));
  eval::ProtocolOptions po{a.per_doc ? eval::Protocol::kDocuments : eval::Protocol::kWindows, a.n_ctx, a.chunks};
  auto plan = eval::BuildPlan(text, *tok, po);
  if (!plan.ok()) return ReportError(plan.status().WithFile(a.text));

  eval::CompareReport report;
  report.source = a.source;
  report.text = a.text;
  report.protocol = a.per_doc ? "per-document" : "windows (llama.cpp)";
  report.n_ctx = a.n_ctx;
  report.ref_k = a.ref_k;
  report.ref_file_bytes = fs::file_size(ref_path, ec);

  const std::string ref_logits_path = (fs::path(a.out_dir) / "ref-logits.qfref").string();
  eval::EvalOptions opt;
  opt.threads = threads;
  opt.save_ref_path = ref_logits_path;
  opt.save_ref_k = a.ref_k;
  auto base = EvalWithBar(*ref, *plan, {}, opt, "reference", show);
  if (!base.ok()) return ReportError(base.status());
  report.ref_ppl = base->ppl.value;
  report.ref_ppl_unc = base->ppl.unc;
  fmt::print("reference {}: PPL {:.4f} ± {:.4f} over {} positions\n", ref_path, base->ppl.value, base->ppl.unc,
             base->count);
  auto ref_logits = eval::RefLogitsFile::Open(ref_logits_path);
  if (!ref_logits.ok()) return ReportError(ref_logits.status());
  opt.save_ref_path.clear();

  for (const std::string& type : types) {
    eval::CompareRow row;
    row.type = type;
    row.path = (fs::path(a.out_dir) / (stem + "-" + type + ".gguf")).string();
    auto t0 = std::chrono::steady_clock::now();
    auto q = Quantize(*src, type, row.path, threads, show);
    if (!q.ok()) return ReportError(q.status().WithContext(type));
    row.quantize_seconds = Since(t0);
    row.file_bytes = q->file_bytes;
    row.bits_per_weight = q->bits_per_weight();
    auto m = LlamaModel::Load(row.path);
    if (!m.ok()) return ReportError(m.status());
    t0 = std::chrono::steady_clock::now();
    auto s = EvalWithBar(*m, *plan, eval::EvalReference{nullptr, &*ref_logits, ref_logits_path}, opt, "eval " + type,
                         show);
    if (!s.ok()) return ReportError(s.status().WithContext(type));
    row.eval_seconds = Since(t0);
    row.summary = *s;
    fmt::print("{:<8} {:.3f} bpw  PPL {:.4f}  mean KLD {:.6f}  same top {:.2f} %\n", type, row.bits_per_weight,
               s->ppl.value, s->kld.value, 100 * s->same_top.value);
    report.rows.push_back(std::move(row));
  }
  fmt::print("\n{}", eval::FormatCompareTable(report));
  const std::string json_path = (fs::path(a.out_dir) / "report.json").string();
  const std::string html_path = (fs::path(a.out_dir) / "report.html").string();
  Status st = WriteFileAtomically(json_path, eval::CompareToJson(report).dump(2) + "\n");
  if (st.ok()) st = WriteFileAtomically(html_path, eval::CompareToHtml(report));
  if (!st.ok()) return ReportError(st);
  fmt::print("wrote {} and {}\n", json_path, html_path);
  return 0;
}

}  // namespace

void RegisterCompare(CLI::App& app, CommandRegistry& reg) {
  auto a = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand("compare", "Quantize to several types and compare size vs quality (table, JSON, HTML)");
  cmd->add_option("source", a->source, "Model: GGUF, llama2.c checkpoint or Hugging Face folder")->required();
  cmd->add_option("--types", a->types, "Comma-separated types or mixes")->capture_default_str();
  cmd->add_option("--text,-f", a->text, "Evaluation text (UTF-8)")->required();
  cmd->add_option("-o,--out-dir", a->out_dir, "Folder for the quantized files and the reports")->capture_default_str();
  cmd->add_option("-c,--ctx-size", a->n_ctx, "Window size in tokens (per-document: truncation length)")
      ->capture_default_str();
  cmd->add_option("--chunks", a->chunks, "Use only the first N windows (or pieces)");
  cmd->add_flag("--split-on-blank-lines", a->per_doc, "Per-document protocol (see qforge eval)");
  cmd->add_option("--ref-k", a->ref_k, "Top-k of the saved reference logits")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  cmd->add_option("--tokenizer", a->tokenizer, "llama2.c tokenizer.bin (default: found beside the checkpoint)");
  cmd->add_flag("--progress", a->progress, "Show progress bars even when stderr is not a terminal");
  cmd->callback([&reg, a] { reg.Set([a] { return RunCompare(*a); }); });
}

}  // namespace qforge::cli
