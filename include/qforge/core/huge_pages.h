// Large buffers that are written once and then streamed (packed weight copies, the quantizer's encode buffer,
// the read-bandwidth probe, the streaming micro-benchmark): 2 MB-aligned, rounded up to whole 2 MB pages, and
// advised into transparent huge pages. On 4 KB pages each first touch is a fault (expensive in a VM) and
// streaming pays TLB misses; the advice is only that: without THP the buffer works, just slower.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace qforge {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using HugePageBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

// `bytes` rounded up to whole huge pages: what AllocateHugePages(bytes) allocates.
inline size_t RoundUpToHugePages(size_t bytes) { return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes; }

// RoundUpToHugePages(bytes) bytes (contents undefined), or null if the memory cannot be had.
inline HugePageBuffer AllocateHugePages(size_t bytes) {
  const size_t alloc = RoundUpToHugePages(bytes);
  HugePageBuffer p(static_cast<uint8_t*>(std::aligned_alloc(kHugePageBytes, alloc)));
  if (p != nullptr) ::madvise(p.get(), alloc, MADV_HUGEPAGE);
  return p;
}

}  // namespace qforge
