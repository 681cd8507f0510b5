// y = W x for a 4096 x 4096 weight matrix per type, one thread, scalar spec vs the best SIMD kernel the CPU
// has. Reports GB/s of weight bytes read (the quantity a memory-bound matvec is limited by); prepare() (the
// activation quantization) is included, as in the runtime.
//   qforge_matvec_bench --benchmark_min_time=0.2   (or --benchmark_filter=Q4_K)
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "kernels_internal.h"
#include "kernels_test_util.h"
#include "qforge/kernels/matvec.h"

namespace qforge {
namespace {

constexpr int64_t kRows = 4096, kCols = 4096;

void BM_MatVec(benchmark::State& state, GgmlType type, KernelIsa isa) {
  const MatVecKernel* k = isa == KernelIsa::kScalar ? ScalarMatVecKernel(type) : BestSimdKernel(type);
  if (k == nullptr) {
    state.SkipWithError("no kernel");
    return;
  }
  const GgmlTypeLayout l = GgmlLayout(type);
  const size_t row_bytes = static_cast<size_t>(kCols / l.block_size) * l.type_size;
  std::vector<uint8_t> w(row_bytes * kRows);
  std::mt19937 rng(1);
  testing::RandomWeights(type, w.data(), kRows * kCols, rng);
  const std::vector<float> x = testing::RandomActivations(kCols, rng);
  std::vector<float> y(kRows);
  PreparedActivation act;
  for (auto _ : state) {
    k->prepare(x.data(), kCols, &act);
    k->rows(w.data(), row_bytes, act, y.data(), 0, kRows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.size()));
  state.SetLabel(std::string(k->isa));
}

const bool kRegistered = [] {
  for (GgmlType t : testing::kAllTypes) {
    const std::string name(GgmlTypeName(t));
    benchmark::RegisterBenchmark(("matvec/" + name + "/scalar").c_str(), BM_MatVec, t, KernelIsa::kScalar)
        ->Unit(benchmark::kMillisecond);
    if (BestSimdKernel(t) != nullptr)
      benchmark::RegisterBenchmark(("matvec/" + name + "/simd").c_str(), BM_MatVec, t, KernelIsa::kBest)
          ->Unit(benchmark::kMillisecond);
  }
  return true;
}();

}  // namespace
}  // namespace qforge

BENCHMARK_MAIN();
