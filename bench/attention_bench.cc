// One decode token's attention over one KV head (runtime/attention.h): 8 query heads of 64 (TinyLlama's and
// Llama 3 8B's grouping), keys and values of 1024 or 4096 cached positions inside a 4-head-wide cache row, one
// thread, every path this CPU has. The scalar reference is the baseline: compare the paths' times (or the
// positions/s counter) within one run.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "attention.h"
#include "qforge/core/fp16.h"

namespace qforge {
namespace {

void BM_Attend(benchmark::State& state, AttendFn fn, int head_dim) {
  const int group = 8, n_pos = static_cast<int>(state.range(0));
  const size_t stride = 4 * static_cast<size_t>(head_dim);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(group) * head_dim), out(q.size());
  std::vector<uint16_t> k(stride * n_pos), v(stride * n_pos);
  for (float& x : q) x = u(rng);
  for (auto& x : k) x = F32ToF16(u(rng));
  for (auto& x : v) x = F32ToF16(u(rng));
  std::vector<float> scratch(AttentionScratchFloats(group, head_dim, n_pos));
  const KvHeadAttention a = {q.data(), k.data(), v.data(), stride, head_dim, group, n_pos, 0.125f, out.data()};
  for (auto _ : state) {
    fn(a, scratch.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["positions/s"] = benchmark::Counter(static_cast<double>(n_pos) * state.iterations(), benchmark::Counter::kIsRate);
}

const bool registered = [] {
  for (int hd : {64, 128}) {
    const std::string suffix = "/hd" + std::to_string(hd);
    benchmark::RegisterBenchmark(("attend/scalar" + suffix).c_str(), BM_Attend, AttendKvHeadScalar, hd)->Arg(1024)->Arg(4096);
    if (AttendFn f = AttentionPath(AttentionIsa::kAvx2, hd))
      benchmark::RegisterBenchmark(("attend/avx2" + suffix).c_str(), BM_Attend, f, hd)->Arg(1024)->Arg(4096);
    if (AttendFn f = AttentionPath(AttentionIsa::kAvx512, hd))
      benchmark::RegisterBenchmark(("attend/avx512" + suffix).c_str(), BM_Attend, f, hd)->Arg(1024)->Arg(4096);
  }
  return true;
}();

}  // namespace
}  // namespace qforge

BENCHMARK_MAIN();
