// qforge run -m MODEL.gguf -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]
//            [--seed S] [-t N] [-c N]: streams the continuation to stdout as tokens are produced.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "commands.h"
#include "qforge/core/parallel.h"
#include "qforge/runtime/llama_context.h"
#include "qforge/runtime/sampler.h"
#include "qforge/runtime/tokenizer.h"

namespace qforge::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string prompt = "Once upon a time";
  int n_predict = 128;
  int threads = 0;
  int n_ctx = 0;
  bool stats = false;
  SamplerParams sampling;
};

int RunRun(const RunArgs& args) {
  auto model = LlamaModel::Load(args.model);
  if (!model.ok()) return ReportError(model.status());
  auto tok = Tokenizer::FromMetadata(model->gguf().metadata);
  if (!tok.ok()) return ReportError(tok.status().WithFile(args.model));
  LlamaContext ctx(*model, args.n_ctx, args.threads > 0 ? args.threads : DefaultThreads());
  std::vector<int32_t> tokens = tok->Encode(args.prompt, true);
  if (tokens.empty()) return ReportError(Status::Error("the prompt produced no tokens"));
  if (static_cast<int>(tokens.size()) >= ctx.n_ctx()) {
    return ReportError(Status::Error(fmt::format("prompt of {} tokens does not fit the context of {}", tokens.size(), ctx.n_ctx())));
  }
  fmt::print("{}", args.prompt);
  std::fflush(stdout);
  Sampler sampler(args.sampling);
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  Status st = ctx.Eval(tokens, false, &logits);
  if (!st.ok()) return ReportError(st);
  auto t1 = std::chrono::steady_clock::now();
  int generated = 0;
  for (; generated < args.n_predict && ctx.pos() < ctx.n_ctx(); ++generated) {
    int32_t next = sampler.Sample(logits, tokens);
    if (next == tok->eos()) break;
    tokens.push_back(next);
    fmt::print("{}", tok->TokenToPiece(next));
    std::fflush(stdout);
    if (ctx.pos() >= ctx.n_ctx()) break;
    st = ctx.Eval(std::vector<int32_t>{next}, false, &logits);
    if (!st.ok()) return ReportError(st);
  }
  auto t2 = std::chrono::steady_clock::now();
  fmt::print("\n");
  if (args.stats) {
    const double pre = std::chrono::duration<double>(t1 - t0).count();
    const double dec = std::chrono::duration<double>(t2 - t1).count();
    fmt::print(stderr, "prompt: {} tokens in {:.3f}s; generated {} tokens in {:.3f}s ({:.1f} tok/s)\n",
               tokens.size() - generated, pre, generated, dec, dec > 0 ? generated / dec : 0.0);
  }
  return 0;
}

}  // namespace

void RegisterRun(CLI::App& app, CommandRegistry& reg) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Generate text from a GGUF model on the CPU, streaming tokens");
  cmd->add_option("-m,--model", a->model, "GGUF model (any type qforge writes)")->required();
  cmd->add_option("-p,--prompt", a->prompt, "Prompt text")->capture_default_str();
  cmd->add_option("-n,--n-predict", a->n_predict, "Tokens to generate")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  cmd->add_option("-c,--ctx-size", a->n_ctx, "Context length (default: the model's)");
  cmd->add_option("--temp", a->sampling.temperature, "Temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", a->sampling.top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", a->sampling.top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", a->sampling.min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the penalty looks back")->capture_default_str();
  cmd->add_option("--seed", a->sampling.seed, "Random seed")->capture_default_str();
  cmd->add_flag("--stats", a->stats, "Print timing to stderr");
  cmd->callback([&reg, a] { reg.Set([a] { return RunRun(*a); }); });
}

}  // namespace qforge::cli
