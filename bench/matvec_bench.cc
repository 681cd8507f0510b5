// y = W x for a 4096 x 4096 weight matrix per type, one thread: the scalar spec and every SIMD table the CPU
// can run (AVX2, AVX-512). Reports GB/s of weight bytes read (the quantity a memory-bound matvec is limited
// by) per CPU second; prepare() (the activation quantization) is included, as in the runtime. matmul/...: the
// prefill shape, 64 activations through MatMulRows (the kernel's rows_batch), GB/s of weights per activation.
// .../q4_0x16: the same products on the weights repacked into PackedLayout (FindPackedLayout), as the runtime
// runs them on this CPU. matvec_stream/...: decode on a matrix many times taller, at least twice the last-level
// cache and 8 times the 4096 x 4096 shape (which fits in L3), so that it measures how well the kernel streams its
// weights from DRAM.
//   qforge_matvec_bench --benchmark_min_time=0.2   (or --benchmark_filter=Q4_K)
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels_internal.h"
#include "kernels_test_util.h"
#include "matvec_avx2.h"
#include "matvec_avx512.h"
#include "packed_k16.h"
#include "packed_x16.h"
#include "qforge/core/cpu_features.h"
#include "qforge/core/huge_pages.h"
#include "qforge/kernels/matvec.h"
#include "qforge/runtime/memory_bandwidth.h"
#include "qforge/runtime/thread_pool.h"

namespace qforge {
namespace {

constexpr int64_t kRows = 4096, kCols = 4096;

// The kernel of one ISA for type, or nullptr if the CPU cannot run it or the ISA has none for the type.
const MatVecKernel* KernelFor(GgmlType type, std::string_view isa) {
  if (isa == "scalar") return ScalarMatVecKernel(type);
  if (isa == "avx2") return CpuHasAvx2() ? Avx2MatVecKernel(type) : nullptr;
  if (!CpuHasAvx512Vnni()) return nullptr;
  if (const MatVecKernel* k = Avx512KMatVecKernel(type)) return k;
  return Avx512LegacyMatVecKernel(type);
}

struct Problem {
  size_t row_bytes = 0;
  std::vector<uint8_t> w;
  std::vector<std::vector<float>> x;
};

Problem MakeProblem(GgmlType type, int n_act, const PackedLayout* packed = nullptr) {
  const GgmlTypeLayout l = GgmlLayout(type);
  Problem p;
  p.row_bytes = static_cast<size_t>(kCols / l.block_size) * l.type_size;
  p.w.resize(p.row_bytes * kRows);
  std::mt19937 rng(1);
  testing::RandomWeights(type, p.w.data(), kRows * kCols, rng);
  for (int t = 0; t < n_act; ++t) p.x.push_back(testing::RandomActivations(kCols, rng));
  if (packed != nullptr) {
    std::vector<uint8_t> out(packed->bytes(kRows, p.row_bytes));
    packed->pack(p.w.data(), p.row_bytes, kRows, kCols, out.data());
    p.w = std::move(out);
  }
  return p;
}

void BM_MatVec(benchmark::State& state, GgmlType type, const MatVecKernel* k, const PackedLayout* packed) {
  const Problem p = MakeProblem(type, 1, packed);
  std::vector<float> y(kRows);
  PreparedActivation act;
  for (auto _ : state) {
    k->prepare(p.x[0].data(), kCols, &act);
    k->rows(p.w.data(), p.row_bytes, act, y.data(), 0, kRows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(p.w.size()));
  state.SetLabel(std::string(k->isa));
}

// The DRAM-streaming shape: the 4096-row problem's weights repeated (random generation of the whole would take
// long; the bytes' values do not matter to the speed), at least 8 times and to twice the last-level cache. A
// fixed 8 copies (75 MB in Q4_0) fitted in the 480 MB L3 of session 9's Xeon: there the kernels "streamed"
// 24 GB/s at 1 thread, where the runtime's decode and the bandwidth probe read ~14 from DRAM.
int StreamCopies(size_t matrix_bytes) {
  const long l3 = ::sysconf(_SC_LEVEL3_CACHE_SIZE);  // 0 or -1 when unknown
  const size_t cache = l3 > 0 ? static_cast<size_t>(l3) : 0;
  return static_cast<int>(std::max<size_t>(8, (2 * cache + matrix_bytes - 1) / matrix_bytes));
}

// The problem's weights repeated StreamCopies() times, on huge pages, as the runtime's packed copies
// (llama_model.cc) and its bandwidth probe are: on 4 KB pages the layouts that read several regions of a
// super-block at once streamed much slower here than in the runtime (q6_kx16: ~14 GB/s against ~21 for
// q4_kx16, while in 1-thread decode the two read about the same bytes per second). Null if it cannot be had.
struct StreamMatrix {
  HugePageBuffer buffer;
  size_t bytes = 0;
  int64_t rows = 0;
};
StreamMatrix MakeStreamMatrix(const Problem& p) {
  StreamMatrix m;
  const int copies = StreamCopies(p.w.size());
  m.bytes = p.w.size() * copies;
  m.rows = kRows * copies;
  m.buffer = AllocateHugePages(m.bytes);
  if (m.buffer != nullptr) {
    for (int c = 0; c < copies; ++c) std::memcpy(m.buffer.get() + c * p.w.size(), p.w.data(), p.w.size());
  }
  return m;
}

void BM_MatVecStream(benchmark::State& state, GgmlType type, const MatVecKernel* k, const PackedLayout* packed) {
  const Problem p = MakeProblem(type, 1, packed);
  const StreamMatrix m = MakeStreamMatrix(p);
  if (m.buffer == nullptr) return state.SkipWithError("cannot allocate the streaming buffer");
  std::vector<float> y(m.rows);
  PreparedActivation act;
  for (auto _ : state) {
    k->prepare(p.x[0].data(), kCols, &act);
    k->rows(m.buffer.get(), p.row_bytes, act, y.data(), 0, m.rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(m.bytes));
  state.SetLabel(std::string(k->isa));
}

// The streaming shape on `threads` threads, each decoding a contiguous share of the rows (in whole 16-row
// groups), with the bandwidth probe the runtime's bound uses (memory_bandwidth.h) measured in the same
// process: counter `of_probe` is the kernel's read rate over the probe's, the quantity `qforge bench` reports
// for a whole decode token, here for one kernel alone (no other steps, no job boundaries).
void BM_MatVecStreamThreads(benchmark::State& state, GgmlType type, const MatVecKernel* k, const PackedLayout* packed,
                            int threads) {
  const Problem p = MakeProblem(type, 1, packed);
  const StreamMatrix m = MakeStreamMatrix(p);
  if (m.buffer == nullptr) return state.SkipWithError("cannot allocate the streaming buffer");
  const uint8_t* w = m.buffer.get();
  std::vector<float> y(m.rows);
  PreparedActivation act;
  ThreadPool pool(threads);
  const double probe = MeasureReadBandwidth(m.bytes, threads);
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    k->prepare(p.x[0].data(), kCols, &act);
    pool.Run(m.rows / 16, [&](int64_t g0, int64_t g1) {
      k->rows(w, p.row_bytes, act, y.data() + g0 * 16, g0 * 16, g1 * 16);
    });
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double rate = static_cast<double>(state.iterations()) * static_cast<double>(m.bytes) / seconds;
  state.counters["GBps"] = rate / 1e9;
  state.counters["probe_GBps"] = probe / 1e9;
  state.counters["of_probe"] = rate / probe;
  state.SetLabel(std::string(k->isa));
}

// Prefill: 64 activations, rows in tiles of 16 like the runtime's parallel chunks.
void BM_MatMul(benchmark::State& state, GgmlType type, const MatVecKernel* k, const PackedLayout* packed) {
  constexpr int kActs = 64;
  const Problem p = MakeProblem(type, kActs, packed);
  std::vector<float> y(static_cast<size_t>(kActs) * kRows);
  std::vector<PreparedActivation> acts(kActs);
  for (auto _ : state) {
    for (int t = 0; t < kActs; ++t) k->prepare(p.x[t].data(), kCols, &acts[t]);
    for (int64_t r = 0; r < kRows; r += 16) MatMulRows(*k, p.w.data(), p.row_bytes, acts.data(), kActs, y.data(), kRows, r, r + 16);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kActs * static_cast<int64_t>(p.w.size()));
  state.SetLabel(std::string(k->isa));
}

const bool kRegistered = [] {
  for (GgmlType t : testing::kAllTypes) {
    const std::string name(GgmlTypeName(t));
    for (std::string_view isa : {"scalar", "avx2", "avx512"}) {
      const MatVecKernel* k = KernelFor(t, isa);
      if (k == nullptr) continue;
      benchmark::RegisterBenchmark(("matvec/" + name + "/" + std::string(isa)).c_str(), BM_MatVec, t, k, nullptr)
          ->Unit(benchmark::kMillisecond);
      if (isa == "scalar") continue;
      benchmark::RegisterBenchmark(("matvec_stream/" + name + "/" + std::string(isa)).c_str(), BM_MatVecStream, t, k,
                                   nullptr)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("matmul64/" + name + "/" + std::string(isa)).c_str(), BM_MatMul, t, k, nullptr)
          ->Unit(benchmark::kMillisecond);
    }
    if (const PackedLayout* l = FindPackedLayout(t)) {
      const std::string suffix = name + "/" + std::string(l->name);
      benchmark::RegisterBenchmark(("matvec/" + suffix).c_str(), BM_MatVec, t, l->kernel, l)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("matvec_stream/" + suffix).c_str(), BM_MatVecStream, t, l->kernel, l)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("matmul64/" + suffix).c_str(), BM_MatMul, t, l->kernel, l)
          ->Unit(benchmark::kMillisecond);
      for (int threads : {1, 2})
        benchmark::RegisterBenchmark(("matvec_stream_t" + std::to_string(threads) + "/" + suffix).c_str(),
                                     BM_MatVecStreamThreads, t, l->kernel, l, threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      // With AMX the layout's kernel is the AMX one: its AVX-512 VNNI batch product for comparison.
      const MatVecKernel* vnni = Avx512X16Kernel(t) != nullptr ? Avx512X16Kernel(t) : Avx512K16Kernel(t);
      if (vnni != nullptr && vnni != l->kernel)
        benchmark::RegisterBenchmark(("matmul64/" + suffix + "/avx512").c_str(), BM_MatMul, t, vnni, l)
            ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace qforge

BENCHMARK_MAIN();
