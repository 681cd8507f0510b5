// qforge bench -m MODEL.gguf [-p 64] [-n 32] [-t N] [-r 3] [--json]: prefill and decode tokens/s, bytes of
// weights read per generated token, and the fraction of the machine's measured read bandwidth decode achieves.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "qforge/core/parallel.h"
#include "qforge/runtime/llama_context.h"
#include "qforge/runtime/memory_bandwidth.h"

namespace qforge::cli {
namespace {

struct BenchArgs {
  std::string model;
  int n_prompt = 64;
  int n_gen = 32;
  int threads = 0;
  int repeats = 3;
  bool json = false;
};

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU seconds of the whole process (all threads): barely affected by other processes competing for the
// cores, so tokens per CPU-second stay comparable between runs on a loaded machine.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int RunBench(const BenchArgs& a) {
  auto model = LlamaModel::Load(a.model);
  if (!model.ok()) return ReportError(model.status());
  const int threads = a.threads > 0 ? a.threads : DefaultThreads();
  const LlamaHparams& hp = model->hparams();
  LlamaContext ctx(*model, a.n_prompt + a.n_gen + 1, threads);
  // Deterministic pseudo-random prompt tokens (speed does not depend on the text).
  std::vector<int32_t> prompt(static_cast<size_t>(a.n_prompt));
  uint32_t s = 12345;
  for (auto& t : prompt) t = static_cast<int32_t>((s = s * 1664525u + 1013904223u) % static_cast<uint32_t>(hp.n_vocab));
  std::vector<double> pre, dec, pre_cpu, dec_cpu, bws;
  std::vector<float> logits;
  // KV cache read per decoded token, averaged over the decode positions (F16 K and V).
  const double kv_bytes = 2.0 * 2 * hp.n_layer * hp.kv_dim() * (a.n_prompt + a.n_gen / 2.0);
  const double weight_bytes = static_cast<double>(model->WeightBytesPerToken());
  for (int r = 0; r < a.repeats; ++r) {
    ctx.Reset();
    const double c0 = CpuSeconds();
    auto t0 = std::chrono::steady_clock::now();
    Status st = ctx.Eval(prompt, false, &logits);
    auto t1 = std::chrono::steady_clock::now();
    const double c1 = CpuSeconds();
    if (!st.ok()) return ReportError(st);
    // The read bandwidth is probed in each run, between its prefill and its decode, and each run's decode is
    // set against its own probe: on a VM the bandwidth drifts by 20% and more within a minute, and one probe
    // after all the runs once put a 2-thread decode at "153%" of it (session 9). Not after the decode, where it
    // would come just before the next run's prefill: the probe's 512 MB sweep empties even a 480 MB L3, and that
    // prefill would no longer start where the previous run's decode left the caches, as llama.cpp's runs do (two
    // benchmark runs with the probe after the decode read 1-thread Q4_0 prefill at 157 tok/s, against 173-201 in
    // the three runs before and ~180-195 after).
    bws.push_back(MeasureReadBandwidth(size_t{512} << 20, threads));
    const double c2 = CpuSeconds();
    auto t2 = std::chrono::steady_clock::now();
    for (int i = 0; i < a.n_gen && st.ok(); ++i) st = ctx.Eval(std::vector<int32_t>{prompt[i % prompt.size()]}, false, &logits);
    auto t3 = std::chrono::steady_clock::now();
    const double c3 = CpuSeconds();
    if (!st.ok()) return ReportError(st);
    pre.push_back(a.n_prompt / Seconds(t0, t1));
    dec.push_back(a.n_gen / Seconds(t2, t3));
    pre_cpu.push_back(a.n_prompt / (c1 - c0));
    dec_cpu.push_back(a.n_gen / (c3 - c2));
  }
  const double pp = Median(pre), tg = Median(dec), bw = Median(bws);
  const double achieved = (weight_bytes + kv_bytes) * tg;
  std::vector<double> fractions;
  for (size_t r = 0; r < dec.size(); ++r) fractions.push_back((weight_bytes + kv_bytes) * dec[r] / bws[r]);
  const double fraction = Median(fractions);
  if (a.json) {
    nlohmann::json j = {{"model", a.model}, {"threads", threads}, {"n_prompt", a.n_prompt}, {"n_gen", a.n_gen},
                        {"prefill_tok_s", pp}, {"decode_tok_s", tg},
                        {"prefill_tok_per_cpu_s", Median(pre_cpu)}, {"decode_tok_per_cpu_s", Median(dec_cpu)}, {"weight_bytes_per_token", weight_bytes},
                        {"kv_bytes_per_token", kv_bytes}, {"packed_weight_bytes", model->PackedBytes()},
                        {"read_bandwidth_bytes_s", bw}, {"bandwidth_fraction", fraction}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("model {} ({} layers, {} embd), {} threads, median of {} runs\n", a.model, hp.n_layer, hp.n_embd, threads,
             a.repeats);
  fmt::print("prefill {:>8.1f} tok/s  ({} tokens)\n", pp, a.n_prompt);
  fmt::print("decode  {:>8.1f} tok/s  ({} tokens)\n", tg, a.n_gen);
  fmt::print("bytes read per token: {:.2f} MB weights + {:.2f} MB KV cache\n", weight_bytes / 1e6, kv_bytes / 1e6);
  if (model->PackedBytes() > 0) {
    fmt::print("{:.2f} MB of the weights repacked at load into 16-row groups for this CPU's kernels\n",
               static_cast<double>(model->PackedBytes()) / 1e6);
  }
  fmt::print("measured read bandwidth {:.1f} GB/s; decode uses {:.1f} GB/s = {:.0f}% of it (medians; each run's "
             "decode against the probe just before it)\n",
             bw / 1e9, achieved / 1e9, 100 * fraction);
  return 0;
}

}  // namespace

void RegisterBench(CLI::App& app, CommandRegistry& reg) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure prefill/decode speed and memory-bandwidth use of a GGUF model");
  cmd->add_option("-m,--model", a->model, "GGUF model")->required();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens (prefill)")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("-n,--n-gen", a->n_gen, "Generated tokens (decode)")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  cmd->add_option("-r,--repetitions", a->repeats, "Runs (the median is reported)")->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_flag("--json", a->json, "Machine-readable output");
  cmd->callback([&reg, a] { reg.Set([a] { return RunBench(*a); }); });
}

}  // namespace qforge::cli
