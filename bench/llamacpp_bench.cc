// Baseline for bench/decode_vs_llamacpp.sh: llama.cpp (pinned libllama) prefill and decode speed on a GGUF,
// measured the way `qforge bench` measures it: the same deterministic prompt tokens, prefill of P tokens in
// one llama_decode batch (logits of the last token only), then N tokens decoded one at a time, median of R
// runs, the KV cache cleared before each run. CPU only, flash attention disabled.
// Usage: llamacpp_bench MODEL.gguf P N THREADS R   -> {"prefill_tok_s": ..., "decode_tok_s": ...,
//   "prefill_tok_per_cpu_s": ..., "decode_tok_per_cpu_s": ...} (tokens per second of process CPU time)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU seconds used by the whole process (all threads): unlike wall time, barely affected by other processes
// competing for the cores, so per-CPU-second rates stay comparable on a loaded machine.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: llamacpp_bench MODEL.gguf N_PROMPT N_GEN THREADS REPETITIONS\n");
    return 2;
  }
  const int n_prompt = std::atoi(argv[2]), n_gen = std::atoi(argv[3]);
  const int threads = std::atoi(argv[4]), repeats = std::atoi(argv[5]);
  if (n_prompt < 1 || n_gen < 1 || threads < 1 || repeats < 1) {
    std::fprintf(stderr, "llamacpp_bench: N_PROMPT, N_GEN, THREADS and REPETITIONS must be >= 1\n");
    return 2;
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  ggml_backend_load_all_from_path(QFORGE_GGML_BACKEND_DIR);

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) {
    std::fprintf(stderr, "llamacpp_bench: cannot load %s\n", argv[1]);
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n_prompt + n_gen + 1);
  cp.n_batch = static_cast<uint32_t>(n_prompt);
  cp.n_ubatch = static_cast<uint32_t>(n_prompt);
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) {
    std::fprintf(stderr, "llamacpp_bench: cannot create a context\n");
    llama_model_free(model);
    return 1;
  }
  const uint32_t n_vocab = static_cast<uint32_t>(llama_vocab_n_tokens(llama_model_get_vocab(model)));

  // The same deterministic pseudo-random prompt as `qforge bench`.
  std::vector<llama_token> prompt(static_cast<size_t>(n_prompt));
  uint32_t s = 12345;
  for (auto& t : prompt) t = static_cast<llama_token>((s = s * 1664525u + 1013904223u) % n_vocab);

  llama_batch batch = llama_batch_init(n_prompt, 0, 1);
  auto fill = [&](int first_pos, const llama_token* toks, int n) {
    for (int i = 0; i < n; ++i) {
      batch.token[i] = toks[i];
      batch.pos[i] = static_cast<llama_pos>(first_pos + i);
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = i == n - 1;
    }
    batch.n_tokens = n;
  };

  std::vector<double> pre, dec, pre_cpu, dec_cpu;
  int rc = 0;
  for (int r = 0; r < repeats && rc == 0; ++r) {
    llama_memory_clear(llama_get_memory(ctx), true);
    const double c0 = CpuSeconds();
    auto t0 = std::chrono::steady_clock::now();
    fill(0, prompt.data(), n_prompt);
    rc = llama_decode(ctx, batch);
    llama_synchronize(ctx);
    auto t1 = std::chrono::steady_clock::now();
    const double c1 = CpuSeconds();
    for (int i = 0; i < n_gen && rc == 0; ++i) {
      fill(n_prompt + i, &prompt[static_cast<size_t>(i) % prompt.size()], 1);
      rc = llama_decode(ctx, batch);
      (void)llama_get_logits_ith(ctx, -1);
    }
    llama_synchronize(ctx);
    auto t2 = std::chrono::steady_clock::now();
    const double c2 = CpuSeconds();
    pre.push_back(n_prompt / Seconds(t0, t1));
    dec.push_back(n_gen / Seconds(t1, t2));
    pre_cpu.push_back(n_prompt / (c1 - c0));
    dec_cpu.push_back(n_gen / (c2 - c1));
  }
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  if (rc != 0) {
    std::fprintf(stderr, "llamacpp_bench: llama_decode failed (%d)\n", rc);
    return 1;
  }
  std::printf("{\"prefill_tok_s\": %.3f, \"decode_tok_s\": %.3f, \"prefill_tok_per_cpu_s\": %.3f, "
              "\"decode_tok_per_cpu_s\": %.3f}\n",
              Median(pre), Median(dec), Median(pre_cpu), Median(dec_cpu));
  return 0;
}
