// Decode/encode of whole tensors through the quant registry. Rows are handed out in small chunks from a
// shared counter (dynamic scheduling), so a thread slowed down by other load on the machine does not leave
// the others idle at the end of a tensor; rows are independent, so the bytes never depend on who
// encoded which chunk.
#include "qforge/pipeline/tensor_codec.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <fmt/format.h>

#include "qforge/core/cpu_features.h"
#include "qforge/core/fp16.h"
#include "qforge/core/mapped_file.h"
#include "qforge/core/parallel.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

// Runs fn(first_row, end_row) over [0, rows) in chunks of `chunk` rows on `threads` threads (the caller
// included). fn returns false to stop handing out further chunks (chunks already taken still finish).
void ForEachChunk(int64_t rows, int64_t chunk, int threads, const std::function<bool(int64_t, int64_t)>& fn) {
  const int64_t n_chunks = (rows + chunk - 1) / chunk;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n_chunks)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  auto worker = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) return;
      const int64_t b = c * chunk, e = std::min(rows, b + chunk);
      if (!fn(b, e)) stop.store(true, std::memory_order_relaxed);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

// Rows per chunk: about 64K elements (256 KB of floats, cache-friendly), but at least 8 chunks per thread
// so the load balances.
int64_t ChunkRows(int64_t rows, uint64_t row_len, int threads) {
  const int64_t by_size = std::max<int64_t>(1, static_cast<int64_t>(65536 / std::max<uint64_t>(row_len, 1)));
  const int64_t by_balance = std::max<int64_t>(1, rows / (8 * std::max(threads, 1)));
  return std::min(by_size, by_balance);
}

#if defined(__x86_64__) || defined(__i386__)
// fp16 -> fp32 is exact, so the F16C instruction and the portable conversion give identical floats.
// src may be unaligned (GGUF only aligns tensor starts): unaligned loads and memcpy throughout.
__attribute__((target("f16c,avx"))) void F16RowToF32F16c(const uint8_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = F16ToF32(h);
  }
}
#endif

void F16RowToF32(const uint8_t* src, float* dst, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool f16c = CpuHasF16c();
  if (f16c) {
    F16RowToF32F16c(src, dst, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = F16ToF32(h);
  }
}

// First non-finite element of rows (its index within the tensor), or -1.
// Every input element passes here once, so the scan must be vector code: a loop with an early exit is not
// vectorized by GCC 12 (it was 8% of a 1-thread Q4_0 quantize). Blocks of 256 are reduced without exits (a
// float is Inf or NaN iff its exponent bits are all ones, i.e. |bits| >= 0x7f800000 as an integer), and
// only a block that holds one is searched for the first index.
int64_t FirstNonFinite(const float* x, size_t n, int64_t base) {
  constexpr size_t kBlock = 256;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = std::min(n, b + kBlock);
    int32_t any = 0;
    for (size_t k = b; k < e; ++k) {
      int32_t bits;
      std::memcpy(&bits, x + k, sizeof bits);
      any |= (bits & 0x7fffffff) >= 0x7f800000;
    }
    if (any == 0) continue;
    for (size_t k = b; k < e; ++k)
      if (!std::isfinite(x[k])) return base + static_cast<int64_t>(k);
  }
  return -1;
}

Status NonFiniteError(const SourceTensor& t, int64_t index, float value) {
  const uint64_t cols = t.ne.empty() ? 1 : t.ne[0];
  return Status::Error(fmt::format("tensor {}: element {} (row {}, column {}) is {}; use --allow-nonfinite to "
                                   "quantize it anyway",
                                   t.name, index, static_cast<uint64_t>(index) / cols,
                                   static_cast<uint64_t>(index) % cols, value));
}

}  // namespace

Status ReadTensorF32(const SourceTensor& tensor, float* dst) {
  if (tensor.read_f32) return tensor.read_f32(dst).WithContext("tensor " + tensor.name);
  const QuantType* q = FindQuantType(tensor.type);
  if (q == nullptr || q->decode == nullptr || tensor.raw.empty()) {
    return Status::Error(fmt::format("tensor {}: cannot decode type {}", tensor.name, GgmlTypeName(tensor.type)));
  }
  const uint64_t n = tensor.numel();
  auto bytes = GgmlRowBytes(tensor.type, n);
  if (!bytes || *bytes != tensor.raw.size()) {
    return Status::Error(fmt::format("tensor {}: stored size does not match its shape", tensor.name));
  }
  q->decode(tensor.raw.data(), dst, static_cast<int64_t>(n));
  return Status::Ok();
}

Status EncodeTensor(GgmlType type, const float* src, uint64_t numel, uint64_t row_len, uint8_t* out,
                    const float* importance, int threads) {
  const QuantType* q = FindQuantType(type);
  if (q == nullptr || q->encode == nullptr) {
    return Status::Error(fmt::format("type {} has no encoder", GgmlTypeName(type)));
  }
  auto row_bytes = GgmlRowBytes(type, row_len);
  if (row_len == 0 || !row_bytes || numel % row_len != 0) {
    return Status::Error(
        fmt::format("row length {} is not a multiple of {}'s block size", row_len, GgmlTypeName(type)));
  }
  const int64_t rows = static_cast<int64_t>(numel / row_len);
  ForEachChunk(rows, ChunkRows(rows, row_len, threads), threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      q->encode(src + r * row_len, out + r * *row_bytes, static_cast<int64_t>(row_len), importance);
    }
    return true;
  });
  return Status::Ok();
}

Status EncodeSourceTensor(const SourceTensor& t, GgmlType type, std::span<uint8_t> out, const float* importance,
                          int threads, bool check_finite) {
  const QuantType* q = FindQuantType(type);
  if (q == nullptr || q->encode == nullptr) {
    return Status::Error(fmt::format("tensor {}: type {} has no encoder", t.name, GgmlTypeName(type)));
  }
  const uint64_t numel = t.numel();
  const uint64_t row_len = t.ne.empty() ? 0 : t.ne[0];
  auto out_row_bytes = GgmlRowBytes(type, row_len);
  if (row_len == 0 || !out_row_bytes || numel % row_len != 0) {
    return Status::Error(fmt::format("tensor {}: row length {} is not a multiple of {}'s block size", t.name,
                                     row_len, GgmlTypeName(type)));
  }
  const int64_t rows = static_cast<int64_t>(numel / row_len);
  if (static_cast<uint64_t>(rows) * *out_row_bytes != out.size()) {
    return Status::Error(fmt::format("tensor {}: output buffer of {} bytes, {} needs {}", t.name, out.size(),
                                     GgmlTypeName(type), static_cast<uint64_t>(rows) * *out_row_bytes));
  }

  // Fused path: each worker decodes its own rows straight from the mapped input into a small buffer, so
  // the conversion runs in parallel and no whole-tensor float copy is ever held.
  const QuantType* src_q = FindQuantType(t.type);
  auto src_row_bytes = GgmlRowBytes(t.type, row_len);
  auto src_bytes = GgmlRowBytes(t.type, numel);
  const bool fused = !t.raw.empty() && src_q != nullptr && src_q->decode != nullptr && src_row_bytes &&
                     src_bytes && *src_bytes == t.raw.size();
  if (!fused) {
    std::vector<float> values(numel);
    QF_RETURN_IF_ERROR(ReadTensorF32(t, values.data()));
    if (check_finite) {
      const int64_t bad = FirstNonFinite(values.data(), values.size(), 0);
      if (bad >= 0) return NonFiniteError(t, bad, values[static_cast<size_t>(bad)]);
    }
    return EncodeTensor(type, values.data(), numel, row_len, out.data(), importance, threads)
        .WithContext("tensor " + t.name);
  }

  const int64_t chunk = ChunkRows(rows, row_len, threads);
  std::mutex bad_mu;
  int64_t first_bad = std::numeric_limits<int64_t>::max();
  float bad_value = 0;
  std::mutex read_mu;
  Status read_status = Status::Ok();
  ForEachChunk(rows, chunk, threads, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buf;
    thread_local std::vector<uint8_t> raw;
    const size_t n = static_cast<size_t>((end - begin) * static_cast<int64_t>(row_len));
    buf.resize(n);
    // The chunk's stored bytes are read from the file (pread, see CopyMappedBytes), not through the mapping:
    // every input byte is touched once, and first touches of a mapping cost a page fault per few pages.
    const std::span<const uint8_t> stored =
        t.raw.subspan(static_cast<uint64_t>(begin) * *src_row_bytes, static_cast<uint64_t>(end - begin) * *src_row_bytes);
    uint8_t* dst = reinterpret_cast<uint8_t*>(buf.data());
    if (t.type != GgmlType::F32) {
      raw.resize(stored.size());
      dst = raw.data();
    }
    if (Status s = CopyMappedBytes(stored, dst); !s.ok()) {
      std::lock_guard<std::mutex> lock(read_mu);
      if (read_status.ok()) read_status = s.WithContext("tensor " + t.name);
      return false;
    }
    if (t.type == GgmlType::F16) {
      F16RowToF32(raw.data(), buf.data(), n);
    } else if (t.type != GgmlType::F32) {
      src_q->decode(raw.data(), buf.data(), static_cast<int64_t>(n));
    }
    if (check_finite) {
      const int64_t base = begin * static_cast<int64_t>(row_len);
      const int64_t bad = FirstNonFinite(buf.data(), n, base);
      if (bad >= 0) {
        // Chunks are handed out in order, so every earlier chunk is already taken and will finish: the
        // smallest index reported is the tensor's first non-finite element.
        std::lock_guard<std::mutex> lock(bad_mu);
        if (bad < first_bad) first_bad = bad, bad_value = buf[static_cast<size_t>(bad - base)];
        return false;
      }
    }
    for (int64_t r = begin; r < end; ++r) {
      q->encode(buf.data() + (r - begin) * static_cast<int64_t>(row_len), out.data() + r * *out_row_bytes,
                static_cast<int64_t>(row_len), importance);
    }
    return true;
  });
  if (!read_status.ok()) return read_status;
  if (first_bad != std::numeric_limits<int64_t>::max()) return NonFiniteError(t, first_bad, bad_value);
  return Status::Ok();
}

}  // namespace qforge
